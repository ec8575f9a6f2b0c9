"""Kernel Inception Distance (Binkowski et al. 2018), in float64.

KID is the unbiased estimate of the squared MMD between two feature distributions under the
cubic polynomial kernel k(x, y) = (x.y / D + 1)^3. For subsets X, Y of m samples each:
  MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
            - 2 sum_{i, j} k(x_i, y_j) / m^2.
It is averaged over `num_subsets` random subsets, each drawn without replacement. Unlike FID
its expectation is 0 when both sets come from one distribution, so it can be negative.
"""
import numpy as np

from gan_jax.errors import UserError


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """k(x_i, y_j) for x [m, D], y [n, D]: float64 [m, n]."""
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 between two samples float64 [m, D], [n, D] (m, n >= 2)."""
  m, n = x.shape[0], y.shape[0]
  k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
  within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
  within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
  return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_inception_distance(feats_a: np.ndarray, feats_b: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """KID between two feature sets.

  Args:
    feats_a: float [N, D] features of one sample set (e.g. real images).
    feats_b: float [M, D] features of the other (e.g. generated images).
    num_subsets: number of random subset pairs averaged over (>= 1).
    subset_size: samples per subset, capped at min(N, M); the capped size must be >= 2.
    seed: seed of the subset draws.

  Returns:
    (mean, std) of the per-subset MMD^2 estimates, in squared kernel units; std is the
    population std over subsets.
  """
  feats_a, feats_b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
  if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1]:
    raise ValueError(f'features must be [N, D] and [M, D], got {feats_a.shape} and {feats_b.shape}')
  size = min(subset_size, feats_a.shape[0], feats_b.shape[0])
  if num_subsets < 1 or size < 2:
    raise UserError(f'KID needs num_subsets >= 1 and subsets of >= 2 samples, got num_subsets={num_subsets}, '
                    f'subset size {size} (from {feats_a.shape[0]} and {feats_b.shape[0]} samples); '
                    'evaluate more samples or raise the subset settings')
  rng = np.random.default_rng(seed)
  estimates = []
  for _ in range(num_subsets):
    x = feats_a[rng.choice(feats_a.shape[0], size, replace=False)]
    y = feats_b[rng.choice(feats_b.shape[0], size, replace=False)]
    estimates.append(mmd2_unbiased(x, y))
  return float(np.mean(estimates)), float(np.std(estimates))
