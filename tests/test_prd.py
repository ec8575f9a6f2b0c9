"""Tests of improved precision/recall and density/coverage."""
import numpy as np
import pytest

from gan_jax.errors import UserError
from gan_jax.metrics import prd


def _points_on_a_line(xs):
  return np.stack([np.asarray(xs, np.float64), np.zeros(len(xs))], axis=1)


def test_hand_checked_case():
  # k = 1. Real radii: 0 -> 1, 1 -> 1, 3 -> 2, 7 -> 4. Fake radii: 2 -> 2, 4 -> 2, 20 -> 1, 21 -> 1.
  # Fake 2 lies in the balls of reals 1 and 3, fake 4 in those of 3 and 7, fakes 20 and 21 in none:
  #   precision 2/4, density (2 + 2 + 0 + 0) / 4.
  # Reals 0 (on the boundary of fake 2's ball), 1 and 3 lie in fake balls, 7 does not: recall 3/4.
  # Nearest fakes: 0 -> 2 (2 > 1), 1 -> 2 (1 <= 1), 3 -> 2 (1 <= 2), 7 -> 4 (3 <= 4): coverage 3/4.
  real = _points_on_a_line([0, 1, 3, 7])
  fake = _points_on_a_line([2, 4, 20, 21])
  for block_size in (1, 3, 1024):
    got = prd.precision_recall_density_coverage(real, fake, k=1, block_size=block_size)
    assert got == {'precision': 0.5, 'recall': 0.75, 'density': 1.0, 'coverage': 0.75}


def test_identical_sets():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 8))
  got = prd.precision_recall_density_coverage(x, x.copy(), k=3, block_size=64)
  assert got['precision'] == got['recall'] == got['coverage'] == 1.0
  # Every real ball holds its own centre and its 3 neighbours, all of which are fakes.
  assert abs(got['density'] - 4.0 / 3.0) <= 1e-12


def test_independent_samples_of_one_distribution():
  rng = np.random.default_rng(1)
  real, fake = rng.normal(size=(1000, 4)), rng.normal(size=(1000, 4))
  got = prd.precision_recall_density_coverage(real, fake, k=3, block_size=256)
  assert 0.9 <= got['precision'] <= 1.0 and 0.9 <= got['recall'] <= 1.0
  assert 0.9 <= got['density'] <= 1.1
  # Expected coverage for equal-size sets is 1 - 2^-k = 0.875 (Naeem et al. 2020).
  assert 0.83 <= got['coverage'] <= 0.92


def test_far_apart_sets():
  rng = np.random.default_rng(2)
  real = rng.normal(size=(200, 5))
  got = prd.precision_recall_density_coverage(real, 1000.0 + rng.normal(size=(150, 5)))
  assert got == {'precision': 0.0, 'recall': 0.0, 'density': 0.0, 'coverage': 0.0}


def test_block_size_does_not_change_the_result():
  rng = np.random.default_rng(3)
  real, fake = rng.normal(size=(130, 6)), 0.3 + rng.normal(size=(90, 6))
  reference = prd.precision_recall_density_coverage(real, fake, k=5, block_size=1024)
  assert 0.0 < reference['precision'] < 1.0 and 0.0 < reference['recall'] < 1.0
  for block_size in (1, 7, 64):
    got = prd.precision_recall_density_coverage(real, fake, k=5, block_size=block_size)
    for name, value in reference.items():
      assert abs(got[name] - value) <= 1e-12


def test_bad_inputs_raise():
  with pytest.raises(UserError, match='k=3'):
    prd.precision_recall_density_coverage(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
  with pytest.raises(ValueError):
    prd.precision_recall_density_coverage(np.zeros((10, 2)), np.zeros((10, 3)))
