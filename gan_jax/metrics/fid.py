"""Frechet distance between Gaussians fitted to features (FID, Heusel et al. 2017).

For N(mu1, S1) and N(mu2, S2):
  d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^(1/2) S2 S1^(1/2))^(1/2)).
The trace term is computed from eigendecompositions of symmetric PSD matrices only,
which is stable where a general matrix square root of S1 S2 is not. Everything is float64.

`FeatureStats` accumulates the mean and covariance of a feature stream batch by batch,
so the statistics of 50k samples never need all the features in memory at once.
"""
import os

import numpy as np

from gan_jax.errors import UserError


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix; negative eigenvalues are clipped to 0."""
  eigvals, eigvecs = np.linalg.eigh(matrix)
  return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def _check_moments(mu: np.ndarray, sigma: np.ndarray, name: str) -> None:
  if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
    raise ValueError(f'{name}: expected mean [D] and covariance [D, D], got {mu.shape} and {sigma.shape}')
  if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
    raise ValueError(f'{name}: mean or covariance has non-finite entries')


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
  """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

  Args:
    mu1, mu2: means, float [D].
    sigma1, sigma2: covariances, float [D, D], symmetric positive semi-definite. They are
      symmetrised, and eigenvalues below 0 (rounding of singular covariances) count as 0.

  Returns:
    The distance in squared feature units, as a Python float >= 0 (rounding below 0 is
    clamped to 0).

  Raises:
    ValueError: shapes disagree, an input is not finite, or the result is not finite.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  _check_moments(mu1, sigma1, 'first Gaussian')
  _check_moments(mu2, sigma2, 'second Gaussian')
  if mu1.shape != mu2.shape:
    raise ValueError(f'feature dimensions differ: {mu1.shape[0]} vs {mu2.shape[0]}')
  sigma1 = 0.5 * (sigma1 + sigma1.T)
  sigma2 = 0.5 * (sigma2 + sigma2.T)
  root1 = _psd_sqrt(sigma1)
  inner = root1 @ sigma2 @ root1
  inner_eigvals = np.linalg.eigvalsh(0.5 * (inner + inner.T))
  trace_sqrt = np.sum(np.sqrt(np.clip(inner_eigvals, 0.0, None)))
  diff = mu1 - mu2
  distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
  if not np.isfinite(distance):
    raise ValueError(f'Frechet distance is not finite ({distance})')
  return float(max(distance, 0.0))


class FeatureStats:
  """Streaming mean and covariance of feature vectors, accumulated in float64.

  Batches are merged with the pairwise update of Chan, Golub & LeVeque (1979): each batch
  contributes its own mean and centred scatter matrix, so no sum of raw squares (which
  cancels catastrophically) is ever formed.
  """

  def __init__(self):
    self._count = 0
    self._mean = None  # float64 [D]
    self._scatter = None  # float64 [D, D]: sum over samples of (x - mean)(x - mean)^T

  def update(self, features: np.ndarray) -> None:
    """Adds a batch of features: float [B, D] of any float dtype (B may be 0)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2:
      raise ValueError(f'features must be [B, D], got shape {x.shape}')
    if self._mean is not None and x.shape[1] != self._mean.shape[0]:
      raise ValueError(f'features have dimension {x.shape[1]}, earlier batches had {self._mean.shape[0]}')
    n_b = x.shape[0]
    if n_b == 0:
      return
    mean_b = x.mean(axis=0)
    centred = x - mean_b
    scatter_b = centred.T @ centred
    if self._count == 0:
      self._count, self._mean, self._scatter = n_b, mean_b, scatter_b
      return
    n_a = self._count
    n = n_a + n_b
    delta = mean_b - self._mean
    self._mean = self._mean + delta * (n_b / n)
    self._scatter = self._scatter + scatter_b + np.outer(delta, delta) * (n_a * n_b / n)
    self._count = n

  @property
  def count(self) -> int:
    """Number of feature vectors seen."""
    return self._count

  @property
  def dim(self) -> int:
    """Feature dimension D."""
    self._require(1)
    return self._mean.shape[0]

  @property
  def mean(self) -> np.ndarray:
    """Sample mean, float64 [D]."""
    self._require(1)
    return self._mean.copy()

  @property
  def cov(self) -> np.ndarray:
    """Unbiased sample covariance (divides by count - 1), float64 [D, D]."""
    self._require(2)
    return self._scatter / (self._count - 1)

  def _require(self, n: int) -> None:
    if self._count < n:
      raise ValueError(f'need at least {n} feature vectors, have {self._count}')

  def save(self, path: str) -> None:
    """Writes count, mu [D] and sigma [D, D] (float64) to the .npz file `path`, atomically."""
    tmp_path = f'{path}.tmp'
    with open(tmp_path, 'wb') as f:
      np.savez(f, count=np.int64(self.count), mu=self.mean, sigma=self.cov)
    os.replace(tmp_path, path)

  @classmethod
  def load(cls, path: str) -> 'FeatureStats':
    """Reads statistics written by `save`.

    Raises:
      UserError: the file is missing or is not a feature-statistics file.
    """
    try:
      with np.load(path) as data:
        count, mu, sigma = int(data['count']), data['mu'], data['sigma']
    except FileNotFoundError:
      raise UserError(f'feature statistics file {path} not found; check the path or compute the statistics '
                      'first') from None
    except (KeyError, ValueError, OSError) as e:
      raise UserError(f'{path} is not a feature-statistics file (needs count, mu, sigma): {e}; '
                      'delete it to recompute') from None
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if count < 2 or mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
      raise UserError(f'{path} holds inconsistent statistics (count={count}, mu {mu.shape}, sigma {sigma.shape}); '
                      'delete it to recompute')
    stats = cls()
    stats._count, stats._mean, stats._scatter = count, mu, sigma * (count - 1)
    return stats


def frechet_distance_from_stats(a: FeatureStats, b: FeatureStats) -> float:
  """`frechet_distance` between the Gaussians fitted to two feature streams."""
  return frechet_distance(a.mean, a.cov, b.mean, b.cov)
