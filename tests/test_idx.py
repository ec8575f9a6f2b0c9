"""Tests for the IDX reader: the real MNIST and Fashion-MNIST files, and tiny files written here.

The real files are found as `idx.load` finds them: in $GAN_JAX_DATA if set, else on the default
search path of `gan_jax.data.files` (which includes ../shared/data beside the checkout).
"""
import gzip
import struct

import numpy as np
import pytest

from gan_jax.data import idx
from gan_jax.errors import UserError

# Images per class in the official files.
_CLASS_COUNTS = {
    ('mnist', 'train'): [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    ('mnist', 'test'): [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ('fashion_mnist', 'train'): [6000] * 10,
    ('fashion_mnist', 'test'): [1000] * 10,
}
_FIRST_LABELS = {
    ('mnist', 'train'): [5, 0, 4],
    ('mnist', 'test'): [7, 2, 1],
    ('fashion_mnist', 'train'): [9, 0, 0],
    ('fashion_mnist', 'test'): [9, 2, 1],
}


def _idx_bytes(array: np.ndarray) -> bytes:
  """An unsigned-byte IDX file holding `array`."""
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
  return header + array.astype(np.uint8).tobytes()


@pytest.fixture(name='real', scope='module', params=list(_CLASS_COUNTS), ids='-'.join)
def real_fixture(request):
  dataset, split = request.param
  try:
    images, labels = idx.load(dataset, split)
  except UserError as e:
    pytest.skip(f'official {dataset} files not found: {e}')
  return dataset, split, images, labels


def test_real_files_shapes_and_labels(real):
  dataset, split, images, labels = real
  num = 60000 if split == 'train' else 10000
  assert images.shape == (num, 28, 28, 1) and images.dtype == np.uint8
  assert labels.shape == (num,) and labels.dtype == np.int32
  assert images.min() == 0 and images.max() == 255
  assert labels.min() == 0 and labels.max() == 9
  np.testing.assert_array_equal(np.bincount(labels), _CLASS_COUNTS[dataset, split])
  np.testing.assert_array_equal(labels[:3], _FIRST_LABELS[dataset, split])


@pytest.mark.parametrize('suffix', ['', '.gz'])
@pytest.mark.parametrize('shape', [(7,), (2, 3, 4), (2, 3, 4, 5)])
def test_read_idx_round_trips(tmp_path, suffix, shape):
  array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
  data = _idx_bytes(array)
  path = tmp_path / f'x-ubyte{suffix}'
  path.write_bytes(gzip.compress(data) if suffix else data)
  np.testing.assert_array_equal(idx.read_idx(path), array)
  assert idx.read_idx(path).dtype == np.uint8


@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_load_tiny_dataset(tmp_path, suffix):
  images = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
  labels = np.array([4, 0, 9], np.uint8)
  write = gzip.compress if suffix else bytes
  (tmp_path / 'fashion_mnist').mkdir()
  (tmp_path / 'fashion_mnist' / f't10k-images-idx3-ubyte{suffix}').write_bytes(
      write(_idx_bytes(images)))
  (tmp_path / 'fashion_mnist' / f't10k-labels-idx1-ubyte{suffix}').write_bytes(
      write(_idx_bytes(labels)))
  got_images, got_labels = idx.load('fashion_mnist', 'test', str(tmp_path))
  np.testing.assert_array_equal(got_images, images[..., None])
  assert got_labels.dtype == np.int32
  np.testing.assert_array_equal(got_labels, labels)


def test_load_mismatched_counts(tmp_path):
  (tmp_path / 'train-images-idx3-ubyte').write_bytes(_idx_bytes(np.zeros((3, 28, 28))))
  (tmp_path / 'train-labels-idx1-ubyte').write_bytes(_idx_bytes(np.zeros(2)))
  with pytest.raises(UserError, match='train-images-idx3-ubyte .*train-labels-idx1-ubyte'):
    idx.load('mnist', 'train', str(tmp_path))


def test_load_without_files_says_where_to_get_them(tmp_path):
  with pytest.raises(UserError, match='train-images-idx3-ubyte.gz.*fashion-mnist'):
    idx.load('fashion_mnist', 'train', str(tmp_path), download=False)
  # Downloads on (the default) and no server reachable: the files to place, and where.
  with pytest.raises(UserError, match=f'Place the files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz '
                                      f'in {tmp_path / "fashion_mnist"}'):
    idx.load('fashion_mnist', 'train', str(tmp_path))


def test_load_unknown_split(tmp_path):
  with pytest.raises(UserError, match="split 'validation'"):
    idx.load('mnist', 'validation', str(tmp_path))


def test_missing_file(tmp_path):
  with pytest.raises(UserError, match='absent-ubyte.gz does not exist'):
    idx.read_idx(tmp_path / 'absent-ubyte.gz')


@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_truncated_data(tmp_path, suffix):
  data = _idx_bytes(np.zeros((2, 3, 4)))[:-5]
  path = tmp_path / f'short-ubyte{suffix}'
  path.write_bytes(gzip.compress(data) if suffix else data)
  with pytest.raises(UserError, match=f'short-ubyte{suffix} is truncated'):
    idx.read_idx(path)


def test_truncated_header(tmp_path):
  path = tmp_path / 'stub-ubyte'
  path.write_bytes(_idx_bytes(np.zeros((2, 3, 4)))[:6])
  with pytest.raises(UserError, match='stub-ubyte'):
    idx.read_idx(path)


@pytest.mark.parametrize('magic', [b'\x00\x00\x0d\x01', b'\x1f\x8b\x08\x01', b'\x01\x00\x08\x01'])
def test_wrong_magic_number(tmp_path, magic):
  path = tmp_path / 'odd-ubyte'
  path.write_bytes(magic + _idx_bytes(np.zeros(4))[4:])
  with pytest.raises(UserError, match='odd-ubyte is not an unsigned-byte IDX file'):
    idx.read_idx(path)


def _gzip_with(damage: str) -> bytes:
  data = gzip.compress(_idx_bytes(np.arange(1000) % 10), mtime=0)
  if damage == 'not gzip':
    return _idx_bytes(np.zeros(4))
  if damage == 'crc':
    return data[:-8] + bytes(4) + data[-4:]
  if damage == 'truncated':
    return data[:len(data) // 2]
  # The deflate stream starts after the 10-byte header; BTYPE 11 is a reserved block type.
  return data[:10] + b'\x07' + data[11:]


@pytest.mark.parametrize('damage', [
    'not gzip', 'crc', 'truncated', 'bad block'])
def test_corrupt_gzip(tmp_path, damage):
  path = tmp_path / 'bad-ubyte.gz'
  path.write_bytes(_gzip_with(damage))
  with pytest.raises(UserError, match='bad-ubyte.gz is corrupt'):
    idx.read_idx(path)
