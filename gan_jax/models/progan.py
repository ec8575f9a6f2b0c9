"""ProGAN generator and discriminator (Karras et al. 2018) that grow from 4x4 to the final resolution.

Stages: stage s works at resolution 4 * 2**s (s = 0 is 4x4). G maps z to a 4x4 feature map and
adds one block per stage (nearest 2x upsampling, two 3x3 convs); D mirrors it (two 3x3 convs,
2x average pooling per stage down to 4x4, then minibatch stddev, a 3x3 conv and two dense
layers). Every stage has its own 1x1 toRGB (G) and fromRGB (D) layer. All layers use the
equalized learning rate; G applies pixel normalization after every hidden layer; activations
are LeakyReLU(0.2); G's output is linear (no tanh), as in the paper.

Parameters of all stages live in one pytree: a module built with `stage=s` uses only the blocks
up to stage s, but initialising any module creates the params of every stage up to
`final_resolution` (names `*_4`, `*_8`, ...). So the state's shapes never change while a run
grows; parameters, optimizer state and checkpoints carry across stages as they are. Blocks a
stage does not use get zero gradients; blocks of later stages have never had a gradient, so
Adam leaves them exactly at their initial values (zero moments) until their stage begins.

Fade-in (Sec. 3, Fig. 2): with `alpha` set (a float or a traced scalar in [0, 1]), the newest
stage is blended with the previous one: G returns (1 - alpha) * upsample(toRGB_{s-1}(h_{s-1}))
+ alpha * toRGB_s(h_s), and D feeds (1 - alpha) * fromRGB_{s-1}(downsample(x)) + alpha *
block_s(fromRGB_s(x)) to the rest of its layers. `alpha=None` is the stable phase (no blend).

Images at a stage's resolution: `fit_images` brings the data set to the final resolution once
(padded with -1 to a multiple of it, MNIST 28 -> 32, then average-pooled); `real_at` shows real
images to a stage; `view_at` shows a stage's samples at the data's own size for evaluation.
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError
from gan_jax.models import layers

LEAK = 0.2
MINIBATCH_GROUP = 4


def num_stages(resolution: int) -> int:
  """Stages from 4x4 up to `resolution` (4 -> 1, 8 -> 2, 32 -> 4); it must be 4 * 2**k."""
  stages = int(round(math.log2(resolution / 4))) + 1 if resolution >= 4 else 0
  if stages < 1 or 4 << (stages - 1) != resolution:
    raise UserError(f'ProGAN resolutions are 4 * 2**k (4, 8, 16, 32, 64, ...); got {resolution}')
  return stages


def channels_at(resolution: int, max_channels: int) -> int:
  """Feature maps at a resolution: max_channels up to 8x8, halving with each doubling after (at least 1)."""
  return max(1, min(max_channels, max_channels * 8 // resolution))


def upsample(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling of [..., H, W, C] by `factor`."""
  return jnp.repeat(jnp.repeat(x, factor, axis=-3), factor, axis=-2)


def downsample(x: jax.Array, factor: int = 2) -> jax.Array:
  """Average pooling of [..., H, W, C] over non-overlapping factor x factor windows."""
  if factor == 1:
    return x
  *lead, h, w, c = x.shape
  return x.reshape(*lead, h // factor, factor, w // factor, factor, c).mean(axis=(-4, -2))


def _lrelu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, LEAK)


def blend(low: jax.Array, high: jax.Array, alpha) -> jax.Array:
  """(1 - alpha) * low + alpha * high: exactly `low` at alpha = 0 and `high` at alpha = 1."""
  alpha = jnp.asarray(alpha, high.dtype)
  return (1.0 - alpha) * low + alpha * high


class Generator(nn.Module):
  """z [B, z_dim] -> images [B, r, r, out_channels] at the stage's resolution r = 4 * 2**stage (float32).

  Attributes:
    final_resolution: the last stage's resolution (sets which params exist).
    out_channels: image channels.
    max_channels: feature maps up to 8x8 (see channels_at).
    stage: the stage this module computes (0 = 4x4).
    alpha: fade-in weight of the newest stage, or None (stable: no blend).
  """
  final_resolution: int
  out_channels: int
  max_channels: int = 128
  stage: int = 0
  alpha: Any = None
  dtype: Any = jnp.float32

  def _conv(self, features: int, kernel: int, name: str, gain: float = math.sqrt(2.0)) -> layers.EqualizedConv:
    return layers.EqualizedConv(features, kernel, gain=gain, dtype=self.dtype, name=name)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # No BatchNorm or dropout.
    initializing = self.is_initializing()
    last = num_stages(self.final_resolution) - 1 if initializing else self.stage
    to_rgb = lambda h, s: self._conv(self.out_channels, 1, f'to_rgb_{4 << s}', gain=1.0)(h)
    c = channels_at(4, self.max_channels)
    x = layers.EqualizedDense(16 * c, gain=math.sqrt(2.0) / 4, dtype=self.dtype, name='dense_4')(
        layers.pixel_norm(z.astype(self.dtype)))
    x = layers.pixel_norm(_lrelu(x.reshape(z.shape[0], 4, 4, c)))
    x = layers.pixel_norm(_lrelu(self._conv(c, 3, 'conv_4')(x)))
    previous = None
    for s in range(1, last + 1):
      r = 4 << s
      if initializing:
        to_rgb(x, s - 1)  # Creates every stage's toRGB.
      previous = x
      x = upsample(x)
      for part in ('a', 'b'):
        x = layers.pixel_norm(_lrelu(self._conv(channels_at(r, self.max_channels), 3, f'conv_{r}_{part}')(x)))
    out = to_rgb(x, last)
    if self.alpha is not None and last > 0 and not initializing:
      out = blend(upsample(to_rgb(previous, last - 1)), out, self.alpha)
    return out.astype(jnp.float32)


class Discriminator(nn.Module):
  """images [B, r, r, C] at the stage's resolution r = 4 * 2**stage -> critic values [B] (float32).

  Attributes: as Generator's; `mbstd_group` is the minibatch-stddev group size (the batch must be
  a multiple of it, or smaller; 0 leaves the layer out); `axis_name` the data-parallel axis its
  groups span (layers.MinibatchStdDev).
  """
  final_resolution: int
  max_channels: int = 128
  stage: int = 0
  alpha: Any = None
  mbstd_group: int = MINIBATCH_GROUP
  dtype: Any = jnp.float32
  axis_name: str | None = None

  def _conv(self, features: int, kernel: int, name: str) -> layers.EqualizedConv:
    return layers.EqualizedConv(features, kernel, dtype=self.dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    initializing = self.is_initializing()
    last = num_stages(self.final_resolution) - 1 if initializing else self.stage
    from_rgb = lambda image, s: _lrelu(
        self._conv(channels_at(4 << s, self.max_channels), 1, f'from_rgb_{4 << s}')(image.astype(self.dtype)))
    if initializing:  # Creates every stage's fromRGB.
      for s in range(last):
        from_rgb(downsample(x, 1 << (last - s)), s)
    h = from_rgb(x, last)
    for s in range(last, 0, -1):
      r = 4 << s
      h = _lrelu(self._conv(channels_at(r, self.max_channels), 3, f'conv_{r}_a')(h))
      h = _lrelu(self._conv(channels_at(r // 2, self.max_channels), 3, f'conv_{r}_b')(h))
      h = downsample(h)
      if s == last and self.alpha is not None and not initializing:
        h = blend(from_rgb(downsample(x), s - 1), h, self.alpha)
    c = channels_at(4, self.max_channels)
    if self.mbstd_group:
      h = layers.MinibatchStdDev(self.mbstd_group, self.axis_name)(h)
    h = _lrelu(self._conv(c, 3, 'conv_4')(h))
    h = _lrelu(layers.EqualizedDense(c, dtype=self.dtype, name='dense_4')(h.reshape(h.shape[0], -1)))
    out = layers.EqualizedDense(1, gain=1.0, dtype=self.dtype, name='out')(h)
    return out[:, 0].astype(jnp.float32)


def build(model_config, final_resolution: int, channels: int, stage: int, alpha=None,
          dtype=jnp.float32, axis_name: str | None = None) -> tuple[Generator, Discriminator]:
  """The (G, D) pair of one stage; any stage's modules share the same full param trees."""
  if model_config.d_minibatch not in ('stddev', ''):
    raise UserError(f"ProGAN's D uses minibatch stddev or nothing; set --config.model.d_minibatch=stddev "
                    f"(got {model_config.d_minibatch!r})")
  group = MINIBATCH_GROUP if model_config.d_minibatch == 'stddev' else 0
  return (Generator(final_resolution, channels, model_config.g_channels, stage, alpha, dtype),
          Discriminator(final_resolution, model_config.d_channels, stage, alpha, group, dtype, axis_name))


def padded_side(side: int, final: int) -> int:
  """The side images are padded to before pooling to `final`: the smallest multiple of it >= side."""
  return -(-side // final) * final


def fit_images(images: np.ndarray, final: int) -> np.ndarray:
  """uint8 [N, H, H, C] -> [N, final, final, C]: zero-padded (-1 in the model range) to
  padded_side(H, final), then average-pooled to `final` (MNIST 28 -> 32 -> final)."""
  side = images.shape[1]
  padded = padded_side(side, final)
  if (padded - side) % 2:
    raise UserError(f'images of side {side} cannot be padded evenly to {padded} for the final resolution {final}; '
                    'choose progressive.resolutions ending at another resolution')
  pad = (padded - side) // 2
  images = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  factor = padded // final
  if factor == 1:
    return images
  pooled = images.reshape(images.shape[0], final, factor, final, factor, -1).astype(np.float32).mean(axis=(2, 4))
  return np.round(pooled).astype(np.uint8)


def real_at(images, resolution: int, alpha=None):
  """Full-resolution real images [..., F, F, C] as a stage sees them: average-pooled to `resolution`
  and, with `alpha`, blended with their 2x-coarser version upsampled (exactly the pooled images at alpha 1)."""
  x = downsample(images, images.shape[-2] // resolution)
  if alpha is not None:
    x = blend(upsample(downsample(x)), x, alpha)
  return x


def view_at(images, side: int, padded: int):
  """Stage-resolution samples [B, r, r, C] -> [B, side, side, C] in [-1, 1]: upsampled (nearest) to the
  `padded` side of fit_images, then centre-cropped to `side` (undoing its padding)."""
  x = upsample(images, padded // images.shape[1])
  start = (padded - side) // 2
  return jnp.clip(x[:, start:start + side, start:start + side], -1.0, 1.0)
