"""Reconstruction metrics of image-to-image tasks: PSNR and SSIM between outputs and their targets.

Images are in the models' range [-1, 1] and compared on [0, 1] (x -> (x + 1) / 2, data range 1).
SSIM is Wang et al. (2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, the
mean of the SSIM map over the 'valid' window positions and the channels, computed by dm-pix
(`pix.ssim`); PSNR is 10 log10(1 / MSE) per image. tests/test_image_quality.py checks both against
scikit-image's implementations.
"""
import dm_pix as pix
import jax
import jax.numpy as jnp


def _to_unit(images: jax.Array) -> jax.Array:
  return (jnp.asarray(images, jnp.float32) + 1.0) / 2.0


@jax.jit
def psnr(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """float32 [N] PSNR in dB of each output against its target; both [N, H, W, C] in [-1, 1]."""
  return pix.psnr(_to_unit(outputs), _to_unit(targets))


@jax.jit
def ssim(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """float32 [N] SSIM of each output against its target; both [N, H, W, C] in [-1, 1], H, W >= 11."""
  return pix.ssim(_to_unit(outputs), _to_unit(targets), max_val=1.0, filter_size=11, filter_sigma=1.5)
