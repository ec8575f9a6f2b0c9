"""Tests of the Stacked MNIST data set."""
import pathlib

import numpy as np
import pytest
from scipy import stats

from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax.data import idx
from gan_jax.data import stacked_mnist
from gan_jax.errors import UserError
from gan_jax.metrics import classifier

MODELS_DIR = str(pathlib.Path(__file__).resolve().parents[1] / 'models')


def _digit_images(n: int) -> tuple[np.ndarray, np.ndarray]:
  """Image i is 4 x 4 filled with the value i (uint8 [n, 4, 4, 1]); its label is i % 10."""
  images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 4, 4, 1)).copy()
  return images, (np.arange(n) % 10).astype(np.int32)


def test_stack_channels_labels_and_determinism():
  images, labels = _digit_images(200)
  stacked, stacked_labels = stacked_mnist.stack(images, labels, 500, seed=3)
  assert stacked.shape == (500, 4, 4, 3) and stacked.dtype == np.uint8
  assert stacked_labels.shape == (500,) and stacked_labels.dtype == np.int32
  # Every channel is one whole source image; the label encodes the channels' digits R, G, B.
  chosen = stacked[:, 0, 0, :].astype(np.int64)  # [500, 3] source index of each channel
  assert np.all(stacked == stacked[:, :1, :1, :])
  np.testing.assert_array_equal(stacked_labels, labels[chosen] @ np.array([100, 10, 1]))
  # The three channels are drawn independently: they rarely coincide, and cover the set.
  assert np.mean(chosen[:, 0] == chosen[:, 1]) < 0.03
  assert len(np.unique(chosen)) > 190
  again, again_labels = stacked_mnist.stack(images, labels, 500, seed=3)
  np.testing.assert_array_equal(again, stacked)
  np.testing.assert_array_equal(again_labels, stacked_labels)
  assert not np.array_equal(stacked_mnist.stack(images, labels, 500, seed=4)[0], stacked)


def test_stack_rejects_colour_input():
  with pytest.raises(ValueError, match=r'\[N, H, W, 1\]'):
    stacked_mnist.stack(np.zeros((5, 4, 4, 3), np.uint8), np.zeros(5, np.int32), 2, 0)


@pytest.fixture(scope='module')
def mnist_test():
  try:
    return idx.load('mnist', 'test')
  except UserError as e:
    pytest.skip(f'MNIST not found: {e}')


def test_load_is_fixed_and_built_from_mnist(mnist_test):
  images, labels = stacked_mnist.load('test')
  assert images.shape == (10_000, 28, 28, 3) and images.dtype == np.uint8
  assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < stacked_mnist.NUM_MODES
  again_images, again_labels = data_lib.load_images('stacked_mnist', 'test')
  np.testing.assert_array_equal(again_images, images)
  np.testing.assert_array_equal(again_labels, labels)
  # Each channel of the first examples is an MNIST test image showing the digit its label says.
  mnist_images, mnist_labels = mnist_test
  for image, label in zip(images[:20], labels[:20]):
    for channel, digit in enumerate((label // 100, label // 10 % 10, label % 10)):
      matches = np.flatnonzero(np.all(mnist_images[..., 0] == image[None, :, :, channel], axis=(1, 2)))
      assert matches.size and np.all(mnist_labels[matches] == digit)


def test_classifier_reads_the_label_from_the_channels():
  if not pathlib.Path(classifier.model_paths('mnist', MODELS_DIR)[0]).exists():
    pytest.skip('no MNIST classifier in models/')
  images, labels = stacked_mnist.load('test')
  images, labels = images[:1500], labels[:1500]
  channels = np.moveaxis(images, 3, 1).reshape(-1, 28, 28, 1)
  digits = classifier.load('mnist', MODELS_DIR).logits(channels).argmax(axis=1).reshape(-1, 3)
  decoded = digits @ np.array([100, 10, 1])
  # The classifier's MNIST test accuracy is 0.992, so about 0.992^3 = 0.976 of triples are right.
  assert 0.96 < np.mean(decoded == labels) < 0.995


def test_source_has_1000_classes(mnist_test):
  del mnist_test  # Only skips without MNIST.
  config = config_lib.base()
  config.data.name = 'stacked_mnist'
  source = data_lib.make_source(config.data)
  assert source.shape == (28, 28, 3) and source.is_image
  assert source.num_classes == 1000 and len(np.unique(source.arrays['label'])) == 1000
  assert source.arrays['image'].shape[0] == stacked_mnist.SIZES['train']


def test_label_triples_are_uniform_over_1000_modes_for_balanced_digits():
  images, labels = _digit_images(1000)  # Each digit 100 times.
  _, stacked_labels = stacked_mnist.stack(images, labels, 200_000, seed=5)
  histogram = np.bincount(stacked_labels, minlength=stacked_mnist.NUM_MODES)
  assert histogram.shape == (1000,) and histogram.min() > 0
  assert stats.chisquare(histogram).pvalue > 1e-3  # Uniform over the 1000 triples.


def test_train_set_triples_cover_1000_modes_as_mnist_digit_frequencies_predict(mnist_test):
  """Each triple's frequency is the product of MNIST's digit frequencies (independent channels), so
  all 1000 modes appear, almost uniformly: KL(triples || uniform) is about 0.004 nats from the digit
  imbalance plus 999 / (2 * 60000) = 0.008 nats of sampling noise."""
  del mnist_test  # Only skips without MNIST.
  _, labels = stacked_mnist.load('train')
  _, digits = idx.load('mnist', 'train')
  p = np.bincount(digits, minlength=10) / digits.size
  histogram = np.bincount(labels, minlength=stacked_mnist.NUM_MODES)
  assert np.count_nonzero(histogram) == 1000
  expected = np.einsum('i,j,k->ijk', p, p, p).ravel() * labels.size
  assert stats.chisquare(histogram, expected).pvalue > 1e-3
  q = histogram / labels.size
  assert 0.004 < np.sum(q * np.log(q * 1000)) < 0.02


def test_unknown_split():
  with pytest.raises(UserError, match='split'):
    stacked_mnist.load('validation')
