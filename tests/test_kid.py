"""Tests of the Kernel Inception Distance."""
import numpy as np
import pytest

from gan_jax.errors import UserError
from gan_jax.metrics import kid


def _loop_mmd2(x, y):
  """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, by explicit loops over pairs."""
  d = x.shape[1]
  k = lambda a, b: (np.dot(a, b) / d + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2.0 * xy


def test_mmd2_matches_loop_reference():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(12, 5)), 0.3 + rng.normal(size=(17, 5))
  expected = _loop_mmd2(x, y)
  assert abs(kid.mmd2_unbiased(x, y) - expected) <= 1e-12 * abs(expected)


def test_full_size_subsets_match_loop_reference():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(25, 4)).astype(np.float32), rng.normal(size=(25, 4)) * 1.5
  expected = _loop_mmd2(a.astype(np.float64), b)
  # subset_size is capped at 25, so every subset is the whole set in another order.
  mean, std = kid.kernel_inception_distance(a, b, num_subsets=3, subset_size=1000)
  assert abs(mean - expected) <= 1e-10 * abs(expected)
  assert std <= 1e-10 * abs(expected)


def test_same_distribution_is_unbiased():
  rng = np.random.default_rng(2)
  a, b = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
  mean, std = kid.kernel_inception_distance(a, b, num_subsets=30, subset_size=100)
  assert std > 0.0
  assert abs(mean) <= 0.5 * std


def test_shifted_distribution_is_clearly_positive():
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(1000, 8)), 0.5 + rng.normal(size=(1000, 8))
  mean, std = kid.kernel_inception_distance(a, b, num_subsets=30, subset_size=100)
  assert mean >= 3.0 * std > 0.0


def test_seed_fixes_the_subsets():
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(200, 3)), rng.normal(size=(300, 3))
  first = kid.kernel_inception_distance(a, b, num_subsets=5, subset_size=50, seed=9)
  assert kid.kernel_inception_distance(a, b, num_subsets=5, subset_size=50, seed=9) == first
  assert kid.kernel_inception_distance(a, b, num_subsets=5, subset_size=50, seed=10) != first


def test_bad_inputs_raise():
  with pytest.raises(UserError, match='subset'):
    kid.kernel_inception_distance(np.zeros((1, 3)), np.zeros((10, 3)))
  with pytest.raises(UserError, match='num_subsets'):
    kid.kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 3)), num_subsets=0)
  with pytest.raises(ValueError):
    kid.kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 4)))
