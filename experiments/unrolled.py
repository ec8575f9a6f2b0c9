"""Unrolled GAN (Metz et al. 2017) and the mode-collapse benchmarks: 2D ring, 2D grid, Stacked MNIST.

G's loss is taken against a copy of D advanced `unroll.steps` (k) steps by D's own optimizer
(Adam) on the same real batch and G's current fakes, differentiating through those k updates
(`unroll.stop_gradient=true`: the cheap approximation that does not). D's own update is the
ordinary one; k = 0 is the ordinary GAN.

Launch:
  python launch.py --exp=unrolled:ring                            # MLP G/D, 8 modes on a circle, k = 5
  python launch.py --exp=unrolled:grid                            # 25 modes at {-4,-2,0,2,4}^2
  python launch.py --exp=unrolled:ring --config.unroll.steps=10   # any k; 0 = the ordinary GAN
  python launch.py --exp=unrolled:stacked_mnist                   # DCGAN G, D with 1/4 of G's channels
  python launch.py --exp=unrolled:stacked_mnist,d_half            # D with 1/2 of G's channels
  python launch.py --exp=unrolled:ring --sweep --runner=vectorized --workdir=DIR   # k in {0,1,5,10} x 10 seeds
  python launch.py --exp=unrolled:ring,compare --sweep --runner=vectorized --workdir=DIR
                                                                  # GAN, unrolled k=5/10, WGAN-GP x 10 seeds
  python bench/mode_collapse_table.py --ring=DIR --grid=DIR # the table below from those sweeps
  python launch.py --exp=unrolled:smoke                           # seconds: tiny model, 20 steps
Options after the colon combine with commas, e.g. `unrolled:grid,compare`.

Data (gan_jax/data/mixtures.py): ring = 8 modes on the circle of radius 1, std 0.01; grid = 25
modes at {-4,-2,0,2,4}^2, std 0.05. Evaluation (gan_jax/metrics/modes.py, the VEEGAN / PacGAN
protocol): 2,500 samples, a sample is high quality within 3 std of its nearest mode, a mode is
captured when it holds a high-quality sample, reverse KL of the captured-mode histogram to the
uniform one. Each evaluation also writes figures/modes_N.png (scatter over the real points and a
mode histogram; W&B key eval/modes_figure).

Models (sized for a CPU): G and D are MLPs with 2 ReLU hidden layers of 64 (Metz et al.: 128);
z ~ N(0, I_64) (theirs 256); batch 256 (theirs 512); Adam lr 1e-3 decayed to 0 by a cosine over
the run (`optim.decay`), betas 0.5 / 0.999 for both players (theirs lr 1e-4, constant);
non-saturating G loss (theirs minimax). Width 128 cost the unrolled (k = 5) step 3x the time per
iteration here; wider networks are compared below. The budget
is RING_STEPS / GRID_STEPS iterations.

`compare` (the sweep of the table): on one mixture and with one budget of G updates, the
non-saturating GAN (k = 0), unrolled k = 5 and k = 10, and WGAN-GP (Wasserstein loss, lambda 1
as in wgan_gp:ring, 5 critic steps, Adam betas 0 / 0.9) with the same MLPs and learning rate,
10 seeds each.

Stacked MNIST (gan_jax/data/stacked_mnist.py, 1000 modes): DCGAN G (64 channels), D with 16
channels (`d_quarter`, the default: Metz et al.'s 1/4-size D) or 32 (`d_half`), Adam 2e-4 /
0.5, batch 64; evaluated on 26,000 samples whose channels the project's MNIST classifier reads
(modes of 1000, KL to uniform).

Published figures (2,500 samples, 3-std high quality):
  VEEGAN Table 1:  GAN ring 1 mode / 99.3 % HQ, grid 3.3 / 0.5 %; unrolled ring 7.6 / 35.6 %,
                   grid 23.6 / 16 %.
  PacGAN Table 1:  GAN ring 6.3 / 98.2 %, grid 17.3 / 94.8 %.
  Stacked MNIST:   VEEGAN: DCGAN 99 modes KL 3.40, unrolled 48.7 / 4.32; PacGAN (D = 1/4 G):
                   DCGAN 78.5 modes, unrolled-10 327.2 modes.

Measured here (2-core CPU, no GPU; jax 0.10.2; `--runner=vectorized`, 10 seeds per method as one
vmapped program; 10,000 iterations, lr cosine-decayed to 0; last evaluation; mean ± standard
error over seeds; the grid's k = 10 row was run on its own, `--sweep_filter=unroll.steps=10`):

  python launch.py --exp=unrolled:ring,compare --sweep --runner=vectorized --workdir=/tmp/ur/ring
  python launch.py --exp=unrolled:grid,compare --sweep --runner=vectorized --workdir=/tmp/ur/grid
  python bench/mode_collapse_table.py --ring=/tmp/ur/ring --grid=/tmp/ur/grid

  | Method | Ring modes (of 8) | Ring HQ % | Ring reverse KL | Grid modes (of 25) | Grid HQ % | Grid reverse KL | Seeds (ring / grid) | Iterations | Wall s (ring / grid) |
  |---|---|---|---|---|---|---|---|---|---|
  | GAN | 4.9 ± 0.5 | 87.5 ± 1.1 | 0.66 ± 0.12 | 12.4 ± 0.5 | 5.0 ± 0.4 | 1.12 ± 0.06 | 10/10 / 10/10 | 10000 | 150 / 133 |
  | Unrolled k=5 | 3.5 ± 0.4 | 89.0 ± 1.5 | 1.07 ± 0.10 | 9.3 ± 0.7 | 4.9 ± 0.9 | 2.10 ± 0.08 | 10/10 / 10/10 | 10000 | 613 / 642 |
  | Unrolled k=10 | 1.8 ± 0.3 | 94.2 ± 1.3 | 1.67 ± 0.11 | 7.6 ± 0.6 | 5.1 ± 1.1 | 2.24 ± 0.11 | 10/10 / 10/10 | 10000 | 964 / 699 |
  | WGAN-GP | 8.0 ± 0.0 | 87.1 ± 0.9 | 0.00 ± 0.00 | 23.0 ± 0.5 | 10.9 ± 0.9 | 0.55 ± 0.04 | 10/10 / 10/10 | 10000 | 349 / 372 |
  | *published:* GAN (VEEGAN Table 1) | 1 | 99.3 | - | 3.3 | 0.5 | - | | | |
  | *published:* Unrolled GAN (VEEGAN Table 1) | 7.6 | 35.6 | - | 23.6 | 16.0 | - | | | |
  | *published:* GAN (PacGAN Table 1) | 6.3 | 98.2 | - | 17.3 | 94.8 | - | | | |

Wall s is the whole group of 10 seeds (compilation and 20 evaluations with figures included).
With these width-64 networks the target (8/8 and 25/25 modes with >= 90 % high quality for
unrolled and WGAN-GP) is NOT reached; with wider ones (below) WGAN-GP reaches it on the ring
only. At width 64 WGAN-GP comes closest: all 8 ring modes in every seed with a near-uniform
histogram (reverse KL 0.002) and 87 % of samples within 3 std, 23 of 25 grid modes but only 11 % high
quality (the grid's 3-std discs are 0.15 wide at spacing 2). The GAN matches PacGAN's baseline
in kind (about 5 of 8 ring modes, sharp). Unrolling does not spread the generator over more
modes at these settings; it sharpens fewer (k = 10: 1.8 modes, 94 % high quality), as it did at
2,000 iterations.
What changed the figures most was the learning-rate schedule and the budget: at 2,000
iterations of constant lr 1e-3 (the previous protocol) the same sweeps gave ring HQ 6-59 % (GAN
5.0 modes / 14.7 %, unrolled k = 5 3.5 / 21.0 %, k = 10 1.7 / 59.3 %, WGAN-GP 8.0 / 5.9 %) and
grid HQ about 2 %; at 2,000 iterations with the cosine decay the GAN (10 seeds) had not left the
initial blob (HQ < 1 %); at 10,000 the generators sharpen as the steps shrink. Also tried (ring, 3 seeds
each): G/D width 128 with k = 5 (1,500 iterations: 1 mode of 8, HQ 24-29 %); 6,000 constant-lr
iterations, GAN vs k = 5 (modes 4.3 vs 4.0, HQ 74 % vs 61 %); the minimax G loss of Metz et al.,
GAN vs k = 10 (modes 6.0 vs 4.3, HQ < 8 %). Not tried for lack of CPU time: Metz et al.'s exact
networks (D with one hidden layer, G width 128, z 256, batch 512, lr 1e-4) for tens of thousands
of iterations, which is what their coverage figures need. The unrolled gradient itself is exact
(tests/test_unrolled.py: a quadratic game against its hand-derived gradient).

Wider networks: G and D with 3 hidden layers of 256 (PacGAN's 2D networks are 400 wide), the
rest as above; 3 seeds each (10 for WGAN-GP on the ring), 10,000 iterations:

  python launch.py --exp=unrolled:ring,compare --sweep --runner=vectorized --sweep_filter=loss=wasserstein \
      --config.model.hidden=256 --config.model.layers=3 --workdir=/tmp/ur/ring_wide

  | Method | Ring modes (of 8) | Ring HQ % | Ring reverse KL | Grid modes (of 25) | Grid HQ % | Grid reverse KL | Seeds (ring / grid) | Wall s (ring / grid) |
  |---|---|---|---|---|---|---|---|---|
  | GAN | 5.0 ± 0.6 | 96.5 ± 0.8 | 0.88 ± 0.13 | 9.0 ± 1.0 | 52.0 ± 7.0 | 1.48 ± 0.08 | 3 / 3 | 127 / 122 |
  | Unrolled k=5 | - | - | - | 1.0 ± 0.0 | 89.6 ± 7.8 | 3.22 ± 0.00 | - / 3 | - / 1352 |
  | WGAN-GP | 8.0 ± 0.0 | 94.2 ± 0.4 | 0.00 ± 0.00 | 25.0 ± 0.0 | 70.1 ± 1.3 | 0.01 ± 0.00 | 10 / 3 | 648 + 1569 / 659 |

WGAN-GP with these networks meets the target on the ring (8 of 8 modes in each of 10 seeds, high
quality 92.2-95.7 %) and covers all 25 grid modes in every seed with a near-uniform
histogram, at 70 % high quality. The GAN gets sharper, not broader; unrolled k = 5 collapses onto a single grid mode
in all 3 seeds. Width is cheap for the GAN (the MLPs are small next to the per-iteration
overhead), dearer with WGAN-GP's 5 critic steps and the unrolled steps (659 and 1352 s for 3
grid seeds, against 372 and 642 s for 10 at width 64), which is why the 10-seed table above
keeps width 64.

Stacked MNIST (`unrolled:stacked_mnist`, D = 1/4 of G's channels, one seed, batch 64; the unrolled
D steps unrolled into the program, `unroll.rolled=false`):

  | Method (D = 1/4 G)  | Modes at 500 it. | KL at 500 | Modes at 1,000 it. | KL at 1,000 | Wall s (1,000 it.) |
  |---|---|---|---|---|---|
  | DCGAN (k = 0)       | 83  | 4.54 | 607 | 1.92 | 559  |
  | Unrolled k = 5      | 249 | 3.45 | 819 | 1.19 | 1747 |
  | *published:* DCGAN (VEEGAN) 99 / 3.40; unrolled (VEEGAN) 48.7 / 4.32; PacGAN (D = 1/4 G): DCGAN 78.5, unrolled k = 10 327.2 modes |

  python launch.py --exp=unrolled:stacked_mnist --sweep --runner=vectorized --workdir=/tmp/ur/stacked \\
      --sweep_filter=unroll.steps=0,unroll.steps=5,train.seed=0 --config.train.steps=1000 --config.eval.eval_every=500

Unrolling covers more modes with a flatter histogram at both points, the published direction
(PacGAN: 78.5 -> 327.2), but these are early-training figures on one seed: 1,000 iterations of
batch 64 are about one epoch of the 60,000 stacked images, far from the published budgets, and
the published DCGAN figures are of converged (collapsed) models.
"""
from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax.errors import UserError

OPTIONS = ('ring', 'grid', 'stacked_mnist', 'd_quarter', 'd_half', 'compare', 'smoke')
SEEDS = tuple(range(10))
UNROLL_STEPS = (0, 1, 5, 10)
RING_STEPS = 10_000
GRID_STEPS = 10_000

# WGAN-GP's differences from this experiment's GAN in the `compare` sweep (its MLPs, lr and budget).
WGAN_GP = {'loss': 'wasserstein', 'penalty.gp': 1.0, 'train.d_steps': 5, 'optim.g.b1': 0.0, 'optim.g.b2': 0.9,
           'optim.d.b1': 0.0, 'optim.d.b2': 0.9}


def _options(arg: str | None) -> frozenset[str]:
  options = experiments.parse_options('unrolled', arg, OPTIONS, exclusive=(('ring', 'grid', 'stacked_mnist'),))
  if ('d_quarter' in options or 'd_half' in options) and 'stacked_mnist' not in options:
    raise UserError('unrolled: d_quarter and d_half size the Stacked MNIST D; add stacked_mnist')
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
    c.data.batch_size = 256
    c.model.name = 'mlp'
    c.model.d_norm = 'none'
    c.model.z_dim = 64
    c.model.hidden = 64
    c.model.layers = 2
    c.optim.g.lr = c.optim.d.lr = 1e-3
    c.optim.decay = 'cosine'  # To 0 over the run: the samples sharpen onto the modes as the steps shrink.
    c.train.steps = GRID_STEPS if c.data.name == 'grid' else RING_STEPS
    c.train.log_every = 100
    c.train.sample_every = 0  # The per-eval figure shows the samples.
    c.train.checkpoint_every = c.train.steps
    eval_every = c.train.steps // 4
  config_lib.set_default_eval(c, eval_every=eval_every)
  if 'smoke' in options:
    config_lib.shrink_to_smoke(c)
    c.unroll.steps = 2
  return c


def get_sweep(arg: str | None = None):
  """`compare`: GAN, unrolled k = 5 and 10, WGAN-GP, 10 seeds each; otherwise unroll steps {0, 1, 5, 10} x 10 seeds.

  Each (method, k) is one program, so `--runner=vectorized` trains its 10 seeds as one vmapped run.
  """
  seeds = list(SEEDS)
  if 'compare' in _options(arg):
    return [{'product': {'unroll.steps': [0, 5, 10], 'train.seed': seeds}},
            {'product': {**{k: [v] for k, v in WGAN_GP.items()}, 'unroll.steps': [0], 'train.seed': seeds}}]
  return {'product': {'unroll.steps': list(UNROLL_STEPS), 'train.seed': seeds}}
