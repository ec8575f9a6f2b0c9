"""PSNR and SSIM (gan_jax/metrics/image_quality.py) against scikit-image's implementations."""
import numpy as np
from skimage import metrics as skimage_metrics

from gan_jax.data import idx
from gan_jax.metrics import image_quality


def _pairs(data_dir, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
  """Real digits in [-1, 1] and distorted copies (noise, blur-like shifts, a dark square)."""
  images, _ = idx.load('mnist', 'test', str(data_dir), download=False)
  targets = images[:n].astype(np.float32) / 127.5 - 1.0
  rng = np.random.default_rng(0)
  outputs = np.clip(targets + rng.normal(0, 0.2, targets.shape), -1, 1)
  outputs[1] = np.roll(targets[1], 1, axis=1)
  outputs[2, 5:15, 5:15] = -1.0
  outputs[3] = targets[3] * 0.5
  return outputs.astype(np.float32), targets


def test_psnr_and_ssim_match_scikit_image(data_dir):
  outputs, targets = _pairs(data_dir)
  psnr = np.asarray(image_quality.psnr(outputs, targets))
  ssim = np.asarray(image_quality.ssim(outputs, targets))
  unit_out, unit_target = (outputs.astype(np.float64) + 1) / 2, (targets.astype(np.float64) + 1) / 2
  want_psnr = [skimage_metrics.peak_signal_noise_ratio(t, o, data_range=1.0) for o, t in zip(unit_out, unit_target)]
  want_ssim = [skimage_metrics.structural_similarity(o, t, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                                     use_sample_covariance=False, channel_axis=-1)
               for o, t in zip(unit_out, unit_target)]
  np.testing.assert_allclose(psnr, want_psnr, rtol=1e-4)
  np.testing.assert_allclose(ssim, want_ssim, atol=2e-4)
  assert np.ptp(want_ssim) > 0.3  # The distortions span a wide range of similarity.


def test_psnr_of_a_constant_offset_is_analytic_and_identical_images_score_one():
  rng = np.random.default_rng(1)
  targets = rng.uniform(-0.5, 0.5, (3, 16, 16, 3)).astype(np.float32)
  offset = 0.1  # On [0, 1] the offset is 0.05: MSE = 0.0025, PSNR = -10 log10(0.0025).
  np.testing.assert_allclose(image_quality.psnr(targets + offset, targets), -10 * np.log10(0.05 ** 2), rtol=1e-4)
  np.testing.assert_allclose(image_quality.ssim(targets, targets), 1.0, atol=1e-5)
  assert np.all(np.asarray(image_quality.ssim(-targets, targets)) < 0.5)
