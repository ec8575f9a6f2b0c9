"""Reader for image datasets prepared by TensorFlow Datasets (TFDS), without TensorFlow.

`tfds.data_source` reads a dataset prepared in the ArrayRecord file format with numpy alone (and
Pillow or OpenCV to decode the images). It is called with `download=False`: a dataset that is not
prepared fails at once with instructions, rather than trying a download.
"""
import numpy as np

from gan_jax.errors import UserError

_IMAGE = 'image'
_LABEL = 'label'


def _how_to_prepare(name: str, where: str) -> str:
  return (f'prepare it where TensorFlow and the internet are available with `tfds build {name} '
          f'--file_format=array_record --data_dir=DIR`, then copy DIR to {where} (see BUILD.md)')


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError(f'reading a TFDS dataset needs tensorflow-datasets ({e}): '
                    '`pip install tensorflow-datasets pillow` (TensorFlow is not needed)') from None
  return tfds


def _open(tfds, name: str, split: str, data_dir: str | None):
  """Returns the random-access data source of `split`, or raises UserError saying why not."""
  where = data_dir or tfds.core.constants.DATA_DIR
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except tfds.core.DatasetNotFoundError:
    raise UserError(f'TFDS dataset {name!r} is neither in the TFDS catalog nor prepared in '
                    f'{where}: check the name, or {_how_to_prepare(name, where)}') from None
  except (KeyError, ValueError, NotImplementedError, RuntimeError, OSError) as e:
    raise _explain(tfds, name, split, data_dir, where, e) from None


def _explain(tfds, name: str, split: str, data_dir: str | None, where: str,
             error: Exception) -> UserError:
  """Says why `tfds.data_source` failed with `error` on a dataset that TFDS knows of."""
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    return UserError(f'TFDS dataset {name!r} is not prepared in {where} (no {builder.data_dir}); '
                     f'{_how_to_prepare(name, where)}')
  if isinstance(error, NotImplementedError):
    return UserError(f'TFDS dataset {name!r} in {builder.data_dir} is not in the ArrayRecord '
                     f'format that TFDS reads without TensorFlow; {_how_to_prepare(name, where)}')
  reason = str(error).strip().splitlines()[0]
  return UserError(f'cannot read split {split!r} of TFDS dataset {name!r} from {builder.data_dir}: '
                   f'{reason}')


def _read_all(source, where: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads every example of `source`: images uint8 [N, H, W, C], labels int32 [N]."""
  num = len(source)
  if not num:
    raise UserError(f'{where} has no examples; choose another split')
  images = labels = None
  for i in range(num):
    example = source[i]
    image, label = example[_IMAGE], example[_LABEL]
    if images is None:
      if np.ndim(image) != 3:
        raise UserError(f'{where}: feature {_IMAGE!r} has shape {np.shape(image)}, not [H, W, C]; '
                        'choose an image dataset')
      images = np.empty((num,) + image.shape, np.uint8)
      labels = np.empty(num, np.int32)
    if image.dtype != np.uint8 or image.shape != images.shape[1:]:
      raise UserError(f'{where}: image {i} is {image.dtype} {image.shape}, unlike image 0 '
                      f'(uint8 {images.shape[1:]}); only equal-sized uint8 images are supported')
    if np.ndim(label) != 0:
      raise UserError(f'{where}: feature {_LABEL!r} of example {i} is not a single class index')
    images[i] = image
    labels[i] = label
  return images, labels


def load(name: str, split: str, data_dir: str = '') -> tuple[np.ndarray, np.ndarray]:
  """Loads every example of a prepared TFDS image dataset into memory.

  Args:
    name: TFDS name, optionally with config and version, e.g. 'cifar10' or 'mnist:3.0.1'.
    split: TFDS split, e.g. 'train', 'test' or 'train[:10%]'.
    data_dir: the TFDS data directory; empty means $TFDS_DATA_DIR, else ~/tensorflow_datasets.

  Returns:
    images: uint8 [N, H, W, C] (C = 1 for grayscale); labels: int32 [N], from the features
      'image' and 'label'.

  Raises:
    UserError if tensorflow-datasets is not installed, the dataset is not prepared in the
    ArrayRecord format in data_dir, the split is unknown, the features 'image' and 'label' are
    absent, or a record cannot be read.
  """
  tfds = _import_tfds()
  source = _open(tfds, name, split, data_dir or None)
  where = f'split {split!r} of TFDS dataset {name!r} in {source.dataset_info.data_dir}'
  keys = sorted(source.dataset_info.features.keys())
  if _IMAGE not in keys or _LABEL not in keys:
    raise UserError(f'{where} has features {keys}, not {_IMAGE!r} and {_LABEL!r}; '
                    'choose a labelled image dataset')
  try:
    return _read_all(source, where)
  except ImportError as e:
    raise UserError(f'decoding the images of {where} needs Pillow ({e}): `pip install pillow`'
                    ) from None
  except (RuntimeError, ValueError, OSError) as e:
    raise UserError(f'{where} is corrupt ({e}); prepare it again') from None
