"""Unrolled GAN (Metz et al. 2017) and the mode-collapse benchmarks: 2D ring, 2D grid, Stacked MNIST.

G's loss is taken against a copy of D advanced `unroll.steps` (k) steps by D's own optimizer
(Adam) on the same real batch and G's current fakes, differentiating through those k updates
(`unroll.stop_gradient=true`: the cheap approximation that does not). D's own update is the
ordinary one; k = 0 is the ordinary GAN. On the ring (and the `small` networks) G's loss is the
paper's surrogate f(theta_G, theta_D^K) (`g_loss=value`: the value function with both data terms,
the real term depending on G through the unrolled D; at k = 0 the minimax GAN); `--config.g_loss=`
takes the non-saturating G loss instead (the grid's and Stacked MNIST's default).

Launch:
  python launch.py --exp=unrolled:ring                            # MLP G/D, 8 modes on a circle, k = 5
  python launch.py --exp=unrolled:grid                            # 25 modes at {-4,-2,0,2,4}^2, k = 1
  python launch.py --exp=unrolled:ring --config.unroll.steps=10   # any k; 0 = the ordinary GAN
  python launch.py --exp=unrolled:stacked_mnist                   # DCGAN G, D with 1/4 of G's channels
  python launch.py --exp=unrolled:stacked_mnist,d_half            # D with 1/2 of G's channels
  python launch.py --exp=unrolled:ring --sweep --runner=vectorized --workdir=DIR   # k in {0,1,5,10} x 10 seeds
  python launch.py --exp=unrolled:ring,compare --sweep --runner=vectorized --workdir=DIR
                                                                  # GAN, unrolled k=5/10, WGAN-GP x 10 seeds
  python bench/mode_collapse_table.py --ring=DIR --grid=DIR # the table of docs/results/unrolled.md
  python launch.py --exp=unrolled:smoke                           # seconds: tiny model, 20 steps
Options after the colon combine with commas, e.g. `unrolled:grid,compare`.

Data (gan_jax/data/mixtures.py): ring = 8 modes on the circle of radius 1, std 0.01; grid = 25
modes at {-4,-2,0,2,4}^2, std 0.05. Evaluation (gan_jax/metrics/modes.py, the VEEGAN / PacGAN
protocol): 2,500 samples, a sample is high quality within 3 std of its nearest mode, a mode is
captured when it holds a high-quality sample, reverse KL of the captured-mode histogram to the
uniform one. Each evaluation also writes figures/modes_N.png (scatter over the real points and a
mode histogram; W&B key eval/modes_figure).

Models: Metz et al.'s 2D networks (their Appendix A): G z -> 128 -> 128 -> 2 (ReLU), D ONE ReLU
hidden layer of 128 on its input points scaled by 1/4 (`model.d_hidden`, `model.d_layers`,
`model.d_input_scale`); z ~ N(0, I_256); batch 512; Adam lr 1e-3 decayed to 0 by a cosine over the
run (`optim.decay`), betas 0.5 / 0.999 for both players (theirs lr 1e-4, constant). The ring: the
surrogate G loss, k = 5. The grid: the non-saturating G loss, k = 1, 2 D steps per G step (the
sharpest of the unrolled settings measured there; the paper has no grid). `small`: the earlier protocol, G and D with 2 hidden
layers of 64, z 64, batch 256, under which unrolling did not help (docs/results/unrolled.md).
The budget is RING_STEPS / GRID_STEPS iterations (60,000: at 10,000 and 30,000 the unrolled ring
samples were still too blurred between the modes, 66 % and 86 % high quality).

`compare` (the sweep of the table): on one mixture and with one budget of G updates, the
non-saturating GAN (k = 0), unrolled k = 5 and k = 10 with the non-saturating G loss, unrolled
k = 5 with the surrogate G loss (the ring's shipped setting), all with one D step, and WGAN-GP (Wasserstein loss, lambda 1
as in wgan_gp:ring, 5 critic steps, Adam betas 0 / 0.9) with the same MLPs and learning rate,
10 seeds each.

Stacked MNIST (gan_jax/data/stacked_mnist.py, 1000 modes): DCGAN G (64 channels), D with 16
channels (`d_quarter`, the default: Metz et al.'s 1/4-size D) or 32 (`d_half`), Adam 2e-4 /
0.5, batch 64; evaluated on 26,000 samples whose channels the project's MNIST classifier reads
(modes of 1000, KL to uniform).

Expected result (10 seeds of 60,000 iterations, one at a time on one core, 3-10 minutes of
training each): on the ring as shipped (surrogate G loss, k = 5), all 8 modes in every seed from
iteration 10,000 on (9 of 10 already at 5,000), ending at 89.0 +- 1.6 % of the samples high quality (mean +- standard error;
seeds 78-97 %, 4 of 10 at >= 90 %: the target missed on average by 1 point; seed 0 92.0 %); with
k = 10 (`--sweep_filter=unroll.steps=10`) 89.3 +- 0.9 % (5 of 10 at >= 90 %; paired with k = 5 seed
by seed +0.2 +- 1.0 points): more unrolling does not lift the mean over 90 %; with
the non-saturating G loss, k = 5 and k = 10 also cover all 8 in every seed but blurrier (82.5 and
84.0 %). The non-saturating GAN collapses early, as Metz et al. (2017) report (0-2 of 8 modes at
5,000 iterations in every run; with a 10,000-iteration budget it ends there, 0.5 of 8 over 10
seeds), but with 60,000 iterations of a decaying learning rate some runs escape between
iterations 10,000 and 25,000 and end with all 8 modes as sharp as the unrolled GAN (88-96 % high
quality), while the others stay on 0-1 modes: 18 of 40 runs escaped (seeds 0-19, each one at a
time and as a lane of a vectorized group; 2 of 10 in the table's runs). Which runs escape is
chance, not the seed: float rounding (a lane sums in another order than a lone run, as a one-ulp
nudge of the initial weights does; bench/lane_drift.py) sends one seed either way. On the grid, as
shipped (non-saturating, k = 1, 2 D steps): 25 of 25 modes in each of 10 seeds at 90.7 +- 1.3 %
high quality (seeds 80.3-95.1 %, 8 of 10 at >= 90 %: the target met on average, not by seeds 5
and 7; about 4.6 minutes of training per seed on one core); the paper's surrogate with k = 5
covers 20-25 modes at only 16-38 % (streaks between modes), and on the grid fewer unrolling steps
and the non-saturating loss are sharper. WGAN-GP (the `compare` row) on the ring: all 8 modes in
8 of 10 seeds (two collapsed onto 1-2 modes), 69.0 +- 12.1 % high quality, the target missed; on
the grid 25 of 25 in 10 of 10 seeds at 75.1 +- 4.9 % (3 of 10 at >= 90 %: missed; seeds that stayed
collapsed until iteration 15,000 were still sharpening when the learning rate reached 0). The grid's
other `compare` rows (10 seeds each): the GAN all 25 modes in 6 of 10 (none in 2), unrolled k = 5
16.7 +- 2.0 modes at 30.8 %, k = 10 23.9 +- 0.3 at 64.7 %, the surrogate at k = 5 21.8 +- 0.5 at
26.2 %: with one D step, more unrolling covers more grid modes but none is sharp.
Stacked MNIST (`unrolled:stacked_mnist`, D = 1/4 of G, seed 0, batch 64): the DCGAN does not
collapse, 992 of 1000 modes (KL 0.26) after 20,000 iterations (955 at 10,000 with no batch norm in
D); unrolled k = 5 matches it at 7,500 iterations (952 modes, KL 0.64, against 949 / 0.64) at 6.7x
the training time, so the published gap (PacGAN: DCGAN 78.5, unrolled k = 10 327.2) is not
reproduced: there is no collapse here for unrolling to undo.
The acceptance runs, seed 0 as shipped, sampled with `--mode=sample --num_samples=2500`:
`unrolled:ring` 8 of 8 modes, 92.2 % high quality; `unrolled:grid` 25 of 25, 90.2 %. With the `small` networks unrolling did not help at all. Tables, curves against
iterations, published figures and what was tried: docs/results/unrolled.md.
Measured results: docs/results/unrolled.md (seeds, budgets, wall times, machine and commands).
"""
from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax.errors import UserError

OPTIONS = ('ring', 'grid', 'stacked_mnist', 'd_quarter', 'd_half', 'small', 'compare', 'smoke')
SEEDS = tuple(range(10))
UNROLL_STEPS = (0, 1, 5, 10)
RING_STEPS = 60_000
GRID_STEPS = 60_000

# WGAN-GP's differences from this experiment's GAN in the `compare` sweep (its MLPs, lr and budget).
WGAN_GP = {'loss': 'wasserstein', 'penalty.gp': 1.0, 'train.d_steps': 5, 'optim.g.b1': 0.0, 'optim.g.b2': 0.9,
           'optim.d.b1': 0.0, 'optim.d.b2': 0.9}


def _options(arg: str | None) -> frozenset[str]:
  options = experiments.parse_options('unrolled', arg, OPTIONS, exclusive=(('ring', 'grid', 'stacked_mnist'),))
  if ('d_quarter' in options or 'd_half' in options) and 'stacked_mnist' not in options:
    raise UserError('unrolled: d_quarter and d_half size the Stacked MNIST D; add stacked_mnist')
  if 'small' in options and 'stacked_mnist' in options:
    raise UserError('unrolled: small sizes the 2D networks; drop it for stacked_mnist')
  return options


def get_config(arg: str | None = None):
  options = _options(arg)
  c = config_lib.base()
  c.loss = 'non_saturating'
  c.unroll.steps = 5
  if 'stacked_mnist' in options:
    c.data.name = 'stacked_mnist'
    c.model.g_channels = 64
    c.model.d_channels = 32 if 'd_half' in options else 16
    c.unroll.rolled = False  # XLA:CPU runs conv gradients inside loop bodies ~13x slower (steps.py).
    c.train.steps = 20_000
    c.train.log_every = 200
    c.train.sample_every = 2000
    eval_every = 5000
  else:
    c.data.name = 'grid' if 'grid' in options else 'ring'
    c.model.name = 'mlp'
    c.model.d_norm = 'none'
    if 'small' in options:  # The earlier protocol: G and D with 2 hidden layers of 64, z 64, batch 256.
      c.data.batch_size, c.model.z_dim, c.model.hidden, c.model.layers = 256, 64, 64, 2
    else:  # Metz et al.'s 2D networks: G z -> 128 -> 128 -> 2; D one hidden layer of 128 on inputs / 4.
      c.data.batch_size, c.model.z_dim, c.model.hidden, c.model.layers = 512, 256, 128, 2
      c.model.d_hidden, c.model.d_layers, c.model.d_input_scale = 128, 1, 0.25
    c.g_loss = 'value'  # Metz et al.'s surrogate f(theta_G, theta_D^K); with k = 0 the minimax GAN.
    if c.data.name == 'grid' and 'small' not in options:
      # The sharpest unrolled setting measured on the grid (docs/results/unrolled.md): the
      # non-saturating G loss, k = 1, two D steps per G step.
      c.g_loss, c.unroll.steps, c.train.d_steps = '', 1, 2
    c.optim.g.lr = c.optim.d.lr = 1e-3
    c.optim.decay = 'cosine'  # To 0 over the run: the samples sharpen onto the modes as the steps shrink.
    c.train.steps = GRID_STEPS if c.data.name == 'grid' else RING_STEPS
    c.train.log_every = 100
    c.train.sample_every = 0  # The per-eval figure shows the samples.
    c.train.checkpoint_every = c.train.steps
    eval_every = c.train.steps // 12
  config_lib.set_default_eval(c, eval_every=eval_every)
  if 'smoke' in options:
    config_lib.shrink_to_smoke(c)
    c.unroll.steps = 2
  return c


def get_sweep(arg: str | None = None):
  """`compare`: GAN, unrolled k = 5 and 10 (non-saturating G loss), unrolled k = 5 with the paper's
  surrogate G loss (`g_loss=value`), WGAN-GP, 10 seeds each; otherwise unroll steps {0, 1, 5, 10} x 10 seeds.

  Each (method, k) is one program, so `--runner=vectorized` trains its 10 seeds as one vmapped run.
  """
  seeds = list(SEEDS)
  if 'compare' in _options(arg):
    return [{'product': {'g_loss': [''], 'unroll.steps': [0, 5, 10], 'train.d_steps': [1], 'train.seed': seeds}},
            {'product': {'g_loss': ['value'], 'unroll.steps': [5], 'train.d_steps': [1], 'train.seed': seeds}},
            {'product': {**{k: [v] for k, v in WGAN_GP.items()}, 'g_loss': [''], 'unroll.steps': [0],
                         'train.seed': seeds}}]
  return {'product': {'unroll.steps': list(UNROLL_STEPS), 'train.seed': seeds}}
