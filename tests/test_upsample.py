"""The sub-pixel form of DCGAN's transposed convolution equals the textbook one."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models.upsample import UpConv2x


@pytest.mark.parametrize('side, c_in, c_out', [(7, 8, 4), (4, 3, 5), (8, 2, 1)])
def test_subpixel_equals_conv_transpose(side, c_in, c_out):
  x = jax.random.normal(jax.random.key(0), (2, side, side, c_in))
  reference = nn.ConvTranspose(c_out, (4, 4), (2, 2), padding='SAME')
  variables = reference.init(jax.random.key(1), x)
  variables = jax.tree.map(lambda v: v + 0.1 * jax.random.normal(jax.random.key(2), v.shape), variables)
  expected = reference.apply(variables, x)
  for impl in ('subpixel', 'transpose'):
    got = UpConv2x(c_out, impl).apply(variables, x)
    assert got.shape == (2, 2 * side, 2 * side, c_out)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_subpixel_gradients_match():
  x = jax.random.normal(jax.random.key(0), (2, 5, 5, 3))
  variables = UpConv2x(4, 'transpose').init(jax.random.key(1), x)

  def loss(variables, impl):
    return jnp.sum(jnp.sin(UpConv2x(4, impl).apply(variables, x)))

  g_sub = jax.grad(loss)(variables, 'subpixel')
  g_ref = jax.grad(loss)(variables, 'transpose')
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g_sub, g_ref)
