"""DCGAN generator and discriminator (Radford et al. 2016) for square images of side 28, 32 or 64.

Rules kept: strided convolutions instead of pooling, BatchNorm in G (and optionally in D, never on
D's first layer), ReLU in G with tanh output, LeakyReLU(0.2) in D, no hidden fully connected
layers (G's first layer projects z to the starting feature map; D's last layer maps the final
feature map to one logit).

Spatial plan: the side is halved while it is even and larger than 4, giving the starting
resolution of G and the final one of D: 28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 64 -> ... -> 4.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models.upsample import UpConv2x


def num_scales(side: int) -> int:
  """How many stride-2 stages map `side` to the 4..7 starting resolution."""
  scales = 0
  while side % 2 == 0 and side > 4:
    side //= 2
    scales += 1
  if scales == 0 or side > 7:
    raise UserError(f'DCGAN supports square images whose side halves down to 4..7 (28, 32, 64); got {side}')
  return scales


def _batch_norm(train: bool, dtype) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype)


class Generator(nn.Module):
  """z [B, z_dim] -> images [B, H, W, C] in [-1, 1] (float32)."""
  image_shape: Sequence[int]
  channels: int = 64
  upsample: str = 'subpixel'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    side, _, out_channels = self.image_shape
    scales = num_scales(side)
    start = side >> scales
    width = self.channels * 2 ** (scales - 1)
    x = nn.Dense(start * start * width, use_bias=False, dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], start, start, width)
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    for _ in range(scales - 1):
      width //= 2
      x = UpConv2x(width, self.upsample, use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(_batch_norm(train, self.dtype)(x))
    x = UpConv2x(out_channels, self.upsample, dtype=self.dtype)(x)
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """images [B, H, W, C] -> logits [B] (float32)."""
  channels: int = 64
  batchnorm: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    scales = num_scales(x.shape[1])
    x = x.astype(self.dtype)
    for i in range(scales):
      x = nn.Conv(self.channels * 2 ** i, (4, 4), (2, 2), padding='SAME',
                  use_bias=not (self.batchnorm and i > 0), dtype=self.dtype)(x)
      if self.batchnorm and i > 0:
        x = _batch_norm(train, self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(1, dtype=self.dtype)(x)[:, 0].astype(jnp.float32)
