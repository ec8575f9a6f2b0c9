"""Inception Score (Salimans et al. 2016) from classifier outputs, in float64.

IS = exp(E_x KL(p(y|x) || p(y))), where p(y) is the mean of p(y|x) over the samples. As in
the original protocol, the samples are split into `num_splits` parts, the score is computed
on each part (with that part's p(y)), and the mean and standard deviation of the per-part
scores are reported. The samples are shuffled with `seed` before splitting.
It ranges from 1 (every prediction equal to p(y)) to K (confident, all K classes equally used).
"""
import numpy as np
import scipy.special

from gan_jax.errors import UserError


def _split_scores(log_probs: np.ndarray, num_splits: int, seed: int) -> tuple[float, float]:
  """Mean and std of the per-split scores; log_probs is float64 [N, K]."""
  n = log_probs.shape[0]
  if not 1 <= num_splits <= n:
    raise UserError(f'num_splits={num_splits} must be between 1 and the number of samples ({n}); '
                    'evaluate more samples or use fewer splits')
  order = np.random.default_rng(seed).permutation(n)
  scores = []
  for part in np.array_split(log_probs[order], num_splits):
    probs = np.exp(part)
    with np.errstate(divide='ignore', invalid='ignore'):
      log_marginal = np.log(probs.mean(axis=0))
      # 0 log 0 = 0: classes a sample gives no mass add nothing to its KL.
      terms = np.where(probs > 0, probs * (part - log_marginal), 0.0)
    scores.append(np.exp(terms.sum(axis=1).mean()))
  return float(np.mean(scores)), float(np.std(scores))


def inception_score(logits: np.ndarray, num_splits: int = 10, seed: int = 0) -> tuple[float, float]:
  """Inception Score from classifier logits.

  Args:
    logits: float [N, K] unnormalised log-probabilities (softmax is taken here, in float64).
    num_splits: number of parts the N samples are split into (1 <= num_splits <= N).
    seed: seed of the shuffle before splitting.

  Returns:
    (mean, std) of the per-split scores; std is the population std over splits.
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or not np.all(np.isfinite(logits)):
    raise ValueError(f'logits must be finite float [N, K], got shape {logits.shape}')
  return _split_scores(scipy.special.log_softmax(logits, axis=1), num_splits, seed)

