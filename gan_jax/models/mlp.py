"""Fully connected G and D for low-dimensional data such as the 2D Gaussian mixtures."""
import flax.linen as nn
import jax
import jax.numpy as jnp


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
  """points [B, D] -> logits [B] (float32)."""
  hidden: int = 128
  layers: int = 3
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    for _ in range(self.layers):
      x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(x))
    return nn.Dense(1, dtype=self.dtype)(x)[:, 0].astype(jnp.float32)
