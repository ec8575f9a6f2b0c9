"""Multi-process JAX: starting it (from launch flags, the environment or a cluster job's tasks) and
the processes' agreements while they train.

Starting must come before any other JAX call. Once started, every process runs the same trainer;
only process 0 writes files (`is_main`), and the others follow its decisions (`agree`,
`from_main`). CPU collectives go over gloo.
"""
import os

import jax
from jax.experimental import multihost_utils
import numpy as np

from gan_jax.errors import UserError


def is_main() -> bool:
  """Whether this process writes the run's files (logs, samples, W&B, config/status)."""
  return jax.process_index() == 0


def sync(name: str) -> None:
  """Waits until every process reaches the barrier `name` (nothing to do with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def agree(ok: bool) -> None:
  """Process 0 tells the others whether a step only it performs succeeded (it passes `ok`; the
  others' value is ignored); they raise UserError when it did not, rather than waiting for it at
  the next barrier forever."""
  if jax.process_count() > 1 and not from_main(int(ok)):
    raise UserError('process 0 refused to start the run; its output says why')


def from_main(value: int) -> int:
  """Process 0's `value`, in every process (a collective: every process calls it at the same point)."""
  if jax.process_count() == 1:
    return value
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


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


# The variables `srun` sets for each task, read by JAX's own SLURM detection.
SLURM_TASK_VARS = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID', 'SLURM_LOCALID')
# submitit's LocalExecutor: the task count and this task's index, and the job's id (the controller's pid).
LOCAL_JOB_VARS = ('SUBMITIT_LOCAL_NTASKS', 'SUBMITIT_LOCAL_GLOBALID', 'SUBMITIT_LOCAL_JOB_ID')


def initialize_from_job() -> int:
  """Starts `jax.distributed` in a cluster job of several tasks, reading only the job's environment;
  returns the number of processes (1: nothing started).

  Under SLURM (`srun` set SLURM_TASK_VARS) JAX detects the coordinator, process count and index
  itself; under submitit's LocalExecutor (LOCAL_JOB_VARS) the coordinator is 127.0.0.1 on a port
  derived from the job id, as JAX derives SLURM's. CPU collectives go over gloo either way.
  """
  if all(v in os.environ for v in SLURM_TASK_VARS) and int(os.environ['SLURM_NTASKS']) > 1:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize()
    return jax.process_count()
  if all(v in os.environ for v in LOCAL_JOB_VARS) and int(os.environ['SUBMITIT_LOCAL_NTASKS']) > 1:
    port = 61440 + int(os.environ['SUBMITIT_LOCAL_JOB_ID']) % 4096
    initialize_distributed(f'127.0.0.1:{port}', int(os.environ['SUBMITIT_LOCAL_NTASKS']),
                           int(os.environ['SUBMITIT_LOCAL_GLOBALID']))
    return jax.process_count()
  return 1
