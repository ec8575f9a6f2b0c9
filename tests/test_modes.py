"""Tests of the mode-coverage metrics."""
import math

import numpy as np
import pytest

from gan_jax.data import mixtures
from gan_jax.metrics import modes


def test_samples_at_every_mode():
  grid = mixtures.get('grid')
  got = modes.mixture_modes(np.repeat(grid.centers, 100, axis=0), grid)
  assert got['modes'] == 25 and got['high_quality'] == 1.0
  assert abs(got['reverse_kl']) <= 1e-12
  np.testing.assert_array_equal(got['histogram'], np.full(25, 100))


def test_samples_at_one_mode():
  ring = mixtures.get('ring')
  got = modes.mixture_modes(np.repeat(ring.centers[3:4], 2500, axis=0), ring)
  assert got['modes'] == 1 and got['high_quality'] == 1.0
  assert abs(got['reverse_kl'] - math.log(8)) <= 1e-12
  np.testing.assert_array_equal(got['histogram'], 2500 * np.eye(8, dtype=np.int64)[3])


def test_off_mode_samples_are_not_high_quality():
  grid = mixtures.get('grid')  # modes 2 apart, std 0.05: high quality within 0.15
  samples = np.array([[1.0, 1.0], [0.0, 0.2], [4.0, -4.16], [10.0, 10.0]])
  got = modes.mixture_modes(samples, grid)
  assert got['modes'] == 0 and got['high_quality'] == 0.0
  assert got['reverse_kl'] == math.inf
  assert got['histogram'].sum() == 0


def test_mixed_samples():
  grid = mixtures.get('grid')
  c0, c1 = grid.centers[0].astype(np.float64), grid.centers[1].astype(np.float64)
  samples = np.concatenate([
      np.repeat(c0[None], 10, axis=0),  # high quality, mode 0
      np.repeat(c1[None] + [0.1, 0.0], 10, axis=0),  # 0.1 away: high quality, mode 1
      np.repeat(c1[None] + [0.0, 0.2], 5, axis=0),  # 0.2 away: nearest mode 1, not high quality
      np.repeat([[1.0, 1.0]], 5, axis=0),  # between modes
  ])
  got = modes.mixture_modes(samples, grid)
  assert got['modes'] == 2
  assert abs(got['high_quality'] - 20 / 30) <= 1e-12
  # p_gen = (1/2, 1/2, 0, ...): KL = 2 * 1/2 log(25 / 2).
  assert abs(got['reverse_kl'] - math.log(12.5)) <= 1e-12
  assert got['histogram'][0] == 10 and got['histogram'][1] == 10 and got['histogram'].sum() == 20


def test_stacked_mnist_all_triples():
  digits = np.stack(np.unravel_index(np.arange(1000), (10, 10, 10)), axis=1)
  got = modes.stacked_mnist_modes(np.concatenate([digits, digits]))
  assert got['modes'] == 1000 and abs(got['reverse_kl']) <= 1e-12
  np.testing.assert_array_equal(got['histogram'], np.full(1000, 2))


def test_stacked_mnist_one_triple():
  got = modes.stacked_mnist_modes(np.tile([[1, 2, 3]], (64, 1)))
  assert got['modes'] == 1 and got['histogram'][123] == 64
  assert abs(got['reverse_kl'] - math.log(1000)) <= 1e-12


def test_stacked_mnist_uneven_triples():
  digits = np.array([[0, 0, 7]] * 3 + [[9, 0, 0]])
  got = modes.stacked_mnist_modes(digits)
  assert got['modes'] == 2 and got['histogram'][7] == 3 and got['histogram'][900] == 1
  expected = 0.75 * math.log(750) + 0.25 * math.log(250)
  assert abs(got['reverse_kl'] - expected) <= 1e-12


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match='0..9'):
    modes.stacked_mnist_modes(np.array([[1, 2, 10]]))
  with pytest.raises(ValueError):
    modes.stacked_mnist_modes(np.array([[1.0, 2.0, 3.0]]))
  with pytest.raises(ValueError):
    modes.mixture_modes(np.zeros((4, 3)), mixtures.get('ring'))
