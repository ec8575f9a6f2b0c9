"""Tests for the CIFAR-10 reader on tiny files written here in both official formats."""
import io
import os
import pathlib
import pickle
import struct
import tarfile
from typing import NamedTuple

import numpy as np
import pytest

from gan_jax.data import cifar10
from gan_jax.errors import UserError

_TRAIN_SIZES = (2, 1, 3, 1, 2)  # Images in data_batch_1..5.
_TEST_SIZE = 3
# The official tarballs list their members out of order; the reader must not care.
_TAR_ORDER = ('data_batch_4', 'readme.html', 'test_batch', 'data_batch_3', 'batches.meta',
              'data_batch_2', 'data_batch_5', 'data_batch_1')


def _batches() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Random images uint8 [n, 32, 32, 3] and labels [n] per batch name; image 0 of data_batch_1
  has pixel (row 1, column 2) = RGB (10, 20, 30)."""
  rng = np.random.default_rng(0)
  sizes = {f'data_batch_{i}': n for i, n in enumerate(_TRAIN_SIZES, start=1)}
  sizes['test_batch'] = _TEST_SIZE
  batches = {name: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                    rng.integers(0, 10, n, dtype=np.uint8)) for name, n in sizes.items()}
  batches['data_batch_1'][0][0, 1, 2] = (10, 20, 30)
  return batches


def _expected(split: str) -> tuple[np.ndarray, np.ndarray]:
  names = ['test_batch'] if split == 'test' else [f'data_batch_{i}' for i in range(1, 6)]
  batches = _batches()
  return (np.concatenate([batches[n][0] for n in names]),
          np.concatenate([batches[n][1] for n in names]))


def _rows(images: np.ndarray) -> np.ndarray:
  """uint8 [n, 3072] rows as documented: all red (row-major 32x32), then all green, then blue."""
  return np.stack([np.concatenate([im[:, :, c].ravel() for c in range(3)]) for im in images])


class _Global(NamedTuple):
  module: str
  name: str


def _py2_pickle(obj) -> bytes:
  """Pickles `obj` as Python 2's cPickle (protocol 2) with numpy 1.x wrote the official batches.

  Python 2 strings are BINSTRINGs (read back as bytes under encoding='bytes'); a uint8 array is
  numpy.core.multiarray._reconstruct(ndarray, (0,), 'b') then BUILD with (1, shape, dtype, False,
  raw bytes).
  """
  out = bytearray(b'\x80\x02')

  def emit(x):
    if isinstance(x, _Global):
      out.extend(f'c{x.module}\n{x.name}\n'.encode())  # GLOBAL.
    elif isinstance(x, bytes):
      out.extend(b'T' + struct.pack('<i', len(x)) + x)  # BINSTRING.
    elif x is None or isinstance(x, bool):
      out.extend({None: b'N', True: b'\x88', False: b'\x89'}[x])
    elif isinstance(x, (int, np.integer)):
      out.extend(b'J' + struct.pack('<i', int(x)))  # BININT.
    elif isinstance(x, (tuple, list)):
      out.extend(b'(' if isinstance(x, tuple) else b'](')  # MARK, or EMPTY_LIST MARK.
      for item in x:
        emit(item)
      out.extend(b't' if isinstance(x, tuple) else b'e')  # TUPLE, or APPENDS.
    elif isinstance(x, dict):
      out.extend(b'}(')  # EMPTY_DICT MARK.
      for key, value in x.items():
        emit(key)
        emit(value)
      out.extend(b'u')  # SETITEMS.
    elif isinstance(x, np.dtype):
      emit(_Global('numpy', 'dtype'))
      emit((b'u1', 0, 1))
      out.extend(b'R')  # REDUCE.
      emit((3, b'|', None, None, None, -1, -1, 0))
      out.extend(b'b')  # BUILD.
    else:
      emit(_Global('numpy.core.multiarray', '_reconstruct'))
      emit((_Global('numpy', 'ndarray'), (0,), b'b'))
      out.extend(b'R')
      emit((1, x.shape, x.dtype, False, x.tobytes()))
      out.extend(b'b')

  emit(obj)
  return bytes(out + b'.')


def _python_batch(name: str, images: np.ndarray, labels: np.ndarray) -> dict:
  return {b'batch_label': name.encode(), b'labels': [int(l) for l in labels],
          b'data': _rows(images), b'filenames': [b'img_%d.png' % i for i in range(len(images))]}


def _python_files(dump=_py2_pickle) -> dict[str, bytes]:
  return {name: dump(_python_batch(name, *batch)) for name, batch in _batches().items()}


def _binary_files() -> dict[str, bytes]:
  return {f'{name}.bin': np.concatenate([labels[:, None], _rows(images)], axis=1).tobytes()
          for name, (images, labels) in _batches().items()}


def _write_dir(folder: pathlib.Path, contents: dict[str, bytes]) -> None:
  folder.mkdir(parents=True)
  for name, data in contents.items():
    (folder / name).write_bytes(data)


def _write_tar(path: pathlib.Path, top: str, contents: dict[str, bytes]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  suffix = '.bin' if top.endswith('bin') else ''
  with tarfile.open(path, 'w:gz') as tar:
    tar.addfile(tarfile.TarInfo(top), None)
    for stem in _TAR_ORDER:
      name = stem if '.' in stem else stem + suffix
      data = contents.get(name, b'not a batch' if '.' in stem else None)
      if data is not None:
        info = tarfile.TarInfo(f'{top}/{name}')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _write(layout: str, root: pathlib.Path, contents: dict[str, bytes] | None = None
          ) -> pathlib.Path:
  """Writes the tiny CIFAR-10 as `layout` under root/cifar10; returns the written file or folder."""
  folder = root / 'cifar10'
  python = layout.startswith('py')
  contents = contents if contents is not None else _python_files() if python else _binary_files()
  top = 'cifar-10-batches-py' if python else 'cifar-10-batches-bin'
  if layout.endswith('dir'):
    _write_dir(folder / top, contents)
    return folder / top
  path = folder / ('cifar-10-python.tar.gz' if python else 'cifar-10-binary.tar.gz')
  _write_tar(path, top, contents)
  return path


@pytest.mark.parametrize('split', ['train', 'test'])
@pytest.mark.parametrize('layout', ['py_dir', 'py_tar', 'bin_dir', 'bin_tar'])
def test_load_reads_every_official_layout_exactly(tmp_path, layout, split):
  _write(layout, tmp_path)
  images, labels = cifar10.load(split, str(tmp_path))
  want_images, want_labels = _expected(split)
  assert images.dtype == np.uint8 and images.shape == (len(want_labels), 32, 32, 3)
  assert labels.dtype == np.int32 and labels.shape == (len(want_labels),)
  np.testing.assert_array_equal(images, want_images)
  np.testing.assert_array_equal(labels, want_labels)
  if split == 'train':
    np.testing.assert_array_equal(images[0, 1, 2], [10, 20, 30])


def test_load_reads_batches_repickled_by_python3(tmp_path):
  _write('py_dir', tmp_path, _python_files(dump=pickle.dumps))
  images, labels = cifar10.load('train', str(tmp_path))
  np.testing.assert_array_equal(images, _expected('train')[0])
  np.testing.assert_array_equal(labels, _expected('train')[1])


def test_tarball_members_may_start_with_dot_slash(tmp_path):
  _write_tar(tmp_path / 'cifar10' / 'cifar-10-python.tar.gz', './cifar-10-batches-py',
             _python_files())
  images, labels = cifar10.load('test', str(tmp_path))
  np.testing.assert_array_equal(images, _expected('test')[0])
  np.testing.assert_array_equal(labels, _expected('test')[1])


def test_load_refuses_pickles_that_run_code(tmp_path):
  marker = tmp_path / 'pwned'

  class Exploit:

    def __reduce__(self):
      return os.system, (f'touch {marker}',)

  contents = _python_files()
  contents['data_batch_2'] = pickle.dumps({b'data': Exploit(), b'labels': [0]})
  _write('py_dir', tmp_path, contents)
  with pytest.raises(UserError, match='data_batch_2.*system is not allowed'):
    cifar10.load('train', str(tmp_path))
  assert not marker.exists()


@pytest.mark.parametrize('layout', ['py_dir', 'py_tar', 'bin_dir', 'bin_tar'])
def test_missing_batch_is_named(tmp_path, layout):
  name = 'data_batch_3' if layout.startswith('py') else 'data_batch_3.bin'
  contents = _python_files() if layout.startswith('py') else _binary_files()
  del contents[name]
  _write(layout, tmp_path, contents)
  with pytest.raises(UserError, match=name):
    cifar10.load('train', str(tmp_path))


@pytest.mark.parametrize('layout', ['py_dir', 'bin_dir'])
def test_truncated_batch_is_named(tmp_path, layout):
  name = 'test_batch' if layout == 'py_dir' else 'test_batch.bin'
  folder = _write(layout, tmp_path)
  (folder / name).write_bytes((folder / name).read_bytes()[:5000])
  with pytest.raises(UserError, match=f'{name}.*(truncated|not a readable)'):
    cifar10.load('test', str(tmp_path))


def test_pickle_without_cifar_keys_is_named(tmp_path):
  contents = _python_files()
  contents['test_batch'] = _py2_pickle({b'pixels': _rows(_batches()['test_batch'][0])})
  _write('py_dir', tmp_path, contents)
  with pytest.raises(UserError, match='test_batch is not a CIFAR-10 batch'):
    cifar10.load('test', str(tmp_path))


def test_pickle_with_wrong_shapes_is_named(tmp_path):
  contents = _python_files()
  contents['test_batch'] = _py2_pickle({b'data': np.zeros((2, 1024), np.uint8), b'labels': [1, 2]})
  _write('py_dir', tmp_path, contents)
  with pytest.raises(UserError, match=r'test_batch does not hold b"data" uint8 \[N, 3072\]'):
    cifar10.load('test', str(tmp_path))


def test_label_out_of_range_is_named(tmp_path):
  contents = _binary_files()
  contents['test_batch.bin'] = b'\x0a' + contents['test_batch.bin'][1:]
  _write('bin_dir', tmp_path, contents)
  with pytest.raises(UserError, match='test_batch.bin has labels outside 0..9'):
    cifar10.load('test', str(tmp_path))


@pytest.mark.parametrize('layout', ['py_tar', 'bin_tar'])
@pytest.mark.parametrize('damage', ['truncate', 'garble'])
def test_corrupt_tarball_is_named(tmp_path, layout, damage):
  path = _write(layout, tmp_path)
  data = path.read_bytes()
  middle = len(data) // 2
  data = data[:middle] if damage == 'truncate' else data[:middle] + bytes(100) + data[middle + 100:]
  path.write_bytes(data)
  with pytest.raises(UserError, match=f'{path.name} is corrupt'):
    cifar10.load('train', str(tmp_path))


def test_no_dataset_says_what_to_download(tmp_path):
  with pytest.raises(UserError, match='cifar-10-python.tar.gz.*cs.toronto.edu'):
    cifar10.load('train', str(tmp_path), download=False)
  # With downloads on (the default), an unreachable server names the file and where to put it.
  with pytest.raises(UserError, match=f'Place the files cifar-10-python.tar.gz in {tmp_path / "cifar10"}'):
    cifar10.load('train', str(tmp_path))


def test_unknown_split(tmp_path):
  with pytest.raises(UserError, match="split 'valid'"):
    cifar10.load('valid', str(tmp_path))
