"""Progressive growing of GANs (Karras et al. 2018): growth schedules vs a non-progressive baseline.

Launch:
  python launch.py --exp=progan                          # MNIST padded to 32x32, 4 -> 8 -> 16 -> 32
  python launch.py --exp=progan:fashion_mnist            # Fashion-MNIST
  python launch.py --exp=progan:cifar10                  # CIFAR-10 (needs the files, see BUILD.md)
  python launch.py --exp=progan:smoke                    # seconds: tiny model, 4 -> 8, 4 iterations per phase
  python launch.py --exp=progan --config.progressive.transition_images=0      # no fade-in
  python launch.py --exp=progan --config.progressive.resolutions='(32,)' \\
      --config.progressive.stable_images=840000                               # non-progressive baseline
  python launch.py --exp=progan:cpu --sweep --runner=sequential --sweep_filter=train.seed=0 \
      --workdir=runs/progan_speedup                        # the schedule comparison, seed 0 (~35 min);
                                                           # seeds 1 and 2 likewise
  python bench/progan_speedup.py --sweep=runs/progan_speedup [--seeds=1,2]    # time to the baseline's FD
      [--thresholds=100,60 --plots=PREFIX]     # time to each FD; FD against images and seconds per schedule
  python launch.py --report=runs/progan_speedup                               # its table and plots
  python launch.py --exp=progan:cpu32 --sweep --runner=sequential --sweep_filter=train.seed=0 \
      --workdir=runs/progan_speedup32                      # the same comparison grown to 32x32
(On a CPU `--runner=vectorized` computes a group's lanes as unrolled copies of the iteration, about as
fast per member as one run alone (BUILD.md, "Vectorized sweeps"); the measured comparison ran one member
at a time.)
(Every launch keeps its compiled programs in the persistent compilation cache, gan_jax/compile_cache.py:
programs depend on the resolution and batch size only, not on the schedule, so later runs load them.)
Options after the colon combine with commas (`progan:fashion_mnist,cpu`); `cpu` shrinks the model, the
image budget and the final resolution (4 -> 8 -> 16, evaluated upsampled to 32 and cropped to 28) to
what a 2-core machine trains in about 8 minutes a run (320k images: the budget at which the
baseline's FD has flattened); `cpu32` is `cpu`'s model grown to the default's 32x32 (4 -> 8 -> 16 ->
32, 64k images per phase of the 'long' schedule, 448k in all; 9-35 minutes a run on one core);
`smoke` grows 4 -> 8 with a tiny model.

The schedule is `config.progressive` (gan_jax/train/schedule.py): per resolution the images of its
stable and transition (fade-in) phases, batch size and learning rates; every field can be overridden
from the command line and --dry_run shows it. `train.steps` only caps the run (the schedule sets its
length). Model: equalized learning rate, pixel norm in G, minibatch stddev in D, WGAN-GP (lambda 10)
with the drift term (epsilon 0.001), Adam (lr 1e-3, betas 0, 0.99), EMA of G (0.999; 0.99 with `cpu` and `cpu32`).

Evaluation: classifier FD (the project's MNIST / Fashion-MNIST classifier, on samples upsampled to
32x32 and cropped back to 28x28) against images seen, in eval.jsonl; the report plots it against
images seen, one line per schedule.

get_sweep: four schedules with the same total image budget: 'long' (every phase the same length),
'short' (short early phases, the rest of the budget at the final resolution), 'nofade' (the long
schedule's stable phases lengthened to absorb the transitions, no fade-in) and the non-progressive
baseline (the final resolution from the start); three seeds each.

Expected result: at the default budget (840k images) samples/ show digits at every stage. The paper's
claim, that a progressive run reaches the baseline's final FD sooner, is only weakly reproduced at
`cpu` (4 -> 16, 320k images, 3 seeds): the baseline ends at classifier FD 196.3 ± 0.5; 'short' at
197.2 ± 10.8 in about 10% less wall-clock (624 s against 691 s on a dedicated core, seeds 1-2),
reaching the baseline's FD in 1 of 3 seeds (at 0.82-0.84 of the baseline's time, against the 0.60
aimed at); 'long' (262.6) and 'nofade' (311.5) are cheaper but never reach it. Grown to 32x32
(`cpu32`, 448k images; so far seeds 0-1, the baseline's seed 0) the same: the baseline ends at
29.9, 'short' reaches it at 0.81 +- 0.14 of the baseline's time (0.90 and 0.71) and ends at 27.1
+- 6.3; 'long' 55.4, 'nofade' 113.5. The fraction moved from 0.82 to 0.90 for the same seed-0 runs
(identical FDs) on a slower machine (docs/results/progan.md).

Measured results: docs/results/progan.md (seeds, budgets, wall times, machine and commands).
"""
from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax.train import schedule

OPTIONS = experiments.IMAGE_SETS + ('cpu', 'cpu32', 'smoke')
CPU_SIZES = ('cpu', 'cpu32', 'smoke')  # Model and budget presets: at most one.
RESOLUTIONS = (4, 8, 16, 32)
SEEDS = (0, 1, 2)
PHASE_IMAGES = {'default': 120_000, 'cpu': 64_000, 'cpu32': 64_000, 'smoke': 64}  # Images per phase of the 'long' schedule.


def _options(arg: str | None) -> frozenset[str]:
  return experiments.parse_options('progan', arg, OPTIONS, exclusive=(experiments.IMAGE_SETS, CPU_SIZES))


def _budget(options: list[str]) -> tuple[tuple[int, ...], int]:
  """(resolutions, images per phase of the 'long' schedule) of the options."""
  if 'smoke' in options:
    return RESOLUTIONS[:2], PHASE_IMAGES['smoke']
  if 'cpu' in options:
    return RESOLUTIONS[:3], PHASE_IMAGES['cpu']
  if 'cpu32' in options:
    return RESOLUTIONS, PHASE_IMAGES['cpu32']
  return RESOLUTIONS, PHASE_IMAGES['default']


def get_config(arg: str | None = None):
  options = _options(arg)
  c = config_lib.base()
  c.data.name = experiments.chosen(options, experiments.IMAGE_SETS, c.data.name)
  c.model.name = 'progan'
  c.model.z_dim = 128
  c.model.g_channels = c.model.d_channels = 128  # Feature maps up to 8x8; halved per doubling after.
  c.model.d_norm = 'none'
  c.model.d_minibatch = 'stddev'
  c.loss = 'wasserstein'
  c.penalty.gp = 10.0
  c.penalty.drift = 0.001
  for player in ('g', 'd'):
    c.optim[player].update(lr=1e-3, b1=0.0, b2=0.99)
  c.data.batch_size = 64
  c.train.ema_decay = 0.999
  c.train.steps = 1_000_000_000  # A cap only: the schedule sets the run's length.
  c.train.log_every = 100
  c.train.sample_every = 2000
  c.train.checkpoint_every = 2000
  resolutions, phase = _budget(options)
  c.progressive = schedule.progressive_config(resolutions=resolutions, stable_images=(phase,),
                                              transition_images=(phase,))
  if c.data.name in ('mnist', 'fashion_mnist'):  # The project's domain classifiers exist for these.
    c.eval.metrics = ('classifier_fd',)
    c.eval.eval_every = 2000
  if options & {'cpu', 'cpu32'}:
    c.train.ema_decay = 0.99  # 0.999 would keep ~60% of the initial G in the EMA after these 500 steps.
    c.model.z_dim = 64
    c.model.g_channels = c.model.d_channels = 32
    c.data.batch_size = 32
    c.train.log_every = 250
    c.train.sample_every = c.train.checkpoint_every = 2000
    c.eval.eval_every = 250  # 8,000 images.
    c.eval.num_samples = 2000
  if 'smoke' in options:
    c.model.z_dim = 16
    c.model.g_channels = c.model.d_channels = 8
    c.data.batch_size = 16
    c.train.log_every = 2
    c.train.sample_every = c.train.checkpoint_every = 8
    c.eval.metrics = ()  # Tests add the metrics they check.
  return c


def schedules(arg: str | None = None) -> dict[str, dict]:
  """The compared schedules, each as progressive.* values with the same total image budget."""
  resolutions, n = _budget(_options(arg))
  stages = len(resolutions)
  budget = (2 * stages - 1) * n
  short = n // 4
  return {
      'long': dict(resolutions=resolutions, stable_images=(n,) * stages, transition_images=(n,) * stages),
      'short': dict(resolutions=resolutions, stable_images=(short,) * (stages - 1) + (budget - (2 * stages - 2) * short,),
                    transition_images=(short,) * stages),
      'nofade': dict(resolutions=resolutions, stable_images=(2 * n,) * (stages - 1) + (budget - 2 * n * (stages - 1),),
                     transition_images=(0,) * stages),
      'baseline': dict(resolutions=resolutions[-1:], stable_images=(budget,), transition_images=(0,)),
  }


def get_sweep(arg: str | None = None):
  """The schedules of `schedules(arg)` (same image budget) x seeds 0-2: with --runner=vectorized
  each schedule's three seeds are one program."""
  members = schedules(arg).values()
  return {'product': [{'zip': {f'progressive.{key}': [m[key] for m in members]
                               for key in ('resolutions', 'stable_images', 'transition_images')}},
                      {'product': {'train.seed': list(SEEDS)}}]}
