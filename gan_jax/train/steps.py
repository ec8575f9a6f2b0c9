"""The pure train step, and the jitted loop body that feeds it.

`make_train_step(...)` returns `train_step(state, batch, rng) -> (state, metrics)`:
  batch['image']: float32 [d_steps, B, *example_shape], one real batch per D update;
  d_steps D updates (lax.scan), then one G update, all inside one program.
Gradients only reach the player being trained: in the D update G's output is a constant, and
in the G update D's params are constants. BatchNorm running statistics of a network are
committed only when that network is trained; forward passes of the other network use batch
statistics (train mode) and discard their updates.

With `axis_name` set, gradients, BatchNorm statistics and metrics are averaged over that
mapped axis (data parallelism).
"""
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax.losses import Loss
from gan_jax.train.state import GANState, Player

Metrics = dict[str, jax.Array]


def apply_model(model: nn.Module, params, batch_stats, x: jax.Array, train: bool):
  """Runs a network; returns (output, new batch_stats) (batch_stats unchanged when not training BN)."""
  variables = {'params': params}
  if batch_stats:
    variables['batch_stats'] = batch_stats
    if train:
      out, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
      return out, updates['batch_stats']
  return model.apply(variables, x, train=train), batch_stats


def _mean_over(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _update_player(player: Player, grads, new_stats, opt: optax.GradientTransformation) -> Player:
  updates, opt_state = opt.update(grads, player.opt_state, player.params)
  return Player(params=optax.apply_updates(player.params, updates), batch_stats=new_stats, opt_state=opt_state)


def make_train_step(g_model: nn.Module, d_model: nn.Module, g_opt: optax.GradientTransformation,
                    d_opt: optax.GradientTransformation, loss: Loss, *, z_dim: int, ema_decay: float = 0.0,
                    axis_name: str | None = None) -> Callable[[GANState, dict, jax.Array], tuple[GANState, Metrics]]:
  """Builds the pure `(state, batch, rng) -> (state, metrics)` step (not yet jitted).

  Metrics (float32 scalars): d_loss, g_loss (means over the iteration's D updates for D),
  d_real / d_fake (mean D output on real / fake examples), d_grad_norm, g_grad_norm.
  """

  def d_update(state: GANState, real: jax.Array, rng: jax.Array) -> tuple[GANState, Metrics]:
    z = jax.random.normal(rng, (real.shape[0], z_dim), jnp.float32)
    fake, _ = apply_model(g_model, state.g.params, state.g.batch_stats, z, train=True)
    fake = jax.lax.stop_gradient(fake)

    def d_loss_fn(d_params):
      d_real, stats = apply_model(d_model, d_params, state.d.batch_stats, real, train=True)
      d_fake, stats = apply_model(d_model, d_params, stats, fake, train=True)
      return loss.d(d_real, d_fake), (stats, jnp.mean(d_real), jnp.mean(d_fake))

    (d_loss, (stats, d_real, d_fake)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d.params)
    grads, stats = _mean_over((grads, stats), axis_name)
    d = _update_player(state.d, grads, stats, d_opt)
    metrics = {'d_loss': d_loss, 'd_real': d_real, 'd_fake': d_fake, 'd_grad_norm': optax.global_norm(grads)}
    return state.replace(d=d), metrics

  def g_update(state: GANState, batch_size: int, rng: jax.Array) -> tuple[GANState, Metrics]:
    z = jax.random.normal(rng, (batch_size, z_dim), jnp.float32)

    def g_loss_fn(g_params):
      fake, stats = apply_model(g_model, g_params, state.g.batch_stats, z, train=True)
      d_fake, _ = apply_model(d_model, state.d.params, state.d.batch_stats, fake, train=True)
      return loss.g(d_fake), stats

    (g_loss, stats), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g.params)
    grads, stats = _mean_over((grads, stats), axis_name)
    g = _update_player(state.g, grads, stats, g_opt)
    ema_params = state.ema_params
    if ema_decay:
      ema_params = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema_params, g.params)
    metrics = {'g_loss': g_loss, 'g_grad_norm': optax.global_norm(grads)}
    return state.replace(g=g, ema_params=ema_params), metrics

  def train_step(state: GANState, batch: dict[str, jax.Array], rng: jax.Array) -> tuple[GANState, Metrics]:
    real = batch['image']
    d_rng, g_rng = jax.random.split(rng)

    def d_body(state, inputs):
      real_k, rng_k = inputs
      return d_update(state, real_k, rng_k)

    state, d_metrics = jax.lax.scan(d_body, state, (real, jax.random.split(d_rng, real.shape[0])))
    state, g_metrics = g_update(state, real.shape[1], g_rng)
    metrics = {**jax.tree.map(jnp.mean, d_metrics), **g_metrics}
    return state.replace(step=state.step + 1), _mean_over(metrics, axis_name)

  return train_step


def make_train_loop(train_step: Callable, draw: Callable[[Any, jax.Array, int], dict], *, batch_size: int,
                    d_steps: int, on_device: bool) -> Callable:
  """Jits `num_steps` consecutive iterations into one program with donated state.

  Returns `run(state, data, key, num_steps) -> (state, metrics averaged over the steps)`:
    on_device=True: `data` is the Source's arrays; each iteration draws its real batches inside
      the program with `draw(data, rng, d_steps * batch_size)`.
    on_device=False: `data` holds host-drawn batches, 'image' [num_steps, d_steps, B, ...].
  The per-iteration key is `fold_in(key, state.step)`, so a resumed run replays the same
  randomness as an uninterrupted one.
  """

  def run(state: GANState, data, key: jax.Array, num_steps: int):
    def body(state, host_batch):
      rng = jax.random.fold_in(key, state.step)
      data_rng, step_rng = jax.random.split(rng)
      if on_device:
        flat = draw(data, data_rng, d_steps * batch_size)
        batch = jax.tree.map(lambda a: a.reshape(d_steps, batch_size, *a.shape[1:]), flat)
      else:
        batch = host_batch
      return train_step(state, batch, step_rng)

    xs = None if on_device else data
    state, metrics = jax.lax.scan(body, state, xs, length=num_steps)
    return state, jax.tree.map(jnp.mean, metrics)

  return jax.jit(run, static_argnums=3, donate_argnums=0)
