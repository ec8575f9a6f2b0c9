"""Tests of the Inception Score."""
import numpy as np
import pytest
import scipy.special

from gan_jax.errors import UserError
from gan_jax.metrics import inception_score as is_lib


def _direct_score(logits):
  """exp(mean_x KL(p(y|x) || p(y))) over all rows, straight from the definition."""
  p = scipy.special.softmax(logits.astype(np.float64), axis=1)
  p_y = p.mean(axis=0)
  return np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p_y)), axis=1)))


def test_uniform_predictions_score_one():
  mean, std = is_lib.inception_score(np.zeros((100, 10), np.float32))
  assert abs(mean - 1.0) <= 1e-12 and std <= 1e-12


def test_confident_predictions_over_equally_used_classes_score_k():
  num_classes = 10
  logits = 60.0 * np.eye(num_classes)[np.arange(10_000) % num_classes]
  mean, std = is_lib.inception_score(logits, num_splits=1)
  assert abs(mean - num_classes) <= 1e-9 and std == 0.0
  # With 10 shuffled splits each split's class use is only nearly balanced: the score
  # per split is exp(entropy of its class frequencies), slightly below K.
  mean, _ = is_lib.inception_score(logits, num_splits=10)
  assert num_classes - 0.1 <= mean <= num_classes


def test_matches_direct_formula():
  rng = np.random.default_rng(0)
  logits = 3.0 * rng.normal(size=(200, 7))
  mean, std = is_lib.inception_score(logits, num_splits=1)
  assert abs(mean - _direct_score(logits)) <= 1e-12 * mean and std == 0.0


def test_splits_follow_the_seeded_shuffle():
  rng = np.random.default_rng(1)
  logits = 2.0 * rng.normal(size=(203, 6))
  order = np.random.default_rng(7).permutation(203)
  per_split = [_direct_score(part) for part in np.array_split(logits[order], 4)]
  mean, std = is_lib.inception_score(logits, num_splits=4, seed=7)
  assert abs(mean - np.mean(per_split)) <= 1e-12 * mean
  assert abs(std - np.std(per_split)) <= 1e-9 * std


def test_seed_changes_the_score_only_slightly():
  rng = np.random.default_rng(2)
  logits = 4.0 * rng.normal(size=(5000, 10))
  mean_0, _ = is_lib.inception_score(logits, seed=0)
  mean_1, _ = is_lib.inception_score(logits, seed=1)
  assert mean_0 != mean_1
  assert abs(mean_0 - mean_1) <= 0.01 * mean_0


def test_a_class_no_sample_uses_adds_nothing():
  # Logits this far apart underflow to probability 0, and class 3 gets 0 from every sample: 0 log 0 = 0.
  logits = 1000.0 * np.eye(4)[np.arange(300) % 3]
  mean, std = is_lib.inception_score(logits, num_splits=1)
  assert abs(mean - 3.0) <= 1e-12 and std == 0.0


def test_bad_inputs_raise():
  with pytest.raises(UserError, match='num_splits'):
    is_lib.inception_score(np.zeros((5, 3)), num_splits=10)
  with pytest.raises(ValueError):
    is_lib.inception_score(np.full((5, 3), np.inf), num_splits=1)
