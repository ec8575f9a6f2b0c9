"""D layers: minibatch stddev, minibatch discrimination and spectral norm, in float64."""
import flax.linen as nn
import jax.flatten_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import penalties
from gan_jax.errors import UserError
from gan_jax.models import layers

F64 = jnp.float64


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


def key(seed):
  """A PRNG key; 'rbg' compiles much faster than threefry on CPU."""
  return jax.random.key(seed, impl='rbg')


def init(module, x, **kwargs):
  return jax.jit(lambda k, x: module.init(k, x, **kwargs))(key(0), x)


def apply(module, x):
  return jax.jit(module.apply)(init(module, x), x)


def test_minibatch_stddev_whole_batch():
  # Two examples, one channel: per-position std |a - b| / 2 = (0.5, 1, 1.5, 2), mean 1.25.
  x = jnp.array([np.zeros((2, 2, 1)), [[[1.0], [2.0]], [[3.0], [4.0]]]])
  out = apply(layers.MinibatchStdDev(group_size=0), x)
  assert out.shape == (2, 2, 2, 2) and out.dtype == F64
  np.testing.assert_array_equal(out[..., :1], x)
  expected = np.mean(np.sqrt(np.array([0.5, 1.0, 1.5, 2.0]) ** 2 + 1e-8))
  np.testing.assert_allclose(out[..., 1], np.full((2, 2, 2), expected), rtol=1e-12)


def test_minibatch_stddev_groups():
  # Batch of 4, groups of 2 strided as in the reference code: {0, 2} and {1, 3}.
  # Group {0, 2}: stds (1, 2) over the two channels, mean 1.5. Group {1, 3}: identical, sqrt(1e-8).
  x = jnp.array([[0.0, 0.0], [1.0, 1.0], [2.0, 4.0], [1.0, 1.0]]).reshape(4, 1, 1, 2)
  out = apply(layers.MinibatchStdDev(group_size=2), x)
  assert out.shape == (4, 1, 1, 3)
  np.testing.assert_array_equal(out[..., :2], x)
  group_02 = np.mean(np.sqrt(np.array([1.0, 4.0]) + 1e-8))
  np.testing.assert_allclose(out[:, 0, 0, 2], [group_02, 1e-4, group_02, 1e-4], rtol=1e-12)
  # A group size above the batch size means the whole batch.
  np.testing.assert_array_equal(apply(layers.MinibatchStdDev(group_size=8), x),
                                apply(layers.MinibatchStdDev(group_size=0), x))


def test_minibatch_stddev_rejects_indivisible_batch():
  with pytest.raises(UserError, match='not divisible'):
    apply(layers.MinibatchStdDev(group_size=4), jnp.zeros((6, 2, 2, 3)))


def test_minibatch_discrimination():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2, 2, 3)) * 3)
  x = x.at[3].set(x[0])
  module = layers.MinibatchDiscrimination(num_kernels=4, kernel_dim=3)
  params = init(module, x)
  out = jax.jit(module.apply)(params, x)
  assert out.shape == (5, 12 + 4)
  np.testing.assert_array_equal(out[:, :12], x.reshape(5, 12))
  # o_k(x_i) = sum_{j != i} exp(-|M_ik - M_jk|_1), with M = f T.
  m = np.einsum('ba,akc->bkc', np.asarray(x).reshape(5, 12), np.asarray(params['params']['kernel']))
  expected = [[sum(np.exp(-np.abs(m[i, k] - m[j, k]).sum()) for j in range(5) if j != i)
               for k in range(4)] for i in range(5)]
  np.testing.assert_allclose(out[:, 12:], expected, rtol=1e-12)
  np.testing.assert_allclose(out[0], out[3], rtol=1e-14)  # Identical members get identical features.
  # An all-identical batch: every distance is 0, so each feature counts the B - 1 others.
  same = jax.jit(module.apply)(params, jnp.tile(x[:1], (5, 1, 1, 1)))
  np.testing.assert_allclose(same[:, 12:], np.full((5, 4), 4.0))
  loss = lambda p, x: jnp.sum(module.apply(p, x)[:, 12:] ** 2)
  g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
  for g in (g_params['params']['kernel'], g_x):
    assert np.all(np.isfinite(g)) and np.any(g != 0)


def effective_kernel(module, variables, x):
  """The [fan_in, out] matrix a linear, bias-free layer applies to a single input x [1, ...]."""
  jac = jax.jit(jax.jacobian(lambda x: module.apply(variables, x, update_stats=False).ravel()))(x)
  return jac.reshape(jac.shape[0], -1).T


@pytest.mark.parametrize('layer, x_shape', [
    (nn.Dense(5, use_bias=False, param_dtype=F64), (1, 8)),
    (nn.Conv(4, (3, 3), padding='VALID', use_bias=False, param_dtype=F64), (1, 3, 3, 3)),
])
def test_spectral_norm(layer, x_shape):
  module = layers.SpectralNorm(layer, param_dtype=F64)
  x = jnp.asarray(np.random.default_rng(0).normal(size=x_shape))
  variables = init(module, x, update_stats=False)
  kernel = np.asarray(variables['params']['layer_instance']['kernel'])
  sigma_max = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]

  @jax.jit
  def power_step(variables):
    _, updates = module.apply(variables, x, update_stats=True, mutable=['batch_stats'])
    return {**variables, **updates}

  for _ in range(200):
    variables = power_step(variables)
  np.testing.assert_allclose(variables['batch_stats']['layer_instance/kernel/sigma'], sigma_max, rtol=1e-3)
  normalised = effective_kernel(module, variables, x)
  np.testing.assert_allclose(normalised, kernel.reshape(-1, kernel.shape[-1]) / sigma_max,
                             rtol=1e-3, atol=1e-6)
  np.testing.assert_allclose(np.linalg.svd(normalised, compute_uv=False)[0], 1.0, rtol=1e-3)


def test_spectral_norm_supports_gradient_penalties():
  module = layers.SpectralNorm(nn.Dense(1, param_dtype=F64), param_dtype=F64)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 8)))
  variables = init(module, x, update_stats=False)
  critic = lambda params: lambda x: module.apply({**variables, 'params': params}, x, update_stats=False)[:, 0]
  grads = jax.jit(jax.grad(lambda p: penalties.r1_penalty(critic(p), x)))(variables['params'])
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def _central_difference_check(f, params, seed: int, h: float = 1e-6, rtol: float = 1e-6):
  """jax.grad(f) at `params` against a central difference of f along a random direction (float64)."""
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  direction = jax.random.normal(key(seed), flat.shape, F64)
  analytic = jnp.dot(jax.flatten_util.ravel_pytree(jax.grad(f)(params))[0], direction)
  numeric = (f(unravel(flat + h * direction)) - f(unravel(flat - h * direction))) / (2 * h)
  np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=1e-10)
  assert abs(analytic) > 1e-6  # A vanishing gradient would make the check empty.


def test_minibatch_discrimination_gradients_match_central_differences():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 2, 2, 3)))
  module = layers.MinibatchDiscrimination(num_kernels=4, kernel_dim=3)
  params = init(module, x)
  weights = jnp.asarray(np.random.default_rng(2).normal(size=(16,)))
  f = lambda p: jnp.sum(jnp.tanh(module.apply(p, x)) @ weights)
  _central_difference_check(f, params, seed=3)
  _central_difference_check(lambda x: jnp.sum(jnp.tanh(module.apply(params, x)) @ weights), x, seed=4)


def test_spectral_norm_gradients_match_central_differences():
  # sigma = v W u^T after one power step from the stored u, with u and v held constant in the
  # gradient (stop_gradient, as in Miyato et al.): the derivative is that of W / (v W u^T) with
  # u, v fixed at their values at the evaluation point, which is what the central difference
  # below measures.
  module = layers.SpectralNorm(nn.Dense(3, param_dtype=F64), param_dtype=F64)
  x = jnp.asarray(np.random.default_rng(5).normal(size=(4, 6)))
  variables = init(module, x, update_stats=False)
  params = variables['params']
  layer = lambda p: module.apply({**variables, 'params': p}, x, update_stats=False)
  normalize = lambda a: a / jnp.linalg.norm(a)
  kernel = params['layer_instance']['kernel']
  v = normalize(variables['batch_stats']['layer_instance/kernel/u'] @ kernel.T)
  u = normalize(v @ kernel)

  def by_hand(p):
    w = p['layer_instance']['kernel']
    return x @ (w / (v @ w @ u.T)[0, 0]) + p['layer_instance']['bias']

  np.testing.assert_allclose(layer(params), by_hand(params), rtol=1e-10)
  readout = lambda y: jnp.sum(jnp.sin(y))
  np.testing.assert_allclose(jax.flatten_util.ravel_pytree(jax.grad(lambda p: readout(layer(p)))(params))[0],
                             jax.flatten_util.ravel_pytree(jax.grad(lambda p: readout(by_hand(p)))(params))[0],
                             rtol=1e-8)
  _central_difference_check(lambda p: readout(by_hand(p)), params, seed=6)
  _central_difference_check(lambda x: jnp.sum(jnp.sin(module.apply(variables, x, update_stats=False))), x, seed=7)


def test_virtual_batch_norm_uses_the_reference_rows_and_each_example_alone():
  r, b = 3, 4
  x = jnp.asarray(np.random.default_rng(8).normal(size=(r + b, 2, 2, 5)) * 2 + 1)
  module = layers.VirtualBatchNorm(r)
  variables = init(module, x)
  variables = {'params': {'scale': jnp.linspace(0.5, 1.5, 5), 'bias': jnp.linspace(-1, 1, 5)}}
  out = jax.jit(module.apply)(variables, x)
  xs = np.asarray(x)
  for i in range(r + b):
    rows = xs[:r] if i < r else np.concatenate([xs[:r], xs[i:i + 1]])  # Reference rows, and the example.
    mean, var = rows.mean(axis=(0, 1, 2)), rows.var(axis=(0, 1, 2))
    expected = (xs[i] - mean) / np.sqrt(var + 1e-5) * np.linspace(0.5, 1.5, 5) + np.linspace(-1, 1, 5)
    np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-6)  # Computed in float32.
  other = x.at[r + 1:].set(x[r + 1:] * 3 - 2)  # Other examples change: example r's output does not.
  np.testing.assert_array_equal(jax.jit(module.apply)(variables, other)[r], out[r])
