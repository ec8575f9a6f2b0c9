"""Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017): three MNIST digits as RGB channels.

Each example stacks three MNIST images, drawn independently and uniformly (with replacement)
from one MNIST split, as the R, G and B channels of a 28 x 28 x 3 uint8 image. Its label is
100 d0 + 10 d1 + d2 for the digits (d0, d1, d2) of the R, G and B channels, so there are 1000
classes (the "modes" of the mode-collapse benchmark), almost uniformly frequent.

The set is finite and fixed: `load(split)` builds `SIZES[split]` examples from that MNIST
split with the seed `SEEDS[split]`, so every run trains on (and every evaluation compares
against) the same images. `stack` is the pure function behind it, for other sizes or seeds.
"""
import numpy as np

from gan_jax.data import idx

NUM_MODES = 1000
SIZES = {'train': 60_000, 'test': 10_000}  # The sizes of the MNIST splits they are drawn from.
SEEDS = {'train': 0, 'test': 1}


def stack(images: np.ndarray, labels: np.ndarray, num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Stacks randomly chosen single-channel digits into RGB examples; deterministic given `seed`.

  Args:
    images: uint8 [N, H, W, 1] digit images.
    labels: int [N] their digits, 0..9.
    num: number of examples to make.
    seed: seed of `np.random.default_rng`, which draws the [num, 3] source indices.

  Returns:
    (uint8 [num, H, W, 3] images whose channel c is images[i_c], int32 [num] labels
     100 labels[i_0] + 10 labels[i_1] + labels[i_2]).
  """
  if images.ndim != 4 or images.shape[3] != 1 or labels.shape != images.shape[:1]:
    raise ValueError(f'expected images [N, H, W, 1] and labels [N], got {images.shape} and {labels.shape}')
  chosen = np.random.default_rng(seed).integers(0, images.shape[0], (num, 3))
  stacked = images[chosen, ..., 0].transpose(0, 2, 3, 1)  # [num, 3, H, W] -> [num, H, W, 3]
  digits = labels[chosen].astype(np.int32)
  return np.ascontiguousarray(stacked), digits @ np.array([100, 10, 1], np.int32)


def load(split: str, data_dir: str = '', download: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """The fixed Stacked MNIST `split` ('train' or 'test'): uint8 [SIZES[split], 28, 28, 3], int32 labels.

  Raises:
    UserError for an unknown split or missing MNIST files (see `gan_jax.data.idx.load`).
  """
  images, labels = idx.load('mnist', split, data_dir, download)
  return stack(images, labels, SIZES[split], SEEDS[split])
