"""optim.decay: each player's Adam step scaled by a linear or cosine schedule over its own updates."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import config as config_lib
from gan_jax.errors import UserError
from gan_jax import config_checks
from gan_jax import optimizers
from gan_jax.train import run as run_lib


@pytest.mark.parametrize('decay, decay_to, expected', [
    ('linear', 0.0, {0: 1.0, 50: 0.5, 100: 0.0}),
    ('linear', 0.1, {0: 1.0, 50: 0.55, 100: 0.1}),
    ('cosine', 0.0, {0: 1.0, 50: 0.5, 100: 0.0}),
    ('cosine', 0.2, {0: 1.0, 25: 0.2 + 0.8 * (1 + np.cos(np.pi / 4)) / 2, 100: 0.2}),
])
def test_lr_factor(decay, decay_to, expected):
  factor = optimizers.lr_factor(decay, decay_to, 100)
  for count, value in expected.items():
    assert float(factor(count)) == pytest.approx(value, abs=1e-6)


def _optim(decay: str, lr: float = 1e-2):
  c = config_lib.base()
  c.optim.decay, c.optim.decay_to = decay, 0.0
  c.optim.g.lr = lr
  return c.optim


def test_scheduled_adam_steps_are_plain_adam_steps_times_the_factor():
  """Over 6 updates of a 4-step linear schedule (the factor reaches 0 and stays there), each scheduled
  step equals plain Adam's step (same gradients, same moments) times lr_factor(count)."""
  params = {'w': jnp.array([1.0, -2.0, 3.0])}
  scheduled = optimizers.make_optimizer(_optim('linear'), 'g', 4)
  plain = optimizers.make_optimizer(_optim('constant'), 'g', 4)
  s_state, p_state = scheduled.init(params), plain.init(params)
  factor = optimizers.lr_factor('linear', 0.0, 4)
  for count in range(6):
    grads = {'w': jnp.array([0.5, -1.0, 2.0]) * (count + 1) ** 0.5}
    s_updates, s_state = scheduled.update(grads, s_state, params)
    p_updates, p_state = plain.update(grads, p_state, params)
    np.testing.assert_allclose(s_updates['w'], float(factor(count)) * p_updates['w'], rtol=1e-6, atol=1e-9)
    if count == 0:
      assert float(jnp.abs(s_updates['w']).max()) > 1e-3  # The first step is a full one.
  assert float(jnp.abs(s_updates['w']).max()) == 0.0  # Past the horizon: no step at all.


def test_learning_rate_stays_in_the_state_with_a_schedule():
  """with_hyperparams (resume, vectorized members) still finds and sets lr/b1/b2 with a schedule."""
  c = config_lib.base()
  c.optim.decay = 'cosine'
  g_opt, d_opt = run_lib.make_optimizers(c)
  state = g_opt.init({'w': jnp.zeros(3)})
  assert float(state.hyperparams['learning_rate']) == pytest.approx(c.optim.g.lr)
  assert isinstance(state.inner_state[1], optax.ScaleByScheduleState)


@pytest.mark.parametrize('key, value, message', [
    ('decay', 'exponential', 'unknown optim.decay'),
    ('decay_to', 1.5, 'optim.decay_to is the final fraction'),
])
def test_bad_decay_is_a_user_error(key, value, message):
  c = config_lib.base()
  c.optim[key] = value
  with pytest.raises(UserError, match=message):
    config_checks.validate(c)
