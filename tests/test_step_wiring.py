"""How the train step feeds its terms: each penalty gets the batch it is defined on, feature
matching reads D's features, instance noise reaches both of D's inputs.

The set-up makes every input known: G puts all its samples at one learned point g, the real batch
is B copies of a point r (so DRAGAN's perturbation, scaled by the batch's std, is zero and no
random draw enters), and both players take one SGD step of rate 1, so a player's gradient is its
parameters' change. Each test rebuilds D's expected gradient by hand from the library's
penalty functions applied to the inputs the term is defined on; a step that fed a term the
other batch, or the wrong D output, gives a different gradient.
"""
import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import losses
from gan_jax import penalties
from gan_jax.models import mlp
from gan_jax.train import state as state_lib
from gan_jax.train import steps

Z_DIM, BATCH = 3, 6
REAL_POINT = np.array([0.8, -0.3])
FAKE_POINT = np.array([-0.5, 0.6])
WEIGHT = 0.7


class PointG(nn.Module):
  """z [B, Z_DIM] -> the learned point g for every example, [B, 2]."""

  @nn.compact
  def __call__(self, z, train=True):
    del train
    return jnp.broadcast_to(self.param('g', lambda _: jnp.asarray(FAKE_POINT, jnp.float64)), (z.shape[0], 2))


def _setup(penalty: str, loss: str = 'wasserstein', **options):
  g, d = PointG(), mlp.Discriminator(8, 2, 'none', jnp.float64)
  sgd = optax.sgd(1.0)
  state = state_lib.init(g, d, sgd, sgd, Z_DIM, (2,), jax.random.key(0), ema=False)
  state = jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, state)
  weights = {**state.loss_weights, penalty: jnp.asarray(WEIGHT, jnp.float64)} if penalty else state.loss_weights
  state = state.replace(loss_weights=weights)
  if penalty == 'historical':  # As state_lib.init starts it with penalty.historical > 0.
    state = state.replace(history={'g': state.g.params, 'd': state.d.params})
  step_options = steps.StepOptions(z_dim=Z_DIM, penalties=(penalty,) if penalty else (), **options)
  step = jax.jit(steps.make_train_step(g, d, sgd, sgd, losses.get(loss), step_options))
  real = jnp.broadcast_to(jnp.asarray(REAL_POINT), (1, BATCH, 2))  # [d_steps=1, B, 2]
  return d, state, step, real


def _d_gradient(state, new):
  return jax.tree.map(lambda old, now: old - now, state.d.params, new.d.params)


def _expected_d_gradient(d, state, term, loss='wasserstein'):
  """grad of loss.d(D(r), D(g)) + WEIGHT * PENALTY_SCALE * term(critic, d_real, params) at D's params."""
  real = jnp.broadcast_to(jnp.asarray(REAL_POINT), (BATCH, 2))
  fake = jnp.broadcast_to(jnp.asarray(FAKE_POINT), (BATCH, 2))

  def total(params):
    critic = lambda x: d.apply({'params': params}, x)
    value = losses.get(loss).d(critic(real), critic(fake))
    return value + WEIGHT * term(critic, critic(real), params, real, fake)

  return jax.grad(total)(state.d.params)


def _assert_trees_close(a, b, rtol=1e-6):
  flat_a, flat_b = jax.flatten_util.ravel_pytree(a)[0], jax.flatten_util.ravel_pytree(b)[0]
  np.testing.assert_allclose(flat_a, flat_b, rtol=rtol, atol=1e-9)


TERMS = {  # name -> the term as defined (and scaled) on the batch it belongs to.
    'r1': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['r1'] * penalties.r1_penalty(critic, real),
    'r2': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['r2'] * penalties.r2_penalty(critic, fake),
    'dragan': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['dragan'] * penalties.dragan_penalty(
        critic, real, jax.random.key(0)),  # std(real) = 0: the draw does not matter.
    'drift': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['drift'] * jnp.mean(d_real ** 2),
    'd_weight_decay': lambda critic, d_real, params, real, fake: (
        steps.PENALTY_SCALE['d_weight_decay'] * penalties.weight_penalty(params)),
}
WRONG_BATCH = {  # name -> the same term fed the other batch (or the other D output): the wiring mutant.
    'r1': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['r1'] * penalties.r1_penalty(critic, fake),
    'r2': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['r2'] * penalties.r2_penalty(critic, real),
    'dragan': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['dragan'] * penalties.dragan_penalty(
        critic, fake, jax.random.key(0)),
    'drift': lambda critic, d_real, params, real, fake: steps.PENALTY_SCALE['drift'] * jnp.mean(critic(fake) ** 2),
}


@pytest.mark.parametrize('penalty', list(TERMS))
def test_each_penalty_enters_d_gradient_on_its_own_batch(penalty):
  with jax.enable_x64(True):
    d, state, step, real = _setup(penalty)
    new, metrics = step(state, {'image': real}, jax.random.key(1))
    expected = _expected_d_gradient(d, state, TERMS[penalty])
    _assert_trees_close(_d_gradient(state, new), expected)
    without = _expected_d_gradient(d, state, lambda *_: 0.0)
    assert not np.allclose(jax.flatten_util.ravel_pytree(expected)[0], jax.flatten_util.ravel_pytree(without)[0],
                           rtol=1e-4)  # The term matters here,
    if penalty in WRONG_BATCH:  # and on the other batch it would give another gradient.
      mutant = _expected_d_gradient(d, state, WRONG_BATCH[penalty])
      assert not np.allclose(jax.flatten_util.ravel_pytree(expected)[0], jax.flatten_util.ravel_pytree(mutant)[0],
                             rtol=1e-4)
    np.testing.assert_allclose(metrics[penalty] * steps.PENALTY_SCALE[penalty],
                               TERMS[penalty](lambda x: d.apply({'params': state.d.params}, x),
                                              d.apply({'params': state.d.params}, real[0]), state.d.params,
                                              real[0], jnp.broadcast_to(jnp.asarray(FAKE_POINT), (BATCH, 2))),
                               rtol=1e-6)


def test_instance_noise_reaches_both_of_ds_inputs():
  with jax.enable_x64(True):
    d, state, step, real = _setup('instance_noise', loss='non_saturating')
    _, metrics = step(state, {'image': real}, jax.random.key(1))
    clean = lambda point: float(jnp.mean(d.apply({'params': state.d.params}, jnp.asarray(point)[None])))
    assert abs(float(metrics['d_real']) - clean(REAL_POINT)) > 1e-4  # D saw noisy reals,
    assert abs(float(metrics['d_fake']) - clean(FAKE_POINT)) > 1e-4  # and noisy fakes.
    d, state, step, real = _setup(None, loss='non_saturating')
    _, metrics = step(state, {'image': real}, jax.random.key(1))
    np.testing.assert_allclose(metrics['d_real'], clean(REAL_POINT), rtol=1e-6)  # Off: the clean inputs.
    np.testing.assert_allclose(metrics['d_fake'], clean(FAKE_POINT), rtol=1e-6)


def test_feature_matching_g_gradient_is_that_of_the_distance_between_mean_d_features():
  with jax.enable_x64(True):
    d, state, step, real = _setup(None, loss='non_saturating', g_loss='feature_matching')
    new, _ = step(state, {'image': real}, jax.random.key(1))
    g_gradient = state.g.params['g'] - new.g.params['g']
    features = lambda x: d.apply({'params': new.d.params}, x, features=True)[1]  # G steps against the updated D.
    real_mean = jnp.mean(features(real[0]), axis=0)

    def by_hand(g_point):
      fake_mean = jnp.mean(features(jnp.broadcast_to(g_point, (BATCH, 2))), axis=0)
      return jnp.sum(jnp.square(real_mean - fake_mean))

    np.testing.assert_allclose(g_gradient, jax.grad(by_hand)(state.g.params['g']), rtol=1e-6, atol=1e-12)
    on_pixels = jax.grad(lambda g_point: jnp.sum(jnp.square(real[0].mean(0) - g_point)))(state.g.params['g'])
    assert not np.allclose(g_gradient, on_pixels, rtol=1e-3)  # Raw inputs would give another gradient.


def test_historical_averaging_pulls_each_player_toward_its_mean_past_parameters():
  """Two iterations (Wasserstein loss): the first is that of a run without the term (the mean of
  the initial parameters is the parameters); in the second, D's gradient exceeds that of the run
  without the term (same parameters and inputs) by 2 lambda (theta_1 - mean(theta_0, theta_1)) =
  lambda (theta_1 - theta_0), and G's is -grad D(g) under the updated D plus the same pull. The
  means kept afterwards are those of theta_0, theta_1, theta_2."""
  with jax.enable_x64(True):
    runs = {}
    for weight in (WEIGHT, None):
      d, state, step, real = _setup('historical' if weight else None)
      states = [state]
      for k in range(2):
        states.append(step(states[-1], {'image': real}, jax.random.key(10 + k))[0])
      runs[weight] = states
    with_term, without = runs[WEIGHT], runs[None]
    assert without[0].history == {}
    _assert_trees_close(with_term[1].d.params, without[1].d.params, rtol=1e-12)
    _assert_trees_close(with_term[1].g.params, without[1].g.params, rtol=1e-12)
    pull = lambda player: jax.tree.map(lambda t1, t0: WEIGHT * (t1 - t0), getattr(with_term[1], player).params,
                                       getattr(with_term[0], player).params)
    d_gradient = lambda states: _d_gradient(states[1], states[2])
    _assert_trees_close(jax.tree.map(lambda a, b: a - b, d_gradient(with_term), d_gradient(without)), pull('d'))
    g_point = with_term[1].g.params['g']
    adversarial = jax.grad(lambda point: -jnp.mean(d.apply({'params': with_term[2].d.params},
                                                           jnp.broadcast_to(point, (BATCH, 2)))))(g_point)
    np.testing.assert_allclose(g_point - with_term[2].g.params['g'], adversarial + pull('g')['g'], rtol=1e-6)
    for player in ('d', 'g'):
      theta = [getattr(s, player).params for s in with_term]
      _assert_trees_close(with_term[2].history[player], jax.tree.map(lambda *t: sum(t) / 3, *theta), rtol=1e-12)
