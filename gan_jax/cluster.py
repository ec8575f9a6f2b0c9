"""Running on a cluster through submitit: `launch.py ... --cluster=slurm|local|debug`.

  slurm  submits to SLURM (sbatch) and returns at once, printing the job id(s) and where the logs are;
  local  runs the same jobs on this machine through submitit's LocalExecutor and waits for them;
  debug  runs them in this process (submitit's DebugExecutor), so pdb works.

A single run is one job of --nodes x --tasks_per_node processes: each task starts jax.distributed
from the job's environment (gan_jax.distributed.initialize_from_job) and the one trainer runs
data-parallel over all of them; process 0 alone writes logs, samples and status, and Orbax writes the
checkpoints from every process. A sweep is one job array: each element trains one member
(--runner=sequential) or one group of lanes (--runner=vectorized), at most --array_parallelism at once;
members and their directories are the same as with the local runners, so `--report` and the W&B
group (the sweep's name) do not depend on the engine.

Time limits and preemption: SLURM (and LocalExecutor) send SIGUSR2 before killing a job. The loop
finishes its step, checkpoints and stops (gan_jax.stop_signals.StopSignals); the job then asks submitit
to requeue it (jobs are submitit Checkpointables, resubmitted with the same arguments). The requeued
job resumes from that checkpoint, so it ends bit-identical to an uninterrupted run; the run
directory's lock (gan_jax/workdir_lock.py) died with its predecessor, so it takes over and no one else.
Job logs: <workdir>/slurm/ (run_dir.CLUSTER_LOGS). What runs inside a job: gan_jax/cluster_jobs.py.
"""
import contextlib
import dataclasses
import importlib.util
import math
import os
import pathlib
import shutil
import signal
import sys
import time
from typing import Any

from absl import flags

from gan_jax import errors
from gan_jax.errors import UserError

ENGINES = ('slurm', 'local', 'debug')
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
flags.DEFINE_enum('cluster', None, list(ENGINES), 'Run through submitit: SLURM job(s), local jobs on this machine, '
                  'or in this process (debug); absent: run here as usual.')
flags.DEFINE_integer('nodes', 1, 'With --cluster: nodes per job (a single run only).')
flags.DEFINE_integer('tasks_per_node', 1, 'With --cluster: processes per node (a single run only); each takes part '
                     'in data-parallel training.')
flags.DEFINE_integer('gpus_per_node', 0, 'With --cluster: GPUs per node.')
flags.DEFINE_integer('cpus_per_task', None, 'With --cluster: CPU cores per task (default: the cluster\'s).')
flags.DEFINE_float('mem_gb', None, 'With --cluster: memory per node in GB (default: the cluster\'s).')
flags.DEFINE_integer('time_min', 120, 'With --cluster: time limit of each job in minutes; a job that reaches it '
                     'checkpoints and is requeued.')
flags.DEFINE_string('partition', None, 'With --cluster=slurm: the partition.')
flags.DEFINE_integer('array_parallelism', None, 'With --cluster and --sweep: array elements running at once '
                     '(default: 64 on SLURM; half the cores with --cluster=local).')
flags.DEFINE_integer('requeues', 10, 'With --cluster: how many times a job that reached its time limit is requeued.')
flags.DEFINE_multi_string('slurm_opt', [], 'With --cluster=slurm: extra sbatch option KEY=VALUE (repeatable), '
                          'e.g. --slurm_opt=account=myproj --slurm_opt=qos=high.')
RESOURCE_FLAGS = ('nodes', 'tasks_per_node', 'gpus_per_node', 'cpus_per_task', 'mem_gb', 'time_min', 'partition',
                  'array_parallelism', 'requeues', 'slurm_opt')


@dataclasses.dataclass
class Resources:
  """What each job asks for. time_min: minutes (a fraction in tests); signal_delay_s: seconds
  between SIGUSR2 and the time limit (None: submitit's, 90 on SLURM, 30 locally)."""
  nodes: int = 1
  tasks_per_node: int = 1
  gpus_per_node: int = 0
  cpus_per_task: int | None = None
  mem_gb: float | None = None
  time_min: float = 120
  partition: str | None = None
  array_parallelism: int | None = None
  requeues: int = 10
  slurm_opts: dict[str, str] = dataclasses.field(default_factory=dict)
  signal_delay_s: int | None = None

  @property
  def tasks(self) -> int:
    return self.nodes * self.tasks_per_node


def resources_from_flags() -> Resources:
  """The resource flags as Resources; UserError for one given without --cluster."""
  values = flags.FLAGS
  if not values.cluster:
    given = [name for name in RESOURCE_FLAGS if values[name].present]
    if given:
      raise UserError(f'--{given[0]} needs --cluster=slurm|local|debug')
  opts = {}
  for text in values.slurm_opt:
    key, sep, value = text.partition('=')
    if not sep or not key.strip() or key.startswith('-'):
      raise UserError(f'--slurm_opt={text}: give an sbatch option as KEY=VALUE without dashes, e.g. account=myproj')
    opts[key.strip()] = value
  return Resources(values.nodes, values.tasks_per_node, values.gpus_per_node, values.cpus_per_task, values.mem_gb,
                   values.time_min, values.partition, values.array_parallelism, values.requeues, opts)


def check(engine: str, resources: Resources, sweep: bool) -> None:
  """Refuses what cannot be submitted, before anything is written or submitted."""
  if engine not in ENGINES:
    raise UserError(f'unknown --cluster={engine}; choose one of {", ".join(ENGINES)}')
  if importlib.util.find_spec('submitit') is None:
    raise UserError('--cluster needs the submitit package: python -m pip install submitit (requirements.txt has it)')
  positive = {'nodes': resources.nodes, 'tasks_per_node': resources.tasks_per_node, 'time_min': resources.time_min,
              'cpus_per_task': resources.cpus_per_task, 'mem_gb': resources.mem_gb,
              'array_parallelism': resources.array_parallelism}
  for name, value in positive.items():
    if value is not None and value <= 0:
      raise UserError(f'--{name} must be positive (got {value:g})')
  for name, value in (('gpus_per_node', resources.gpus_per_node), ('requeues', resources.requeues)):
    if value < 0:
      raise UserError(f'--{name} must be >= 0 (got {value})')
  missing = [p for p in ('sbatch', 'srun') if shutil.which(p) is None]
  if engine == 'slurm' and missing:
    raise UserError(f'--cluster=slurm: no SLURM here ({" and ".join(missing)} not on PATH); --cluster=local runs the '
                    'same jobs on this machine')
  if engine != 'slurm' and resources.nodes > 1:
    raise UserError(f'--cluster={engine} runs on this machine: --nodes must be 1 (got {resources.nodes})')
  if engine == 'debug' and resources.tasks_per_node > 1:
    raise UserError('--cluster=debug runs in this process: --tasks_per_node must be 1; --cluster=local runs '
                    'several tasks')
  if engine != 'slurm' and (resources.partition or resources.slurm_opts):
    raise UserError('--partition and --slurm_opt apply to --cluster=slurm only')
  if sweep and resources.tasks > 1:
    raise UserError('sweep members run one task each (with every GPU of its node); --nodes and --tasks_per_node '
                    'apply to a single run')
  if not sweep and resources.array_parallelism is not None:
    raise UserError('--array_parallelism needs --sweep')


def executor(engine: str, folder: pathlib.Path, resources: Resources, name: str, array_size: int = 1):
  """A submitit executor writing its files (scripts, pickles, logs) into `folder`."""
  import submitit
  folder.mkdir(parents=True, exist_ok=True)
  # Jobs unpickle gan_jax's classes: they find this checkout whatever directory they start in.
  paths = os.environ.get('PYTHONPATH', '').split(os.pathsep)
  if str(REPO_ROOT) not in paths:
    os.environ['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), *filter(None, paths)])
  if engine == 'debug':  # In this process: no resources.
    return submitit.DebugExecutor(folder)
  params = {'tasks_per_node': resources.tasks_per_node}
  if resources.gpus_per_node:
    params['gpus_per_node'] = resources.gpus_per_node
  if resources.signal_delay_s is not None:
    params['signal_delay_s'] = resources.signal_delay_s
  if engine == 'local':
    ex = submitit.LocalExecutor(folder, max_num_timeout=resources.requeues)
    ex.update_parameters(timeout_min=resources.time_min, **params)
    return ex
  ex = submitit.SlurmExecutor(folder, max_num_timeout=resources.requeues)
  params = {'job_name': name, 'time': math.ceil(resources.time_min), 'nodes': resources.nodes,
            'ntasks_per_node': params.pop('tasks_per_node'),
            'array_parallelism': min(array_size, resources.array_parallelism or 64), **params}
  optional = {'cpus_per_task': resources.cpus_per_task, 'partition': resources.partition,
              'mem': f'{resources.mem_gb:g}GB' if resources.mem_gb else None,
              'additional_parameters': dict(resources.slurm_opts) or None}
  params.update({k: v for k, v in optional.items() if v is not None})
  ex.update_parameters(**params)
  return ex


# ----------------------------------------------------------------------------------------------
# Submitting.


def _job_error(job) -> str:
  """Why a job ended without a result: its `error:` line, else its log's last line."""
  try:
    log = job.stderr() or ''
  except OSError:
    log = ''
  return errors.reported_error(log, f'job {job.job_id} failed', job.paths.stderr)


def submit_run(exp: str, overrides: list[tuple[str, str]], workdir: pathlib.Path, engine: str,
               resources: Resources) -> int:
  """`launch.py --cluster=... ` of one run: submits its job; with local/debug, waits and returns the
  exit status."""
  from gan_jax import experiments
  from gan_jax import workdir_lock
  from gan_jax import config_checks
  from gan_jax import run_dir
  check(engine, resources, sweep=False)
  config = experiments.load_config(exp, overrides)
  config_checks.validate(config)
  workdir = pathlib.Path(workdir).resolve()
  run_dir.check(config, workdir)
  holder = workdir_lock.holder(workdir)
  if holder:
    raise workdir_lock.InUse(workdir, holder)
  from gan_jax import cluster_jobs
  folder = workdir / run_dir.CLUSTER_LOGS
  ex = executor(engine, folder, resources, name=workdir.name)
  job = ex.submit(cluster_jobs.RunJob(), exp, list(overrides), str(workdir))
  if engine == 'slurm':
    print(f'submitted {exp} as SLURM job {job.job_id} ({resources.nodes} node(s) x {resources.tasks_per_node} '
          f'task(s)); run directory {workdir}; logs in {folder}; follow with `squeue -j {job.job_id}` and '
          f'`tail -f {job.paths.stderr}`; cancel with `scancel {job.job_id}`; rerun this command after the job '
          'ends to resume an unfinished run', flush=True)
    return 0
  print(f'{exp} as {engine} job {job.job_id} ({resources.tasks_per_node} task(s)); run directory {workdir}; '
        f'logs in {folder}', flush=True)
  try:
    with _cancel_on_interrupt([job]):
      result = job.results()[0]  # Task 0's (every task returns the run's result).
  except Exception:  # The job's own output says why; submitit's exception repeats its traceback.
    error = _job_error(job)
    print(error, file=sys.stderr)
    return 2 if error.startswith('error: ') else 1
  print(f'run finished at step {result["step"]} in {workdir}')
  return 0


@contextlib.contextmanager
def _cancel_on_interrupt(jobs: list):
  """Ctrl-C (SIGINT) while waiting for local jobs stops them and raises KeyboardInterrupt with how to
  resume: each job's controller (its id is the controller's pid) gets SIGTERM, which it forwards to
  the tasks, and their loops checkpoint before exiting."""
  try:
    yield
  except KeyboardInterrupt:
    for job in jobs:
      if job.job_id.isdigit() and not job.done():  # Local jobs; a debug job runs (and stopped) in this process.
        with contextlib.suppress(ProcessLookupError):
          os.kill(int(job.job_id), signal.SIGTERM)
    for job in jobs:
      with contextlib.suppress(Exception):
        job.wait()
    raise KeyboardInterrupt('the jobs were stopped after checkpointing; rerun the same command to resume') from None


def elements(jobs: list, runner: str) -> list[list]:
  """The sweep's array elements: one member each, or (vectorized) one group of lanes each."""
  if runner == 'sequential':
    return [[job] for job in jobs]
  if runner == 'vectorized':
    from gan_jax.train import program
    return [[jobs[i] for i in group] for group in program.group_by_program([job.config for job in jobs])]
  raise UserError(f'--runner={runner} does not apply on a cluster: each array element trains one member '
                  '(--runner=sequential) or one group of lanes (--runner=vectorized)')


def submit_sweep(exp: str, overrides: list[tuple[str, str]], directory: str | None, filter_text: str | None,
                 index_text: str | None, runner: str, engine: str, resources: Resources, spec: Any = None) -> int:
  """`launch.py --sweep --cluster=...`: the unfinished selected members as one job array; with
  local/debug, waits and returns the sweep's exit status (1 when a member failed)."""
  from gan_jax import sweep_runners
  check(engine, resources, sweep=True)
  from gan_jax import cluster_jobs
  from gan_jax import run_dir
  sweep = sweep_runners.prepare(exp, overrides, directory, filter_text, index_text, spec)
  sweep_runners.validate(sweep)
  todo = [job for job in sweep.jobs if not sweep_runners.is_finished(job)]
  groups = elements(todo, runner)
  sweep_runners.write_sweep_json(sweep)
  table_path = sweep.directory / 'sweep.jsonl'
  if not groups:
    print(f'sweep {sweep.name}: every selected member has finished; nothing to submit')
    return sweep_runners.summarize(sweep, sweep_runners.Table(sweep))
  folder = sweep.directory / run_dir.CLUSTER_LOGS
  ex = executor(engine, folder, resources, name=sweep.name, array_size=len(groups))
  args = [(exp, list(overrides), str(sweep.directory.resolve()), ','.join(str(j.member.index) for j in group),
           runner, spec) for group in groups]
  died = []  # (members, error) of the local elements that died.
  if engine == 'slurm':
    submitted = ex.map_array(cluster_jobs.SweepJob(), *zip(*args))
    array = submitted[0].job_id.split('_')[0]
    print(f'sweep {sweep.name}: {len(todo)} member(s) as SLURM job array {array} ({len(groups)} element(s), at most '
          f'{min(len(groups), resources.array_parallelism or 64)} at once); logs in {folder}; follow with '
          f'`squeue -j {array}` and `tail -f {folder}/{array}_0_0_log.err`; cancel with `scancel {array}`; '
          f'table in {table_path}', flush=True)
  else:
    parallelism = 1 if engine == 'debug' else resources.array_parallelism or max(1, (os.cpu_count() or 2) // 2)
    print(f'sweep {sweep.name}: {len(todo)} member(s) as {len(groups)} {engine} job(s), {parallelism} at once; logs '
          f'in {folder}; table in {table_path}', flush=True)

    def on_done(index: int, job) -> None:
      group = groups[index]
      try:
        job.results()
      except Exception:  # The element died (a member that fails is recorded in the table by its element).
        died.append((group, _job_error(job)))
      states = [(run_dir.read_status(member.workdir) or {}).get('status', 'failed') for member in group]
      print(f'  [{index + 1}/{len(groups)}] job {job.job_id}: ' +
            ', '.join(f'{member.member.name} {state}' for member, state in zip(group, states)), flush=True)

    submitted = []
    with _cancel_on_interrupt(submitted):
      _run_locally(ex, args, parallelism, on_done, submitted)
  table = sweep_runners.Table(sweep)  # As the elements have left it so far.
  for group, job in zip(groups, submitted):
    for member in group:
      table.rows[member.member.name]['job'] = job.job_id
  for group, error in died:
    for member in group:
      if table.status(member) != 'finished':
        table.finished(member, 'failed', error)
  if engine == 'slurm':
    table.write()
    print(f'when the jobs end: python launch.py --report={sweep.directory}; rerun this command to resubmit the '
          'members that did not finish', flush=True)
    return 0
  return sweep_runners.summarize(sweep, table)


def _run_locally(ex, args: list[tuple], parallelism: int, on_done, submitted: list) -> None:
  """Runs the elements as local (or debug) jobs, at most `parallelism` at once (LocalExecutor has no
  array throttling), appending each job to `submitted` and calling `on_done(index, job)` as it ends."""
  from gan_jax import cluster_jobs
  running, pending = [], list(enumerate(args))
  while pending or running:
    while pending and len(running) < parallelism:
      index, element_args = pending.pop(0)
      submitted.append(ex.submit(cluster_jobs.SweepJob(), *element_args))
      running.append((index, submitted[-1]))
    for index, job in list(running):
      if job.done():  # A debug job runs here, in this process.
        running.remove((index, job))
        on_done(index, job)
    time.sleep(0.2)
