"""Penalties against closed forms and central finite differences, in float64."""
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import pytest

from gan_jax import penalties

SHAPE = (2, 2, 3)  # H, W, C of the toy "images".


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


def key(seed):
  """A PRNG key; 'rbg' compiles much faster than threefry on CPU."""
  return jax.random.key(seed, impl='rbg')


def linear(w):
  """D(x) = w . x per example."""
  return lambda x: jnp.sum(w * x, axis=tuple(range(1, x.ndim)))


def quadratic(a):
  """D(x) = 0.5 a |x|^2 per example, so grad_x D = a x."""
  return lambda x: 0.5 * a * jnp.sum(x ** 2, axis=tuple(range(1, x.ndim)))


def mlp(params):
  """A small tanh MLP critic on flattened inputs."""
  def critic(x):
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ params['w1'] + params['b1'])
    return h @ params['w2'] + params['b2']
  return critic


def batch(seed, n=4, shape=SHAPE):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n,) + shape))


def weights(norm):
  w = np.random.default_rng(0).normal(size=SHAPE)
  return jnp.asarray(w / np.linalg.norm(w) * norm)


def central_diff(f, x, eps=1e-6):
  """Central finite-difference gradient of scalar f at the pytree x."""
  flat, unravel = ravel_pytree(x)
  f_flat = jax.jit(jax.vmap(lambda v: f(unravel(v))))
  steps = eps * jnp.eye(flat.size)
  return unravel((f_flat(flat + steps) - f_flat(flat - steps)) / (2 * eps))


def assert_tree_close(actual, desired, rtol=1e-6, atol=1e-9):
  jax.tree.map(lambda a, d: np.testing.assert_allclose(a, d, rtol=rtol, atol=atol),
                         actual, desired)


@pytest.mark.parametrize('norm', [0.4, 1.7])
def test_gradient_penalty_linear_critic(norm):
  w = weights(norm)
  gp = lambda w: penalties.gradient_penalty(linear(w), batch(1), batch(2), key(0))
  value, grad = jax.jit(jax.value_and_grad(gp))(w)  # jax.grad of an input gradient: double backprop.
  assert value.dtype == jnp.float64
  np.testing.assert_allclose(value, (norm - 1) ** 2, rtol=1e-12)
  np.testing.assert_allclose(grad, 2 * (norm - 1) * w / norm, rtol=1e-10, atol=1e-14)


def test_gradient_penalty_target():
  w = weights(1.7)
  gp = jax.jit(lambda w: penalties.gradient_penalty(linear(w), batch(1), batch(2), key(0),
                                                    target=0.5))(w)
  np.testing.assert_allclose(gp, (1.7 - 0.5) ** 2, rtol=1e-12)


@pytest.mark.parametrize('norm', [0.4, 1.7])
def test_one_sided_gradient_penalty_linear_critic(norm):
  w = weights(norm)
  gp = lambda w: penalties.gradient_penalty(linear(w), batch(1), batch(2), key(0),
                                            one_sided=True)
  value, grad = jax.jit(jax.value_and_grad(gp))(w)
  excess = max(norm - 1, 0.0)
  np.testing.assert_allclose(value, excess ** 2, rtol=1e-12, atol=0)
  np.testing.assert_allclose(grad, 2 * excess * w / norm, rtol=1e-10, atol=0)


def test_gradient_penalty_zero_gradient_is_finite():
  gp = lambda w: penalties.gradient_penalty(linear(w), batch(1), batch(2), key(0))
  value, grad = jax.jit(jax.value_and_grad(gp))(jnp.zeros(SHAPE))
  np.testing.assert_allclose(value, 1.0, rtol=1e-12)
  np.testing.assert_array_equal(grad, np.zeros(SHAPE))


def test_gradient_penalty_samples_one_coefficient_per_example():
  # Quadratic critic, fake = 0, real = r with |r| = 1: |grad| = a e, so for e ~ U[0, 1]
  # per example GP = E[(a e - 1)^2] = a^2 / 3 - a + 1. Per-element e would give ~(a / sqrt(3) - 1)^2.
  n, a = 20000, 2.0
  real = jnp.ones((n,) + SHAPE) / np.sqrt(np.prod(SHAPE))
  gp = jax.jit(lambda real: penalties.gradient_penalty(quadratic(a), real, 0 * real, key(3)))(real)
  np.testing.assert_allclose(gp, a ** 2 / 3 - a + 1, atol=0.01)


def test_gradient_penalty_equal_batches_quadratic_critic():
  # real == fake makes every interpolate equal to real: GP = mean((a |x_i| - 1)^2).
  a, x = 1.3, batch(4)
  gp = jax.jit(lambda x: penalties.gradient_penalty(quadratic(a), x, x, key(0)))(x)
  norms = np.linalg.norm(np.asarray(x).reshape(len(x), -1), axis=1)
  np.testing.assert_allclose(gp, np.mean((a * norms - 1) ** 2), rtol=1e-12)


@pytest.mark.parametrize('penalty', [penalties.r1_penalty, penalties.r2_penalty])
def test_r1_r2_linear_critic(penalty):
  w = weights(1.7)
  value, grad = jax.jit(jax.value_and_grad(lambda w: penalty(linear(w), batch(1))))(w)
  np.testing.assert_allclose(value, 1.7 ** 2, rtol=1e-12)
  np.testing.assert_allclose(grad, 2 * w, rtol=1e-12)


@pytest.mark.parametrize('penalty', [penalties.r1_penalty, penalties.r2_penalty])
def test_r1_r2_quadratic_critic(penalty):
  a, x = 1.3, batch(1)
  mean_sq = np.mean(np.sum(np.asarray(x).reshape(len(x), -1) ** 2, axis=1))
  value, (grad_a, grad_x) = jax.jit(jax.value_and_grad(lambda a, x: penalty(quadratic(a), x),
                                                       argnums=(0, 1)))(a, x)
  np.testing.assert_allclose(value, a ** 2 * mean_sq, rtol=1e-12)
  np.testing.assert_allclose(grad_a, 2 * a * mean_sq, rtol=1e-12)
  np.testing.assert_allclose(grad_x, 2 * a ** 2 * x / len(x), rtol=1e-12)


@pytest.mark.parametrize('norm', [0.4, 1.7])
def test_dragan_linear_critic(norm):
  w = weights(norm)
  dragan = lambda w: penalties.dragan_penalty(linear(w), batch(1), key(0))
  value, grad = jax.jit(jax.value_and_grad(dragan))(w)
  np.testing.assert_allclose(value, (norm - 1) ** 2, rtol=1e-12)
  np.testing.assert_allclose(grad, 2 * (norm - 1) * w / norm, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize('scale', [0.5, 1.0])
def test_dragan_perturbation(scale):
  # Every example is v = (0, 2), so std(real) = 1 and x_p = v + scale * u, u ~ U[0, 1]^2.
  # With grad_x D = x_p and target 0: E|x_p|^2 = 4 + 2 scale + 2 scale^2 / 3.
  real = jnp.tile(jnp.array([[0.0, 2.0]]), (20000, 1))
  value = jax.jit(lambda real: penalties.dragan_penalty(quadratic(1.0), real, key(5), scale=scale,
                                                       target=0.0))(real)
  np.testing.assert_allclose(value, 4 + 2 * scale + 2 * scale ** 2 / 3, rtol=3e-3)


def mlp_params(seed=0, dim=int(np.prod(SHAPE)), hidden=4):
  rng = np.random.default_rng(seed)
  return {'w1': jnp.asarray(rng.normal(size=(dim, hidden))), 'b1': jnp.asarray(rng.normal(size=hidden)),
          'w2': jnp.asarray(rng.normal(size=hidden)), 'b2': jnp.asarray(0.3)}


PENALTIES = {
    'gp': lambda c, real, fake: penalties.gradient_penalty(c, real, fake, key(7)),
    'gp_one_sided': lambda c, real, fake: penalties.gradient_penalty(
        c, real, fake, key(7), target=0.5, one_sided=True),
    'r1': lambda c, real, fake: penalties.r1_penalty(c, real),
    'r2': lambda c, real, fake: penalties.r2_penalty(c, fake),
    'dragan': lambda c, real, fake: penalties.dragan_penalty(c, real, key(7)),
}


@pytest.mark.parametrize('name', sorted(PENALTIES))
def test_mlp_critic_param_gradient_matches_finite_differences(name):
  penalty, real, fake = PENALTIES[name], batch(1), batch(2)
  f = lambda params: penalty(mlp(params), real, fake)
  params = mlp_params()
  assert jax.jit(f)(params) > 1e-3  # Not in a flat region (the one-sided penalty is active).
  assert_tree_close(jax.jit(jax.grad(f))(params), central_diff(f, params))


@pytest.mark.parametrize('name', ['gp', 'r1', 'r2'])
def test_mlp_critic_input_gradient_matches_finite_differences(name):
  penalty, params = PENALTIES[name], mlp_params()
  f = lambda inputs: penalty(mlp(params), *inputs)
  inputs = (batch(1, n=2), batch(2, n=2))
  assert_tree_close(jax.jit(jax.grad(f))(inputs), central_diff(f, inputs))


def test_clip_weights():
  params = {'dense': {'kernel': jnp.array([[-3.0, -0.5], [0.2, 0.7]]), 'bias': jnp.array([0.5, -0.1])},
            'scale': jnp.array([1.5, 0.0, -0.49])}
  clipped = penalties.clip_weights(params, 0.5)
  expected = {'dense': {'kernel': np.array([[-0.5, -0.5], [0.2, 0.5]]), 'bias': np.array([0.5, -0.1])},
              'scale': np.array([0.5, 0.0, -0.49])}
  assert jax.tree.structure(clipped) == jax.tree.structure(params)
  jax.tree.map(np.testing.assert_array_equal, clipped, expected)


def test_weight_penalty_counts_kernels_only():
  rng = np.random.default_rng(0)
  kernels = [rng.normal(size=(3, 3, 2, 4)), rng.normal(size=(8, 1)), rng.normal(size=(8, 2, 3))]
  params = {'Conv_0': {'kernel': kernels[0], 'bias': rng.normal(size=4)},
            'BatchNorm_0': {'scale': rng.normal(size=4), 'bias': rng.normal(size=4)},
            'Dense_0': {'kernel': kernels[1], 'bias': rng.normal(size=1)},
            'MinibatchDiscrimination_0': {'kernel': kernels[2]}}
  params = jax.tree.map(jnp.asarray, params)
  value, grad = jax.jit(jax.value_and_grad(penalties.weight_penalty))(params)
  np.testing.assert_allclose(value, sum(np.sum(k ** 2) for k in kernels), rtol=1e-12)
  expected = jax.tree.map_with_path(
      lambda path, p: 2 * p if path[-1].key == 'kernel' else jnp.zeros_like(p), params)
  assert_tree_close(grad, expected, rtol=1e-12, atol=0)
  assert penalties.weight_penalty({'Dense_0': {'bias': jnp.ones(3)}}) == 0.0


def test_instance_noise_std_schedule():
  std = jax.jit(lambda step: penalties.instance_noise_std(step, 0.2, 100))
  np.testing.assert_allclose([std(s) for s in (0, 25, 50, 100, 1000)], [0.2, 0.15, 0.1, 0.0, 0.0],
                             rtol=1e-6, atol=1e-12)


def test_instance_noise():
  x = batch(0, n=1000)
  noisy = jax.jit(penalties.instance_noise)(x, key(0), 0.1)
  assert noisy.shape == x.shape and noisy.dtype == x.dtype
  noise = np.asarray(noisy - x)
  np.testing.assert_allclose(noise.mean(), 0.0, atol=0.003)
  np.testing.assert_allclose(noise.std(), 0.1, rtol=0.02)
  np.testing.assert_array_equal(penalties.instance_noise(x, key(0), 0.0), x)
