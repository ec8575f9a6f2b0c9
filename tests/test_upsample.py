"""DCGAN's transposed convolution: the sub-pixel form and the custom kernel gradient equal the textbook ones."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import upsample
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


@pytest.mark.parametrize('side, c_in, c_out', [(7, 8, 4), (14, 5, 1), (4, 3, 6)])
def test_matmul_kernel_gradient_equals_autodiff(side, c_in, c_out):
  """The CPU kernel gradient (the sixteen strided views of dy in one matrix product) is autodiff's, for odd and even
  sides and one output channel; the whole custom VJP (dx and dkernel) too."""
  x = jax.random.normal(jax.random.key(0), (3, side, side, c_in))
  kernel = jax.random.normal(jax.random.key(1), (4, 4, c_in, c_out))
  dy = jax.random.normal(jax.random.key(2), (3, 2 * side, 2 * side, c_out))
  textbook = lambda x, k: jax.lax.conv_transpose(x, k, (2, 2), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  expected_dx, expected_dk = jax.vjp(textbook, x, kernel)[1](dy)
  np.testing.assert_allclose(upsample._kernel_gradient_by_matmul(x, dy), expected_dk, rtol=1e-4, atol=1e-4)
  dx, dk = jax.vjp(upsample.conv_transpose_2x, x, kernel)[1](dy)
  np.testing.assert_allclose(dx, expected_dx, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(dk, expected_dk, rtol=1e-4, atol=1e-4)
  assert float(jnp.max(jnp.abs(dk))) > 1.0  # Not vacuous: the gradient is far from zero.


def test_transpose_gradients_under_jit_and_vmap():
  """The custom VJP composes with jit and with vmap over a leading run axis (the vectorized sweep runner)."""
  x = jax.random.normal(jax.random.key(0), (2, 2, 5, 5, 3))
  kernels = jax.random.normal(jax.random.key(1), (2, 4, 4, 3, 2))
  loss = lambda f: lambda k, x: jnp.sum(jnp.sin(f(x, k)))
  textbook = lambda x, k: jax.lax.conv_transpose(x, k, (2, 2), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  got = jax.jit(jax.vmap(jax.grad(loss(upsample.conv_transpose_2x))))(kernels, x)
  expected = jax.vmap(jax.grad(loss(textbook)))(kernels, x)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
