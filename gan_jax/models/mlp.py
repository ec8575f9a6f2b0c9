"""Fully connected G and D for low-dimensional data such as the 2D Gaussian mixtures."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import layers


class Generator(nn.Module):
  """z [B, z_dim] -> points [B, out_dim] (unbounded, float32)."""
  out_dim: int = 2
  hidden: int = 128
  layers: int = 3
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # No train-dependent layers.
    x = z
    for _ in range(self.layers):
      x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(x))
    return nn.Dense(self.out_dim, dtype=self.dtype)(x).astype(jnp.float32)


class Discriminator(nn.Module):
  """points [B, D] -> logits [B] (float32).

  norm: 'none', 'layer' (LayerNorm after each hidden layer) or 'spectral' (every layer divided
  by its largest singular value). input_scale multiplies the input points first. With
  `features=True` returns (logits, last hidden features).
  """
  hidden: int = 128
  layers: int = 3
  norm: str = 'none'
  dtype: jnp.dtype = jnp.float32
  input_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, features: bool = False):
    def dense(width, x):
      layer = nn.Dense(width, dtype=self.dtype)
      return layers.SpectralNorm(layer)(x, update_stats=train) if self.norm == 'spectral' else layer(x)

    if self.input_scale != 1.0:
      x = x * self.input_scale
    for _ in range(self.layers):
      x = dense(self.hidden, x)
      if self.norm == 'layer':
        x = nn.LayerNorm(dtype=self.dtype)(x)
      x = nn.relu(x)
    logits = dense(1, x)[:, 0].astype(jnp.float32)
    return (logits, x.astype(jnp.float32)) if features else logits
