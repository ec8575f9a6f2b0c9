"""Vanilla GAN (Goodfellow et al. 2014) with a DCGAN architecture (Radford et al. 2016).

Launch:
  python launch.py --exp=vanilla                                  # MNIST, non-saturating loss
  python launch.py --exp=vanilla --config.loss=minimax            # the saturating original
  python launch.py --exp=vanilla:fashion_mnist                    # Fashion-MNIST
  python launch.py --exp=vanilla:ring                             # MLP G/D on the 2D ring of 8
  python launch.py --exp=vanilla:smoke                            # seconds: tiny model, 20 steps
  python launch.py --exp=vanilla --config.label_smoothing=0.1     # one-sided label smoothing (Salimans et al.)
  python launch.py --exp=vanilla --config.penalty.historical=0.01 # historical averaging of both players
  python launch.py --exp=vanilla --config.g_loss=feature_matching # feature matching
  python launch.py --exp=vanilla --config.model.g_norm=virtual    # virtual batch normalization in G
  python launch.py --exp=vanilla:tricks --sweep                   # plain vs each of them, 3 seeds
Options after the colon combine with commas, e.g. `vanilla:fashion_mnist,smoke`.

Evaluation: classifier FD and classifier score (the project's MNIST / Fashion-MNIST classifiers, 10k
samples against the 10k test images) every 2000 steps in eval.jsonl; mode coverage on the 2D sets.

Expected result: on MNIST, recognisable digits in samples/step_2000.png and a D loss that settles
near 1.0-1.4 with the G loss around 0.7-2 (neither player winning outright) over the 10k steps.
On the 2D ring the non-saturating GAN typically covers only some of the 8 modes: mode collapse,
the failure the unrolled and WGAN-GP experiments address.
"""
from gan_jax import config as config_lib
from gan_jax import experiments

DATA = experiments.IMAGE_SETS + ('ring', 'grid')
OPTIONS = DATA + ('smoke', 'tricks')  # tricks: the sweep of Salimans et al.'s stabilisers.


def get_config(arg: str | None = None):
  options = experiments.parse_options('vanilla', arg, OPTIONS, exclusive=(DATA,))
  c = config_lib.base()
  c.loss = 'non_saturating'
  c.data.name = experiments.chosen(options, DATA, c.data.name)
  if c.data.name in ('ring', 'grid'):
    c.data.batch_size = 512
    c.model.name = 'mlp'
    c.model.d_norm = 'none'
    c.model.z_dim = 256
    c.model.hidden = 128
    c.model.layers = 2
    c.optim.g.lr = c.optim.d.lr = 1e-3
    c.train.steps = 5000
    c.train.log_every = 250
    c.train.sample_every = 1000
  config_lib.set_default_eval(c, eval_every=c.train.steps // 5)
  if 'smoke' in options:
    config_lib.shrink_to_smoke(c)
  return c


SEEDS = [0, 1, 2]
# Salimans et al.'s (2016) stabilisers, each on the non-saturating GAN (the `tricks` sweep).
TRICKS = [{'label_smoothing': [0.1]}, {'penalty.historical': [0.01]}, {'g_loss': ['feature_matching']},
          {'model.d_minibatch': ['discrimination']}, {'model.g_norm': ['virtual']}]


def get_sweep(arg: str | None = None):
  """Loss x seed grid: the saturating and non-saturating G losses, 3 seeds each. With `tricks`
  (`--exp=vanilla:tricks --sweep`): the non-saturating GAN alone and with each of TRICKS, 3 seeds each."""
  if 'tricks' in experiments.parse_options('vanilla', arg, OPTIONS, exclusive=(DATA,)):
    return [{'product': {'loss': ['non_saturating'], 'train.seed': SEEDS}},
            *({'product': {**trick, 'train.seed': SEEDS}} for trick in TRICKS)]
  return {'product': {'loss': ['minimax', 'non_saturating'], 'train.seed': SEEDS}}
