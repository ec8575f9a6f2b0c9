"""Reader for the official CIFAR-10 distributions, python (pickled) or binary version.

The dataset folder `cifar10` (see `gan_jax.data.files`) holds one of, in order of preference:
  cifar-10-batches-py/    the extracted python version: pickled dicts `data_batch_1`..`_5` and
                          `test_batch`, with b'data' uint8 [N, 3072] and b'labels' (N ints);
  cifar-10-python.tar.gz  the same, read straight from the tarball;
  cifar-10-batches-bin/   the extracted binary version: `data_batch_1.bin`..`_5.bin` and
                          `test_batch.bin`, runs of 3073-byte records (label byte, then pixels);
  cifar-10-binary.tar.gz  the same, read straight from the tarball.
Either way an image's 3072 bytes are channel-major: 1024 red, then green, then blue, each 32x32
row-major.
"""
import gzip
import io
import pathlib
import pickle
import tarfile
from typing import Callable, NamedTuple
import zlib

import numpy as np

from gan_jax.data import download as download_lib
from gan_jax.data import files
from gan_jax.errors import UserError

_PY_DIR = 'cifar-10-batches-py'
_PY_TAR = 'cifar-10-python.tar.gz'
_BIN_DIR = 'cifar-10-batches-bin'
_BIN_TAR = 'cifar-10-binary.tar.gz'
_BATCHES = {'train': tuple(f'data_batch_{i}' for i in range(1, 6)), 'test': ('test_batch',)}
_HOW_TO_GET = ('CIFAR-10: cifar-10-python.tar.gz (or cifar-10-binary.tar.gz) from '
               'https://www.cs.toronto.edu/~kriz/cifar.html (see BUILD.md).')
_PIXELS = 32 * 32 * 3
_NUM_CLASSES = 10
# The only globals a pickled uint8 array refers to. numpy 1 names the array constructor
# numpy.core.multiarray._reconstruct, numpy 2 numpy._core.multiarray._reconstruct.
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]
_SAFE_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
  """Unpickles plain containers and numpy arrays only, so a crafted file cannot run code."""

  def find_class(self, module, name):
    if (module, name) not in _SAFE_GLOBALS:
      raise pickle.UnpicklingError(f'{module}.{name} is not allowed in a CIFAR-10 batch')
    return _SAFE_GLOBALS[(module, name)]


def _parse_pickle(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
  """Returns (pixels uint8 [N, 3072], labels [N]) of one pickled batch read from `where`."""
  fix = f'download {_PY_TAR} again'
  try:
    batch = _BatchUnpickler(io.BytesIO(raw), encoding='bytes').load()
  except Exception as e:  # pylint: disable=broad-except  # Corrupt pickles fail in many ways.
    raise UserError(f'{where} is not a readable CIFAR-10 batch ({e}); {fix}') from None
  if not isinstance(batch, dict) or b'data' not in batch or b'labels' not in batch:
    raise UserError(f'{where} is not a CIFAR-10 batch (no b"data" and b"labels" entries); {fix}')
  pixels, labels = batch[b'data'], np.asarray(batch[b'labels'])
  if (not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2
      or pixels.shape[1] != _PIXELS or labels.dtype.kind not in 'iu'
      or labels.shape != pixels.shape[:1] or not labels.size):
    raise UserError(f'{where} does not hold b"data" uint8 [N, {_PIXELS}] and N integer '
                    f'b"labels" with N > 0; {fix}')
  return pixels, labels


def _parse_records(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
  """Returns (pixels uint8 [N, 3072], labels [N]) of one binary batch read from `where`."""
  if not raw or len(raw) % (1 + _PIXELS):
    raise UserError(f'{where} is truncated or corrupt: {len(raw)} bytes is not a whole number of '
                    f'{1 + _PIXELS}-byte records; download {_BIN_TAR} again')
  records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 1 + _PIXELS)
  return records[:, 1:], records[:, 0]


def _read_files(folder: pathlib.Path, names: list[str], archive: str) -> list[tuple[str, bytes]]:
  """Returns (path, contents) of each of `names` in `folder`."""
  paths = [folder / name for name in names]
  for path in paths:
    if not path.is_file():
      raise UserError(f'{path} is missing; extract it again from {archive}')
  return [(str(path), path.read_bytes()) for path in paths]


def _read_tar(path: pathlib.Path, names: list[str]) -> list[tuple[str, bytes]]:
  """Returns ('<tarball>:<member>', contents) of each member in `names`, in one pass over `path`.

  The whole tarball is read, so that gzip checks its CRC and damage anywhere is caught.
  """
  found = {}
  try:
    with gzip.open(path, 'rb') as gz:
      with tarfile.open(fileobj=gz, mode='r|') as tar:
        for member in tar:
          name = member.name.removeprefix('./')
          if name in names and member.isfile():
            found[name] = tar.extractfile(member).read()
      gz.read()
  except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
    raise UserError(f'{path} is corrupt ({e}); download it again') from None
  for name in names:
    if name not in found:
      raise UserError(f'{path} has no member {name}; download it again')
  return [(f'{path}:{name}', found[name]) for name in names]


class _Layout(NamedTuple):
  """One way the batches can be stored in the dataset folder."""
  source: str  # The extracted folder or the tarball.
  member: str  # Path of batch '{}' inside `source`.
  parse: Callable[[bytes, str], tuple[np.ndarray, np.ndarray]]
  archive: str  # The official tarball to download again when a batch is damaged.


_LAYOUTS = (  # In order of preference.
    _Layout(_PY_DIR, '{}', _parse_pickle, _PY_TAR),
    _Layout(_PY_TAR, _PY_DIR + '/{}', _parse_pickle, _PY_TAR),
    _Layout(_BIN_DIR, '{}.bin', _parse_records, _BIN_TAR),
    _Layout(_BIN_TAR, _BIN_DIR + '/{}.bin', _parse_records, _BIN_TAR),
)


def load(split: str, data_dir: str = '', download: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Loads CIFAR-10 from whichever official distribution is in the dataset folder.

  Args:
    split: 'train' (50,000 images, batches 1 to 5 in order) or 'test' (10,000 images).
    data_dir: see `gan_jax.data.files.search_path`.
    download: fetch the python tarball when no distribution is on the search path
      (gan_jax/data/download.py).

  Returns:
    images: uint8 [N, 32, 32, 3] (NHWC, RGB); labels: int32 [N] in 0..9.

  Raises:
    UserError if no distribution is found, or a batch in it is missing, truncated or corrupt.
  """
  if split not in _BATCHES:
    raise UserError(f'split {split!r} is not one of {sorted(_BATCHES)}')
  sources = tuple(layout.source for layout in _LAYOUTS)
  try:
    folder = files.find_dataset_dir('cifar10', data_dir, sources, _HOW_TO_GET)
  except UserError:
    if not download:
      raise
    folder = download_lib.fetch('cifar10', (_PY_TAR,), data_dir)
  layout = next(layout for layout in _LAYOUTS if (folder / layout.source).exists())
  names = [layout.member.format(batch) for batch in _BATCHES[split]]
  if layout.source.endswith('.tar.gz'):
    blobs = _read_tar(folder / layout.source, names)
  else:
    blobs = _read_files(folder / layout.source, names, layout.archive)
  pixels, labels = [], []
  for where, raw in blobs:
    batch_pixels, batch_labels = layout.parse(raw, where)
    if batch_labels.min() < 0 or batch_labels.max() >= _NUM_CLASSES:
      raise UserError(f'{where} has labels outside 0..{_NUM_CLASSES - 1}: it is corrupt, '
                      f'download {layout.archive} again')
    pixels.append(batch_pixels)
    labels.append(batch_labels)
  images = np.concatenate(pixels).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), np.concatenate(labels).astype(np.int32)
