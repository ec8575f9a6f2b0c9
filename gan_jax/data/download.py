"""MNIST, Fashion-MNIST and CIFAR-10 fetched on first use: checksum-verified, written atomically, with progress.

When a run needs a file that is nowhere on the search path (gan_jax/data/files.py) and
`config.data.download` is true, the file is fetched into the download folder: `config.data.dir`,
else `$GAN_JAX_DATA`, else DEFAULT_DIR (`~/.gan_jax/data`), under `<dataset>/`. Each mirror of
MIRRORS is tried in turn; `$GAN_JAX_DATA_MIRROR=URL` replaces them all by one base URL serving
`URL/<dataset>/<file>` (a lab's own copy, or the tests' server on 127.0.0.1).

A file is written as `.<name>.<pid>.part` beside its final name, checked against its published
byte count and md5 (FILES), and only then renamed into place: an interrupted or wrong download
leaves nothing that is read as data. CIFAR-10 is its python tarball (163 MB, the md5 the
dataset's page publishes).
"""
import contextlib
import dataclasses
import hashlib
import os
import pathlib
import sys
import time
import urllib.error
import urllib.request

from gan_jax.errors import UserError

DEFAULT_DIR = pathlib.Path('~/.gan_jax/data').expanduser()
MIRROR_ENV = 'GAN_JAX_DATA_MIRROR'
CHUNK_BYTES = 1 << 16
TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class RemoteFile:
  """A file of the official distribution: its name, size in bytes and md5 (hex)."""
  name: str
  size: int
  md5: str


FILES = {
    'mnist': (
        RemoteFile('train-images-idx3-ubyte.gz', 9_912_422, 'f68b3c2dcbeaaa9fbdd348bbdeb94873'),
        RemoteFile('train-labels-idx1-ubyte.gz', 28_881, 'd53e105ee54ea40749a09fcbcd1e9432'),
        RemoteFile('t10k-images-idx3-ubyte.gz', 1_648_877, '9fb629c4189551a2d022fa330f9573f3'),
        RemoteFile('t10k-labels-idx1-ubyte.gz', 4_542, 'ec29112dd5afa0611ce80d1b7f02629c'),
    ),
    'fashion_mnist': (
        RemoteFile('train-images-idx3-ubyte.gz', 26_421_880, '8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
        RemoteFile('train-labels-idx1-ubyte.gz', 29_515, '25c81989df183df01b3e8a0aad5dffbe'),
        RemoteFile('t10k-images-idx3-ubyte.gz', 4_422_102, 'bef4ecab320f06d8554ea6380940ec79'),
        RemoteFile('t10k-labels-idx1-ubyte.gz', 5_148, 'bb300cfdad3c16e7a12a480ee83cd310'),
    ),
    'cifar10': (RemoteFile('cifar-10-python.tar.gz', 170_498_071, 'c58f30108f718f92721af3b95e74349a'),),
}
# Base URLs of the official files and their long-standing mirrors, tried in order.
MIRRORS = {
    'mnist': ('https://ossci-datasets.s3.amazonaws.com/mnist/',
              'https://storage.googleapis.com/cvdf-datasets/mnist/',
              'http://yann.lecun.com/exdb/mnist/'),
    'fashion_mnist': ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
                      'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/'),
    'cifar10': ('https://www.cs.toronto.edu/~kriz/',),
}


def download_dir(data_dir: str = '') -> pathlib.Path:
  """Where fetched files go: `data_dir`, else $GAN_JAX_DATA, else DEFAULT_DIR."""
  return pathlib.Path(data_dir or os.environ.get('GAN_JAX_DATA') or DEFAULT_DIR).expanduser()


def mirrors(dataset: str) -> list[str]:
  """The base URLs to try for `dataset`, each ending in '/'."""
  override = os.environ.get(MIRROR_ENV, '')
  if override:
    return [override.rstrip('/') + f'/{dataset}/']
  return list(MIRRORS[dataset])


def fetch(dataset: str, names: tuple[str, ...], data_dir: str = '') -> pathlib.Path:
  """Downloads the files `names` of `dataset` that are missing into `download_dir(data_dir)/dataset`.

  Returns:
    The folder now holding them.

  Raises:
    UserError, naming the files, the folder to put them in and what each mirror answered, when a
    file could not be fetched and verified from any mirror.
  """
  folder = download_dir(data_dir) / dataset
  wanted = [f for f in FILES[dataset] if f.name in names and not (folder / f.name).exists()]
  if not wanted:
    return folder
  created = [p for p in (folder, *folder.parents) if not p.exists()]  # Removed again if nothing arrives.
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f'cannot create the data folder {folder} ({e}); set --config.data.dir or $GAN_JAX_DATA '
                    'to a writable folder') from None
  try:
    _fetch_all(dataset, wanted, folder)
  except UserError:
    for directory in created:
      with contextlib.suppress(OSError):
        directory.rmdir()  # Only if empty: files fetched before the failure stay.
    raise
  return folder


def _fetch_all(dataset: str, wanted: list[RemoteFile], folder: pathlib.Path) -> None:
  for remote in wanted:
    failures = []
    for base in mirrors(dataset):
      try:
        _download(base + remote.name, remote, folder)
        break
      except (OSError, ValueError, urllib.error.URLError) as e:
        failures.append(f'{base}: {e}')
    else:
      raise UserError(f'{dataset}: could not download {remote.name} ({"; ".join(failures)}). Place the files '
                      f'{", ".join(f.name for f in wanted)} in {folder} (or point --config.data.dir / $GAN_JAX_DATA '
                      'at a folder holding them), or set $GAN_JAX_DATA_MIRROR to a server that has them '
                      '(BUILD.md, "Data")')


def _download(url: str, remote: RemoteFile, folder: pathlib.Path) -> None:
  """Fetches `url` into folder/remote.name if its size and md5 match; else raises, leaving nothing."""
  part = folder / f'.{remote.name}.{os.getpid()}.part'
  digest, received = hashlib.md5(), 0
  progress = _Progress(f'{folder.name}/{remote.name}', remote.size)
  try:
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(part, 'wb') as out:
      while chunk := response.read(CHUNK_BYTES):
        out.write(chunk)
        digest.update(chunk)
        received += len(chunk)
        progress.update(received)
    progress.done()
    if received != remote.size:
      raise ValueError(f'received {received} bytes, expected {remote.size} (a truncated or different file)')
    if digest.hexdigest() != remote.md5:
      raise ValueError(f'md5 {digest.hexdigest()} differs from the published {remote.md5}')
    part.replace(folder / remote.name)
  finally:
    part.unlink(missing_ok=True)


class _Progress:
  """A download's progress on stderr: a redrawn bar on a terminal, else a line every quarter."""

  def __init__(self, label: str, total: int):
    self.label, self.total = label, total
    self.tty = sys.stderr.isatty()
    self.shown = -1
    self.started = time.perf_counter()

  def update(self, received: int) -> None:
    percent = min(100, 100 * received // max(self.total, 1))
    step = 2 if self.tty else 25
    if percent // step == self.shown // step:
      return
    self.shown = percent
    rate = received / max(time.perf_counter() - self.started, 1e-6) / 1e6
    size = f'{self.total / 1e6:.1f} MB' if self.total >= 1e6 else f'{self.total / 1e3:.0f} kB'
    text = f'downloading {self.label}: {percent:3d}% of {size} ({rate:.1f} MB/s)'
    if self.tty:
      bar = '#' * (percent // 4)
      sys.stderr.write(f'\r{text} [{bar:<25}]')
    else:
      sys.stderr.write(text + '\n')
    sys.stderr.flush()

  def done(self) -> None:
    if self.tty:
      sys.stderr.write('\n')
