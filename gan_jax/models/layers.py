"""Layers: minibatch standard deviation, minibatch discrimination, spectral norm (discriminators);
equalized learning rate and pixel normalization (ProGAN).

Inputs are [B, ..., C] float arrays (NHWC feature maps or [B, F] features). The two
minibatch layers make each output depend on the whole batch, so the "per-example"
input gradients of `gan_jax.penalties` then include cross-example terms.

Spectral normalization (Miyato et al. 2018) is flax's `nn.SpectralNorm`, re-exported
as `SpectralNorm`: wrap a layer, `SpectralNorm(nn.Conv(64, (4, 4)))(x, update_stats=train)`.
It divides every param with ndim >= 2 (kernels; conv kernels [kh, kw, cin, cout] as the
[kh*kw*cin, cout] matrix) by its largest singular value, estimated by `n_steps`
(default 1) power iterations started from a vector `u` that is kept, with the last
estimate `sigma`, in the 'batch_stats' collection. Threading through a train step:
  * init: `variables = d.init({'params': key}, x, train=False)` creates 'params' and
    'batch_stats' (the initial `u` is drawn from the 'params' rng).
  * D step: `out, updates = d.apply({'params': p, 'batch_stats': s}, x, train=True,
    mutable=['batch_stats'])` inside the loss (D passing `update_stats=train`); return
    `updates['batch_stats']` as aux and store it as the new state after the update.
    Keep the stats of one such call per step (e.g. D applied once to the concatenated
    real and fake batch) so the power iteration advances once per step. A BatchNorm in
    the same D shares the collection, which is threaded the same way.
  * G step, gradient-penalty critics and eval: `d.apply({'params': p, 'batch_stats': s},
    x, ...)` with update_stats=False and no `mutable`: the kernel is still normalised
    (sigma recomputed by `n_steps` power iterations from the stored `u`), but nothing
    is written.
`u` and `v` are treated as constants (stop_gradient), so gradients flow through
sigma as in the paper, and double backpropagation works.

Equalized learning rate (Karras et al. 2018, Sec. 4.1): `EqualizedDense` and `EqualizedConv`
store weights drawn from N(0, 1) and multiply them at run time by the He constant
gain / sqrt(fan_in), so Adam's scale-invariant updates change every layer at the same rate.
"""
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError

Array = jax.Array

SpectralNorm = nn.SpectralNorm


class MinibatchStdDev(nn.Module):
  """Appends one channel: the mean over features and positions of the per-feature std over a group.

  Karras et al. 2018 (ProGAN), Sec. 3. The batch is split into groups of `group_size`
  examples, strided as in the reference code (example i is in group i % (B / G)). For
  each group, the std over its members of every feature (biased, sqrt(var + 1e-8)) is
  averaged over all features and positions; that scalar fills the new channel of every
  member of the group.

  Attributes:
    group_size: examples per group; 0 means the whole batch. Capped at the batch size,
      which must then be divisible by it.
    axis_name: inside a data-parallel mapping, the groups are those of the global batch (the
      devices' parts gathered in device order), so N devices compute what one device does.
  """
  group_size: int = 4
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """[B, ..., C] -> [B, ..., C + 1], same dtype."""
    local = x.shape[0]
    whole = x if self.axis_name is None else jax.lax.all_gather(x, self.axis_name, tiled=True)
    batch = whole.shape[0]
    group = batch if self.group_size == 0 else min(self.group_size, batch)
    if batch % group:
      raise UserError(f'batch size {batch} is not divisible by the minibatch-stddev group size '
                      f'{group}; use a batch size that is a multiple of it or change the group size')
    y = whole.reshape((group, batch // group) + whole.shape[1:])
    std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)  # [B / G, ...]
    stat = jnp.tile(jnp.mean(std.reshape(std.shape[0], -1), axis=-1), group)  # [B]
    if self.axis_name is not None:
      stat = jax.lax.dynamic_slice_in_dim(stat, jax.lax.axis_index(self.axis_name) * local, local)
    stat = stat.reshape((local,) + (1,) * (x.ndim - 1))
    return jnp.concatenate([x, jnp.broadcast_to(stat, x.shape[:-1] + (1,)).astype(x.dtype)], axis=-1)


class VirtualBatchNorm(nn.Module):
  """Virtual batch normalization (Salimans et al. 2016, Sec. 3.4) of [R + B, ..., C] activations
  whose first R rows come from the fixed reference batch.

  Each of the B examples is normalized with the per-channel mean and variance of the reference
  rows together with itself (over every axis but the channels), so its output depends on the
  reference batch and on itself only, never on the other examples; the reference rows are
  normalized with their own statistics. Learned scale and bias per channel, as BatchNorm.

  Attributes:
    num_reference: R.
    epsilon: added to the variance.
  """
  num_reference: int
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: Array) -> Array:
    r = self.num_reference
    axes = tuple(range(1, x.ndim - 1))  # Per example: all but the batch and channel axes.
    xf = x.astype(jnp.float32)
    per_example = math.prod(x.shape[1:-1])
    ref_sum = jnp.sum(xf[:r], axis=(0, *axes))        # [C]
    ref_square = jnp.sum(xf[:r] ** 2, axis=(0, *axes))
    own_sum = jnp.sum(xf, axis=axes, keepdims=True)      # [R + B, 1.., C]
    own_square = jnp.sum(xf ** 2, axis=axes, keepdims=True)
    is_reference = (jnp.arange(x.shape[0]) < r).reshape((-1,) + (1,) * (x.ndim - 1))
    count = jnp.where(is_reference, r * per_example, (r + 1) * per_example)
    total = ref_sum + jnp.where(is_reference, 0.0, own_sum)
    total_square = ref_square + jnp.where(is_reference, 0.0, own_square)
    mean = total / count
    var = jnp.maximum(total_square / count - mean ** 2, 0.0)
    scale = self.param('scale', nn.initializers.ones, (x.shape[-1],), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (x.shape[-1],), jnp.float32)
    return ((xf - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias).astype(x.dtype)


class MinibatchDiscrimination(nn.Module):
  """Minibatch discrimination (Salimans et al. 2016, Sec. 3.2).

  With f(x_i) in R^A (the input flattened) and a learned tensor T in R^{A x K x C},
  M_i = f(x_i) T in R^{K x C}; for each kernel k, o(x_i)_k = sum_{j != i}
  exp(-|M_{i,k} - M_{j,k}|_1). The output is [f(x_i), o(x_i)]. Memory is O(B^2 K C).

  Attributes:
    num_kernels: K, the number of appended features.
    kernel_dim: C, the dimension of each projected row M_{i,k}.
    kernel_init: initializer of T (the param named 'kernel', shape [A, K, C]).
  """
  num_kernels: int = 50
  kernel_dim: int = 5
  kernel_init: Callable = nn.initializers.normal(stddev=0.05)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """[B, ...] -> [B, A + K] with A the product of the non-batch dims."""
    f = x.reshape(x.shape[0], -1)
    t = self.param('kernel', self.kernel_init, (f.shape[1], self.num_kernels, self.kernel_dim))
    m = jnp.einsum('ba,akc->bkc', f, t)
    dist = jnp.sum(jnp.abs(m[:, None] - m[None, :]), axis=-1)  # [B, B, K], L1
    others = 1.0 - jnp.eye(f.shape[0], dtype=dist.dtype)[:, :, None]
    o = jnp.sum(jnp.exp(-dist) * others, axis=1)  # [B, K]
    return jnp.concatenate([f, o.astype(f.dtype)], axis=-1)


def pixel_norm(x: Array, epsilon: float = 1e-8) -> Array:
  """Pixelwise feature vector normalization (ProGAN Sec. 4.2): x / sqrt(mean_c(x^2) + eps) over the last axis."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + epsilon)


def he_scale(fan_in: int, gain: float) -> float:
  """The run-time weight multiplier of an equalized-lr layer: gain / sqrt(fan_in)."""
  return gain / math.sqrt(fan_in)


class EqualizedDense(nn.Module):
  """[B, F] -> [B, features]: x @ (kernel * gain / sqrt(F)) + bias, kernel ~ N(0, 1), bias 0 at init."""
  features: int
  gain: float = math.sqrt(2.0)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param('kernel', nn.initializers.normal(stddev=1.0), (x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    w = kernel * he_scale(x.shape[-1], self.gain)
    return jnp.dot(x.astype(self.dtype), w.astype(self.dtype)) + bias.astype(self.dtype)


class EqualizedConv(nn.Module):
  """[B, H, W, Cin] -> [B, H, W, features]: 'SAME' stride-1 convolution with kernel * gain / sqrt(k * k * Cin)."""
  features: int
  kernel_size: int = 3
  gain: float = math.sqrt(2.0)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', nn.initializers.normal(stddev=1.0), (k, k, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    w = kernel * he_scale(k * k * cin, self.gain)
    y = jax.lax.conv_general_dilated(x.astype(self.dtype), w.astype(self.dtype), (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias.astype(self.dtype)
