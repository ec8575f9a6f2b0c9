"""Image-to-image task inputs (gan_jax/data/paired.py): what each task shows of its target, deterministically."""
import numpy as np
import pytest

from gan_jax.data import idx
from gan_jax.data import paired
from gan_jax.errors import UserError


def _square(size: int = 28, lo: int = 8, hi: int = 20) -> np.ndarray:
  image = np.zeros((1, size, size, 1), np.uint8)
  image[0, lo:hi, lo:hi] = 255
  return image


def test_edges_are_the_inner_contour_of_the_digit_mask():
  edges = paired.make_inputs('edges', _square())[0, ..., 0]
  want = np.zeros((28, 28), np.uint8)
  want[8:20, 8:20] = 255
  want[9:19, 9:19] = 0
  np.testing.assert_array_equal(edges, want)


def test_area_downsampling_averages_blocks():
  image = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1) * 10
  low = paired.make_inputs('sr2', np.tile(image, (1, 7, 7, 1)))
  assert low.shape == (1, 14, 14, 1)
  np.testing.assert_array_equal(low[0, :2, :2, 0], [[25, 45], [105, 125]])  # e.g. mean(0, 10, 40, 50) = 25.
  assert paired.make_inputs('sr4', _square()).shape == (1, 7, 7, 1)
  np.testing.assert_array_equal(paired.make_inputs('sr4', _square())[0, 2:5, 2:5, 0], 255)


def _hole(inputs: np.ndarray) -> np.ndarray:
  """bool [N, H, W]: where an inpainting input marks its hole (the last channel, 255 inside)."""
  return inputs[..., -1] > 127


def test_inpainting_hides_a_hole_and_marks_it(data_dir):
  images, _ = idx.load('mnist', 'test', str(data_dir), download=False)
  images = images[:50]
  inputs = paired.make_inputs('inpaint_square', images, seed=3, split='test')
  assert inputs.shape == (50, 28, 28, 2)
  holes = _hole(inputs)
  assert (holes.sum(axis=(1, 2)) == paired.HOLE ** 2).all()
  np.testing.assert_array_equal(inputs[..., 0][holes], 0)
  np.testing.assert_array_equal(inputs[..., 0][~holes], images[..., 0][~holes])
  # The same (seed, split) gives the same holes; another seed or split moves them.
  np.testing.assert_array_equal(paired.make_inputs('inpaint_square', images, seed=3, split='test'), inputs)
  assert not np.array_equal(paired.make_inputs('inpaint_square', images, seed=4, split='test'), inputs)
  assert not np.array_equal(paired.make_inputs('inpaint_square', images, seed=3, split='train'), inputs)
  half = _hole(paired.make_inputs('inpaint_half', images))
  assert (half[:, 14:] == 1).all() and (half[:, :14] == 0).all()


def test_inputs_are_functions_of_the_targets_alone(data_dir):
  images, _ = idx.load('mnist', 'train', str(data_dir), download=False)
  for task in ('edges', 'sr2', 'sr4', 'inpaint_half'):
    whole = paired.make_inputs(task, images[:20])
    np.testing.assert_array_equal(paired.make_inputs(task, images[10:20]), whole[10:])


def test_unknown_task_is_a_user_error():
  with pytest.raises(UserError, match='unknown image-to-image task'):
    paired.make_inputs('colorize', _square())
