"""Tests for the TFDS reader on tiny ArrayRecord datasets prepared here, and on tfds's mock data.

Preparing needs no TensorFlow when the images are given as PIL images (tfds then only PNG-encodes
them with Pillow), and nothing is downloaded.
"""
import json
import sys
import time

import numpy as np
import pytest

from gan_jax.data import tfds_source
from gan_jax.errors import UserError


@pytest.fixture(name='tfds')
def tfds_fixture():
  pytest.importorskip('PIL.Image')
  return pytest.importorskip('tensorflow_datasets')


def _image(index: int, shape: tuple[int, int, int]) -> np.ndarray:
  """A uint8 image unique to `index`, with distinct values per channel."""
  return (np.arange(np.prod(shape)).reshape(shape) * 7 + index * 31).astype(np.uint8)


def _prepare(tfds, data_dir, name: str, shape: tuple[int, int, int], sizes: dict[str, int],
             keys: tuple[str, str] = ('image', 'label')) -> None:
  """Prepares `name` in data_dir; example i of a split has image _image(i, shape) and label i."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  image_key, label_key = keys

  def info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        image_key: tfds.features.Image(shape=shape),
        label_key: tfds.features.ClassLabel(num_classes=10),
    }))

  def split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(size) for split, size in sizes.items()}

  def generate_examples(self, size):
    del self
    for i in range(size):
      pixels = _image(i, shape)
      yield i, {image_key: Image.fromarray(pixels[..., 0] if shape[-1] == 1 else pixels),
                label_key: i}

  class_name = ''.join(part.title() for part in name.split('_'))
  builder_cls = type(class_name, (tfds.core.GeneratorBasedBuilder,), {
      'VERSION': tfds.core.Version('1.0.0'), '_info': info,
      '_split_generators': split_generators, '_generate_examples': generate_examples,
  }, skip_registration=True)
  builder_cls(data_dir=str(data_dir), file_format='array_record').download_and_prepare()


@pytest.mark.parametrize('shape', [(4, 5, 1), (6, 7, 3)])
def test_load_reads_every_example_exactly(tfds, tmp_path, shape):
  _prepare(tfds, tmp_path, 'tiny_images', shape, {'train': 6, 'test': 3})
  images, labels = tfds_source.load('tiny_images', 'train', str(tmp_path))
  assert images.dtype == np.uint8 and images.shape == (6,) + shape
  assert labels.dtype == np.int32
  order = np.argsort(labels)  # TFDS shuffles the records.
  np.testing.assert_array_equal(labels[order], np.arange(6))
  np.testing.assert_array_equal(images[order], np.stack([_image(i, shape) for i in range(6)]))
  images, labels = tfds_source.load('tiny_images', 'test[:2]', str(tmp_path))
  assert images.shape == (2,) + shape and labels.shape == (2,)


@pytest.mark.parametrize('name, shape', [('mnist', (28, 28, 1)), ('cifar10', (32, 32, 3))])
def test_load_with_tfds_mock_data(tfds, tmp_path, name, shape):
  with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
    images, labels = tfds_source.load(name, 'train', str(tmp_path))
  assert images.dtype == np.uint8 and images.shape == (5,) + shape
  assert labels.dtype == np.int32 and labels.shape == (5,)
  assert labels.min() >= 0 and labels.max() <= 9


def test_not_prepared_fails_fast_without_downloading(tfds, tmp_path):
  del tfds  # Only needs to be installed.
  start = time.monotonic()
  with pytest.raises(UserError, match=r"'mnist' is not prepared in .*tfds build mnist"):
    tfds_source.load('mnist', 'train', str(tmp_path))
  assert time.monotonic() - start < 10
  assert not list(tmp_path.iterdir())


def test_unknown_dataset(tfds, tmp_path):
  del tfds  # Only needs to be installed.
  with pytest.raises(UserError, match="'no_such_dataset' is neither in the TFDS catalog"):
    tfds_source.load('no_such_dataset', 'train', str(tmp_path))


def test_unknown_split(tfds, tmp_path):
  _prepare(tfds, tmp_path, 'tiny_images', (4, 5, 1), {'train': 2})
  with pytest.raises(UserError, match="split 'validation'.*Unknown split"):
    tfds_source.load('tiny_images', 'validation', str(tmp_path))


def test_missing_features_are_named(tfds, tmp_path):
  _prepare(tfds, tmp_path, 'tiny_renamed', (4, 5, 1), {'train': 2}, keys=('img', 'target'))
  with pytest.raises(UserError, match=r"features \['img', 'target'\], not 'image' and 'label'"):
    tfds_source.load('tiny_renamed', 'train', str(tmp_path))


def test_dataset_prepared_as_tfrecord_says_to_rebuild(tfds, tmp_path):
  _prepare(tfds, tmp_path, 'tiny_images', (4, 5, 1), {'train': 2})
  info_path = tmp_path / 'tiny_images' / '1.0.0' / 'dataset_info.json'
  info = json.loads(info_path.read_text())
  info_path.write_text(json.dumps(info | {'fileFormat': 'tfrecord'}))
  with pytest.raises(UserError, match='not in the ArrayRecord format.*--file_format=array_record'):
    tfds_source.load('tiny_images', 'train', str(tmp_path))


def test_corrupt_records_are_reported(tfds, tmp_path):
  _prepare(tfds, tmp_path, 'tiny_images', (32, 32, 3), {'train': 9})
  (path,) = (tmp_path / 'tiny_images' / '1.0.0').glob('tiny_images-train.array_record*')
  data = path.read_bytes()
  path.write_bytes(data[:2000] + bytes(3000) + data[5000:])
  with pytest.raises(UserError, match="split 'train' of TFDS dataset 'tiny_images' .* corrupt"):
    tfds_source.load('tiny_images', 'train', str(tmp_path))


def test_missing_tensorflow_datasets_is_explained(monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)  # Makes the import fail.
  with pytest.raises(UserError, match='needs tensorflow-datasets.*pip install tensorflow-datasets'):
    tfds_source.load('mnist', 'train')
