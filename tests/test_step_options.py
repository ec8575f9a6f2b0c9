"""The train step's options: penalties in the D loss, clipping, instance noise, feature matching,
and the unrolled G update (k = 0 is the ordinary step; gradients through the unroll are exact)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import config as config_lib
from gan_jax import losses
from gan_jax import models
from gan_jax.train import state as state_lib
from gan_jax.train import steps

Z_DIM = 3


def _mlp(penalty=None, opt=None, **model_overrides):
  c = config_lib.base()
  c.model.update({**dict(name='mlp', hidden=5, layers=1, d_norm='none'), **model_overrides})
  for k, v in (penalty or {}).items():
    c.penalty[k] = v
  g, d = models.build(c.model, (2,))
  opt = opt or optax.adam(0.05, b1=0.5)
  state = state_lib.init(g, d, opt, opt, Z_DIM, (2,), jax.random.key(0), ema=False, penalty_config=c.penalty)
  batch = {'image': jax.random.normal(jax.random.key(1), (2, 8, 2))}
  return g, d, opt, state, batch


def _step(g, d, opt, loss='non_saturating', **options):
  return jax.jit(steps.make_train_step(g, d, opt, opt, losses.get(loss), steps.StepOptions(z_dim=Z_DIM, **options)))


def _assert_trees_equal(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def _assert_trees_close(a, b):
  """Equal up to float32 rounding (two programs may order reductions differently)."""
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7), a, b)


def test_unroll_zero_is_the_ordinary_step():
  g, d, opt, state, batch = _mlp()
  plain = _step(g, d, opt)(state, batch, jax.random.key(2))
  unrolled0 = _step(g, d, opt, unroll_steps=0, unroll_stop_gradient=True)(state, batch, jax.random.key(2))
  _assert_trees_equal(plain, unrolled0)
  unrolled1 = _step(g, d, opt, unroll_steps=1)(state, batch, jax.random.key(2))
  _assert_trees_equal(plain[0].d, unrolled1[0].d)  # D's real update is unchanged by unrolling,
  plain_mu, unrolled_mu = plain[0].g.opt_state[0].mu, unrolled1[0].g.opt_state[0].mu  # G's gradient is not.
  assert not np.allclose(plain_mu['Dense_0']['kernel'], unrolled_mu['Dense_0']['kernel'], rtol=1e-3)


def _unrolled_g_loss(g, d, opt, state, real, z, k, stop_gradient):
  """G's loss against D advanced k Adam steps on (real, G(z)), written out by hand."""
  loss = losses.get('non_saturating')

  def fn(g_params):
    fake = g.apply({'params': g_params}, z)
    d_params, opt_state = state.d.params, state.d.opt_state
    for _ in range(k):
      grads = jax.grad(lambda p: loss.d(d.apply({'params': p}, real), d.apply({'params': p}, fake)))(d_params)
      updates, opt_state = opt.update(grads, opt_state, d_params)
      d_params = optax.apply_updates(d_params, updates)
    if stop_gradient:
      d_params = jax.lax.stop_gradient(d_params)
    return loss.g(d.apply({'params': d_params}, fake))

  return fn


@pytest.mark.parametrize('stop_gradient', [True, False])
def test_unrolled_g_gradient_matches_hand_written_unroll_and_finite_differences(stop_gradient):
  # SGD with momentum for both players: Adam's first step (about lr * sign(gradient)) is too
  # non-smooth for finite differences through the unrolled D updates. The momentum trace after
  # one step is the gradient itself.
  with jax.enable_x64(True):
    g, d, opt, state, batch = _mlp(opt=optax.sgd(0.1, momentum=0.9))
    state = jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, state)
    real = batch['image'][-1].astype(jnp.float64)
    options = steps.StepOptions(z_dim=Z_DIM, unroll_steps=3, unroll_stop_gradient=stop_gradient)
    step = steps.make_train_step(g, d, opt, opt, losses.get('non_saturating'), options)
    _, g_rng = jax.random.split(jax.random.key(4))
    z_rng, _ = jax.random.split(g_rng)
    z = jax.random.normal(z_rng, (8, Z_DIM), jnp.float32)  # As the step draws it.
    # The G update sees D after the step's own D updates.
    new, _ = step(state, {'image': batch['image'].astype(jnp.float64)}, jax.random.key(4))
    state_after_d = state.replace(d=new.d)
    fn = _unrolled_g_loss(g, d, opt, state_after_d, real, z, 3, stop_gradient)
    grads = jax.grad(fn)(state.g.params)
    trace = new.g.opt_state[0].trace
    # D's outputs are rounded to float32 (by design), and the step's lax.scan may round them one
    # float32 ulp (1.2e-7) away from this Python loop.
    jax.tree.map(lambda t, gr: np.testing.assert_allclose(t, gr, rtol=1e-6, atol=1e-12), trace, grads)
    if stop_gradient:
      return  # The cheap approximation is, by design, not the derivative finite differences measure.
    # The full unrolled gradient matches central finite differences (float64 layers; D's output
    # is rounded to float32 by design, hence the step h and the tolerance).
    fn = _unrolled_g_loss(models.mlp.Generator(2, 5, 1, jnp.float64), models.mlp.Discriminator(5, 1, 'none', jnp.float64),
                          opt, state_after_d, real, z.astype(jnp.float64), 3, stop_gradient)
    grads = jax.grad(fn)(state.g.params)
    flat, unravel = jax.flatten_util.ravel_pytree(state.g.params)
    direction = jax.random.normal(jax.random.key(5), flat.shape, jnp.float64)
    h = 1e-3
    fd = (fn(unravel(flat + h * direction)) - fn(unravel(flat - h * direction))) / (2 * h)
    analytic = jnp.dot(jax.flatten_util.ravel_pytree(grads)[0], direction)
    np.testing.assert_allclose(analytic, fd, rtol=2e-3, atol=1e-5)


def test_unrolled_gradient_differs_from_its_stop_gradient_approximation():
  g, d, opt, state, batch = _mlp()
  full = _step(g, d, opt, unroll_steps=3)(state, batch, jax.random.key(2))[0]
  cheap = _step(g, d, opt, unroll_steps=3, unroll_stop_gradient=True)(state, batch, jax.random.key(2))[0]
  a, b = full.g.opt_state[0].mu, cheap.g.opt_state[0].mu
  assert not np.allclose(a['Dense_0']['kernel'], b['Dense_0']['kernel'], rtol=1e-3)


def test_gradient_penalty_enters_the_d_loss_with_its_weight():
  g, d, opt, state, batch = _mlp(penalty={'gp': 10.0})
  _, metrics = _step(g, d, opt, loss='wasserstein', penalties=('gp',))(state, batch, jax.random.key(2))
  assert float(metrics['gp']) > 0
  np.testing.assert_allclose(metrics['d_penalty'], 10.0 * metrics['gp'], rtol=1e-5)
  r1_state = state.replace(loss_weights={**state.loss_weights, 'r1': jnp.float32(4.0)})
  _, metrics = _step(g, d, opt, penalties=('r1',))(r1_state, batch, jax.random.key(2))
  np.testing.assert_allclose(metrics['d_penalty'], 0.5 * 4.0 * metrics['r1'], rtol=1e-5)


def test_clipping_keeps_every_d_weight_in_range():
  g, d, opt, state, batch = _mlp()
  new, _ = _step(g, d, opt, loss='wasserstein', clip=0.01)(state, batch, jax.random.key(2))
  leaves = jax.tree.leaves(new.d.params)
  assert all(float(jnp.max(jnp.abs(leaf))) <= 0.01 for leaf in leaves)
  assert any(float(jnp.max(jnp.abs(leaf))) == pytest.approx(0.01) for leaf in leaves)


def test_instance_noise_is_annealed_linearly_to_no_noise():
  g, d, opt, state, batch = _mlp(penalty={'instance_noise': 0.5})
  annealed_step = _step(g, d, opt, penalties=('instance_noise',), instance_noise_steps=10)
  at = lambda step, state=state: state.replace(step=jnp.int32(step))
  annealed = annealed_step(at(10), batch, jax.random.key(2))
  plain = _step(g, d, opt)(at(10), batch, jax.random.key(2))
  _assert_trees_close(annealed, plain)
  # Half way the std is half the initial one: the same step as constant noise of std 0.25.
  constant = at(5, state.replace(loss_weights={**state.loss_weights, 'instance_noise': jnp.float32(0.25)}))
  half, half_constant = (step(s, batch, jax.random.key(2)) for step, s in (
      (annealed_step, at(5)), (_step(g, d, opt, penalties=('instance_noise',)), constant)))
  _assert_trees_close((half[0].d, half[0].g, half[1]), (half_constant[0].d, half_constant[0].g, half_constant[1]))
  early = annealed_step(at(0), batch, jax.random.key(2))
  assert not np.allclose(early[1]['d_loss'], plain[1]['d_loss'])


def test_feature_matching_g_loss():
  g, d, opt, state, batch = _mlp()
  new, metrics = _step(g, d, opt, g_loss='feature_matching')(state, batch, jax.random.key(2))
  assert float(metrics['g_loss']) >= 0
  assert not np.allclose(new.g.params['Dense_0']['kernel'], state.g.params['Dense_0']['kernel'])


def test_spectral_norm_power_iteration_state_lives_in_the_train_state():
  """Each D update advances the power iteration kept in state.d.batch_stats; with D's weights
  frozen (learning rate 0) the stored sigma of every layer converges to its largest singular value."""
  g, d, opt, state, batch = _mlp(opt=optax.sgd(0.0), d_norm='spectral')
  step = _step(g, d, opt, loss='wasserstein')
  new, _ = step(state, batch, jax.random.key(2))
  # {'SpectralNorm_i': {'Dense_i/kernel/u': [1, out], 'Dense_i/kernel/sigma': []}} for D's Dense_i.
  layers = {name: next(iter(stats)).split('/')[0] for name, stats in state.d.batch_stats.items()}
  assert sorted(layers.values()) == ['Dense_0', 'Dense_1']  # The hidden and the output layer.
  for name, layer in layers.items():
    assert not np.allclose(new.d.batch_stats[name][f'{layer}/kernel/u'], state.d.batch_stats[name][f'{layer}/kernel/u'])
  for k in range(30):
    new, _ = step(new, batch, jax.random.key(3 + k))
  _assert_trees_equal(new.d.params, state.d.params)
  for name, layer in layers.items():
    kernel = np.asarray(state.d.params[layer]['kernel'])
    np.testing.assert_allclose(new.d.batch_stats[name][f'{layer}/kernel/sigma'],
                               np.linalg.svd(kernel, compute_uv=False)[0], rtol=1e-4)
