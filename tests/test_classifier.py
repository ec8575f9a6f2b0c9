"""Tests of the domain classifiers and of classifier FD / classifier score.

Most tests use the trained files committed in `<repo>/models` and are skipped, with the
command that makes them, where those are absent; the slow test trains from scratch.
"""
import json
import os
import pathlib
from typing import NamedTuple

import flax.serialization
import numpy as np
import pytest
import scipy.ndimage

from gan_jax.data import idx
from gan_jax.errors import UserError
from gan_jax.metrics import classifier
from gan_jax.metrics import fid

MODELS_DIR = str(pathlib.Path(__file__).resolve().parents[1] / 'models')
NUM_IMAGES = 3000  # Per image set in the FD tests.
TARGET_ACCURACY = {'mnist': 0.99, 'fashion_mnist': 0.90}
# Fashion-MNIST has classes the classifier confuses (shirt, T-shirt, pullover, coat).
MIN_REAL_SCORE = {'mnist': 9.5, 'fashion_mnist': 8.0}
FAR = 20  # "Far" means a classifier FD at least this many times that of real test images.


class Trained(NamedTuple):
  dataset: str
  clf: classifier.Classifier
  test_images: np.ndarray  # float32 [NUM_IMAGES, 28, 28, 1] in [-1, 1], from the test split.
  train_stats: fid.FeatureStats  # Of NUM_IMAGES train-split images.
  real_fd: float  # Of test_images against train_stats.

  def fd(self, images: np.ndarray) -> float:
    """Classifier FD of `images` against the train-split reference."""
    return fid.frechet_distance_from_stats(classifier.feature_stats(self.clf, images), self.train_stats)


def _load_data(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  try:
    return idx.load(dataset, split)
  except UserError as e:
    pytest.skip(f'{dataset} data not found: {e}')


def _subset(images: np.ndarray, seed: int) -> np.ndarray:
  """NUM_IMAGES images drawn without replacement, as float32 in [-1, 1]."""
  chosen = np.random.default_rng(seed).choice(len(images), NUM_IMAGES, replace=False)
  return images[chosen].astype(np.float32) / 127.5 - 1.0


@pytest.fixture(scope='module', params=['mnist', 'fashion_mnist'])
def trained(request) -> Trained:
  dataset = request.param
  params_path, _ = classifier.model_paths(dataset, MODELS_DIR)
  if not os.path.exists(params_path):
    pytest.skip(f'{params_path} is absent; make it with: python -m gan_jax.metrics.classifier '
                f'--dataset={dataset} --models_dir={MODELS_DIR}')
  clf = classifier.load(dataset, MODELS_DIR)
  test_images = _subset(_load_data(dataset, 'test')[0], 0)
  train_images = _subset(_load_data(dataset, 'train')[0], 1)
  real_fd = classifier.classifier_frechet_distance(clf, test_images, train_images)
  return Trained(dataset, clf, test_images, classifier.feature_stats(clf, train_images), real_fd)


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
  return scipy.ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode='constant', cval=-1.0)


def _shift(images: np.ndarray, pixels: int) -> np.ndarray:
  """Moves the content `pixels` right and down, filling with background (-1)."""
  shifted = np.full_like(images, -1.0)
  shifted[:, pixels:, pixels:] = images[:, :-pixels, :-pixels]
  return shifted


def test_accuracy_above_target(trained):
  images, labels = _load_data(trained.dataset, 'test')  # All 10,000: MNIST's first 5,000 are the harder half.
  assert classifier.accuracy(trained.clf, images, labels) > TARGET_ACCURACY[trained.dataset]


def test_features_and_logits(trained):
  float_images = trained.test_images[:20]
  uint8_images = np.round((float_images + 1.0) * 127.5).astype(np.uint8)
  features = trained.clf.features(uint8_images, batch_size=8)  # Exercises the padded last batch.
  logits = trained.clf.logits(uint8_images)
  assert features.shape == (20, classifier.FEATURE_DIM) and features.dtype == np.float32
  assert logits.shape == (20, classifier.NUM_CLASSES) and logits.dtype == np.float32
  np.testing.assert_allclose(features, trained.clf.features(float_images), rtol=1e-5, atol=1e-5)
  both = trained.clf.features_and_logits(uint8_images, batch_size=8)
  np.testing.assert_array_equal(both[0], features)
  np.testing.assert_array_equal(both[1], logits)
  with pytest.raises(UserError, match='takes images'):
    trained.clf.features(np.zeros((2, 32, 32, 3), np.float32))


def test_real_data_far_closer_than_corruptions(trained):
  other = 'fashion_mnist' if trained.dataset == 'mnist' else 'mnist'
  images = trained.test_images
  corrupted = {
      'gaussian noise': np.clip(np.random.default_rng(2).normal(size=images.shape), -1, 1).astype(np.float32),
      other: _subset(_load_data(other, 'test')[0], 3),
      'blurred (sigma 1)': _blur(images, 1.0),
      'shifted (2 px)': _shift(images, 2),
  }
  for name, corrupt_images in corrupted.items():
    fd = trained.fd(corrupt_images)
    assert fd > FAR * trained.real_fd, f'{trained.dataset}: FD of {name} {fd:.3f}, of real images {trained.real_fd:.3f}'


def test_fd_increases_with_corruption_strength(trained):
  for name, corrupt, strengths in (('blur sigma', _blur, (0.5, 1.0, 2.0)), ('shift', _shift, (1, 2, 4))):
    fds = [trained.real_fd] + [trained.fd(corrupt(trained.test_images, s)) for s in strengths]
    assert np.all(np.diff(fds) > 0), f'{trained.dataset}: FD for {name} 0, {strengths}: {fds}'


def test_classifier_score(trained):
  images, labels = _load_data(trained.dataset, 'test')
  real_mean, real_std = classifier.classifier_score(trained.clf, images)
  one_class_mean, _ = classifier.classifier_score(trained.clf, images[labels == 1][:1000])
  assert MIN_REAL_SCORE[trained.dataset] < real_mean <= 10 and 0 <= real_std < 0.5, (real_mean, real_std)
  assert 1 <= one_class_mean < 1.5, one_class_mean


def test_load_errors_give_train_command(tmp_path):
  command = f'python -m gan_jax.metrics.classifier --dataset=mnist --models_dir={tmp_path}'
  with pytest.raises(UserError, match=command):
    classifier.load('mnist', str(tmp_path))
  params_path, meta_path = classifier.model_paths('mnist', str(tmp_path))
  pathlib.Path(params_path).write_bytes(b'not msgpack')
  pathlib.Path(meta_path).write_text(json.dumps({'architecture_version': classifier.ARCH_VERSION}))
  with pytest.raises(UserError, match=f'corrupt.*{command}'):
    classifier.load('mnist', str(tmp_path))
  pathlib.Path(meta_path).write_text(json.dumps({'architecture_version': classifier.ARCH_VERSION - 1}))
  with pytest.raises(UserError, match=f'architecture version.*{command}'):
    classifier.load('mnist', str(tmp_path))
  with pytest.raises(UserError, match='no classifier for dataset'):
    classifier.load('svhn', str(tmp_path))


@pytest.mark.slow
def test_train_from_scratch_is_accurate_and_deterministic(tmp_path):
  train_images, train_labels = _load_data('mnist', 'train')
  test_images, test_labels = _load_data('mnist', 'test')
  accuracy = classifier.train('mnist', models_dir=str(tmp_path), epochs=1)
  assert accuracy > 0.97  # One epoch; the shipped model trains DEFAULT_EPOCHS (models/mnist_classifier.json).
  _, meta_path = classifier.model_paths('mnist', str(tmp_path))
  with open(meta_path) as f:
    assert json.load(f)['test_accuracy'] == accuracy
  assert classifier.accuracy(classifier.load('mnist', str(tmp_path)), test_images, test_labels) == accuracy

  # Determinism, on a subset to keep the test short: same seed, bit-identical parameters.
  first, second, other_seed = (
      flax.serialization.to_bytes(
          classifier.fit(train_images[:4096], train_labels[:4096], classifier.WIDTHS['mnist'], 1, seed))
      for seed in (0, 0, 1))
  assert first == second
  assert first != other_seed
