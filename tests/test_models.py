"""Model shapes and the DCGAN rules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import models
from gan_jax.errors import UserError


def _build(shape, **overrides):
  model_config = config_lib.base().model
  model_config.update(overrides)
  return models.build(model_config, shape)


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_shapes_and_range(shape):
  g, d = _build(shape, g_channels=8, d_channels=8)
  z = jax.random.normal(jax.random.key(0), (3, 100))
  g_vars = g.init(jax.random.key(1), z, train=False)
  images, _ = g.apply(g_vars, z, train=True, mutable=['batch_stats'])
  assert images.shape == (3, *shape) and images.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  d_vars = d.init(jax.random.key(2), images, train=False)
  logits, _ = d.apply(d_vars, images, train=True, mutable=['batch_stats'])
  assert logits.shape == (3,)
  # DCGAN: no BatchNorm on D's first layer, BatchNorm on the others.
  assert 'BatchNorm_0' in d_vars['batch_stats'] and 'Conv_0' in d_vars['params']
  assert len(d_vars['batch_stats']) == len([k for k in d_vars['params'] if k.startswith('Conv')]) - 1


def test_dcgan_without_d_norm_has_no_stats():
  _, d = _build((32, 32, 3), d_norm='none', d_channels=8)
  variables = d.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)
  assert 'batch_stats' not in variables


def test_mlp_shapes():
  g, d = _build((2,), name='mlp', hidden=16, layers=2, d_norm='none')
  z = jnp.ones((5, 100))
  points = g.apply(g.init(jax.random.key(0), z), z)
  assert points.shape == (5, 2)
  assert d.apply(d.init(jax.random.key(1), points), points).shape == (5,)


@pytest.mark.parametrize('shape, overrides, message', [
    ((30, 30, 1), {}, 'halves down'),
    ((28, 20, 1), {}, 'square'),
    ((2,), {}, 'model dcgan needs square images'),
    ((28, 28, 1), {'name': 'mlp'}, 'model mlp needs flat'),
    ((28, 28, 1), {'name': 'resnet'}, 'unknown model'),
    ((28, 28, 1), {'upsample': 'nearest'}, 'unknown model.upsample'),
])
def test_bad_model_configs(shape, overrides, message):
  with pytest.raises(UserError, match=message):
    _build(shape, **overrides)


def test_unknown_dtype():
  with pytest.raises(UserError, match='unknown train.dtype'):
    models.build(config_lib.base().model, (28, 28, 1), 'float16')


def test_mlp_discriminator_has_its_own_width_depth_and_input_scale():
  """model.d_hidden / d_layers size D apart from G; d_input_scale multiplies D's input first."""
  c = config_lib.base().model
  c.update(name='mlp', d_norm='none', hidden=16, layers=2, d_hidden=8, d_layers=1, d_input_scale=0.25)
  g, d = models.build(c, (2,))
  x = jax.random.normal(jax.random.key(0), (5, 2))
  g_params = g.init(jax.random.key(1), jnp.zeros((1, c.z_dim)))['params']
  d_params = d.init(jax.random.key(2), x)['params']
  assert [g_params[k]['kernel'].shape for k in sorted(g_params)] == [(c.z_dim, 16), (16, 16), (16, 2)]
  assert [d_params[k]['kernel'].shape for k in sorted(d_params)] == [(2, 8), (8, 1)]
  unscaled = models.mlp.Discriminator(8, 1, 'none')
  np.testing.assert_allclose(d.apply({'params': d_params}, x), unscaled.apply({'params': d_params}, 0.25 * x),
                             rtol=1e-6)
  assert not np.allclose(d.apply({'params': d_params}, x), unscaled.apply({'params': d_params}, x))
  with pytest.raises(UserError, match='d_input_scale > 0'):
    models.build(config_lib.ConfigDict({**c.to_dict(), 'd_input_scale': 0.0}), (2,))


def test_virtual_batch_norm_generator_keeps_its_reference_and_samples_alone():
  c = config_lib.base()
  c.model.update(g_norm='virtual', vbn_reference=8, g_channels=8, z_dim=16)
  g, _ = models.build(c.model, (28, 28, 1))
  variables = g.init(jax.random.key(0), jnp.zeros((1, 16)))
  reference = variables['batch_stats']['reference_z']
  assert reference.shape == (8, 16)
  z = jax.random.normal(jax.random.key(1), (4, 16))
  out, updated = g.apply(variables, z, mutable=['batch_stats'])
  np.testing.assert_array_equal(updated['batch_stats']['reference_z'], reference)  # Fixed during training.
  others = z.at[1:].set(jax.random.normal(jax.random.key(2), (3, 16)))
  np.testing.assert_array_equal(g.apply(variables, others, mutable=['batch_stats'])[0][0], out[0])
  assert not np.array_equal(g.apply(variables, z, train=False)[0], g.apply(
      g.init(jax.random.key(5), jnp.zeros((1, 16))), z, train=False)[0])  # Another seed, another reference.
  c.model.g_cond, c.model.d_cond = 'concat', 'concat'
  with pytest.raises(UserError, match="g_norm='virtual' needs an unconditional G"):
    models.build(c.model, (28, 28, 1), num_classes=10)
