"""Adversarial losses against numpy formulas, analytic derivatives and finite differences, in float64."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import expit

from gan_jax import losses
from gan_jax.errors import UserError

B = 7


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


def softplus(x):
  return np.logaddexp(0, x)


def logits(seed):
  """[B] float64 values in [-3, 3], kept 0.05 away from the hinge kinks at +-1."""
  x = np.random.default_rng(seed).uniform(-3, 3, B)
  return np.where(np.abs(np.abs(x) - 1) < 0.05, x + 0.1, x)


# name -> (function, value(r, f), d value / d r, d value / d f) for D losses (r = d_real, f = d_fake).
D_LOSSES = {
    'minimax_d': (losses.minimax_d,
                  lambda r, f: np.mean(softplus(-r)) + np.mean(softplus(f)),
                  lambda r, f: -expit(-r) / B, lambda r, f: expit(f) / B),
    'wasserstein_d': (losses.wasserstein_d,
                      lambda r, f: np.mean(f) - np.mean(r),
                      lambda r, f: -np.ones(B) / B, lambda r, f: np.ones(B) / B),
    'hinge_d': (losses.hinge_d,
                lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
                lambda r, f: np.where(r < 1, -1.0, 0.0) / B, lambda r, f: np.where(f > -1, 1.0, 0.0) / B),
    'least_squares_d': (losses.least_squares_d,
                        lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2),
                        lambda r, f: (r - 1) / B, lambda r, f: f / B),
}

# name -> (function, value(f), d value / d f) for G losses.
G_LOSSES = {
    'minimax_g': (losses.minimax_g, lambda f: -np.mean(softplus(f)), lambda f: -expit(f) / B),
    'non_saturating_g': (losses.non_saturating_g, lambda f: np.mean(softplus(-f)), lambda f: -expit(-f) / B),
    'wasserstein_g': (losses.wasserstein_g, lambda f: -np.mean(f), lambda f: -np.ones(B) / B),
    'hinge_g': (losses.hinge_g, lambda f: -np.mean(f), lambda f: -np.ones(B) / B),
    'least_squares_g': (losses.least_squares_g, lambda f: 0.5 * np.mean((f - 1) ** 2), lambda f: (f - 1) / B),
}


def central_diff(f, x, eps=1e-6):
  """Central finite-difference gradient of scalar f at the vector x."""
  steps = eps * np.eye(x.size)
  return np.array([(f(x + s) - f(x - s)) / (2 * eps) for s in steps])


def test_every_registered_loss_is_tested():
  tested = {fn for fn, *_ in D_LOSSES.values()} | {fn for fn, *_ in G_LOSSES.values()}
  assert {fn for loss in losses.LOSSES.values() for fn in loss} <= tested


@pytest.mark.parametrize('name', sorted(D_LOSSES))
def test_d_loss_value_and_gradient(name):
  fn, value, d_r, d_f = D_LOSSES[name]
  r, f = logits(0), logits(1)
  loss, (g_r, g_f) = jax.value_and_grad(fn, argnums=(0, 1))(jnp.asarray(r), jnp.asarray(f))
  assert loss.dtype == jnp.float64
  np.testing.assert_allclose(loss, value(r, f), rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(g_r, d_r(r, f), rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(g_f, d_f(r, f), rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(g_r, central_diff(lambda r: fn(r, f), r), rtol=1e-6, atol=1e-10)
  np.testing.assert_allclose(g_f, central_diff(lambda f: fn(r, f), f), rtol=1e-6, atol=1e-10)
  # [B, 1] D outputs give the same value.
  np.testing.assert_allclose(fn(jnp.asarray(r)[:, None], jnp.asarray(f)[:, None]), loss, rtol=1e-15)


@pytest.mark.parametrize('name', sorted(G_LOSSES))
def test_g_loss_value_and_gradient(name):
  fn, value, d_f = G_LOSSES[name]
  f = logits(2)
  loss, g_f = jax.value_and_grad(fn)(jnp.asarray(f))
  assert loss.dtype == jnp.float64
  np.testing.assert_allclose(loss, value(f), rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(g_f, d_f(f), rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(g_f, central_diff(fn, f), rtol=1e-6, atol=1e-10)
  np.testing.assert_allclose(fn(jnp.asarray(f)[:, None]), loss, rtol=1e-15)


def test_feature_matching_value_and_gradient():
  rng = np.random.default_rng(3)
  real, fake = rng.normal(size=(B, 2, 3)), rng.normal(size=(B, 2, 3))
  diff = real.mean(0) - fake.mean(0)
  loss, (g_real, g_fake) = jax.value_and_grad(losses.feature_matching_g, argnums=(0, 1))(
      jnp.asarray(real), jnp.asarray(fake))
  np.testing.assert_allclose(loss, np.sum(diff ** 2), rtol=1e-12)
  np.testing.assert_allclose(g_real, np.broadcast_to(2 * diff / B, real.shape), rtol=1e-12)
  np.testing.assert_allclose(g_fake, np.broadcast_to(-2 * diff / B, fake.shape), rtol=1e-12)
  fd = central_diff(lambda v: losses.feature_matching_g(real, v.reshape(fake.shape)), fake.ravel())
  np.testing.assert_allclose(g_fake.ravel(), fd, rtol=1e-6, atol=1e-10)


def test_low_precision_inputs_are_reduced_in_float32():
  f = jnp.asarray(logits(0), jnp.bfloat16)
  assert losses.minimax_d(f, f).dtype == jnp.float32
  assert losses.feature_matching_g(f[:, None], f[:, None]).dtype == jnp.float32


def test_minimax_g_gradient_vanishes_when_d_rejects_fakes():
  d_fake = jnp.full((B,), -10.0)
  saturating = jnp.abs(jax.grad(losses.minimax_g)(d_fake))
  non_saturating = jnp.abs(jax.grad(losses.non_saturating_g)(d_fake))
  np.testing.assert_allclose(saturating, expit(-10.0) / B, rtol=1e-12)
  np.testing.assert_allclose(non_saturating, expit(10.0) / B, rtol=1e-12)
  assert np.all(saturating < 1e-4 * non_saturating)


def test_hinge_gradients_vanish_beyond_margin():
  r, f = jnp.array([1.01, 2.0, 5.0]), jnp.array([-1.01, -2.0, -5.0])
  g_r, g_f = jax.grad(losses.hinge_d, argnums=(0, 1))(r, f)
  np.testing.assert_array_equal(g_r, np.zeros(3))
  np.testing.assert_array_equal(g_f, np.zeros(3))
  assert losses.hinge_d(r, f) == 0.0


def test_get():
  assert losses.get('hinge') == losses.Loss(losses.hinge_d, losses.hinge_g)
  with pytest.raises(UserError) as error:
    losses.get('nope')
  assert 'nope' in str(error.value)
  for name in losses.LOSSES:
    assert name in str(error.value)


# Optimal D on a discrete space of 5 points: p_data and p_g as 20 equally weighted samples each.
P_DATA = np.array([2, 4, 6, 3, 5]) / 20
P_G = np.array([6, 2, 4, 5, 3]) / 20


def train_logit_table(p_data, p_g, steps=500):
  """Minimises minimax_d over a per-point logit table; the batches are exact samples of p_data, p_g."""
  real = np.repeat(np.arange(5), np.round(p_data * 20).astype(int))
  fake = np.repeat(np.arange(5), np.round(p_g * 20).astype(int))
  loss = lambda table: losses.minimax_d(table[real], table[fake])
  opt = optax.sgd(5.0)

  def step(carry, _):
    table, state = carry
    updates, state = opt.update(jax.grad(loss)(table), state)
    return (optax.apply_updates(table, updates), state), None

  table = jnp.linspace(-2.0, 2.0, 5)
  (table, _), _ = jax.lax.scan(step, (table, opt.init(table)), length=steps)
  return table, loss(table)


def test_optimal_discriminator():
  table, value = train_logit_table(P_DATA, P_G)
  np.testing.assert_allclose(jax.nn.sigmoid(table), P_DATA / (P_DATA + P_G), atol=1e-3)
  # V(D*, G) = -minimax_d = -log 4 + 2 JSD(p_data || p_g); scipy returns sqrt(JSD).
  np.testing.assert_allclose(-value, -np.log(4) + 2 * jensenshannon(P_DATA, P_G) ** 2, atol=1e-6)


def test_optimal_discriminator_at_equilibrium():
  table, value = train_logit_table(P_DATA, P_DATA)
  np.testing.assert_allclose(jax.nn.sigmoid(table), np.full(5, 0.5), atol=1e-3)
  np.testing.assert_allclose(value, np.log(4), rtol=1e-9)


@pytest.mark.parametrize('name', losses.SMOOTHABLE)
def test_one_sided_label_smoothing_value_gradient_and_optimum(name):
  s = 0.1
  loss = losses.get(name, label_smoothing=s)
  real, fake = jnp.asarray(logits(11)), jnp.asarray(logits(12))
  expected = np.mean((1 - s) * softplus(-np.asarray(real)) + s * softplus(np.asarray(real))) + np.mean(
      softplus(np.asarray(fake)))
  np.testing.assert_allclose(loss.d(real, fake), expected, rtol=1e-12)
  g_real, g_fake = jax.grad(loss.d, argnums=(0, 1))(real, fake)
  np.testing.assert_allclose(g_real, (expit(np.asarray(real)) - (1 - s)) / B, rtol=1e-10)  # Target 0.9 on reals,
  np.testing.assert_allclose(g_fake, expit(np.asarray(fake)) / B, rtol=1e-10)  # still 0 on fakes (one-sided).
  assert loss.g is losses.LOSSES[name].g
  # The optimal D on a point with data density p and model density q: D* = (1 - s) p / (p + q).
  value = lambda t: loss.d(t[np.repeat(np.arange(5), [2, 4, 6, 3, 5])], t[np.repeat(np.arange(5), [6, 2, 4, 5, 3])])
  table, _ = jax.lax.scan(lambda t, _: (t - 5.0 * jax.grad(value)(t), None), jnp.zeros(5), length=2000)
  np.testing.assert_allclose(jax.nn.sigmoid(table), (1 - s) * P_DATA / (P_DATA + P_G), atol=2e-3)


@pytest.mark.parametrize('name, s', [('hinge', 0.1), ('non_saturating', 1.0), ('minimax', -0.1)])
def test_label_smoothing_is_refused_where_it_has_no_meaning(name, s):
  with pytest.raises(UserError, match='label_smoothing'):
    losses.get(name, label_smoothing=s)
