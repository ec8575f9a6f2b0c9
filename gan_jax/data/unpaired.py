"""Unpaired translation sets for CycleGAN: each example holds a domain-A and a domain-B image as its two channels.

  cycle_edges    A: edge maps (gan_jax.data.paired 'edges') of the data set's images; B: the images.
                 Training: A from the first half of the training split, B from the second half, so
                 no edge map is ever seen beside (or anywhere in training with) its own image. Test:
                 the true pairs (edges(x), x) of the test split, so translations can be scored.
  cycle_fashion  A: MNIST digits; B: Fashion-MNIST garments (no correspondence exists). Training:
                 the two training splits side by side; test: the two test splits side by side.

An example is uint8 [H, W, 2], channel 0 from domain A and channel 1 from domain B; its label is
the class of its A image (the class an A -> B translation should keep where classes correspond).
Which A image shares an example with which B image is fixed and arbitrary: every CycleGAN network
reads one channel (one domain), so this is the same as drawing A and B independently.
"""
import numpy as np

from gan_jax.data import idx
from gan_jax.data import paired
from gan_jax.errors import UserError

TASKS = ('cycle_edges', 'cycle_fashion')


def domains(task: str, name: str) -> tuple[str, str]:
  """The data sets whose domain classifiers score domain A and domain B images."""
  if task == 'cycle_fashion':
    return 'mnist', 'fashion_mnist'
  return name, name


def load(task: str, name: str, split: str, data_dir: str = '', download: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """uint8 [N, H, W, 2] examples (A, B) and int32 [N] labels (A's classes) of `task` on data set `name`."""
  if task not in TASKS:
    raise UserError(f'unknown unpaired task {task!r}; choose one of {", ".join(TASKS)}')
  if name not in ('mnist', 'fashion_mnist') or (task == 'cycle_fashion' and name != 'mnist'):
    raise UserError(f"data.task={task!r} needs data.name {'mnist' if task == 'cycle_fashion' else 'mnist or fashion_mnist'}"
                    f' (got {name!r})')
  if task == 'cycle_fashion':
    a, a_labels = idx.load('mnist', split, data_dir, download)
    b, _ = idx.load('fashion_mnist', split, data_dir, download)
    n = min(len(a), len(b))
    return np.concatenate([a[:n], b[:n]], axis=-1), a_labels[:n]
  images, labels = idx.load(name, split, data_dir, download)
  edges = paired.make_inputs('edges', images, split=split)
  if split == 'test':
    return np.concatenate([edges, images], axis=-1), labels
  half = len(images) // 2
  return np.concatenate([edges[:half], images[half:2 * half]], axis=-1), labels[:half]
