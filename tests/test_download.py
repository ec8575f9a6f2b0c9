"""Fetching MNIST on first use, from real HTTP servers on 127.0.0.1 that the tests start and stop,
over the tests' data folder ($GAN_JAX_DATA): one serving the official files, one cutting them
short, one serving wrong bytes."""
import contextlib
import functools
import http.server
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

from gan_jax.data import download
from gan_jax.data import idx
from gan_jax.errors import UserError
from tests.conftest import REPO_ROOT

TEST_FILES = ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')


class _Handler(http.server.SimpleHTTPRequestHandler):
  mode = 'official'

  def log_message(self, *args):
    del args

  def do_GET(self):
    if self.mode == 'official':
      return super().do_GET()
    path = self.translate_path(self.path)
    if not os.path.isfile(path):
      return self.send_error(404)
    body = open(path, 'rb').read()
    if self.mode == 'truncated':
      body = body[:len(body) // 2]
    else:  # 'wrong': the right size, other bytes.
      body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
    self.send_response(200)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)


@contextlib.contextmanager
def serving(mode: str, root: pathlib.Path):
  """A server on 127.0.0.1 (a free port) over the data folder `root`; yields its base URL."""
  handler = type('Handler', (_Handler,), {'mode': mode})
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(handler, directory=str(root)))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()


@pytest.fixture
def data_dir_alone(data_dir, tmp_path, monkeypatch):
  """An empty data folder as the only place searched (after `data_dir` found the served files)."""
  del data_dir
  monkeypatch.setenv('GAN_JAX_DATA', str(tmp_path / 'data'))
  return tmp_path / 'data'


def test_missing_files_are_fetched_verified_and_then_read(data_dir_alone, monkeypatch, data_dir):
  with serving('official', data_dir) as url:
    monkeypatch.setenv(download.MIRROR_ENV, url)
    images, labels = idx.load('mnist', 'test')
  assert sorted(p.name for p in (data_dir_alone / 'mnist').iterdir()) == sorted(TEST_FILES)  # No part files.
  reference_images, reference_labels = idx.load('mnist', 'test', str(data_dir))
  np.testing.assert_array_equal(images, reference_images)
  np.testing.assert_array_equal(labels, reference_labels)


@pytest.mark.parametrize('mode, reason', [('truncated', 'expected 1648877'), ('wrong', 'differs from the published')])
def test_a_truncated_or_wrong_file_is_refused_and_leaves_nothing(data_dir_alone, monkeypatch, mode, reason, data_dir):
  with serving(mode, data_dir) as url:
    monkeypatch.setenv(download.MIRROR_ENV, url)
    with pytest.raises(UserError, match=rf'could not download t10k-images-idx3-ubyte.gz .*{reason}.* Place the files'):
      idx.load('mnist', 'test')
  assert not data_dir_alone.exists()  # No part file, and the folders made for the download are gone.


def test_unreachable_server_says_which_files_to_place_where(data_dir_alone, monkeypatch, tmp_path):
  with serving('official', tmp_path) as url:
    pass  # Stopped: nothing listens on its port any more.
  monkeypatch.setenv(download.MIRROR_ENV, url)
  with pytest.raises(UserError, match=rf'Place the files t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz '
                                      rf'in {data_dir_alone / "mnist"}'):
    idx.load('mnist', 'test')
  assert not data_dir_alone.exists()


def test_download_off_keeps_the_not_found_error(data_dir_alone, monkeypatch, data_dir):
  with serving('official', data_dir) as url:
    monkeypatch.setenv(download.MIRROR_ENV, url)
    with pytest.raises(UserError, match='none of t10k-images-idx3-ubyte.gz'):
      idx.load('mnist', 'test', download=False)
  assert not (data_dir_alone / 'mnist').exists()


@pytest.mark.slow
def test_a_first_run_downloads_and_trains(tmp_path, data_dir):
  with serving('official', data_dir) as url:
    env = {**os.environ, 'GAN_JAX_DATA': str(tmp_path / 'data'), download.MIRROR_ENV: url}
    result = subprocess.run([sys.executable, str(REPO_ROOT / 'launch.py'), '--exp=vanilla:smoke',
                             '--config.log.wandb=disabled', f'--workdir={tmp_path / "run"}'],
                            capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'downloading mnist/train-images-idx3-ubyte.gz: 100% of 9.9 MB' in result.stderr
  assert sorted(p.name for p in (tmp_path / 'data' / 'mnist').iterdir()) == [
      'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']
  assert 'run finished at step 20' in result.stderr


def test_cifar10_is_fetched_as_its_official_tarball_and_anything_else_refused(tmp_path, monkeypatch):
  """The served tarball is a small stand-in (the official one is not on these machines): the
  download asks for cifar10/cifar-10-python.tar.gz and refuses it for its size."""
  served = tmp_path / 'served' / 'cifar10'
  served.mkdir(parents=True)
  (served / 'cifar-10-python.tar.gz').write_bytes(b'not the CIFAR-10 tarball')
  handler = functools.partial(_Handler, directory=str(tmp_path / 'served'))
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    monkeypatch.setenv(download.MIRROR_ENV, f'http://127.0.0.1:{server.server_address[1]}')
    monkeypatch.setenv('GAN_JAX_DATA', str(tmp_path / 'data'))
    from gan_jax.data import cifar10
    with pytest.raises(UserError, match=r'could not download cifar-10-python.tar.gz .*received 24 bytes, '
                                        r'expected 170498071'):
      cifar10.load('test')
  finally:
    server.shutdown()
    server.server_close()
  assert not (tmp_path / 'data').exists()
