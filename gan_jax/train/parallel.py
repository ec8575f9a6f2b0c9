"""Arrays of a run trained by several processes: replicated state, this process's copy, its part
of a host-drawn batch, and the check that the processes still agree.

The programs themselves are built in gan_jax.train.program (jit + shard_map over the mesh); the
processes are started and coordinated by gan_jax.distributed. Every process runs the same program
and draws its own part of the global batch (`host_batch`, or inside the program from one global draw).
"""
import hashlib

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

P = jax.sharding.PartitionSpec


def replicate(tree, mesh: jax.sharding.Mesh):
  """A copy of `tree` on every device of `mesh` (every process must pass the same values)."""
  sharding = jax.sharding.NamedSharding(mesh, P())
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    if isinstance(x, jax.Array) and not x.is_fully_addressable:  # Already global: this process's copy.
      x = x.addressable_data(0)
    return jax.make_array_from_process_local_data(sharding, np.asarray(x))

  return jax.tree.map(put, tree)


def check_replicas(tree) -> None:
  """With several processes: checks that each holds the same values of the replicated `tree` (a
  desynchronised host would otherwise train on silently); raises RuntimeError when they differ."""
  if jax.process_count() == 1:
    return
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(local_replica(tree)):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    digest.update(np.asarray(leaf).tobytes())
  digests = np.asarray(multihost_utils.process_allgather(np.frombuffer(digest.digest()[:16], np.uint8)))
  if not (digests == digests[0]).all():
    shown = ', '.join(bytes(d).hex() for d in digests.reshape(len(digests), -1))
    raise RuntimeError(f'the processes hold different parameters (state digests by process: {shown})')
  logging.info('state identical in all %d processes', jax.process_count())


def local_replica(tree):
  """This process's first copy of each replicated array (for programs that only this process runs)."""
  return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


def host_batch(source, seed: int, step: int, batch, sharding: jax.sharding.NamedSharding) -> dict:
  """Iteration `step`'s global host-drawn batch, 'image' [d_steps, batch_size, ...] (`batch`: a
  schedule.BatchSpec), split over devices by `sharding`.

  Each process draws only its own part, seeded by (seed, step[, process]) so that a resumed run
  replays the same batches (one process: the same draws as on one device).
  """
  count = jax.process_count()
  seeds = [seed, step] if count == 1 else [seed, step, jax.process_index()]
  local = batch.batch_size // count
  flat = source.draw_host(np.random.default_rng(seeds), batch.d_steps * local)
  return {k: jax.make_array_from_process_local_data(sharding, v.reshape(batch.d_steps, local, *v.shape[1:]),
                                                    (batch.d_steps, batch.batch_size, *v.shape[1:]))
          for k, v in flat.items()}
