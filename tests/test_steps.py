"""The pure train step: determinism, which player each update touches, and d_steps."""
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

SHAPE = (28, 28, 1)
Z_DIM = 8
B1 = 0.5


def _setup(d_steps=1):
  c = config_lib.base()
  c.model.g_channels = c.model.d_channels = 4
  g, d = models.build(c.model, SHAPE)
  opt = optax.adam(1e-3, b1=B1)
  state = state_lib.init(g, d, opt, opt, Z_DIM, SHAPE, jax.random.key(0), ema=False)
  step = steps.make_train_step(g, d, opt, opt, losses.get('non_saturating'), steps.StepOptions(z_dim=Z_DIM))
  batch = {'image': jax.random.uniform(jax.random.key(1), (d_steps, 6, *SHAPE), minval=-1, maxval=1)}
  return g, d, state, step, batch


def _adam_count(opt_state):
  return int(opt_state[0].count)


def test_step_is_pure_and_deterministic():
  _, _, state, step, batch = _setup()
  step = jax.jit(step)
  a, ma = step(state, batch, jax.random.key(3))
  b, mb = step(state, batch, jax.random.key(3))
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), (a, ma), (b, mb))
  c, _ = step(state, batch, jax.random.key(4))
  assert not np.array_equal(c.g.params['Dense_0']['kernel'], a.g.params['Dense_0']['kernel'])
  assert int(a.step) == 1 and int(state.step) == 0  # The input state is not modified.


@pytest.mark.parametrize('d_steps', [1, 3])
def test_each_update_touches_only_its_player(d_steps):
  """Adam's first moment after the step equals (1 - b1) x the gradient each update should see.

  D: its loss on real and G's (constant) fakes, G as it was before the step.
  G: its loss through the D that the D updates produced, D held constant.
  """
  g, d, state, step, batch = _setup(d_steps)
  new, metrics = jax.jit(step)(state, batch, jax.random.key(5))
  assert _adam_count(new.d.opt_state) == d_steps
  assert _adam_count(new.g.opt_state) == 1
  loss = losses.get('non_saturating')
  d_rng, g_rng = jax.random.split(jax.random.key(5))
  rngs = jax.random.split(d_rng, d_steps)

  # Rebuild the D updates by hand.
  d_state = state.d
  for k in range(d_steps):
    z = jax.random.normal(jax.random.split(rngs[k])[0], (6, Z_DIM))
    fake, _ = steps.apply_model(g, state.g.params, state.g.batch_stats, z, train=True)

    def d_loss(params):
      real_logits, stats = steps.apply_model(d, params, d_state.batch_stats, batch['image'][k], True)
      fake_logits, stats = steps.apply_model(d, params, stats, fake, True)
      return loss.d(real_logits, fake_logits), stats

    (_, stats), grads = jax.value_and_grad(d_loss, has_aux=True)(d_state.params)
    updates, opt_state = optax.adam(1e-3, b1=B1).update(grads, d_state.opt_state, d_state.params)
    d_state = state_lib.Player(optax.apply_updates(d_state.params, updates), stats, opt_state)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7), new.d.params, d_state.params)

  z = jax.random.normal(jax.random.split(g_rng)[0], (6, Z_DIM))

  def g_loss(params):
    fake, _ = steps.apply_model(g, params, state.g.batch_stats, z, True)
    logits, _ = steps.apply_model(d, d_state.params, d_state.batch_stats, fake, True)
    return loss.g(logits)

  g_grads = jax.grad(g_loss)(state.g.params)
  mu = new.g.opt_state[0].mu
  # float32 sums in a different order: tolerances scaled to each leaf's largest gradient.
  jax.tree.map(lambda m, gr: np.testing.assert_allclose(
      m, (1 - B1) * gr, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(gr)))), mu, g_grads)
  # D's BatchNorm statistics are those of D's own updates, not of the G update's forward pass.
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-7), new.d.batch_stats, d_state.batch_stats)
  assert float(metrics['d_loss']) > 0 and float(metrics['g_loss']) > 0


def test_iteration_sums_metrics_and_replays_randomness(data_dir):
  from gan_jax.train import program as program_lib
  from gan_jax.train import run as run_lib
  c = config_lib.base()
  c.model.g_channels = c.model.d_channels = 4
  c.data.batch_size = 6
  run = run_lib.build_run(c)
  phase = run.phases[0]
  iterate = program_lib.Program(run, phase, program_lib.Layout(1), on_device=True)
  state = run.init_state(jax.random.key(0))
  arrays = jax.device_put(run.train_source.arrays)
  key = jax.random.key(9)
  s1, m1 = iterate(jax.tree.map(jnp.copy, state), iterate.zero_sums(), arrays, phase.fade, key)
  s2, m2 = iterate(jax.tree.map(jnp.copy, state), iterate.zero_sums(), arrays, phase.fade, key)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), (s1, m1), (s2, m2))
  first = float(m1['d_loss'])
  s3, m3 = iterate(s1, m1, arrays, phase.fade, key)  # Donates s1 and m1.
  assert int(s3.step) == 2
  assert float(m3['d_loss']) > first > 0  # A running sum of two positive losses.
