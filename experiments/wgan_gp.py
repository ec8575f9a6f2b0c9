"""WGAN-GP (Gulrajani et al. 2017), and the original weight-clipped WGAN (Arjovsky et al. 2017).

The paper's setup: Wasserstein loss, gradient penalty lambda = 10 on random interpolates of
real and fake, 5 critic updates per G update, Adam with lr 1e-4 and betas (0, 0.9) for both
players, no BatchNorm in the critic (here no normalization at all; `--config.model.d_norm=layer`
is the paper's suggested alternative), BatchNorm kept in G.

Launch:
  python launch.py --exp=wgan_gp                                  # MNIST, DCGAN G and critic
  python launch.py --exp=wgan_gp:fashion_mnist                    # Fashion-MNIST
  python launch.py --exp=wgan_gp:cifar10                          # CIFAR-10 (files under GAN_JAX_DATA)
  python launch.py --exp=wgan_gp:ring                             # MLP G/critic on the 2D ring of 8
  python launch.py --exp=wgan_gp:clip                             # original WGAN: clipping, no penalty
  python launch.py --exp=wgan_gp --config.penalty.gp_one_sided=true   # one-sided penalty
  python launch.py --exp=wgan_gp --sweep                          # lambda x critic steps x lr
  python launch.py --exp=wgan_gp:smoke                            # seconds: tiny model, 2 critic steps, 20 its
Options after the colon combine with commas, e.g. `wgan_gp:fashion_mnist,clip`.

`clip` follows the WGAN paper (c = 0.01, 5 critic steps, lr 5e-5, BatchNorm kept in the DCGAN
critic) except for the optimizer: the paper's RMSProp is replaced by Adam with b1 = 0 and
b2 = 0.9, which is RMSProp (decay 0.9) with bias correction, the only optimizer in config.optim.

Expected result. Paper (Gulrajani et al. 2017): the critic's Wasserstein estimate -d_loss
correlates with sample quality and falls as training goes on; their best unsupervised CIFAR-10
Inception score, 7.86, is with a ResNet (their Table 3), larger than this DCGAN.
Measured (docs/results/wgan_gp.md, with seeds, budgets, wall times, machine and commands): on the
loss study's 32-channel MNIST runs the critic's estimate falls with the classifier FD in all 7
gradient-penalty runs with 2-5 critic steps per G step, but in only 1 of 3 with one critic step
(the estimate mostly rises as the FD falls there); WGAN-GP's best draw reaches classifier FD
32.2 +- 3.0 (3 seeds, 4,000 iterations). This file's MNIST default (64 channels, 10,000
iterations) has not been run to the end on the project's CPU.
"""
from gan_jax import config as config_lib
from gan_jax import experiments

DATA = experiments.IMAGE_SETS + ('ring', 'grid')
OPTIONS = DATA + ('clip', 'smoke')


def get_config(arg: str | None = None):
  options = experiments.parse_options('wgan_gp', arg, OPTIONS, exclusive=(DATA,))
  c = config_lib.base()
  c.loss = 'wasserstein'
  c.penalty.gp = 10.0
  c.train.d_steps = 5
  c.model.d_norm = 'none'
  for player in (c.optim.g, c.optim.d):
    player.update(dict(lr=1e-4, b1=0.0, b2=0.9))
  c.data.name = experiments.chosen(options, DATA, c.data.name)
  if c.data.name in ('ring', 'grid'):
    c.data.batch_size = 256
    c.model.name = 'mlp'
    c.model.z_dim = 16
    c.model.hidden = 64
    c.model.layers = 2
    c.penalty.gp = 1.0  # Measured: lambda = 10 at this lr covered 0-3 of the 8 modes after 900 iterations.
    for player in (c.optim.g, c.optim.d):
      player.lr = 1e-3
    c.train.steps = 5000
    c.train.log_every = 250
    c.train.sample_every = 1000
  if 'clip' in options:
    c.penalty.gp = 0.0
    c.penalty.clip = 0.01
    c.model.d_norm = 'none' if c.model.name == 'mlp' else 'batch'
    for player in (c.optim.g, c.optim.d):
      player.lr = 5e-5
  config_lib.set_default_eval(c, eval_every=c.train.steps // 5)
  if 'smoke' in options:
    config_lib.shrink_to_smoke(c)
    c.train.d_steps = 2  # Compiles in a fraction of the time of 5 unrolled critic steps.
  return c


def get_sweep():
  """lambda x critic steps x learning rate (both players), 27 runs."""
  return {'product': {'penalty.gp': [1.0, 10.0, 100.0], 'train.d_steps': [1, 5, 10]},
          'zip': {'optim.g.lr': [5e-5, 1e-4, 2e-4], 'optim.d.lr': [5e-5, 1e-4, 2e-4]}}
