"""The pure train step, and the jitted loop body that feeds it.

`make_train_step(...)` returns `train_step(state, batch, rng) -> (state, metrics)`:
  batch['image']: float32 [d_steps, B, *example_shape], one real batch per D update;
  d_steps D updates, then one G update, all inside one program.
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

    # A Python loop, unrolled into the one program: XLA:CPU runs convolution gradients inside a
    # lax.scan/while body ~13x slower than at the top level (bench/train_step.py measured 780 vs
    # 59 ms per DCGAN iteration), and d_steps is small.
    d_metrics = []
    for k, rng_k in enumerate(jax.random.split(d_rng, real.shape[0])):
      state, metrics_k = d_update(state, real[k], rng_k)
      d_metrics.append(metrics_k)
    d_metrics = jax.tree.map(lambda *m: jnp.stack(m), *d_metrics)
    state, g_metrics = g_update(state, real.shape[1], g_rng)
    metrics = {**jax.tree.map(jnp.mean, d_metrics), **g_metrics}
    return state.replace(step=state.step + 1), _mean_over(metrics, axis_name)

  return train_step


def make_iteration(train_step: Callable, draw: Callable[[Any, jax.Array, int], dict], *, batch_size: int,
                   d_steps: int, on_device: bool) -> Callable:
  """Jits one training iteration plus the running sum of its metrics, with donated buffers.

  Returns `iterate(state, metric_sums, data, key) -> (state, metric_sums + metrics)`:
    on_device=True: `data` is the Source's arrays; the iteration draws its real batches inside
      the program with `draw(data, rng, d_steps * batch_size)`.
    on_device=False: `data` is one host-drawn batch, 'image' [d_steps, B, ...].
  The iteration's key is `fold_in(key, state.step)`, so a resumed run replays the same
  randomness as an uninterrupted one. Summing metrics on the device lets the host loop dispatch
  iterations asynchronously and fetch values only when it logs.

  Why not `lax.scan` over many iterations: on XLA's CPU backend, convolution gradients inside a
  loop body run an order of magnitude slower than the same ops at the top level of a program,
  and a Python loop of asynchronously dispatched iterations costs nothing measurable on GPU.
  """

  def iterate(state: GANState, metric_sums: Metrics, data, key: jax.Array):
    rng = jax.random.fold_in(key, state.step)
    data_rng, step_rng = jax.random.split(rng)
    if on_device:
      flat = draw(data, data_rng, d_steps * batch_size)
      batch = jax.tree.map(lambda a: a.reshape(d_steps, batch_size, *a.shape[1:]), flat)
    else:
      batch = data
    state, metrics = train_step(state, batch, step_rng)
    return state, jax.tree.map(jnp.add, metric_sums, metrics)

  return jax.jit(iterate, donate_argnums=(0, 1))


def zero_metrics(train_step: Callable, state: GANState, batch: dict, rng: jax.Array) -> Metrics:
  """float32 zeros with the structure of the metrics `train_step` returns (nothing is run)."""
  shapes = jax.eval_shape(train_step, state, batch, rng)[1]
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
