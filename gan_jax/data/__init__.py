"""Data sources: what a run trains on, and how a batch is drawn inside the jitted step.

A `Source` holds either a finite labelled image set (uint8, kept on the accelerator when
`data.on_device`) or a synthetic 2D mixture. `draw(arrays, rng, n)` is a pure, jittable
function that returns a batch of `n` examples as float32 in the model's range:
  images: [n, H, W, C] in [-1, 1] (uint8 x -> x / 127.5 - 1), labels int32 [n];
  points: [n, 2] in the mixture's coordinates.
Finite sets are sampled uniformly with replacement, a fresh draw per D step.
"""
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data import mixtures
from gan_jax.errors import UserError

IMAGE_SETS = ('mnist', 'fashion_mnist', 'cifar10', 'stacked_mnist')


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
  """
  name: str
  shape: tuple[int, ...]
  num_classes: int
  arrays: dict[str, Any]
  mixture: mixtures.Mixture | None = None

  @property
  def is_image(self) -> bool:
    return len(self.shape) == 3

  def draw(self, arrays: dict[str, jax.Array], rng: jax.Array, n: int) -> dict[str, jax.Array]:
    """A batch of n examples: {'image': float32 [n, *shape], 'label': int32 [n]}. Jittable."""
    if self.mixture is not None:
      return {'image': self.mixture.sample(rng, n), 'label': jnp.zeros((n,), jnp.int32)}
    count = arrays['image'].shape[0]
    idx = jax.random.randint(rng, (n,), 0, count)
    images = jnp.take(arrays['image'], idx, axis=0).astype(jnp.float32) / 127.5 - 1.0
    return {'image': images, 'label': jnp.take(arrays['label'], idx, axis=0)}

  def draw_host(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The same distribution drawn on the host (for sets kept off the accelerator)."""
    idx = rng.integers(0, self.arrays['image'].shape[0], n)
    images = self.arrays['image'][idx].astype(np.float32) / 127.5 - 1.0
    return {'image': images, 'label': self.arrays['label'][idx]}


def load_images(name: str, split: str, data_dir: str = '', download: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """uint8 [N,H,W,C] images and int32 [N] labels of a named image set.

  `name` is one of IMAGE_SETS or 'tfds:<tfds name>'; `download`: fetch missing MNIST and
  Fashion-MNIST files (gan_jax/data/download.py).
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
  images, labels = load_images(name, data_config.split, data_config.dir, data_config.download)
  num_classes = int(labels.max()) + 1 if labels.size else 0
  return Source(name=name, shape=tuple(images.shape[1:]), num_classes=num_classes,
                arrays={'image': images, 'label': labels})
