"""Inception-v3 features for FID and the Inception Score, from the standard FID weights.

The network is the Inception-v3 of TensorFlow's 2015-12-05 ImageNet graph
(`inception-2015-12-05.tgz`), the network behind the standard FID and IS, in the form
pytorch-fid ships as `pt_inception-2015-12-05-6726825d.pth`. It differs from the usual
Inception-v3 in three places: the 3x3 average pools of the A, C and first E blocks
(Mixed_5b-d, Mixed_6b-e, Mixed_7b) leave the zero padding out of the mean
(count_include_pad=False); the pool branch of the last E block (Mixed_7c) is a 3x3 max pool;
the classifier has 1008 outputs. Every conv is conv (no bias) -> BatchNorm with running
statistics and eps 1e-3 -> ReLU. Layout is NHWC throughout.

Input contract (`preprocess`): images [B, H, W, C] floating point in [-1, 1], C = 1 or 3
(one channel is repeated to three), any H and W. They are resized to 299 x 299 by
`jax.image.resize(x, ..., method='bilinear', antialias=False)`: bilinear interpolation with
half-pixel centres (source coordinate (i + 0.5) * in / out - 0.5, border pixels repeated)
and no antialiasing filter when shrinking. That is exactly torch's
`F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)`, the resize
pytorch-fid applies, so features agree with pytorch-fid's for the same float images
(jax's default antialias=True would differ from it whenever an image is shrunk). Values
are fed to the network unchanged: the FID weights expect inputs in [-1, 1], the range
pytorch-fid produces with 2 x - 1 from [0, 1]. The original TF graph instead took uint8
[0, 255] images, resized them with TF1 `ResizeBilinear` (align_corners=False but without
half-pixel centres) and scaled by (x - 128) / 128, so numbers from this module are
pytorch-fid-compatible and differ slightly from those of the TF code.

Outputs (`make_feature_fn`): `pool` [B, 2048] float32, the global average pool of Mixed_7c
(the FID features, TF's `pool_3`), and `logits` [B, 1008] float32. By default the logits are
`pool @ W_fc` without the fc bias, as in the reference IS code (Salimans et al. 2016, which
multiplies `pool_3` by the weight input of `softmax/logits/MatMul`); `logits_bias=True`
adds the bias to give the network's own classifier logits. IS is the softmax over all 1008.

Weights: `load_weights(path)` reads a `.npz` written by
`python -m gan_jax.metrics.inception --torch_weights=PATH.pth --out=PATH.npz` (no torch
needed) or the `.pth` itself (needs torch). `load_torch_state_dict` maps pytorch-fid's
state-dict keys (`Mixed_5b.branch1x1.conv.weight`, `...bn.running_mean`, `fc.weight`, ...)
onto this module: conv weights OIHW -> HWIO, fc weight [out, in] -> [in, out], BatchNorm
weight/bias -> scale/bias in 'params', running_mean/running_var -> mean/var in
'batch_stats'; `num_batches_tracked` entries are ignored.
"""
import argparse
import functools
import pathlib
import sys
from typing import Any, Callable, Mapping
import zipfile

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError

Array = jax.Array
Dtype = Any
Variables = dict[str, Any]

INPUT_SIZE = 299
POOL_DIM = 2048
NUM_LOGITS = 1008
WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'
_HOW_TO_GET = (f'download {WEIGHTS_FILE} from the pytorch-fid GitHub releases and convert it with '
               f'`python -m gan_jax.metrics.inception --torch_weights=PATH.pth --out=PATH.npz`')


# The network.
class ConvBN(nn.Module):
  """Conv without bias -> BatchNorm (running statistics, eps 1e-3) -> ReLU on NHWC maps.

  Attributes:
    features: output channels.
    kernel: (kh, kw).
    stride: the same stride along H and W.
    padding: (ph, pw) zeros added on both sides of H and of W.
    dtype: compute dtype (parameters stay float32).
  """
  features: int
  kernel: tuple[int, int] = (1, 1)
  stride: int = 1
  padding: tuple[int, int] = (0, 0)
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel, strides=(self.stride, self.stride),
                padding=((ph, ph), (pw, pw)), use_bias=False, dtype=self.dtype,
                precision=_precision(self.dtype), name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, dtype=self.dtype, name='bn')(x)
    return nn.relu(x)


def _precision(dtype: Dtype) -> jax.lax.Precision:
  """Full float32 arithmetic for float32 compute (no TF32 on GPUs); the default otherwise."""
  return jax.lax.Precision.HIGHEST if jnp.dtype(dtype) == jnp.float32 else jax.lax.Precision.DEFAULT


def _avg_pool_3x3(x: Array) -> Array:
  """3x3 stride-1 average over the in-bounds pixels only (TF 'SAME' average pooling)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: Array, stride: int) -> Array:
  """3x3 max pool; stride 1 pads by 1 (keeps H, W), stride 2 pads nothing."""
  pad = ((1, 1), (1, 1)) if stride == 1 else 'VALID'
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=pad)


class InceptionA(nn.Module):
  """Mixed_5b-d: 35x35 maps, out channels 224 + pool_features."""
  pool_features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    conv = functools.partial(ConvBN, dtype=self.dtype)
    b1 = conv(64, name='branch1x1')(x)
    b5 = conv(48, name='branch5x5_1')(x)
    b5 = conv(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = conv(64, name='branch3x3dbl_1')(x)
    b3 = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    bp = conv(self.pool_features, name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a: 35x35x288 -> 17x17x768."""
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    conv = functools.partial(ConvBN, dtype=self.dtype)
    b3 = conv(384, (3, 3), stride=2, name='branch3x3')(x)
    bd = conv(64, name='branch3x3dbl_1')(x)
    bd = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = conv(96, (3, 3), stride=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b-e: 17x17x768 -> 17x17x768 with factorised 7x7 convs of `channels_7x7` channels."""
  channels_7x7: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    conv = functools.partial(ConvBN, dtype=self.dtype)
    c7 = self.channels_7x7
    b1 = conv(192, name='branch1x1')(x)
    b7 = conv(c7, name='branch7x7_1')(x)
    b7 = conv(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = conv(c7, name='branch7x7dbl_1')(x)
    bd = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = conv(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = conv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    bp = conv(192, name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a: 17x17x768 -> 8x8x1280."""
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    conv = functools.partial(ConvBN, dtype=self.dtype)
    b3 = conv(192, name='branch3x3_1')(x)
    b3 = conv(320, (3, 3), stride=2, name='branch3x3_2')(b3)
    b7 = conv(192, name='branch7x7x3_1')(x)
    b7 = conv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = conv(192, (3, 3), stride=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (pool 'avg') and Mixed_7c (pool 'max'): 8x8 maps -> 8x8x2048."""
  pool: str
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    conv = functools.partial(ConvBN, dtype=self.dtype)
    b1 = conv(320, name='branch1x1')(x)
    b3 = conv(384, name='branch3x3_1')(x)
    b3 = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                          conv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3)], axis=-1)
    bd = conv(448, name='branch3x3dbl_1')(x)
    bd = conv(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                          conv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd)], axis=-1)
    pooled = _avg_pool_3x3(x) if self.pool == 'avg' else _max_pool_3x3(x, 1)
    bp = conv(192, name='branch_pool')(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class Logits(nn.Module):
  """The 1008-way fc layer on float32 pool features: [B, 2048] -> [B, 1008] float32."""
  add_bias: bool

  @nn.compact
  def __call__(self, pool: Array) -> Array:
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (POOL_DIM, NUM_LOGITS))
    bias = self.param('bias', nn.initializers.zeros, (NUM_LOGITS,))
    logits = jnp.dot(pool, kernel, precision=jax.lax.Precision.HIGHEST)
    return logits + bias if self.add_bias else logits


class InceptionV3(nn.Module):
  """The FID Inception-v3 on preprocessed images (see the module docstring).

  Submodule names equal pytorch-fid's attribute names, so state-dict keys map one to one.

  Attributes:
    dtype: compute dtype of the conv trunk (float32, or bfloat16 for speed); the pooled
      features and the logits are always computed and returned in float32.
    logits_bias: whether the logits include the fc bias (False: the reference IS logits).
  """
  dtype: Dtype = jnp.float32
  logits_bias: bool = False

  @nn.compact
  def __call__(self, x: Array) -> tuple[Array, Array]:
    """[B, 299, 299, 3] float in [-1, 1] -> (pool [B, 2048] float32, logits [B, 1008] float32)."""
    conv = functools.partial(ConvBN, dtype=self.dtype)
    x = x.astype(self.dtype)
    x = conv(32, (3, 3), stride=2, name='Conv2d_1a_3x3')(x)  # 149x149x32
    x = conv(32, (3, 3), name='Conv2d_2a_3x3')(x)  # 147x147x32
    x = conv(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)  # 147x147x64
    x = _max_pool_3x3(x, 2)  # 73x73x64
    x = conv(80, name='Conv2d_3b_1x1')(x)  # 73x73x80
    x = conv(192, (3, 3), name='Conv2d_4a_3x3')(x)  # 71x71x192
    x = _max_pool_3x3(x, 2)  # 35x35x192
    x = InceptionA(32, self.dtype, name='Mixed_5b')(x)  # 35x35x256
    x = InceptionA(64, self.dtype, name='Mixed_5c')(x)  # 35x35x288
    x = InceptionA(64, self.dtype, name='Mixed_5d')(x)  # 35x35x288
    x = InceptionB(self.dtype, name='Mixed_6a')(x)  # 17x17x768
    x = InceptionC(128, self.dtype, name='Mixed_6b')(x)
    x = InceptionC(160, self.dtype, name='Mixed_6c')(x)
    x = InceptionC(160, self.dtype, name='Mixed_6d')(x)
    x = InceptionC(192, self.dtype, name='Mixed_6e')(x)  # 17x17x768
    x = InceptionD(self.dtype, name='Mixed_7a')(x)  # 8x8x1280
    x = InceptionE('avg', self.dtype, name='Mixed_7b')(x)  # 8x8x2048
    x = InceptionE('max', self.dtype, name='Mixed_7c')(x)  # 8x8x2048
    pool = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    return pool, Logits(self.logits_bias, name='fc')(pool)


# Preprocessing and the batched feature function.
def preprocess(images: Array) -> Array:
  """[B, H, W, C] float in [-1, 1], C in {1, 3} -> [B, 299, 299, 3] float32 in [-1, 1].

  Bilinear resize with half-pixel centres and no antialiasing (torch's
  `F.interpolate(..., mode='bilinear', align_corners=False)`); skipped at 299 x 299.
  """
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise UserError(f'Inception features need images [B, H, W, C] with C = 1 or 3, got shape '
                    f'{tuple(images.shape)}; pass NHWC batches')
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise UserError(f'Inception features need float images in [-1, 1], got dtype {images.dtype}; '
                    f'convert uint8 pixels with x / 127.5 - 1')
  x = jnp.asarray(images, jnp.float32)
  b, h, w, c = x.shape
  if (h, w) != (INPUT_SIZE, INPUT_SIZE):
    x = jax.image.resize(x, (b, INPUT_SIZE, INPUT_SIZE, c), method='bilinear', antialias=False)
  return jnp.broadcast_to(x, (b, INPUT_SIZE, INPUT_SIZE, 3))


@functools.partial(jax.jit, static_argnames=('dtype', 'logits_bias'))
def _features(variables: Variables, images: Array, dtype: Dtype, logits_bias: bool) -> tuple[Array, Array]:
  return InceptionV3(dtype=dtype, logits_bias=logits_bias).apply(variables, preprocess(images))


def make_feature_fn(variables: Variables, dtype: Dtype = jnp.float32, logits_bias: bool = False,
                    batch_size: int | None = None) -> Callable[[Array], tuple[Array, Array]]:
  """Returns fn(images [B, H, W, C] in [-1, 1]) -> (pool [B, 2048], logits [B, 1008]), float32.

  The network is jitted once per input shape and dtype; the variables are put on the
  default device once, here.

  Args:
    variables: {'params', 'batch_stats'} from `load_weights` or `load_torch_state_dict`.
    dtype: compute dtype of the conv trunk: jnp.float32 (full float32 arithmetic, also on
      GPUs) or jnp.bfloat16 (faster; features then differ from float32 by about 1% of
      their largest value).
    logits_bias: add the fc bias to the logits; False gives the reference IS logits.
    batch_size: if set, the images (numpy or jax) go through in chunks of this many,
      the last one zero-padded, so any B compiles once and memory stays bounded; None
      runs all B at once.
  """
  variables = jax.device_put(variables)
  dtype = jnp.dtype(dtype)

  def fn(images: Array) -> tuple[Array, Array]:
    if batch_size is None:
      return _features(variables, images, dtype, logits_bias)
    pools, logits = [], []
    for start in range(0, images.shape[0], batch_size):
      chunk = jnp.asarray(images[start:start + batch_size])
      n = chunk.shape[0]
      chunk = jnp.pad(chunk, ((0, batch_size - n),) + ((0, 0),) * (chunk.ndim - 1))
      p, l = _features(variables, chunk, dtype, logits_bias)
      pools.append(p[:n])
      logits.append(l[:n])
    return jnp.concatenate(pools), jnp.concatenate(logits)

  return fn


# Weights.
_TORCH_SUFFIX = {  # (collection, flax leaf name) -> pytorch-fid parameter name.
    ('params', 'kernel'): 'weight',
    ('params', 'scale'): 'weight',
    ('params', 'bias'): 'bias',
    ('batch_stats', 'mean'): 'running_mean',
    ('batch_stats', 'var'): 'running_var',
}


@functools.lru_cache(maxsize=1)
def _expected_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """Flax variable path (collection, module..., leaf) -> shape, for every variable."""
  images = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  abstract = jax.eval_shape(InceptionV3().init, jax.random.key(0), images)
  return {path: tuple(v.shape) for path, v in traverse_util.flatten_dict(abstract).items()}


def _torch_key(path: tuple[str, ...]) -> str:
  collection, *modules, leaf = path
  return '.'.join(modules + [_TORCH_SUFFIX[(collection, leaf)]])


def _to_torch_layout(shape: tuple[int, ...]) -> tuple[int, ...]:
  """Flax HWIO conv / [in, out] dense shapes -> torch OIHW / [out, in]; others unchanged."""
  if len(shape) == 4:
    return (shape[3], shape[2], shape[0], shape[1])
  return shape[::-1]


def _to_flax_layout(value: np.ndarray) -> np.ndarray:
  if value.ndim == 4:
    return value.transpose(2, 3, 1, 0)
  return value.T if value.ndim == 2 else value


def _check_keys(given, expected, what: str) -> None:
  missing = [k for k in expected if k not in given]
  unexpected = [k for k in given if k not in expected]
  for keys, problem in ((missing, 'is missing'), (unexpected, 'has unexpected')):
    if keys:
      shown = ', '.join(repr(k) for k in keys[:3]) + (f' and {len(keys) - 3} more' if len(keys) > 3 else '')
      raise UserError(f'{what} {problem} key(s) {shown}; it must hold the FID Inception weights: {_HOW_TO_GET}')


def _as_numpy(value: Any) -> np.ndarray:
  if hasattr(value, 'detach'):  # A torch tensor.
    value = value.detach().cpu().numpy()
  return np.asarray(value)


def load_torch_state_dict(state_dict: Mapping[str, Any]) -> Variables:
  """pytorch-fid FID-Inception state dict -> flax variables {'params', 'batch_stats'}.

  Args:
    state_dict: key -> torch tensor or numpy array, as in `pt_inception-2015-12-05-6726825d.pth`
      (conv weights OIHW, fc weight [1008, 2048]); `*.num_batches_tracked` keys are ignored.

  Returns:
    Nested dicts of float32 numpy arrays for `InceptionV3` and `make_feature_fn`.

  Raises:
    UserError naming a missing or unexpected key, or a key whose shape is wrong.
  """
  torch_of = {_torch_key(path): path for path in _expected_shapes()}
  given = {k: v for k, v in state_dict.items() if not k.endswith('.num_batches_tracked')}
  _check_keys(given, torch_of, 'the Inception state dict')
  flat = {}
  for key, path in torch_of.items():
    value = _as_numpy(given[key])
    expected = _to_torch_layout(_expected_shapes()[path])
    if value.shape != expected:
      raise UserError(f'Inception state dict key {key!r} has shape {value.shape}, expected {expected}; '
                      f'use the FID Inception weights: {_HOW_TO_GET}')
    flat[path] = _to_flax_layout(value.astype(np.float32))
  return traverse_util.unflatten_dict(flat)


def save_npz(variables: Variables, path: str | pathlib.Path) -> None:
  """Writes variables to `path` (.npz, float32, keys 'params/Mixed_5b/branch1x1/conv/kernel' etc.)."""
  flat = traverse_util.flatten_dict(variables, sep='/')
  np.savez(path, **{k: np.asarray(v, np.float32) for k, v in flat.items()})


def _load_npz(path: pathlib.Path) -> Variables:
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise UserError(f'cannot read Inception weights {path} ({e}); re-create it: {_HOW_TO_GET}') from e
  expected = {'/'.join(p): s for p, s in _expected_shapes().items()}
  _check_keys(arrays, expected, f'Inception weights {path}')
  for key, shape in expected.items():
    if arrays[key].shape != shape:
      raise UserError(f'Inception weights {path}: {key!r} has shape {arrays[key].shape}, expected {shape}; '
                      f're-create it: {_HOW_TO_GET}')
  return traverse_util.unflatten_dict({k: v.astype(np.float32) for k, v in arrays.items()}, sep='/')


def _load_pth(path: pathlib.Path) -> Variables:
  try:
    import torch  # pylint: disable=g-import-not-at-top  (only .pth files need torch)
  except ImportError as e:
    raise UserError(f'reading {path} needs torch; pip install torch, or convert it once where torch is '
                    f'installed and pass the .npz: {_HOW_TO_GET}') from e
  try:
    state_dict = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pylint: disable=broad-except  (torch raises many types for bad files)
    raise UserError(f'cannot read Inception weights {path} ({type(e).__name__}: {e}); '
                    f'{_HOW_TO_GET}') from e
  if not isinstance(state_dict, Mapping):
    raise UserError(f'{path} holds a {type(state_dict).__name__}, not a state dict; {_HOW_TO_GET}')
  return load_torch_state_dict(state_dict)


def load_weights(path: str | pathlib.Path) -> Variables:
  """Loads FID Inception variables from a converted .npz, or from the torch .pth (needs torch).

  Raises:
    UserError if the file is missing, unreadable, of another kind, or not these weights.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise UserError(f'Inception weights file {path} not found; {_HOW_TO_GET}')
  if path.suffix == '.npz':
    return _load_npz(path)
  if path.suffix in ('.pth', '.pt'):
    return _load_pth(path)
  raise UserError(f'Inception weights {path}: expected a .npz or .pth file; {_HOW_TO_GET}')


def main(argv: list[str] | None = None) -> None:
  """Converts the torch FID Inception weights to a .npz that loads without torch."""
  parser = argparse.ArgumentParser(prog='python -m gan_jax.metrics.inception', description=main.__doc__)
  parser.add_argument('--torch_weights', required=True, help=f'path of {WEIGHTS_FILE}')
  parser.add_argument('--out', required=True, help='path of the .npz to write')
  args = parser.parse_args(argv)
  source = pathlib.Path(args.torch_weights).expanduser()
  if source.suffix not in ('.pth', '.pt'):
    raise UserError(f'--torch_weights={source} must be the torch .pth file; {_HOW_TO_GET}')
  out = pathlib.Path(args.out).expanduser()
  if out.suffix != '.npz':
    raise UserError(f'--out={out} must end in .npz')
  save_npz(load_weights(source), out)
  print(f'wrote {out}')


if __name__ == '__main__':
  try:
    main()
  except UserError as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(2)
