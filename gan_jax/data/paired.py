"""Image-to-image tasks derived from MNIST / Fashion-MNIST: each example's input computed from its target.

  edges          the digit's outline: the 1-pixel inner contour of its mask (pixels > 127), 0 / 255
  sr2, sr4       the image area-downsampled by 2 (14x14) or 4 (7x7): the mean of each block, rounded
  inpaint_square the image with a 14x14 square hole at a position drawn per example, and the hole's
                 mask as a second channel (255 inside the hole); the hole is set to 0
  inpaint_half   the same with the bottom half hidden

Inputs are functions of their target image alone, except the square holes, whose positions are
drawn from (seed, split), so every call gives the same pairs. The training split's pairs come from
the dataset's training file and the test split's from its test file: a test image is never a
training input or target.
"""
import numpy as np
from scipy import ndimage

from gan_jax.errors import UserError

TASKS = ('edges', 'sr2', 'sr4', 'inpaint_square', 'inpaint_half')
HOLE = 14  # Side of inpaint_square's hole, pixels.
SPLIT_SALT = {'train': 0, 'test': 1}


def input_shape(task: str, target_shape: tuple[int, int, int]) -> tuple[int, int, int]:
  """The shape (H, W, C) of the task's input for a target image of `target_shape`."""
  height, width, channels = target_shape
  if task in ('sr2', 'sr4'):
    factor = int(task[2:])
    return height // factor, width // factor, channels
  if task.startswith('inpaint'):
    return height, width, channels + 1
  if task == 'edges':
    return target_shape
  raise UserError(f'unknown image-to-image task {task!r}; choose one of {", ".join(TASKS)}')


def make_inputs(task: str, images: np.ndarray, seed: int = 0, split: str = 'train') -> np.ndarray:
  """The task's inputs, uint8 [N, *input_shape], for target images uint8 [N, H, W, C]."""
  input_shape(task, images.shape[1:])  # Checks the task name.
  if task == 'edges':
    mask = images > 127
    inner = ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3, 1), bool))
    return np.where(mask & ~inner, 255, 0).astype(np.uint8)
  if task in ('sr2', 'sr4'):
    return area_downsample(images, int(task[2:]))
  holes = np.zeros(images.shape, bool)
  if task == 'inpaint_half':
    holes[:, images.shape[1] // 2:] = True
  else:
    rng = np.random.default_rng([seed, SPLIT_SALT[split]])
    tops = rng.integers(0, images.shape[1] - HOLE + 1, len(images))
    lefts = rng.integers(0, images.shape[2] - HOLE + 1, len(images))
    for hole, top, left in zip(holes, tops, lefts):
      hole[top:top + HOLE, left:left + HOLE] = True
  masked = np.where(holes, 0, images).astype(np.uint8)
  return np.concatenate([masked, np.where(holes[..., :1], 255, 0).astype(np.uint8)], axis=-1)


def area_downsample(images: np.ndarray, factor: int) -> np.ndarray:
  """uint8 [N, H/factor, W/factor, C]: the mean of each factor x factor block, rounded."""
  n, height, width, channels = images.shape
  if height % factor or width % factor:
    raise UserError(f'images of {height}x{width} do not divide into {factor}x{factor} blocks')
  blocks = images.reshape(n, height // factor, factor, width // factor, factor, channels).astype(np.float64)
  return np.rint(blocks.mean(axis=(2, 4))).astype(np.uint8)
