"""Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed).

IDX layout: two zero bytes, a type code (0x08 = uint8), the number of dimensions n, then n
big-endian uint32 sizes, then the raw data in C order.
"""
import gzip
import pathlib
import zlib

import numpy as np

from gan_jax.data import download as download_lib
from gan_jax.data import files
from gan_jax.errors import UserError

_SPLIT_PREFIX = {'train': 'train', 'test': 't10k'}
_HOW_TO_GET = {
    'mnist': 'MNIST: the four *-ubyte.gz files from http://yann.lecun.com/exdb/mnist/ (see BUILD.md).',
    'fashion_mnist': ('Fashion-MNIST: the four *-ubyte.gz files from '
                      'https://github.com/zalandoresearch/fashion-mnist (see BUILD.md).'),
}


def read_idx(path: pathlib.Path) -> np.ndarray:
  """Reads one IDX file (plain or .gz) into a uint8 array of the shape its header states.

  Raises:
    UserError if the file is missing, truncated, or not an unsigned-byte IDX file.
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise UserError(f'data file {path} does not exist')
  opener = gzip.open if path.suffix == '.gz' else open
  try:
    with opener(path, 'rb') as f:
      raw = f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise UserError(f'data file {path} is corrupt ({e}); download it again') from None
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise UserError(f'data file {path} is not an unsigned-byte IDX file (bad magic number); download it again')
  ndim = raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise UserError(f'data file {path} is truncated (its header is cut short); download it again')
  shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype='>u4'))
  expected = int(np.prod(shape)) if shape else 0
  if len(raw) - header != expected:
    raise UserError(f'data file {path} is truncated or corrupt: header says shape {shape} '
                    f'({expected} bytes) but it holds {len(raw) - header}; download it again')
  return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load(dataset: str, split: str, data_dir: str = '', download: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Loads MNIST or Fashion-MNIST.

  Args:
    dataset: 'mnist' or 'fashion_mnist'.
    split: 'train' (60,000 images) or 'test' (10,000 images).
    data_dir: see `gan_jax.data.files.search_path`.
    download: fetch the split's files when they are nowhere on the search path
      (gan_jax/data/download.py).

  Returns:
    images: uint8 [N, 28, 28, 1]; labels: int32 [N] in 0..9.
  """
  if split not in _SPLIT_PREFIX:
    raise UserError(f'split {split!r} is not one of {sorted(_SPLIT_PREFIX)}')
  prefix = _SPLIT_PREFIX[split]
  image_name = f'{prefix}-images-idx3-ubyte'
  label_name = f'{prefix}-labels-idx1-ubyte'
  names = (image_name + '.gz', image_name)
  try:
    folder = files.find_dataset_dir(dataset, data_dir, names, _HOW_TO_GET[dataset])
  except UserError:
    if not download:
      raise
    folder = download_lib.fetch(dataset, (image_name + '.gz', label_name + '.gz'), data_dir)
  image_path = folder / names[0] if (folder / names[0]).exists() else folder / names[1]
  label_path = folder / (label_name + '.gz')
  if not label_path.exists():
    label_path = folder / label_name
  images = read_idx(image_path)
  labels = read_idx(label_path)
  if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
    raise UserError(f'{image_path} ({images.shape}) and {label_path} ({labels.shape}) do not '
                    'form an image set with one label per image')
  return images[..., None], labels.astype(np.int32)
