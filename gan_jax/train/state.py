"""The single state pytree of a GAN run, and setting the hyperparameters it holds.

GANState holds only arrays (no functions), so it can be checkpointed by Orbax, replicated across
devices, and stacked along a leading axis to vmap several runs at once.
"""
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

PyTree = Any


@flax.struct.dataclass
class Player:
  """One network's trainable state.

  Attributes:
    params: the network's parameters (float32).
    batch_stats: BatchNorm running statistics ({} when the network has none).
    opt_state: the optax state of this player's optimizer.
  """
  params: PyTree
  batch_stats: PyTree
  opt_state: PyTree


@flax.struct.dataclass
class GANState:
  """Everything that changes during training.

  Attributes:
    step: int32 scalar, completed train iterations (d_steps D updates + 1 G update each).
    g: the generator.
    d: the discriminator.
    ema_params: exponential moving average of G's params ({} when train.ema_decay is 0).
    loss_weights: float32 scalars weighting the regularizers (`config.penalty`, see
      LOSS_WEIGHTS). Held in the state, not baked into the program, so runs that differ only
      in these weights can share one compiled, vmapped program; a resumed run takes the
      config's values.
    history: for historical averaging (penalty.historical > 0), {'g': ..., 'd': ...}: the mean
      of each player's parameters over the iterations so far, initial ones included ({} when off).
  """
  step: jax.Array
  g: Player
  d: Player
  ema_params: PyTree
  loss_weights: dict[str, jax.Array]
  history: PyTree = flax.struct.field(default_factory=dict)


# Regularizer weights that live in GANState.loss_weights (names of `config.penalty` fields).
LOSS_WEIGHTS = ('gp', 'r1', 'r2', 'dragan', 'd_weight_decay', 'instance_noise', 'drift', 'historical')


def loss_weights(penalty_config) -> dict[str, jax.Array]:
  return {name: jnp.asarray(penalty_config[name], jnp.float32) for name in LOSS_WEIGHTS}


def _with_hyperparams(player: Player, **values) -> Player:
  hyperparams = dict(player.opt_state.hyperparams)
  for name, value in values.items():
    hyperparams[name] = jnp.asarray(value, hyperparams[name].dtype)
  return player.replace(opt_state=player.opt_state._replace(hyperparams=hyperparams))


def with_learning_rates(state: GANState, g_lr, d_lr) -> GANState:
  """`state` with each player's Adam learning rate set: scalars, or [runs] arrays for a state
  stacked over runs (a phase of a schedule changes only these)."""
  return state.replace(g=_with_hyperparams(state.g, learning_rate=g_lr),
                       d=_with_hyperparams(state.d, learning_rate=d_lr))


def with_hyperparams(state: GANState, config) -> GANState:
  """`state` with each player's Adam hyperparameters and the loss weights set from `config`.

  The values live in the state (see gan_jax.optimizers.make_optimizer), so a restored checkpoint
  carries the values it was saved with; a resumed run must take the config's values instead.
  """
  def player_with(player: Player, o) -> Player:
    return _with_hyperparams(player, learning_rate=o.lr, b1=o.b1, b2=o.b2)

  return state.replace(g=player_with(state.g, config.optim.g), d=player_with(state.d, config.optim.d),
                       loss_weights=loss_weights(config.penalty))


def _init_player(model: nn.Module, opt: optax.GradientTransformation, rng: jax.Array, example: jax.Array,
                 params_fn: Callable[[dict], dict] | None = None, **kwargs) -> Player:
  variables = model.init(rng, example, train=False, **kwargs)
  params = params_fn(variables['params']) if params_fn else variables['params']
  return Player(params=params, batch_stats=variables.get('batch_stats', {}), opt_state=opt.init(params))


def init(g_model: nn.Module, d_model: nn.Module, g_opt: optax.GradientTransformation,
         d_opt: optax.GradientTransformation, z_dim: int, example_shape: tuple[int, ...],
         rng: jax.Array, ema: bool, penalty_config=None, conditional: bool = False,
         source_shape: tuple[int, ...] | None = None, text_length: int = 0,
         params_fn: Callable[[dict], dict] | None = None) -> GANState:
  """Fresh state: both networks initialised from `rng`, step 0, loss weights from `penalty_config`
  (all zero when None). `conditional`: the networks take labels (initialised with label 0);
  `source_shape`: image-to-image networks take a task input of this shape (initialised with zeros);
  `text_length`: text-conditioned networks take caption tokens [B, text_length] as labels;
  `params_fn` maps each network's initial params to the ones it starts from (e.g. pretrained parts)."""
  g_rng, d_rng = jax.random.split(rng)
  cond = {'labels': jnp.zeros((1, text_length) if text_length else (1,), jnp.int32)} if conditional else {}
  if source_shape is not None:
    cond = {'source': jnp.zeros((1, *source_shape), jnp.float32)}
  g = _init_player(g_model, g_opt, g_rng, jnp.zeros((1, z_dim), jnp.float32), params_fn, **cond)
  d = _init_player(d_model, d_opt, d_rng, jnp.zeros((1, *example_shape), jnp.float32), params_fn, **cond)
  ema_params = jax.tree.map(jnp.copy, g.params) if ema else {}
  weights = loss_weights(penalty_config) if penalty_config is not None else {
      name: jnp.zeros((), jnp.float32) for name in LOSS_WEIGHTS}
  history = ({'g': jax.tree.map(jnp.copy, g.params), 'd': jax.tree.map(jnp.copy, d.params)}
             if penalty_config is not None and penalty_config.historical > 0 else {})
  return GANState(step=jnp.zeros((), jnp.int32), g=g, d=d, ema_params=ema_params, loss_weights=weights,
                  history=history)
