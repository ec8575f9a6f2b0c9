"""Image-to-image networks: a U-Net generator and a PatchGAN discriminator (Isola et al. 2017), sized for 28x28.

The generator maps a task's input (gan_jax.data.paired: an edge map, a downsampled image, or an image
with a hole and its mask as a last channel) and a latent z to an output image; the discriminator
scores (output or target, input) pairs patch by patch.

Spatial plan of the U-Net at 28x28: the input (a smaller super-resolution input first resized to
28x28, bicubic) -> 28 -> 14 -> 7 (bottleneck, with z broadcast over the 7x7 positions) -> 14 -> 28,
each decoder level concatenating the encoder's feature map of its resolution (the skip connections).
CycleGAN (Zhu et al. 2017) runs as two of each, on examples that hold a domain-A and a domain-B image
as channels (gan_jax.data.unpaired): `CycleGenerators` maps (a, b) to (G_BA(b), G_AB(a)), so that
applied twice it gives the cycles (G_BA(G_AB(a)), G_AB(G_BA(b))) and applied to (b, a) the identity
mappings (G_BA(a), G_AB(b)); `CycleDiscriminators` scores channel 0 with D_A and channel 1 with D_B.
The players' one optimizer each then updates both generators, and both discriminators, as the
paper's joint updates do (Adam is elementwise: the same as one Adam per network).

z is the noise source: pix2pix's dropout masks would be drawn per device, breaking the project's rule
that a data-parallel step computes what a single-device step computes from the same key.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.dcgan import _batch_norm
from gan_jax.models.upsample import UpConv2x


def fit_to(source: jax.Array, side: int) -> jax.Array:
  """`source` [B, h, w, C] resized to [B, side, side, C] (bicubic; unchanged when already that size)."""
  if source.shape[1] == side:
    return source
  return jax.image.resize(source, (source.shape[0], side, side, source.shape[3]), 'bicubic')


class UNet(nn.Module):
  """(z [B, z_dim], source [B, h, w, C_in]) -> images [B, H, W, C] in [-1, 1] (float32).

  image_shape: (H, W, C) of the outputs (H = W divisible by 4).
  channels: of the first encoder level (doubling at each of the two downsamplings).
  composite: inpainting: the source's last channel is the hole mask (1 inside the hole, -1
    outside, in the data range), and the output keeps the source's known pixels, taking G's
    only inside the hole.
  axis_name: the data-parallel axis of BatchNorm's batch statistics.
  """
  image_shape: Sequence[int]
  channels: int = 32
  composite: bool = False
  dtype: jnp.dtype = jnp.float32
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True, source: jax.Array | None = None) -> jax.Array:
    side, _, out_channels = self.image_shape
    source = fit_to(source.astype(jnp.float32), side)
    norm = lambda x: _batch_norm(train, self.dtype, self.axis_name)(x)
    c = self.channels
    x = source.astype(self.dtype)
    e1 = nn.leaky_relu(nn.Conv(c, (3, 3), dtype=self.dtype)(x), 0.2)  # 28
    e2 = nn.leaky_relu(norm(nn.Conv(2 * c, (4, 4), (2, 2), use_bias=False, dtype=self.dtype)(e1)), 0.2)  # 14
    e3 = nn.leaky_relu(norm(nn.Conv(4 * c, (4, 4), (2, 2), use_bias=False, dtype=self.dtype)(e2)), 0.2)  # 7
    noise = jnp.broadcast_to(z[:, None, None, :].astype(self.dtype), e3.shape[:3] + z.shape[-1:])
    b = nn.relu(norm(nn.Conv(4 * c, (3, 3), use_bias=False, dtype=self.dtype)(jnp.concatenate([e3, noise], -1))))
    d2 = nn.relu(norm(UpConv2x(2 * c, use_bias=False, dtype=self.dtype)(b)))  # 14
    d1 = nn.relu(norm(UpConv2x(c, use_bias=False, dtype=self.dtype)(jnp.concatenate([d2, e2], -1))))  # 28
    out = nn.Conv(out_channels, (3, 3), dtype=self.dtype)(jnp.concatenate([d1, e1], -1))
    out = jnp.tanh(out.astype(jnp.float32))
    if self.composite:
      hole = (source[..., -1:] > 0).astype(jnp.float32)
      out = hole * out + (1.0 - hole) * source[..., :-1]
    return out


class PatchDiscriminator(nn.Module):
  """(images [B, H, W, C], source [B, h, w, C_in]) -> logits [B, P] float32, one per patch.

  The source, resized to the images' size, is concatenated to them as channels (D judges pairs);
  without one D judges the images alone.
  Two stride-2 4x4 convolutions and a 3x3 output convolution: at 28x28, P = 7 * 7 logits, each
  seeing a 22x22 patch of the pair. norm: of the second convolution, 'batch', 'layer' or 'none'.
  With `features=True` the call returns (logits, the flattened features the output layer reads).
  """
  channels: int = 32
  norm: str = 'batch'
  dtype: jnp.dtype = jnp.float32
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, source: jax.Array | None = None, features: bool = False):
    pair = x.astype(jnp.float32)  # Without a source (CycleGAN), D judges images alone.
    if source is not None:
      pair = jnp.concatenate([pair, fit_to(source.astype(jnp.float32), x.shape[1])], -1)
    h = nn.leaky_relu(nn.Conv(self.channels, (4, 4), (2, 2), dtype=self.dtype)(pair.astype(self.dtype)), 0.2)
    h = nn.Conv(2 * self.channels, (4, 4), (2, 2), use_bias=self.norm != 'batch', dtype=self.dtype)(h)
    if self.norm == 'batch':
      h = _batch_norm(train, self.dtype, self.axis_name)(h)
    elif self.norm == 'layer':
      h = nn.LayerNorm(dtype=self.dtype)(h)
    h = nn.leaky_relu(h, 0.2)
    logits = nn.Conv(1, (3, 3), dtype=self.dtype)(h).reshape(x.shape[0], -1).astype(jnp.float32)
    return (logits, h.reshape(x.shape[0], -1).astype(jnp.float32)) if features else logits


def _halves(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  half = x.shape[-1] // 2
  return x[..., :half], x[..., half:]


class CycleGenerators(nn.Module):
  """(z, source = (a, b) as channels [B, H, W, 2C]) -> (G_BA(b), G_AB(a)) as channels, float32 in [-1, 1]."""
  image_shape: Sequence[int]  # (H, W, 2C)
  channels: int = 32
  dtype: jnp.dtype = jnp.float32
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True, source: jax.Array | None = None) -> jax.Array:
    side, _, channels = self.image_shape
    shape = (side, side, channels // 2)
    a, b = _halves(source)
    a_to_b = UNet(shape, self.channels, dtype=self.dtype, axis_name=self.axis_name, name='a_to_b')
    b_to_a = UNet(shape, self.channels, dtype=self.dtype, axis_name=self.axis_name, name='b_to_a')
    return jnp.concatenate([b_to_a(z, train, b), a_to_b(z, train, a)], axis=-1)


class CycleDiscriminators(nn.Module):
  """(a, b) as channels [B, H, W, 2C] -> (D_A(a) logits [B, P], D_B(b) logits [B, P]) concatenated, [B, 2P].

  The losses average over all logits, so D's loss is the mean of D_A's and D_B's, and G's adversarial
  loss the mean of G_BA's and G_AB's. `source` (G's input) is not read: each D judges images alone.
  """
  channels: int = 32
  norm: str = 'batch'
  dtype: jnp.dtype = jnp.float32
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, source: jax.Array | None = None, features: bool = False):
    a, b = _halves(x)
    outs = [PatchDiscriminator(self.channels, self.norm, self.dtype, self.axis_name, name=name)(half, train,
                                                                                              features=features)
            for name, half in (('d_a', a), ('d_b', b))]
    if features:
      return tuple(jnp.concatenate(parts, axis=-1) for parts in zip(*outs))
    return jnp.concatenate(outs, axis=-1)
