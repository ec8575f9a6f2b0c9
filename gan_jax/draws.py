"""Random draws that do not depend on how many devices share a batch.

Under a data-parallel axis (gan_jax.train.program), each device holds B of the global batch's
`axis_size * B` examples. A per-example draw made with `rows` is this device's rows of ONE draw for
the global batch from the same key, so a run gives the same latents, real batches, penalty
interpolates and noise on 1 or N devices (up to float reassociation of the averaged gradients).
"""
from typing import Callable

import jax

Sampler = Callable[[jax.Array, tuple[int, ...]], jax.Array]


def rows(sample: Sampler, rng: jax.Array, shape: tuple[int, ...], axis_name: str | None = None) -> jax.Array:
  """`sample(rng, shape)` for a batch of shape[0] rows; under `axis_name`, this device's shape[0]
  rows of `sample(rng, (axis_size * shape[0], *shape[1:]))`."""
  if axis_name is None:
    return sample(rng, shape)
  n = shape[0]
  full = sample(rng, (jax.lax.axis_size(axis_name) * n, *shape[1:]))
  return jax.lax.dynamic_slice_in_dim(full, jax.lax.axis_index(axis_name) * n, n)
