"""DCGAN's 4x4, stride-2, 'SAME' transposed convolution, in two exactly equivalent forms.

`UpConv2x` holds the same parameters as `flax.linen.ConvTranspose(features, (4, 4), (2, 2),
padding='SAME')` (kernel [4, 4, C_in, C_out], bias [C_out]) and can compute:
  - 'transpose': `lax.conv_transpose`, the textbook form;
  - 'subpixel': a 3x3 stride-1 convolution to 4*C_out channels followed by depth-to-space.

Why both: XLA's CPU backend runs transposed convolutions slowly (they dominate a DCGAN step on
CPU; see bench/). Output pixel 2m+r of the transposed conv only reads input pixels m-1, m, m+1
through two of the four kernel taps along each axis:
  phase r=0: y[2m]   = x[m-1] W[0] + x[m] W[2]
  phase r=1: y[2m+1] = x[m] W[1]   + x[m+1] W[3]
so one 3x3 convolution whose kernel places those taps per phase, then interleaving the phases
(depth-to-space), gives the same output. The test suite checks the two agree to float tolerance.
"""
import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np

# _TAPS[phase, offset] -> which of the 4 kernel taps multiplies input pixel m + offset - 1 for
# output phase `phase`; 4 marks "no tap" (a zero row appended to the kernel).
_TAPS = np.array([[0, 2, 4], [4, 1, 3]])


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
  """[4, 4, C_in, C_out] transposed-conv kernel -> [3, 3, C_in, 4 * C_out] conv kernel.

  Output channels are ordered (row phase, column phase, C_out).
  """
  c_in, c_out = kernel.shape[2], kernel.shape[3]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  k = padded[_TAPS[:, :, None, None], _TAPS[None, None, :, :]]  # [rh, a, rw, b, C_in, C_out]
  return k.transpose(1, 3, 4, 0, 2, 5).reshape(3, 3, c_in, 4 * c_out)


def depth_to_space(x: jax.Array, c_out: int) -> jax.Array:
  """[N, H, W, (2, 2, C)] -> [N, 2H, 2W, C], channel index (rh, rw, c) -> pixel (2h+rh, 2w+rw)."""
  n, h, w, _ = x.shape
  x = x.reshape(n, h, w, 2, 2, c_out).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, 2 * h, 2 * w, c_out)


class UpConv2x(nn.Module):
  """Doubles H and W: [N, H, W, C_in] -> [N, 2H, 2W, features]."""
  features: int
  impl: str = 'subpixel'
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (4, 4, x.shape[-1], self.features))
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    if self.impl == 'transpose':
      y = jax.lax.conv_transpose(x, kernel, (2, 2), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    elif self.impl == 'subpixel':
      y = jax.lax.conv_general_dilated(x, subpixel_kernel(kernel), (1, 1), 'SAME',
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
      y = depth_to_space(y, self.features)
    else:
      raise ValueError(f'unknown upsample impl {self.impl!r}')
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros_init(), (self.features,)).astype(self.dtype)
    return y
