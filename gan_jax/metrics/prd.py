"""Precision/recall and density/coverage of generated features against real ones.

Each sample set is modelled as a union of balls: around every point, a ball whose radius is
the distance to its k-th nearest neighbour within the same set (the point itself excluded).
With real features R [N, D], fake features F [M, D], and radius r(x) of each such ball:
  precision = fraction of fakes inside some real ball        (Kynkaanniemi et al. 2019)
  recall    = fraction of reals inside some fake ball        (Kynkaanniemi et al. 2019)
  density   = sum_j #(real balls containing F_j) / (k M)     (Naeem et al. 2020)
  coverage  = fraction of reals whose own ball holds a fake  (Naeem et al. 2020)
"Inside" means distance <= radius, up to a relative rounding tolerance (BOUNDARY_RTOL): distances
come from |a|^2 + |b|^2 - 2 a.b in blocks, whose last bits depend on how the matrix product is
blocked, and a point exactly on a ball's boundary must not fall in or out with them. Distances
are Euclidean, in float64. Density has
expectation 1 when both sets are independent samples of one distribution; on two identical
sets it is (k + 1) / k, since each real ball then holds its centre and k neighbours.

Pairwise distances are formed `block_size` rows at a time, so peak memory is a few
block_size x max(N, M) float64 matrices rather than N x M.
"""
from typing import Iterator

import numpy as np

from gan_jax.errors import UserError

BOUNDARY_RTOL = 1e-9  # Far above float64 rounding of the distances, far below real gaps between them.


def _distance_blocks(a: np.ndarray, b: np.ndarray, block_size: int) -> Iterator[tuple[slice, np.ndarray]]:
  """Yields (rows, distances): Euclidean distances float64 [len(rows), len(b)] from a[rows] to b."""
  b_sq = np.sum(b * b, axis=1)
  for start in range(0, a.shape[0], block_size):
    rows = slice(start, min(start + block_size, a.shape[0]))
    block = a[rows]
    sq = np.sum(block * block, axis=1)[:, None] + b_sq[None, :] - 2.0 * block @ b.T
    yield rows, np.sqrt(np.maximum(sq, 0.0))


def _knn_radii(x: np.ndarray, k: int, block_size: int) -> np.ndarray:
  """Distance of each point of x [N, D] to its k-th nearest other point: float64 [N]."""
  radii = np.empty(x.shape[0])
  for rows, dist in _distance_blocks(x, x, block_size):
    # Index 0 of each sorted row is the point itself (distance 0), so the k-th neighbour is at k.
    radii[rows] = np.partition(dist, k, axis=1)[:, k]
  return radii


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 3,
                                      block_size: int = 1024) -> dict[str, float]:
  """The four manifold metrics of `fake` against `real`.

  Args:
    real: float [N, D] features of real samples.
    fake: float [M, D] features of generated samples.
    k: neighbour index defining the ball radii; 1 <= k < min(N, M).
    block_size: rows of each block of pairwise distances.

  Returns:
    {'precision', 'recall', 'coverage'} in [0, 1] and {'density'} in [0, N / k], as floats.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f'features must be [N, D] and [M, D], got {real.shape} and {fake.shape}')
  if not 1 <= k < min(real.shape[0], fake.shape[0]):
    raise UserError(f'k={k} nearest neighbours needs 1 <= k < min(N, M) = {min(real.shape[0], fake.shape[0])}; '
                    'evaluate more samples or lower k')
  if block_size < 1:
    raise ValueError(f'block_size must be >= 1, got {block_size}')
  real_radii = _knn_radii(real, k, block_size) * (1.0 + BOUNDARY_RTOL)
  fake_radii = _knn_radii(fake, k, block_size) * (1.0 + BOUNDARY_RTOL)

  fakes_in_real_balls = np.empty(fake.shape[0])  # number of real balls holding each fake
  real_in_fake_ball = np.zeros(real.shape[0], bool)
  nearest_fake = np.full(real.shape[0], np.inf)  # distance of each real to its nearest fake
  for rows, dist in _distance_blocks(fake, real, block_size):  # dist: [fakes in block, N]
    fakes_in_real_balls[rows] = np.sum(dist <= real_radii[None, :], axis=1)
    real_in_fake_ball |= np.any(dist <= fake_radii[rows, None], axis=0)
    nearest_fake = np.minimum(nearest_fake, dist.min(axis=0))
  return {
      'precision': float(np.mean(fakes_in_real_balls > 0)),
      'recall': float(np.mean(real_in_fake_ball)),
      'density': float(np.sum(fakes_in_real_balls) / (k * fake.shape[0])),
      'coverage': float(np.mean(nearest_fake <= real_radii)),
  }
