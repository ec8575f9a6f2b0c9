"""Tests of the Frechet distance and the streaming feature statistics."""
import numpy as np
import pytest
import scipy.linalg

from gan_jax.errors import UserError
from gan_jax.metrics import fid


def _random_gaussian(rng, dim):
  """A random mean [dim] and a well-conditioned covariance [dim, dim] (eigenvalues >= 0.5)."""
  a = rng.normal(size=(dim, dim))
  return rng.normal(size=dim), a @ a.T / dim + 0.5 * np.eye(dim)


def _sqrtm_reference(mu1, sigma1, mu2, sigma2):
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  diff = mu1 - mu2
  return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean).real


def test_matches_scipy_sqrtm_reference():
  rng = np.random.default_rng(0)
  for dim in (1, 5, 32):
    mu1, sigma1 = _random_gaussian(rng, dim)
    mu2, sigma2 = _random_gaussian(rng, dim)
    expected = _sqrtm_reference(mu1, sigma1, mu2, sigma2)
    assert abs(fid.frechet_distance(mu1, sigma1, mu2, sigma2) - expected) <= 1e-6 * abs(expected)


def test_diagonal_closed_form_including_singular_covariance():
  mu1, mu2 = np.array([0.0, 1.0, -2.0, 3.0]), np.array([1.0, 1.0, 0.5, 0.0])
  s1, s2 = np.array([1.0, 4.0, 0.0, 2.0]), np.array([9.0, 1.0, 2.25, 0.0])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  got = fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
  assert abs(got - expected) <= 1e-10 * expected


def test_invariant_under_a_common_rotation():
  rng = np.random.default_rng(1)
  q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  s1, s2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  got = fid.frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
  assert abs(got - expected) <= 1e-9 * expected


def test_distance_of_a_set_to_itself_is_zero():
  rng = np.random.default_rng(2)
  features = rng.normal(size=(50, 64))  # fewer samples than dimensions: singular covariance
  mu, sigma = features.mean(axis=0), np.cov(features, rowvar=False)
  assert 0.0 <= fid.frechet_distance(mu, sigma, mu, sigma) <= 1e-8 * np.trace(sigma)


@pytest.mark.parametrize('bad', ['mu1', 'sigma2'])
def test_non_finite_input_raises(bad):
  rng = np.random.default_rng(3)
  args = dict(zip(('mu1', 'sigma1'), _random_gaussian(rng, 3)))
  args.update(zip(('mu2', 'sigma2'), _random_gaussian(rng, 3)))
  args[bad] = args[bad].copy()
  args[bad].flat[0] = np.nan
  with pytest.raises(ValueError, match='non-finite'):
    fid.frechet_distance(**args)


def test_mismatched_shapes_raise():
  with pytest.raises(ValueError):
    fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
  with pytest.raises(ValueError):
    fid.frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))


def _stream(features, sizes):
  stats = fid.FeatureStats()
  start = 0
  for size in sizes:
    stats.update(features[start:start + size])
    start += size
  assert start == features.shape[0]
  return stats


def test_streamed_stats_equal_whole_set_stats():
  rng = np.random.default_rng(4)
  # A large common offset: a sum-of-squares accumulator would lose most digits here.
  features = (1e4 + rng.normal(size=(1000, 12)) * rng.uniform(0.1, 3.0, 12)).astype(np.float32)
  stats = _stream(features, [1, 7, 0, 300, 2, 690])
  whole = features.astype(np.float64)
  assert stats.count == 1000 and stats.dim == 12
  assert stats.mean.dtype == np.float64 and stats.cov.dtype == np.float64
  np.testing.assert_allclose(stats.mean, whole.mean(axis=0), rtol=1e-13, atol=0)
  np.testing.assert_allclose(stats.cov, np.cov(whole, rowvar=False), rtol=0, atol=1e-10)


def test_stats_need_enough_samples_and_one_dimension():
  stats = fid.FeatureStats()
  with pytest.raises(ValueError):
    _ = stats.mean
  stats.update(np.zeros((1, 4)))
  with pytest.raises(ValueError):
    _ = stats.cov
  with pytest.raises(ValueError):
    stats.update(np.zeros((2, 5)))


def test_save_load_round_trip_and_continue_streaming(tmp_path):
  rng = np.random.default_rng(5)
  features = rng.normal(size=(400, 7))
  path = str(tmp_path / 'stats.npz')
  _stream(features[:250], [100, 150]).save(path)
  loaded = fid.FeatureStats.load(path)
  assert loaded.count == 250
  np.testing.assert_allclose(loaded.mean, features[:250].mean(axis=0), rtol=1e-13, atol=0)
  np.testing.assert_allclose(loaded.cov, np.cov(features[:250], rowvar=False), rtol=0, atol=1e-13)
  loaded.update(features[250:])
  np.testing.assert_allclose(loaded.cov, np.cov(features, rowvar=False), rtol=0, atol=1e-13)


def test_load_of_missing_or_foreign_file_raises_user_error(tmp_path):
  with pytest.raises(UserError, match='not found'):
    fid.FeatureStats.load(str(tmp_path / 'missing.npz'))
  foreign = str(tmp_path / 'foreign.npz')
  np.savez(foreign, mu=np.zeros(3))
  with pytest.raises(UserError, match='not a feature-statistics file'):
    fid.FeatureStats.load(foreign)


def test_frechet_distance_from_stats():
  rng = np.random.default_rng(6)
  a, b = rng.normal(size=(300, 5)), 0.5 + 2.0 * rng.normal(size=(200, 5))
  expected = _sqrtm_reference(a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False))
  got = fid.frechet_distance_from_stats(_stream(a, [300]), _stream(b, [64, 64, 72]))
  assert abs(got - expected) <= 1e-6 * expected
