"""Discriminator regularizers: gradient penalties, weight constraints, instance noise.

A *critic* is any function `critic(x: [B, ...]) -> [B]` giving the D output (logit or
critic value) per example; the train step passes `lambda x: d_apply(params, x)`.
Every penalty is a scalar averaged over the batch and is differentiable w.r.t. the
params closed over by `critic` (double backpropagation), so the train step can add
it to the D loss under `jax.grad`. Weights such as lambda or gamma are applied by
the caller. Penalties have the dtype of the input batch (float32, or float64 if given).

Per-example input gradients are computed as `jax.grad` of `sum(critic(x))`, which is
exact only when examples do not interact inside D. BatchNorm in training mode breaks
this (each gradient picks up terms from the other examples), which is why WGAN-GP
critics use no BatchNorm (LayerNorm or none); the minibatch layers of
`gan_jax.models.layers` add such terms too. A spectral-normalized D must be applied
with `update_stats=False` inside `critic`.
"""
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from gan_jax import draws

Array = jax.Array
Critic = Callable[[Array], Array]
PyTree = Any


def _input_grads(critic: Critic, x: Array) -> Array:
  """grad_x D(x) per example, [B, ...] like x."""
  return jax.grad(lambda x: jnp.sum(critic(x)))(x)


def _grad_norms(critic: Critic, x: Array) -> Array:
  """|grad_x D(x)|_2 per example, [B]; the gradient of the norm at 0 is 0, not NaN."""
  g = _input_grads(critic, x)
  return optax.safe_norm(g.reshape(g.shape[0], -1), 0.0, axis=-1)


def _grad_sq_norms(critic: Critic, x: Array) -> Array:
  """|grad_x D(x)|_2^2 per example, [B]."""
  g = _input_grads(critic, x)
  return jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=-1)


def gradient_penalty(critic: Critic, real: Array, fake: Array, rng: Array,
                     target: float = 1.0, one_sided: bool = False, axis_name: str | None = None) -> Array:
  """WGAN-GP penalty E[(|grad_x D(x_hat)|_2 - target)^2] (Gulrajani et al. 2017).

  x_hat = e * real + (1 - e) * fake with e ~ U[0, 1] drawn once per example. The
  one-sided variant penalises only norms above target: E[max(0, |g| - target)^2].

  Args:
    critic: [B, ...] -> [B]; see the module docstring (no BatchNorm).
    real, fake: [B, ...] batches of the same shape and float dtype (NHWC images in
      [-1, 1]). Pass `fake` through `jax.lax.stop_gradient` unless G should get
      gradients from the penalty.
    rng: PRNG key for the interpolation coefficients.
    target: the gradient norm the critic is pushed towards (1 for 1-Lipschitz).
    one_sided: penalise only |g| > target.
    axis_name: inside a data-parallel mapping, e is this device's part of one draw for the
      global batch (gan_jax.draws).

  Returns:
    Scalar penalty (multiply by lambda, typically 10).
  """
  e = draws.rows(lambda k, s: jax.random.uniform(k, s, real.dtype), rng,
                 (real.shape[0],) + (1,) * (real.ndim - 1), axis_name)
  x_hat = e * real + (1.0 - e) * fake
  excess = _grad_norms(critic, x_hat) - target
  if one_sided:
    excess = jax.nn.relu(excess)
  return jnp.mean(excess ** 2)


def r1_penalty(critic: Critic, real: Array) -> Array:
  """R1 = E_real[|grad_x D(x)|_2^2] (Mescheder et al. 2018), D = the logit.

  The paper's regularizer is gamma/2 * R1: the caller applies the gamma/2 weight.

  Args:
    critic: [B, ...] -> [B]; see the module docstring.
    real: [B, ...] real batch.

  Returns:
    Scalar, the batch mean of squared input-gradient norms.
  """
  return jnp.mean(_grad_sq_norms(critic, real))


def r2_penalty(critic: Critic, fake: Array) -> Array:
  """R2 = E_fake[|grad_x D(x)|_2^2] (Mescheder et al. 2018); weight gamma/2 by the caller.

  Args:
    critic: [B, ...] -> [B].
    fake: [B, ...] generated batch, normally wrapped in `jax.lax.stop_gradient`.
  """
  return jnp.mean(_grad_sq_norms(critic, fake))


def dragan_penalty(critic: Critic, real: Array, rng: Array, scale: float = 0.5,
                   target: float = 1.0, axis_name: str | None = None) -> Array:
  """DRAGAN penalty E[(|grad_x D(x_p)|_2 - target)^2] around real data (Kodali et al. 2017).

  The perturbation is that of the authors' reference code:
  x_p = real + scale * std(real) * u, with std(real) the scalar standard deviation
  over all elements of the batch and u ~ U[0, 1] drawn independently per element
  (one-sided noise, not interpolated back towards real).

  Args:
    critic: [B, ...] -> [B]; see the module docstring.
    real: [B, ...] real batch.
    rng: PRNG key for u.
    scale: noise amplitude relative to std(real).
    target: the gradient norm the critic is pushed towards.
    axis_name: as for gradient_penalty (u is drawn for the global batch). std(real) stays the
      device's own batch statistic.

  Returns:
    Scalar penalty (multiply by lambda, typically 10).
  """
  u = draws.rows(lambda k, s: jax.random.uniform(k, s, real.dtype), rng, real.shape, axis_name)
  x_p = real + scale * jnp.std(real) * u
  return jnp.mean((_grad_norms(critic, x_p) - target) ** 2)


def clip_weights(params: PyTree, c: float) -> PyTree:
  """Clips every leaf of `params` to [-c, c] (original WGAN, Arjovsky et al. 2017).

  All leaves are clipped, biases and normalisation scales included, as in the
  paper. Apply to the D params after each D optimizer update.
  """
  return jax.tree.map(lambda p: jnp.clip(p, -c, c), params)


def squared_distance(params: PyTree, reference: PyTree) -> Array:
  """|params - reference|^2 summed over every parameter: historical averaging's term (Salimans et
  al. 2016) with `reference` the mean of the parameters' past values (multiply by its lambda)."""
  return sum((jnp.sum(jnp.square(p - r)) for p, r in zip(jax.tree.leaves(params), jax.tree.leaves(reference))),
             jnp.zeros((), jnp.float32))


def weight_penalty(params: PyTree) -> Array:
  """Sum of squared D kernels, for "D weight decay" (multiply by its coefficient).

  Only leaves named `kernel` count (flax Dense/Conv weights, the MinibatchDiscrimination
  tensor); biases, normalisation scales and non-param collections do not.

  Args:
    params: a flax `params` pytree.

  Returns:
    Scalar sum over all kernel entries; 0.0 if there are none.
  """
  leaves, _ = jax.tree.flatten_with_path(params)
  squares = [jnp.sum(jnp.square(leaf)) for path, leaf in leaves
             if getattr(path[-1], 'key', None) == 'kernel']
  return sum(squares, jnp.zeros(()))


def instance_noise(x: Array, rng: Array, std: float | Array, axis_name: str | None = None) -> Array:
  """x + std * N(0, 1) per element (Sonderby et al. 2016; Arjovsky & Bottou 2017).

  Apply to both the real and the fake D inputs, with the same std.

  Args:
    x: [B, ...] batch (NHWC images in [-1, 1]); the result is not clipped.
    rng: PRNG key.
    std: scalar noise standard deviation, e.g. from `instance_noise_std`.
    axis_name: as for gradient_penalty (the noise is drawn for the global batch).
  """
  return x + std * draws.rows(lambda k, s: jax.random.normal(k, s, x.dtype), rng, x.shape, axis_name)


def instance_noise_std(step: int | Array, initial_std: float, anneal_steps: int) -> Array:
  """Instance-noise std, decayed linearly from initial_std at step 0 to 0 at anneal_steps.

  Args:
    step: training step (int or traced int scalar).
    initial_std: std at step 0.
    anneal_steps: steps to reach 0 (>= 1); the std stays 0 afterwards.

  Returns:
    Scalar std.
  """
  return optax.linear_schedule(initial_std, 0.0, anneal_steps)(step)
