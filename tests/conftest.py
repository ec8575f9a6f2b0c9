"""Shared test set-up: the real dataset files and small helpers for end-to-end runs."""
import os
import pathlib
import tempfile

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
DATA_MIRROR_ENV = 'GAN_JAX_DATA_MIRROR'  # gan_jax.data.download.MIRROR_ENV

# The tests read the official MNIST / Fashion-MNIST files; CI sets GAN_JAX_DATA=../shared/data.
os.environ.setdefault('GAN_JAX_DATA', str(SHARED_DATA))
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
# No test reaches beyond this machine: a download not pointed at a test's own server goes to a
# closed port on 127.0.0.1 and fails at once.
os.environ[DATA_MIRROR_ENV] = 'http://127.0.0.1:9'
# launch.py subprocesses share one persistent compilation cache, apart from the user's own.
os.environ.setdefault('GAN_JAX_CACHE', str(pathlib.Path(tempfile.gettempdir()) / 'gan_jax_test_jax_cache'))


@pytest.fixture
def data_dir() -> pathlib.Path:
  path = pathlib.Path(os.environ['GAN_JAX_DATA'])
  if not (path / 'mnist').is_dir():
    pytest.skip(f'MNIST files not found under {path} (set GAN_JAX_DATA)')
  return path
