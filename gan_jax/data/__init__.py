"""Data sources: what a run trains on, and how a batch is drawn inside the jitted step.

A `Source` holds either a finite labelled image set (uint8, kept on the accelerator when
`data.on_device`) or a synthetic 2D mixture. `draw(arrays, rng, n)` is a pure, jittable
function that returns a batch of `n` examples as float32 in the model's range:
  images: [n, H, W, C] in [-1, 1] (uint8 x -> x / 127.5 - 1), labels int32 [n];
  points: [n, 2] in the mixture's coordinates;
  image-to-image tasks (`data.task`, gan_jax.data.paired) add each target image's input as
  'source' [n, *source_shape] in [-1, 1]; captioned sets (`data.captions`) each image's caption as
  'text' int32 [n, captions.MAX_TOKENS] tokens.
Finite sets are sampled uniformly with replacement, a fresh draw per D step.
"""
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data import mixtures
from gan_jax.errors import UserError

IMAGE_SETS = ('mnist', 'fashion_mnist', 'cifar10', 'stacked_mnist', 'spoken_digits')


@dataclasses.dataclass(frozen=True)
class Source:
  """A training distribution.

  Attributes:
    name: the config's data.name.
    shape: shape of one example: (H, W, C) for images, (2,) for points.
    num_classes: labels per example (0 when unlabelled).
    arrays: the data the jitted step reads: {'image': uint8 [N,H,W,C], 'label': int32 [N]}
      for image sets, {} for mixtures (their parameters are constants of the program).
    mixture: the mixture for 2D sources, else None.
    task: the image-to-image task ('' for none): a paired task's arrays also hold 'source', uint8
      [N, *source_shape], the input of each target image; an unpaired (CycleGAN) task's examples
      are (A, B) channel pairs (gan_jax.data.unpaired), their own G input.
  """
  name: str
  shape: tuple[int, ...]
  num_classes: int
  arrays: dict[str, Any]
  mixture: mixtures.Mixture | None = None
  task: str = ''

  @property
  def vocab_size(self) -> int:
    """Token ids of a captioned set's 'text' (0 = padding included; 0 without captions)."""
    if 'text' not in self.arrays:
      return 0
    from gan_jax.data import captions
    return len(captions.vocabulary(self.name)) + 1

  @property
  def source_shape(self) -> tuple[int, ...] | None:
    """Shape of a paired task's inputs, batch['source'] (None otherwise)."""
    return tuple(self.arrays['source'].shape[1:]) if 'source' in self.arrays else None

  @property
  def unpaired(self) -> bool:
    """An unpaired (CycleGAN) task: G translates the examples themselves."""
    return self.task.startswith('cycle_')

  @property
  def input_shape(self) -> tuple[int, ...] | None:
    """Shape of G's input for an image-to-image task (None without a task)."""
    return self.shape if self.unpaired else self.source_shape

  @property
  def is_image(self) -> bool:
    return len(self.shape) == 3

  def draw(self, arrays: dict[str, jax.Array], rng: jax.Array, n: int) -> dict[str, jax.Array]:
    """A batch of n examples: {'image': float32 [n, *shape], 'label': int32 [n]}. Jittable."""
    if self.mixture is not None:
      return {'image': self.mixture.sample(rng, n), 'label': jnp.zeros((n,), jnp.int32)}
    count = arrays['image'].shape[0]
    idx = jax.random.randint(rng, (n,), 0, count)
    return {k: unit_range(jnp.take(a, idx, axis=0)) for k, a in arrays.items()}

  def draw_host(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The same distribution drawn on the host (for sets kept off the accelerator)."""
    idx = rng.integers(0, self.arrays['image'].shape[0], n)
    return {k: unit_range(a[idx]) for k, a in self.arrays.items()}


def unit_range(array):
  """uint8 pixels [0, 255] -> float32 in [-1, 1] (x / 127.5 - 1), computed by the array's own
  library (numpy or jax); any other array (labels, caption tokens, float images) unchanged."""
  return array.astype(np.float32) / 127.5 - 1.0 if array.dtype == np.uint8 else array


def pixels(images: np.ndarray) -> np.ndarray:
  """The inverse of `unit_range`: images in [-1, 1] -> uint8 [0, 255], rounded (half to even) and
  clipped."""
  return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def load_images(name: str, split: str, data_dir: str = '', download: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """uint8 [N,H,W,C] images and int32 [N] labels of a named image set.

  `name` is one of IMAGE_SETS or 'tfds:<tfds name>'; `download`: fetch missing MNIST and
  Fashion-MNIST files (gan_jax/data/download.py), synthesize a missing spoken-digit set.
  """
  if name in ('mnist', 'fashion_mnist'):
    from gan_jax.data import idx
    return idx.load(name, split, data_dir, download)
  if name == 'cifar10':
    from gan_jax.data import cifar10
    return cifar10.load(split, data_dir, download)
  if name == 'stacked_mnist':  # Fixed sets built from MNIST: see gan_jax.data.stacked_mnist.
    from gan_jax.data import stacked_mnist
    return stacked_mnist.load(split, data_dir, download)
  if name == 'spoken_digits':  # Log-mel spectrogram images of synthesized speech: gan_jax.data.spoken_digits.
    from gan_jax.data import spoken_digits
    return spoken_digits.load(split, data_dir, download)
  if name.startswith('tfds:'):
    from gan_jax.data import tfds_source
    return tfds_source.load(name[len('tfds:'):], split, data_dir)
  raise UserError(f'unknown dataset {name!r}; choose one of {", ".join(IMAGE_SETS + tuple(mixtures.MIXTURES))} '
                  'or tfds:<name> (--config.data.name=NAME)')


def make_source(data_config) -> Source:
  """Builds the Source described by `config.data`."""
  name = data_config.name
  if name in mixtures.MIXTURES:
    return Source(name=name, shape=(2,), num_classes=0, arrays={}, mixture=mixtures.get(name))
  if data_config.task.startswith('cycle_'):
    from gan_jax.data import unpaired
    images, labels = unpaired.load(data_config.task, name, data_config.split, data_config.dir, data_config.download)
    return Source(name=name, shape=tuple(images.shape[1:]), num_classes=int(labels.max()) + 1,
                  arrays={'image': images, 'label': labels}, task=data_config.task)
  images, labels = load_images(name, data_config.split, data_config.dir, data_config.download)
  num_classes = int(labels.max()) + 1 if labels.size else 0
  arrays = {'image': images, 'label': labels}
  if data_config.task:
    arrays['source'] = task_inputs(data_config.task, images, data_config.split)
  if data_config.captions:
    arrays['text'] = caption_tokens(name, images, labels)
  return Source(name=name, shape=tuple(images.shape[1:]), num_classes=num_classes, arrays=arrays,
                task=data_config.task)


def load_pairs(data_config, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """An image-to-image task's pairs of `split`: inputs uint8 [N, *source_shape], targets uint8
  [N, H, W, C] and the targets' labels int32 [N], in the split's order. An unpaired task's inputs
  and targets are both its (A, B) examples."""
  if data_config.task.startswith('cycle_'):
    from gan_jax.data import unpaired
    images, labels = unpaired.load(data_config.task, data_config.name, split, data_config.dir, data_config.download)
    return images, images, labels
  images, labels = load_images(data_config.name, split, data_config.dir, data_config.download)
  return task_inputs(data_config.task, images, split), images, labels


CAPTION_SEED = 0  # The captions' templates and synonyms are drawn from (this, image index).


def caption_tokens(name: str, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """int32 [N, MAX_TOKENS]: each image's caption (gan_jax.data.captions), tokenized."""
  from gan_jax.data import captions
  return captions.tokenize(name, captions.make(name, images, labels, CAPTION_SEED))[0]


def load_captioned(data_config, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A captioned set's `split`: caption tokens int32 [N, T], images uint8 [N, H, W, C], labels int32 [N]."""
  images, labels = load_images(data_config.name, split, data_config.dir, data_config.download)
  return caption_tokens(data_config.name, images, labels), images, labels


def task_inputs(task: str, images: np.ndarray, split: str) -> np.ndarray:
  """The inputs uint8 [N, ...] of image-to-image `task` for target images uint8 [N, H, W, C] of `split`."""
  from gan_jax.data import paired
  if split not in paired.SPLIT_SALT:
    raise UserError(f'data.task needs the train or test split of the data set, not {split!r}')
  return paired.make_inputs(task, images, split=split)
