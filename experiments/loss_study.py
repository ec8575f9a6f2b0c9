"""The loss study (Lucic et al. 2018, "Are GANs created equal?"), sized for a 2-core CPU.

Seven losses on one DCGAN, each given the same small random search of its hyperparameters; the
question is the paper's: with equal tuning budgets, do the losses differ more than the spread of
one loss over its hyperparameters?

Launch (a search is 56 runs of 2.5 to 30 minutes of training on one core each, the gradient
penalties' with 5 D steps the longest: 4 to 5 hours on a 2-core CPU; run it across sessions, the
sweep directory resumes; `--runner=processes` keeps both cores busy):
  python launch.py --exp=loss_study --sweep --runner=processes --parallel=2 --workdir=runs/loss_study/mnist
  python launch.py --exp=loss_study:fashion_mnist --sweep --runner=processes --parallel=2 \
      --workdir=runs/loss_study/fashion_mnist
  python launch.py --exp=loss_study --sweep --sweep_filter=loss=hinge --workdir=DIR         # one loss's draws
  python launch.py --exp=loss_study --sweep --dry_run                                     # the 56 members
  python launch.py --exp=loss_study:smoke --sweep --workdir=DIR                           # seconds per member
  python launch.py --report=runs/loss_study/mnist   # the search per loss (best draw, median and range,
      # strip plot, best draws against wall-clock; gan_jax/search_report.py), then every run's table and curves
  bash bench/run_loss_study.sh runs/loss_study     # all of the below for MNIST, then Fashion-MNIST, resumable
  python bench/loss_study.py --sweep=runs/loss_study/mnist --records=docs/results/loss_study/records \
      --page=docs/results/loss_study.md
      # the results page's tables and figures, best.json; keeps the ended runs' records (committed: the
      # study spans machines); on a new machine `mkdir -p runs/loss_study && cp -r
      # docs/results/loss_study/records/mnist runs/loss_study/` first: the sweep skips those members
  cp runs/loss_study/mnist/best.json docs/results/loss_study/best_mnist.json
  python launch.py --exp=loss_study:best --sweep --runner=processes --parallel=2 --workdir=runs/loss_study/mnist/seeds
      # each loss's best draw with seeds 1 and 2, inside the search's directory: the report and the
      # page then show the best draws over seeds 0-2 (`loss_study:best,fashion_mnist` likewise)
Options after the colon combine with commas, e.g. `loss_study:fashion_mnist,smoke`.

Losses (LOSSES, the values each member sets): minimax, non_saturating, least_squares, hinge (D
with BatchNorm); wgan (Wasserstein loss with weight clipping at `penalty.clip`, the critic with
BatchNorm as in the WGAN paper); wgan_gp (Wasserstein loss with the gradient penalty `penalty.gp`,
the critic without normalization); dragan (the non-saturating loss with the DRAGAN penalty
`penalty.dragan`, D without normalization: the penalty needs per-example input gradients).

Search (SEARCH): 8 draws from one fixed seed, the same 8 for every loss (common random numbers:
the losses are compared on identical learning rates, betas and critic steps): both players' Adam
learning rates log-uniform in [1e-5, 1e-3], beta1 uniform in [0, 0.9], D steps per G step 1-5;
zipped with 8 draws of the loss's own weight where it has one (clip log-uniform in [1e-3, 1e-1],
gp and dragan in [0.1, 100]). Each run: 4000 iterations at batch 64 (256k images), G and D with
32 channels, classifier FD and score every 1000 iterations on 10k samples.

Expected result (the paper's, Fig. 4 and Table 2): on MNIST and Fashion-MNIST every loss reaches
a similar best FD, and the spread over hyperparameters is wider than the differences between the
losses' best runs; no loss is consistently better. Compare rankings and spreads, not values: the
paper's FD is on Inception features, this project's on its own classifier's. Measured results:
docs/results/loss_study.md. MNIST complete (56 search runs, each loss's best draw over seeds 0-2):
WGAN-GP 32.2 +- 3.0 and DRAGAN 43.6 +- 4.0 lead (at ~3.5x the wall-clock per run), then hinge,
non-saturating, WGAN-clip and least squares (94-121), minimax last (162); each loss's spread over
its 8 draws (worst 5-26x its best) is wider than the gaps between the unpenalized losses' best
runs. Fashion-MNIST complete (the same 56 draws, each loss's best over seeds 0-2): WGAN-GP
27.2 +- 1.5, hinge 27.8 +- 1.0 and non-saturating 29.6 +- 1.4 (not separated by three seeds), least
squares 31.5 +- 3.3, minimax 32.3 +- 1.2, DRAGAN 34.4 +- 1.7, WGAN-clip 61.7 +- 0.3; each loss's
spread over its draws 3-16x its best; the penalty runs took ~4x the unpenalized ones' wall-clock
and were behind them at equal time.
"""
import json
import pathlib

from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax import search_report
from gan_jax.errors import UserError

DATA = ('mnist', 'fashion_mnist')
OPTIONS = DATA + ('best', 'smoke')
BEST_SEEDS = (1, 2)  # The search ran seed 0.
BEST_DIR = pathlib.Path(__file__).resolve().parents[1] / 'docs' / 'results' / 'loss_study'
STEPS = 4000
DRAWS = 8
SEARCH_SEED = 0

# Each loss: the config values that make it (the sweep sets them per member) and its own
# hyperparameter of the search with its log-uniform bounds, if any.
LOSSES = {
    'minimax': ({'loss': 'minimax'}, None),
    'non_saturating': ({'loss': 'non_saturating'}, None),
    'least_squares': ({'loss': 'least_squares'}, None),
    'hinge': ({'loss': 'hinge'}, None),
    'wgan': ({'loss': 'wasserstein'}, ('penalty.clip', [1e-3, 1e-1])),
    'wgan_gp': ({'loss': 'wasserstein', 'model.d_norm': 'none'}, ('penalty.gp', [0.1, 100.0])),
    'dragan': ({'loss': 'non_saturating', 'model.d_norm': 'none'}, ('penalty.dragan', [0.1, 100.0])),
}
SEARCH = {'optim.g.lr': {'log_uniform': [1e-5, 1e-3]}, 'optim.d.lr': {'log_uniform': [1e-5, 1e-3]},
          'optim.g.b1': {'uniform': [0.0, 0.9]}, 'optim.d.b1': {'uniform': [0.0, 0.9]},
          'train.d_steps': {'int_uniform': [1, 5]}}


def get_config(arg: str | None = None):
  """The non-saturating loss with the study's model and budget; the sweep sets the loss and search values."""
  options = experiments.parse_options('loss_study', arg, OPTIONS, exclusive=(DATA,))
  c = config_lib.base()
  c.data.name = experiments.chosen(options, DATA, 'mnist')
  c.model.g_channels = c.model.d_channels = 32
  c.train.steps = STEPS
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.train.checkpoint_every = 1000
  config_lib.set_default_eval(c, eval_every=1000)
  if 'smoke' in options:
    config_lib.shrink_to_smoke(c)
  return c


def get_sweep(arg: str | None = None):
  """Per loss, DRAWS draws of SEARCH from one seed (the same draws for every loss) zipped with
  DRAWS draws of the loss's own weight."""
  options = experiments.parse_options('loss_study', arg, OPTIONS, exclusive=(DATA,))
  if 'best' in options:
    return _best_sweep(experiments.chosen(options, DATA, 'mnist'))
  draws = 2 if 'smoke' in options else DRAWS
  shared = {'random': {'num': draws, 'seed': SEARCH_SEED, 'fields': SEARCH}}
  spec = []
  for settings, own in LOSSES.values():
    search = [shared]
    if own:
      search.append({'random': {'num': draws, 'seed': SEARCH_SEED + 1, 'fields': {own[0]: {'log_uniform': own[1]}}}})
    spec.append({'product': {key: [value] for key, value in settings.items()}, 'zip': search})
  return spec


def loss_of(config: dict) -> str | None:
  """The study's name of a run's loss (a key of LOSSES) from its flattened config: the most specific
  entry whose values the run has and whose own weight it sets > 0 (a DRAGAN run is also a
  non-saturating one, but with the DRAGAN penalty on); None for a run of no study loss."""
  matches = [(len(settings) + (own is not None), name) for name, (settings, own) in LOSSES.items()
             if all(config.get(k) == v for k, v in settings.items()) and (own is None or config.get(own[0], 0) > 0)]
  return max(matches)[1] if matches else None


def report_grouping() -> search_report.Grouping:
  """`launch.py --report=DIR` on the study's sweep shows the search per loss (gan_jax/search_report.py)."""
  return search_report.Grouping('loss', loss_of, tuple(LOSSES))


def _best_sweep(data: str):
  """Each loss's best search draw (BEST_DIR/best_<data>.json, from bench/loss_study.py) with seeds BEST_SEEDS."""
  path = BEST_DIR / f'best_{data}.json'
  if not path.exists():
    raise UserError(f'loss_study:best runs the best draws of a finished search, listed in {path}; run the search, '
                    f'then `python bench/loss_study.py --sweep=DIR` and copy DIR/best.json there (the sweep of '
                    '`loss_study:best` goes into DIR/seeds)')
  best = json.loads(path.read_text())
  return [{'product': {**{k: [v] for k, v in overrides.items()}, 'train.seed': list(BEST_SEEDS)}}
          for overrides in best.values()]
