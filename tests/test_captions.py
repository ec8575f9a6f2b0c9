"""Captions of MNIST / Fashion-MNIST images (gan_jax/data/captions.py): the measurements on shapes with
known answers, the bins against the training set's tertiles, and captions that say what was measured."""
import numpy as np
import pytest

from gan_jax.data import captions
from gan_jax.data import idx
from gan_jax.errors import UserError


def _bar(width: int, height: int = 16, shear: float = 0.0) -> np.ndarray:
  """A white bar [1, 28, 28, 1] of `width` columns and `height` rows, its top shifted right by shear * height."""
  image = np.zeros((1, 28, 28, 1), np.uint8)
  top = (28 - height) // 2
  for r in range(height):
    left = 10 + int(round(shear * (height - 1 - r)))
    image[0, top + r, left:left + width] = 255
  return image


def test_thickness_grows_with_the_stroke_and_width_is_the_span():
  thin, thick = captions.measure(_bar(2)), captions.measure(_bar(6))
  assert 1.5 < thin['thickness'][0] < 2.5 and 5.0 < thick['thickness'][0] < 9.0
  assert thin['width'][0] == 2 and thick['width'][0] == 6
  assert thin['size'][0] == 32 and thin['brightness'][0] == 255


@pytest.mark.parametrize('shear', [-0.4, 0.0, 0.4])
def test_slant_is_the_shear_angle(shear):
  """A bar whose top is moved right by `shear` px per row leans right by atan(shear) (left for shear < 0)."""
  assert captions.measure(_bar(3, 18, shear))['slant'][0] == pytest.approx(np.degrees(np.arctan(shear)), abs=2.0)


@pytest.mark.parametrize('dataset', ['mnist', 'fashion_mnist'])
def test_bins_split_the_training_set_in_thirds(dataset, data_dir):
  images, _ = idx.load(dataset, 'train', str(data_dir), False)
  binned = captions.bins(captions.measure(images), dataset)
  for name, values in binned.items():
    shares = np.bincount(values, minlength=3) / len(values)
    assert np.all(np.abs(shares - 1 / 3) < 0.05), (name, shares)


@pytest.mark.parametrize('dataset', ['mnist', 'fashion_mnist'])
def test_captions_state_the_class_and_the_measured_attributes(dataset, data_dir):
  """Every one of 2000 test captions, read back, gives the image's class and the bins measured on its
  pixels: a caption built from another image's measurements, or a phrase that reads as two bins, fails here."""
  images, labels = idx.load(dataset, 'test', str(data_dir), False)
  images, labels = images[:2000], labels[:2000]
  texts = captions.make(dataset, images, labels, seed=3)
  binned = captions.bins(captions.measure(images), dataset)
  for i, text in enumerate(texts):
    assert captions.parse(dataset, text) == {'class': int(labels[i]), **{k: int(v[i]) for k, v in binned.items()}}, text
  assert captions.make(dataset, images[:50], labels[:50], seed=3) == texts[:50]  # Deterministic in the seed.
  assert len(set(texts)) > 500  # Varied templates and synonyms.


def test_tokenize_pads_and_masks():
  texts = ['the 7, bold, wide, upright', 'thin one']
  ids, mask = captions.tokenize('mnist', texts)
  assert ids.shape == mask.shape == (2, captions.MAX_TOKENS) and ids.dtype == np.int32
  np.testing.assert_array_equal(mask.sum(axis=1), [len(captions.tokens(t)) for t in texts])
  assert np.all(ids[~mask] == captions.PAD) and np.all(ids[mask] > 0)
  vocabulary = captions.vocabulary('mnist')
  assert [vocabulary[i - 1] for i in ids[1, :2]] == ['thin', 'one']
  with pytest.raises(UserError, match='outside the mnist vocabulary'):
    captions.tokenize('mnist', ['a purple seven'])


# Words whose meaning the test states itself (not read from captions.py): the attribute they describe and
# whether images captioned with them measure low (-1) or high (+1) on it.
MEANINGS = {
    'mnist': {**dict.fromkeys(('thin', 'fine', 'light'), ('thickness', -1)),
              **dict.fromkeys(('thick', 'bold', 'heavy'), ('thickness', 1)),
              **dict.fromkeys(('narrow', 'slim', 'compact'), ('width', -1)),
              **dict.fromkeys(('wide', 'broad', 'spread-out'), ('width', 1)),
              **dict.fromkeys(('leaning left', 'slanted left', 'tilted to the left'), ('slant', -1)),
              **dict.fromkeys(('leaning right', 'slanted right', 'tilted to the right'), ('slant', 1))},
    'fashion_mnist': {**dict.fromkeys(('small', 'little', 'tiny'), ('size', -1)),
                      **dict.fromkeys(('large', 'big', 'huge'), ('size', 1)),
                      **dict.fromkeys(('dark', 'dim', 'shadowy'), ('brightness', -1)),
                      **dict.fromkeys(('bright', 'light-toned', 'pale'), ('brightness', 1))}}


@pytest.mark.parametrize('dataset', ['mnist', 'fashion_mnist'])
def test_words_mean_what_they_say(dataset, data_dir):
  """Images captioned 'thin' measure thinner than the median image, 'wide' wider, ...: a synonym filed
  under the wrong bin fails here."""
  images, labels = idx.load(dataset, 'test', str(data_dir), False)
  images, labels = images[:3000], labels[:3000]
  texts = captions.make(dataset, images, labels, seed=1)
  measured = captions.measure(images)
  for word, (attribute, sign) in MEANINGS[dataset].items():
    chosen = [i for i, t in enumerate(texts) if f' {word},' in f' {t},' or f' {word} ' in f' {t} ']
    assert len(chosen) > 20, word
    difference = np.median(measured[attribute][chosen]) - np.median(measured[attribute])
    assert sign * difference > 0, (word, difference)
