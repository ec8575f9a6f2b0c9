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
z ~ N(0, I_64) (theirs 256); batch 256 (theirs 512); Adam lr 1e-3, betas
0.5 / 0.999 for both players (theirs lr 1e-4); non-saturating G loss (theirs minimax). Width 128
cost 3x the time per iteration here. The budget is RING_STEPS / GRID_STEPS iterations.

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

Measured here (2-core shared CPU, no GPU; jax 0.10.2; `--runner=vectorized`, 10 seeds per method as
one vmapped program; 2,000 iterations; last evaluation; mean ± standard error over seeds):

  python launch.py --exp=unrolled:ring,compare --sweep --runner=vectorized --workdir=/tmp/ur/final_ring
  python launch.py --exp=unrolled:grid,compare --sweep --runner=vectorized --workdir=/tmp/ur/final_grid
  python bench/mode_collapse_table.py --ring=/tmp/ur/final_ring --grid=/tmp/ur/final_grid

  | Method | Ring modes (of 8) | Ring HQ % | Ring reverse KL | Grid modes (of 25) | Grid HQ % | Grid reverse KL | Seeds (ring / grid) | Iterations | Wall s (ring / grid) |
  |---|---|---|---|---|---|---|---|---|---|
  | GAN | 5.0 ± 0.6 | 14.7 ± 3.5 | 1.07 ± 0.15 | 17.5 ± 0.8 | 2.1 ± 0.1 | 0.64 ± 0.06 | 10/10 / 10/10 | 2000 | 86 / 105 |
  | Unrolled k=5 | 3.5 ± 0.3 | 21.0 ± 3.0 | 1.19 ± 0.13 | 12.9 ± 0.9 | 1.8 ± 0.2 | 1.01 ± 0.09 | 10/10 / 10/10 | 2000 | 512 / 695 |
  | Unrolled k=10 | 1.7 ± 0.3 | 59.3 ± 9.0 | 1.87 ± 0.09 | 14.7 ± 0.3 | 1.7 ± 0.1 | 0.79 ± 0.04 | 10/10 / 10/10 | 2000 | 789 / 386 |
  | WGAN-GP | 8.0 ± 0.0 | 5.9 ± 0.5 | 0.19 ± 0.05 | 22.1 ± 0.7 | 2.6 ± 0.1 | 0.30 ± 0.03 | 10/10 / 10/10 | 2000 | 222 / 91 |
  | *published:* GAN (VEEGAN Table 1) | 1 | 99.3 | - | 3.3 | 0.5 | - | | | |
  | *published:* Unrolled GAN (VEEGAN Table 1) | 7.6 | 35.6 | - | 23.6 | 16.0 | - | | | |
  | *published:* GAN (PacGAN Table 1) | 6.3 | 98.2 | - | 17.3 | 94.8 | - | | | |

Wall s is the whole group of 10 seeds (compilation and evaluations included) on a CPU shared with
other jobs and with this experiment's other runs (load average 8-12 on 2 cores): 27 min for the ring and 21 min for the grid, about
twice the 25 minutes aimed at for the whole table. The budget is 2,000 G updates at lr 1e-3, where Metz et
al. ran tens of thousands at lr 1e-4 (and PacGAN / VEEGAN their own longer schedules): an order
of magnitude less optimisation, and it shows. The target (8/8 and 25/25 modes with >= 90 % high
quality for unrolled and WGAN-GP) is NOT reached. WGAN-GP spreads mass over every mode but is
not sharp yet (few samples within 3 std); the GAN covers about half the modes; unrolling does not
help at this budget: with k = 10 the generator collapses onto fewer, sharper modes. What else was
tried (ring, 3 seeds each): G/D width 128 with k = 5 (1,500 iterations: 1 mode of 8, HQ 24-29 %);
6,000 iterations, GAN vs k = 5 (modes 4.3 vs 4.0, HQ 74 % vs 61 %: sharper, no more modes); the
minimax G loss of Metz et al., GAN vs k = 10 (modes 6.0 vs 4.3, HQ < 8 %). The unrolled gradient
itself is exact (tests/test_unrolled.py: a quadratic game against its hand-derived gradient).

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
from gan_jax.errors import UserError

OPTIONS = ('ring', 'grid', 'stacked_mnist', 'd_quarter', 'd_half', 'compare', 'smoke')
SEEDS = tuple(range(10))
UNROLL_STEPS = (0, 1, 5, 10)
RING_STEPS = 2000
GRID_STEPS = 2000

# WGAN-GP's differences from this experiment's GAN in the `compare` sweep (its MLPs, lr and budget).
WGAN_GP = {'loss': 'wasserstein', 'penalty.gp': 1.0, 'train.d_steps': 5, 'optim.g.b1': 0.0, 'optim.g.b2': 0.9,
           'optim.d.b1': 0.0, 'optim.d.b2': 0.9}


def _options(arg: str | None) -> list[str]:
  options = [o for o in (arg or '').split(',') if o]
  unknown = [o for o in options if o not in OPTIONS]
  if unknown:
    raise UserError(f'unrolled: unknown option(s) {", ".join(unknown)}; valid: {", ".join(OPTIONS)}')
  if 'ring' in options and 'grid' in options:
    raise UserError('unrolled: choose one of ring and grid')
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
