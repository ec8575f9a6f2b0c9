"""Data parallelism over every device of every process: one jitted iteration, `shard_map`ped over 'batch'.

The mesh is one axis, AXIS ('batch'), over `jax.devices()` (all processes' devices). The train
state, the on-device data set and the keys are replicated; each device trains on its
`batch_size / devices` examples, and the step (built with `axis_name=AXIS`) averages gradients,
BatchNorm statistics (the models' BatchNorm takes its batch statistics over the axis, i.e. the
global batch) and metrics with `pmean`, so every device ends the iteration with the same state.

Why `jax.jit` + `shard_map` rather than `pmap`: one compiled program over a Mesh spans the
devices of all hosts, its inputs and outputs are ordinary global `jax.Array`s that Orbax saves
and restores collectively, and it is the form newer JAX recommends (pmap is a thin layer over it).
Why not automatic sharding (`jit` with NamedSharding only): the per-device code must state
which statistics are global (BatchNorm, gradients) and which per-device randomness differs;
shard_map keeps that explicit and identical to what `jax.vmap(..., axis_name=AXIS)` computes.

Multi-host: `initialize_distributed` starts `jax.distributed` (CPU collectives over gloo); every
process runs the same program, draws its own part of the global batch (`host_batch`, or inside
the program from its devices' keys), and only process 0 writes files (`is_main`).
"""
import os
from typing import Any, Callable

import jax
from jax.experimental import multihost_utils
import numpy as np

from gan_jax.errors import UserError
from gan_jax.train import steps as steps_lib

AXIS = 'batch'
P = jax.sharding.PartitionSpec


def initialize_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> bool:
  """Starts multi-process JAX from flags, else from $JAX_COORDINATOR_ADDRESS / $JAX_NUM_PROCESSES /
  $JAX_PROCESS_ID; does nothing (returns False) when neither names a coordinator.

  coordinator='auto' lets JAX detect the cluster (SLURM, Cloud TPU, Open MPI). Must run before
  any other JAX call.
  """
  coordinator = coordinator or os.environ.get('JAX_COORDINATOR_ADDRESS')
  if not coordinator:
    if num_processes is not None or process_id is not None:
      raise UserError('--num_processes/--process_id need --coordinator=HOST:PORT (process 0\'s address)')
    return False
  if num_processes is None and os.environ.get('JAX_NUM_PROCESSES'):
    num_processes = int(os.environ['JAX_NUM_PROCESSES'])
  if process_id is None and os.environ.get('JAX_PROCESS_ID'):
    process_id = int(os.environ['JAX_PROCESS_ID'])
  if coordinator == 'auto':
    jax.distributed.initialize()
    return True
  if num_processes is None or process_id is None or not 0 <= process_id < num_processes:
    raise UserError(f'--coordinator={coordinator} needs --num_processes=N and --process_id=0..N-1 '
                    f'(got {num_processes}, {process_id})')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU devices talk over TCP.
  jax.distributed.initialize(coordinator, num_processes, process_id)
  return True


def is_main() -> bool:
  """Whether this process writes the run's files (logs, samples, W&B, config/status)."""
  return jax.process_index() == 0


def sync(name: str) -> None:
  """Waits until every process reaches the barrier `name` (nothing to do with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def make_mesh(batch_size: int) -> jax.sharding.Mesh:
  """The 1-axis mesh over all devices of all processes.

  Raises:
    UserError if `batch_size` (the global batch) does not split evenly over the devices.
  """
  devices = jax.devices()
  if batch_size % len(devices):
    raise UserError(f'data.batch_size={batch_size} does not split evenly over {len(devices)} devices '
                    f'({jax.process_count()} process(es)); use a multiple of {len(devices)}')
  return jax.sharding.Mesh(np.array(devices), (AXIS,))


def replicate(tree, mesh: jax.sharding.Mesh):
  """A copy of `tree` on every device of `mesh` (every process must pass the same values)."""
  sharding = jax.sharding.NamedSharding(mesh, P())
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    return jax.make_array_from_process_local_data(sharding, np.asarray(x))

  return jax.tree.map(put, tree)


def local_replica(tree):
  """This process's first copy of each replicated array (for programs that only this process runs)."""
  return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


def make_iteration(train_step: Callable, draw: Callable[[Any, jax.Array, int], dict], mesh: jax.sharding.Mesh, *,
                   batch_size: int, d_steps: int, on_device: bool) -> Callable:
  """`steps.make_iteration` over all devices of `mesh`: `iterate(state, metric_sums, data, key)`.

  train_step: built with `StepOptions.axis_name=AXIS` (and models with `axis_name=AXIS`).
  batch_size: the global batch; each device trains on batch_size / mesh.size examples.
  data: on_device=True: the Source's arrays, replicated; else the global host batch from
    `host_batch`, 'image' [d_steps, batch_size, ...] split over devices along its batch axis.
  state, metric_sums and key are replicated (`replicate`); the outputs are replicated too.
  """
  iterate = steps_lib.iteration_fn(train_step, draw, batch_size=batch_size // mesh.size, d_steps=d_steps,
                                   on_device=on_device, axis_name=AXIS)
  data_spec = P() if on_device else P(None, AXIS)
  # check_vma=False: gradients of replicated params are per-device values averaged by the step's
  # own pmean (as under pmap/vmap), not sums inserted by shard_map's replication tracking.
  mapped = jax.shard_map(iterate, mesh=mesh, in_specs=(P(), P(), data_spec, P()), out_specs=(P(), P()),
                         check_vma=False)
  return jax.jit(mapped, donate_argnums=(0, 1))


def zero_metrics(train_step: Callable, state, example_shape: tuple[int, ...], d_steps: int, batch_size: int,
                 rng: jax.Array, mesh: jax.sharding.Mesh):
  """Replicated float32 zeros with the structure of the metrics of `train_step` (nothing is run)."""
  mapped = jax.shard_map(train_step, mesh=mesh, in_specs=(P(), P(None, AXIS), P()), out_specs=(P(), P()),
                         check_vma=False)
  batch = steps_lib.example_batch(d_steps, batch_size, example_shape)
  shapes = jax.eval_shape(mapped, state, batch, rng)[1]
  return replicate(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes), mesh)


def host_batch(source, seed: int, step: int, batch_size: int, d_steps: int, mesh: jax.sharding.Mesh) -> dict:
  """Iteration `step`'s global host-drawn batch, 'image' [d_steps, batch_size, ...], split over devices.

  Each process draws only its own part, seeded by (seed, step[, process]) so that a resumed run
  replays the same batches (one process: the same draws as without data parallelism).
  """
  count = jax.process_count()
  seeds = [seed, step] if count == 1 else [seed, step, jax.process_index()]
  local = batch_size // count
  flat = source.draw_host(np.random.default_rng(seeds), d_steps * local)
  sharding = jax.sharding.NamedSharding(mesh, P(None, AXIS))
  return {k: jax.make_array_from_process_local_data(sharding, v.reshape(d_steps, local, *v.shape[1:]),
                                                    (d_steps, batch_size, *v.shape[1:]))
          for k, v in flat.items()}
