"""Synthetic 2D Gaussian mixtures used to study mode collapse.

- ring: 8 modes evenly spaced on a circle of radius 1, std 0.01 (Metz et al. 2017 setting).
- grid: 25 modes at {-4, -2, 0, 2, 4}^2, std 0.05 (VEEGAN / PacGAN setting).
Each mode has equal weight.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Mixture:
  """An equal-weight isotropic Gaussian mixture in 2D.

  Attributes:
    centers: float32 [K, 2] mode means.
    std: standard deviation of every mode (same units as the centers).
  """
  centers: np.ndarray
  std: float

  def sample(self, rng: jax.Array, n: int) -> jax.Array:
    """Draws n points: float32 [n, 2]. Jittable (n static)."""
    k_rng, e_rng = jax.random.split(rng)
    idx = jax.random.randint(k_rng, (n,), 0, self.centers.shape[0])
    noise = jax.random.normal(e_rng, (n, 2), jnp.float32)
    return jnp.asarray(self.centers)[idx] + self.std * noise


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture:
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return Mixture(centers.astype(np.float32), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
  coords = spacing * (np.arange(side) - (side - 1) / 2)
  xx, yy = np.meshgrid(coords, coords, indexing='ij')
  centers = np.stack([xx.ravel(), yy.ravel()], axis=1)
  return Mixture(centers.astype(np.float32), std)


MIXTURES = {'ring': ring, 'grid': grid}


def get(name: str) -> Mixture:
  if name not in MIXTURES:
    raise UserError(f'unknown mixture {name!r}; choose one of {sorted(MIXTURES)}')
  return MIXTURES[name]()
