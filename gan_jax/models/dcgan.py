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
from gan_jax.models import conditioning
from gan_jax.models import layers
from gan_jax.models import text
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


def _batch_norm(train: bool, dtype, axis_name: str | None, affine: bool = True) -> nn.BatchNorm:
  """BatchNorm whose batch statistics (in training) are taken over `axis_name` too (the global batch);
  affine=False leaves out the learned scale and bias (conditional batch norm supplies them)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, axis_name=axis_name,
                      use_scale=affine, use_bias=affine)


class Generator(nn.Module):
  """z [B, z_dim] (and labels int32 [B] when conditional) -> images [B, H, W, C] in [-1, 1] (float32).

  axis_name: the data-parallel axis BatchNorm averages its batch statistics over (None: the
    local batch only); the module must then be trained inside a mapping of that axis.
  cond: '' (unconditional), 'concat' or 'cbn' (gan_jax.models.conditioning) over num_classes.
  norm: 'batch' (BatchNorm) or 'virtual' (virtual batch normalization, Salimans et al. 2016:
    every layer normalizes each example with the statistics of a reference batch of
    `num_reference` latents drawn once at initialisation and kept in 'batch_stats' as
    'reference_z', so a sample never depends on the other samples of its batch).
  """
  image_shape: Sequence[int]
  channels: int = 64
  upsample: str = 'transpose'
  dtype: jnp.dtype = jnp.float32
  axis_name: str | None = None
  cond: str = ''
  num_classes: int = 0
  label_dim: int = 0
  norm: str = 'batch'
  num_reference: int = 0
  text_options: tuple = ()  # cond='text': (vocab_size, dim, encoder kind, frozen) of gan_jax.models.text.

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True, labels: jax.Array | None = None) -> jax.Array:
    side, _, out_channels = self.image_shape
    scales = num_scales(side)
    start = side >> scales
    width = self.channels * 2 ** (scales - 1)
    reference = 0
    if self.norm == 'virtual':  # The reference batch goes through the network ahead of the examples.
      reference = self.num_reference
      reference_z = self.variable('batch_stats', 'reference_z', lambda: jax.random.normal(
          self.make_rng('params'), (reference, z.shape[-1]), jnp.float32))
      z = jnp.concatenate([reference_z.value.astype(z.dtype), z])

    def normalize(x):
      if self.norm == 'virtual':
        return layers.VirtualBatchNorm(reference)(x)
      if self.cond == 'cbn':
        return conditioning.ClassAffine(self.num_classes)(
            _batch_norm(train, self.dtype, self.axis_name, affine=False)(x), labels)
      return _batch_norm(train, self.dtype, self.axis_name)(x)

    if self.cond == 'concat':
      z = conditioning.ConcatLabel(self.num_classes, self.label_dim)(z, labels)
    elif self.cond == 'text':
      z = text.ConcatText(*self.text_options)(z, labels)
    x = nn.Dense(start * start * width, use_bias=False, dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], start, start, width)
    x = nn.relu(normalize(x))
    for _ in range(scales - 1):
      width //= 2
      x = UpConv2x(width, self.upsample, use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(normalize(x))
    x = UpConv2x(out_channels, self.upsample, dtype=self.dtype)(x)
    return jnp.tanh(x[reference:].astype(jnp.float32))


class Discriminator(nn.Module):
  """images [B, H, W, C] (and labels int32 [B] when conditional) -> logits [B] (float32).

  norm: normalization of the hidden conv layers (never the first): 'batch' (DCGAN), 'layer',
    'spectral' (every conv and the output layer divided by its largest singular value; power
    iteration state in 'batch_stats'), or 'none' (WGAN-GP critics).
  minibatch: '' or a cross-example layer before the output: 'stddev' (one extra channel,
    Karras et al. 2018) or 'discrimination' (Salimans et al. 2016).
  axis_name: as in Generator, for norm='batch' and the minibatch-stddev layer (whose groups are
    the global batch's); the minibatch-discrimination layer sees only its own device's examples.
  cond: '' (unconditional), 'concat', 'projection' or 'acgan' (gan_jax.models.conditioning).
  With `features=True` the call returns (logits, the flattened features the output layer reads);
  with `classes=True` (cond='acgan'), (logits, class logits [B, num_classes] float32).
  """
  channels: int = 64
  norm: str = 'batch'
  minibatch: str = ''
  dtype: jnp.dtype = jnp.float32
  axis_name: str | None = None
  cond: str = ''
  num_classes: int = 0
  text_options: tuple = ()  # cond='text': (vocab_size, dim, encoder kind, frozen) of gan_jax.models.text.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, features: bool = False, labels: jax.Array | None = None,
               classes: bool = False):
    scales = num_scales(x.shape[1])
    x = x.astype(self.dtype)
    if self.cond == 'concat':
      x = conditioning.label_maps(x, labels, self.num_classes)
    for i in range(scales):
      conv = nn.Conv(self.channels * 2 ** i, (4, 4), (2, 2), padding='SAME',
                     use_bias=not (self.norm == 'batch' and i > 0), dtype=self.dtype)
      x = layers.SpectralNorm(conv)(x, update_stats=train) if self.norm == 'spectral' else conv(x)
      if i > 0 and self.norm == 'batch':
        x = _batch_norm(train, self.dtype, self.axis_name)(x)
      elif i > 0 and self.norm == 'layer':
        x = nn.LayerNorm(dtype=self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    if self.minibatch == 'stddev':
      x = layers.MinibatchStdDev(axis_name=self.axis_name)(x)
    x = x.reshape(x.shape[0], -1)
    if self.minibatch == 'discrimination':
      x = layers.MinibatchDiscrimination()(x)
    dense = nn.Dense(1, dtype=self.dtype)
    logits = (layers.SpectralNorm(dense)(x, update_stats=train) if self.norm == 'spectral' else dense(x))
    logits = logits[:, 0].astype(jnp.float32)
    if self.cond == 'projection':
      logits = logits + conditioning.Projection(self.num_classes)(x, labels).astype(jnp.float32)
    elif self.cond == 'text':
      logits = logits + text.TextProjection(*self.text_options)(x, labels).astype(jnp.float32)
    class_logits = None
    if self.cond == 'acgan':
      class_logits = nn.Dense(self.num_classes, dtype=self.dtype, name='class_head')(x).astype(jnp.float32)
    if classes:
      if class_logits is None:
        raise ValueError(f"classes=True needs cond='acgan', not {self.cond!r}")
      return logits, class_logits
    return (logits, x.astype(jnp.float32)) if features else logits
