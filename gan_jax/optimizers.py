"""The players' optimizer: Adam with its hyperparameters in the optimizer state, and a learning-rate decay."""
import optax

ADAM_EPS_ROOT = 1e-16  # optax's default eps is 1e-8.
DECAYS = ('constant', 'linear', 'cosine')


def lr_factor(decay: str, decay_to: float, total_updates: int):
  """count -> the learning-rate multiplier after `count` of a player's `total_updates` updates:
  1 throughout ('constant'), or from 1 down to `decay_to` at the last update ('linear', 'cosine')."""
  if decay == 'linear':
    return optax.linear_schedule(1.0, decay_to, total_updates)
  if decay == 'cosine':
    return optax.cosine_decay_schedule(1.0, total_updates, alpha=decay_to)
  raise ValueError(f'unknown decay {decay!r}; choose one of {DECAYS}')


def _adam(learning_rate, b1, b2, eps_root, schedule=None):
  adam = optax.adam(learning_rate, b1, b2, eps_root=eps_root)
  return adam if schedule is None else optax.chain(adam, optax.scale_by_schedule(schedule))


def make_optimizer(optim_config, player: str, total_updates: int) -> optax.GradientTransformation:
  """Adam for `player` ('g' or 'd') with its hyperparameters held in the optimizer state
  (`optax.inject_hyperparams`), and `optim.decay`'s schedule over its `total_updates` updates.

  Keeping lr/b1/b2 in the state (rather than as Python constants) lets runs that differ only in
  these values share one compiled program, vmapped over a leading run axis. The schedule scales
  Adam's step by lr_factor(count) (the same as scheduling the learning rate itself, Adam's step
  being linear in it); with decay 'constant' the optimizer is plain Adam.

  eps_root inside the square root keeps the update differentiable where a gradient has always
  been exactly 0 (a dead ReLU unit): the unrolled G update differentiates through D's Adam
  steps, and d sqrt(nu) / d nu is infinite at nu = 0 (NaN in G's gradient within 100 steps on
  the 2D ring). At eps^2 it changes no update by more than a factor 2 and only where nu < 1e-16.
  """
  player_config = optim_config[player]
  schedule = None
  if optim_config.decay != 'constant':
    schedule = lr_factor(optim_config.decay, optim_config.decay_to, total_updates)
  return optax.inject_hyperparams(_adam, static_args=('schedule',))(
      learning_rate=player_config.lr, b1=player_config.b1, b2=player_config.b2, eps_root=ADAM_EPS_ROOT,
      schedule=schedule)
