"""Mode-coverage metrics for the mode-collapse benchmarks.

2D mixtures (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018), evaluated on 2,500
generated points in the protocol:
  - each sample is assigned to its nearest mode centre (Euclidean distance);
  - a sample is high quality if that distance is <= 3 * std of the mixture;
  - modes: number of modes whose nearest-mode set holds at least one high-quality sample;
  - high_quality: fraction of all samples that are high quality;
  - histogram: int64 [K] counts of high-quality samples per mode;
  - reverse_kl: KL(p_gen || p_true) = sum_{i: p_gen(i) > 0} p_gen(i) log(K p_gen(i)), where
    p_gen = histogram / histogram.sum() and p_true is uniform over the K modes (0 log 0 = 0);
    in nats, 0 for perfect balance, log K when all high-quality samples hit one mode, and
    inf when no sample is high quality (p_gen is undefined; the worst value is reported).

Stacked MNIST (Metz et al. 2017): three digits stacked as channels give 1000 modes. From the
digit predicted for each channel: modes = number of distinct triples among the samples, and
reverse_kl = KL(p_gen || uniform over 1000) of the triple histogram, as above.
"""
import numpy as np

from gan_jax.data.mixtures import Mixture

STACKED_MNIST_MODES = 1000


def _reverse_kl_to_uniform(histogram: np.ndarray) -> float:
  """KL(histogram / total || uniform over len(histogram)) in nats; inf for an empty histogram."""
  total = histogram.sum()
  if total == 0:
    return float('inf')
  p = histogram[histogram > 0] / total
  return float(max(np.sum(p * np.log(p * histogram.shape[0])), 0.0))


def mixture_modes(samples: np.ndarray, mixture: Mixture) -> dict:
  """Mode statistics of generated 2D points against a mixture (see the module docstring).

  Args:
    samples: float [N, 2] generated points, in the mixture's coordinates.
    mixture: the true mixture (K centres, one std).

  Returns:
    {'modes': int, 'high_quality': float in [0, 1], 'reverse_kl': float (nats),
     'histogram': int64 [K]}.
  """
  samples = np.asarray(samples, np.float64)
  if samples.ndim != 2 or samples.shape[1] != 2 or samples.shape[0] == 0:
    raise ValueError(f'samples must be float [N, 2] with N >= 1, got shape {samples.shape}')
  centers = np.asarray(mixture.centers, np.float64)
  dist = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=2)  # [N, K]
  nearest = np.argmin(dist, axis=1)
  high_quality = dist[np.arange(samples.shape[0]), nearest] <= 3.0 * mixture.std
  histogram = np.bincount(nearest[high_quality], minlength=centers.shape[0]).astype(np.int64)
  return {
      'modes': int(np.count_nonzero(histogram)),
      'high_quality': float(np.mean(high_quality)),
      'reverse_kl': _reverse_kl_to_uniform(histogram),
      'histogram': histogram,
  }


def stacked_mnist_modes(digits: np.ndarray) -> dict:
  """Mode statistics of Stacked MNIST samples.

  Args:
    digits: int [N, 3] digit (0-9) predicted for each channel of each sample, N >= 1.

  Returns:
    {'modes': int in [0, 1000], 'reverse_kl': float (nats), 'histogram': int64 [1000]},
    where triple (a, b, c) is histogram bin 100 a + 10 b + c.
  """
  digits = np.asarray(digits)
  if (digits.ndim != 2 or digits.shape[1] != 3 or digits.shape[0] == 0
      or not np.issubdtype(digits.dtype, np.integer)):
    raise ValueError(f'digits must be int [N, 3] with N >= 1, got {digits.dtype} {digits.shape}')
  if digits.min() < 0 or digits.max() > 9:
    raise ValueError(f'digits must lie in 0..9, got range {digits.min()}..{digits.max()}')
  triples = digits.astype(np.int64) @ np.array([100, 10, 1])
  histogram = np.bincount(triples, minlength=STACKED_MNIST_MODES).astype(np.int64)
  return {
      'modes': int(np.count_nonzero(histogram)),
      'reverse_kl': _reverse_kl_to_uniform(histogram),
      'histogram': histogram,
  }
