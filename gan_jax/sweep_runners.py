"""Running a sweep: `python launch.py --exp=NAME[:ARG] --sweep [--runner=...] [--workdir=SWEEP_DIR]`.

The experiment's `get_sweep()` (see gan_jax/sweep.py for the spec) is expanded into members;
`--sweep_filter` / `--sweep_index` pick some; `--dry_run` prints them; `--wandb_sweep` writes a
sweep.yaml for the W&B sweep controller instead of running anything.

Sweep directory (default runs/<exp>/sweep-<timestamp>; pass the same --workdir to resume):
  sweep.json         name (the W&B group of every member), exp, base overrides, spec
  sweep.jsonl        one line per member: index, name, overrides, workdir (relative to the sweep
                     directory), status (pending|running|finished|failed|interrupted), step, error
  <member name>/     the member's run directory (see gan_jax/run_dir.py)
  logs/<member>.log  the output of members run by the 'processes' runner

Resuming: members whose status.json says finished (at their configured step count) are skipped;
the others rerun in their workdirs, so they resume from their last checkpoints. A member that
crashes or diverges is recorded as failed with its error, and the sweep goes on; the sweep exits
with status 1 when any member failed.

One writer per member: a runner claims each member's workdir lock (gan_jax/workdir_lock.py) just
before training it, so two launches on one sweep directory (a second terminal, a requeued job)
split the members: each skips the members the other is training or has finished, and no member is
trained twice. Sweeps over several machines go through a cluster engine (--cluster: gan_jax/cluster.py)
or the W&B sweep controller (--wandb_sweep).

Runners (RUNNERS; each is `fn(jobs, table, options)`, runs every job and reports each one to
`table.started` / `table.finished`):
  sequential  one member after another in this process (the default).
  processes   one `python launch.py` subprocess per local GPU (CUDA_VISIBLE_DEVICES masks the
              others), or --parallel=N processes sharing the CPU or the GPUs.
  vectorized  members that differ only in values held in the state (seeds, Adam hyperparameters,
              penalty weights, a schedule's learning rates: gan_jax/train/program.py) run as the
              lanes of one program per group; the groups run one after another.
Every runner trains through the same gan_jax.train.loop.train.
"""
import collections
import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

from absl import logging

from gan_jax import config as config_lib
from gan_jax import errors
from gan_jax import experiments as experiments_lib
from gan_jax import run_dir
from gan_jax import sweep as sweep_lib
from gan_jax import workdir_lock
from gan_jax.errors import UserError

LAUNCH = pathlib.Path(__file__).resolve().parents[1] / 'launch.py'
IN_USE = ' is in use by '  # In the error line of a member process refused by workdir_lock.


@dataclasses.dataclass
class Job:
  """A member ready to run: its resolved config, its workdir and the equivalent launch.py flags."""
  member: sweep_lib.Member
  config: Any
  workdir: pathlib.Path
  launch_args: list[str]


@dataclasses.dataclass
class RunnerOptions:
  parallel: int | None = None  # processes runner: concurrent members (default: one per local GPU).


@dataclasses.dataclass
class Sweep:
  name: str
  exp: str
  directory: pathlib.Path
  spec: Any
  base_overrides: list[tuple[str, str]]
  members: list[sweep_lib.Member]   # the whole expansion
  jobs: list[Job]                   # the selected members
  given_spec: bool = False          # the spec came from --sweep_spec (or a script), not get_sweep()


def exp_slug(exp: str) -> str:
  return exp.replace(':', '_').replace(',', '_')


def load_spec(exp: str) -> Any:
  """Calls the experiment's get_sweep(), passing the ARG of NAME:ARG when it takes one."""
  name, _, arg = exp.partition(':')
  module = experiments_lib.load_module(name)
  get_sweep = getattr(module, 'get_sweep', None)
  if get_sweep is None:
    raise UserError(f"experiment {name!r} has no get_sweep(); add one to experiments/{name}.py returning e.g. "
                    "{'product': {'train.seed': [0, 1, 2]}} (see gan_jax/sweep.py)")
  import inspect
  takes_arg = bool(inspect.signature(get_sweep).parameters)
  return get_sweep(arg or None) if takes_arg else get_sweep()


def parse_spec(text: str | None) -> Any:
  """`--sweep_spec`'s JSON text as a spec (None when the flag is not given).

  Raises:
    UserError when the text is not JSON (the spec's own checks come with the expansion).
  """
  if text is None:
    return None
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError(f'--sweep_spec is not valid JSON ({e}); write e.g. '
                    '--sweep_spec=\'{"product": {"train.seed": [10, 11]}}\'') from None


def prepare(exp: str, overrides: list[tuple[str, str]], directory: str | os.PathLike | None = None,
            filter_text: str | None = None, index_text: str | None = None, spec: Any = None) -> Sweep:
  """Expands the sweep of `exp` (or `spec` when given), selects members and resolves their configs.

  Raises:
    UserError for a bad spec, filter or index, an override of a swept key, or a sweep directory
    that holds something else.
  """
  overrides = list(overrides)
  config = experiments_lib.load_config(exp, overrides)
  given_spec = spec is not None
  spec = load_spec(exp) if spec is None else spec
  members = sweep_lib.make_members(spec, config)
  swept = {k for m in members for k in m.values}
  clash = sorted({k for k, _ in overrides} & swept)
  if clash:
    raise UserError(f'--config.{clash[0]} is swept by the sweep; pick its values with '
                    f'--sweep_filter={clash[0]}=VALUE instead')
  if any(k == 'log.name' for k, _ in overrides):
    raise UserError('--config.log.name is set per member by a sweep (the member name); drop it')
  selected = sweep_lib.select(members, config, filter_text, index_text)

  slug = exp_slug(exp)
  if directory is None:
    directory = pathlib.Path('runs') / slug / f'sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}'
  directory = pathlib.Path(directory)
  saved = _read_sweep_json(directory)
  if saved and saved.get('exp') != exp:
    raise UserError(f'{directory} holds a sweep of --exp={saved.get("exp")}, not {exp}; use a new --workdir')
  if not saved and directory.exists() and any(directory.iterdir()) and not (directory / 'sweep.jsonl').exists():
    raise UserError(f'{directory} is not empty and holds no sweep (no sweep.json); choose a new --workdir')
  group = dict(overrides).get('log.group') or (saved or {}).get('name') or f'{slug}-{directory.name}'

  jobs = []
  for member in selected:
    workdir = directory / member.name
    args = [f'--exp={exp}', f'--workdir={workdir.resolve()}',
            *[f'--config.{k}={t}' for k, t in overrides if k != 'log.group'],
            *[f'--config.{k}={t}' for k, t in member.override_args()],
            f'--config.log.group={group}', f'--config.log.name={member.name}']
    jobs.append(Job(member, sweep_lib.member_config(config, member, group), workdir, args))
  return Sweep(group, exp, directory, spec, overrides, members, jobs, given_spec)


def validate(sweep: Sweep) -> None:
  """Checks every selected member's config as a run would, before anything starts."""
  from gan_jax import config_checks  # JAX starts here, after the flags and the spec are known to be valid.
  for job in sweep.jobs:
    try:
      config_checks.validate(job.config)
    except UserError as e:
      raise UserError(f'sweep member {job.member.index} ({job.member.name}): {e}') from None


def _read_sweep_json(directory: pathlib.Path) -> dict | None:
  path = directory / 'sweep.json'
  if not path.exists():
    return None
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise UserError(f'{path} is not valid JSON ({e}); fix it or use a new --workdir') from None


def write_sweep_json(sweep: Sweep) -> None:
  sweep.directory.mkdir(parents=True, exist_ok=True)
  record = {'name': sweep.name, 'exp': sweep.exp, 'overrides': [list(o) for o in sweep.base_overrides],
            'spec': sweep.spec}
  _write_atomically(sweep.directory / 'sweep.json', json.dumps(record, indent=2, default=_json_default) + '\n')


def _write_atomically(path: pathlib.Path, text: str) -> None:
  """Writes `path` through a temporary file of this process's own, so a concurrent sweep process
  on the same directory reads either the old or the new file, never half of one."""
  tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
  tmp.write_text(text)
  tmp.replace(path)


def end_step(config) -> int:
  """The iteration a member's run ends at: train.steps, or, for a progressive run, where its
  schedule ends (train.steps only caps it). The schedule module needs JAX, so it is imported only
  for a progressive config."""
  if 'progressive' not in config:
    return config.train.steps
  from gan_jax.train import schedule
  return schedule.phases(config)[-1].end_step


def is_finished(job: Job) -> bool:
  """Whether the member's run finished at the end its config asks for (a run extended by a larger
  train.steps or a longer schedule is not finished)."""
  status = run_dir.read_status(job.workdir)
  return bool(status) and status.get('status') == 'finished' and status.get('step', 0) >= end_step(job.config)


# ----------------------------------------------------------------------------------------------
# sweep.jsonl


class Table:
  """sweep.jsonl: one line per member of the whole expansion, rewritten (atomically) on every change.

  Members this process does not run show what their status.json says at each write (another sweep
  process may be training them), else what the previous sweep.jsonl said. `elsewhere`: members
  skipped because another process held them (name -> the holder, described).
  """

  def __init__(self, sweep: Sweep):
    self.path = sweep.directory / 'sweep.jsonl'
    previous = {}
    if self.path.exists():
      for line in self.path.read_text().splitlines():
        try:
          row = json.loads(line)
          previous[row['name']] = row
        except (json.JSONDecodeError, KeyError, TypeError):
          continue
    self.rows = {}
    for member in sweep.members:
      row = {'index': member.index, 'name': member.name, 'overrides': dict(member.override_args()),
             'workdir': member.name, 'status': 'pending', 'step': 0, 'error': ''}
      old = previous.get(member.name)
      if old:
        row.update({k: old[k] for k in ('status', 'step', 'error', 'seconds', 'job') if k in old})
      row.update(_disk_fields(sweep.directory / member.name))
      self.rows[member.name] = row
    self._started: dict[str, float] = {}
    self.elsewhere: dict[str, str] = {}

  def started(self, job: Job) -> None:
    self._set(job, status='running', error='')
    self._started[job.member.name] = time.perf_counter()
    logging.info('sweep: %s started in %s', job.member.name, job.workdir)

  def finished(self, job: Job, status: str, error: str = '') -> None:
    """Records how a job ended: 'finished', 'failed' (with its error) or 'interrupted'."""
    disk = run_dir.read_status(job.workdir) or {}
    seconds = time.perf_counter() - self._started.get(job.member.name, time.perf_counter())
    self._set(job, status=status, step=int(disk.get('step', 0)), error=error, seconds=round(seconds, 1))
    if status == 'failed':
      logging.warning('sweep: %s failed: %s', job.member.name, error)
    else:
      logging.info('sweep: %s %s at step %s', job.member.name, status, disk.get('step'))

  def skipped(self, job: Job) -> None:
    self._set(job, **_status_fields(run_dir.read_status(job.workdir)))

  def held_elsewhere(self, job: Job, holder: str) -> None:
    """Records a member skipped because another process is training it."""
    self._started.pop(job.member.name, None)
    self.elsewhere[job.member.name] = holder
    logging.info('sweep: %s skipped: trained by %s', job.member.name, holder)
    self._set(job, **_status_fields(run_dir.read_status(job.workdir) or {'status': 'running'}))

  def status(self, job: Job) -> str:
    return self.rows[job.member.name]['status']

  def _set(self, job: Job, **fields) -> None:
    self.rows[job.member.name].update(fields)
    self.write()

  def write(self) -> None:
    for name, row in self.rows.items():
      if name not in self._started:
        row.update(_disk_fields(self.path.parent / row['workdir']))
    self.path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, default=_json_default) for row in sorted(self.rows.values(), key=lambda r: r['index'])]
    _write_atomically(self.path, ''.join(line + '\n' for line in lines))


def _json_default(value):
  if isinstance(value, tuple):
    return list(value)
  return str(value)


def _disk_fields(workdir: pathlib.Path) -> dict:
  """The row fields status.json gives, for a member this process does not run. A 'running' status
  of a run nobody holds (its process died) says nothing: the row keeps what its runner recorded."""
  status = run_dir.read_status(workdir)
  if not status or (status.get('status') == 'running' and workdir_lock.holder(workdir) is None):
    return {}
  return _status_fields(status)


def _status_fields(status: dict) -> dict:
  state = status.get('status', 'pending')
  error = status.get('message', '')
  if state == 'diverged':
    state, error = 'failed', f'diverged: {error}'
  return {'status': state, 'step': int(status.get('step', 0)), 'error': error}


# ----------------------------------------------------------------------------------------------
# Runners.


def _failure(job: Job, e: BaseException) -> str:
  """The error text of a member that raised `e`: what status.json says, else the exception."""
  status = run_dir.read_status(job.workdir) or {}
  if status.get('status') == 'diverged':
    return f'diverged: {status.get("message", "")}'
  if isinstance(e, UserError):
    return f'error: {e}'
  return f'{type(e).__name__}: {e}'


def _claim(job: Job, table: Table, claims: contextlib.ExitStack) -> bool:
  """Takes the member's workdir lock into `claims`. False (recorded in the table) when another
  process holds it or has finished the member since this sweep started."""
  try:
    claims.enter_context(workdir_lock.hold(job.workdir))
  except workdir_lock.InUse as e:
    table.held_elsewhere(job, e.holder.describe())
    return False
  if is_finished(job):
    table.skipped(job)
    return False
  return True


def run_sequential(jobs: list[Job], table: Table, options: RunnerOptions) -> None:
  """Runs the members one after another in this process."""
  del options
  from gan_jax.train import loop
  for job in jobs:
    with contextlib.ExitStack() as claims:
      if not _claim(job, table, claims):
        continue
      table.started(job)
      try:
        loop.train_and_evaluate(job.config, job.workdir)
        table.finished(job, 'finished')
      except KeyboardInterrupt:
        table.finished(job, 'interrupted')
        raise
      except Exception as e:  # A crashing member is recorded and the sweep goes on.
        logging.debug('%s', traceback.format_exc())
        table.finished(job, 'failed', _failure(job, e))


def local_gpus() -> list[str]:
  """Ids of the local NVIDIA GPUs this process may use, found without starting JAX (which would
  reserve GPU memory): $CUDA_VISIBLE_DEVICES when set, else `nvidia-smi`."""
  visible = os.environ.get('CUDA_VISIBLE_DEVICES')
  if visible is not None:
    return [d.strip() for d in visible.split(',') if d.strip() and d.strip() != '-1']
  try:
    out = subprocess.run(['nvidia-smi', '--query-gpu=index', '--format=csv,noheader'],
                         capture_output=True, text=True, timeout=30, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return []
  return [line.strip() for line in out.splitlines() if line.strip()]


@dataclasses.dataclass
class Slot:
  """Where one concurrent member of the processes runner runs."""
  env: dict[str, str]            # environment changes (device masking)
  cpus: set[int] | None = None   # CPU cores the process is pinned to (CPU-only hosts)

  def describe(self) -> str:
    if 'CUDA_VISIBLE_DEVICES' in self.env:
      return f'CUDA_VISIBLE_DEVICES={self.env["CUDA_VISIBLE_DEVICES"]}'
    return f'cpus {",".join(map(str, sorted(self.cpus)))}' if self.cpus else 'cpu'


def device_slots(parallel: int | None) -> list[Slot]:
  """The concurrent slots of the processes runner.

  With GPUs: one slot per GPU, its process seeing only that GPU (CUDA_VISIBLE_DEVICES);
  --parallel=N above the GPU count shares them round-robin with memory preallocation off. On CPU:
  --parallel slots (default half the cores), each pinned to its own share of the cores: unpinned
  XLA processes oversubscribe the cores (two smoke runs on 2 cores took 38 s each unpinned,
  22 s pinned, against 14 s alone).
  """
  if parallel is not None and parallel < 1:
    raise UserError(f'--parallel must be >= 1 (got {parallel})')
  gpus = local_gpus()
  if gpus:
    n = parallel or len(gpus)
    shared = {'XLA_PYTHON_CLIENT_PREALLOCATE': 'false'} if n > len(gpus) else {}
    return [Slot({'CUDA_VISIBLE_DEVICES': gpus[i % len(gpus)], **shared}) for i in range(n)]
  try:
    cores = sorted(os.sched_getaffinity(0))
  except AttributeError:  # Not Linux: no pinning.
    cores = []
  n = parallel or max(1, (len(cores) or os.cpu_count() or 2) // 2)
  if n == 1 or not cores:
    return [Slot({}) for _ in range(n)]
  if n >= len(cores):
    return [Slot({}, {cores[i % len(cores)]}) for i in range(n)]
  share = len(cores) // n
  return [Slot({}, set(cores[i * share:(i + 1) * share] if i < n - 1 else cores[i * share:])) for i in range(n)]


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
  """What the child runs before launch.py: pinning to `cpus`, and (Linux) a SIGTERM when the sweep
  process dies, even by SIGKILL, so no member outlives its sweep."""
  def setup() -> None:
    if cpus:
      os.sched_setaffinity(0, cpus)
    try:
      import ctypes
      ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
      pass
  return setup


def _log_error(log_path: pathlib.Path, returncode: int) -> str:
  try:
    log = log_path.read_text(errors='replace')
  except OSError:
    log = ''
  return errors.reported_error(log, f'exit status {returncode}', log_path)


def run_processes(jobs: list[Job], table: Table, options: RunnerOptions) -> None:
  """Runs each member as `python launch.py ...` in a subprocess, as many at once as there are slots."""
  slots = device_slots(options.parallel)
  logging.info('sweep: %d concurrent process(es): %s', len(slots), '; '.join(s.describe() for s in slots))
  queue = collections.deque(jobs)
  running: dict[int, tuple[subprocess.Popen, Job, pathlib.Path]] = {}
  try:
    while queue or running:
      for slot, where in enumerate(slots):
        if slot in running or not queue:
          continue
        job = queue.popleft()
        with contextlib.ExitStack() as probe:  # Released at once: the member's process takes the lock itself.
          if not _claim(job, table, probe):
            continue
        log_path = job.workdir.parent / 'logs' / f'{job.member.name}.log'
        log_path.parent.mkdir(parents=True, exist_ok=True)
        table.started(job)
        with open(log_path, 'a') as log:
          log.write(f'\n$ {sys.executable} {LAUNCH} {" ".join(job.launch_args)}\n')
          log.flush()
          process = subprocess.Popen([sys.executable, str(LAUNCH), *job.launch_args], stdout=log,
                                     stderr=subprocess.STDOUT, env={**os.environ, **where.env},
                                     preexec_fn=_child_setup(where.cpus) if sys.platform == 'linux' else None)
        running[slot] = (process, job, log_path)
      time.sleep(0.1)
      for slot, (process, job, log_path) in list(running.items()):
        returncode = process.poll()
        if returncode is None:
          continue
        del running[slot]
        status = run_dir.read_status(job.workdir) or {}
        error = _log_error(log_path, returncode)
        if returncode == 0 and status.get('status') == 'finished':
          table.finished(job, 'finished')
        elif returncode == 2 and IN_USE in error:  # Claimed by another sweep process after the probe.
          table.held_elsewhere(job, error.split(IN_USE, 1)[1].split(';')[0])
        elif status.get('status') in ('diverged', 'failed'):
          table.finished(job, 'failed', _status_fields(status)['error'])
        elif returncode >= 128 and status.get('status') == 'interrupted':
          # Stopped by a signal with its step checkpointed: a Ctrl-C reaches the members too, and a
          # busy machine can let them exit before this process raises its own KeyboardInterrupt.
          table.finished(job, 'interrupted')
        else:
          table.finished(job, 'failed', error)
  except BaseException:
    for process, job, _ in running.values():
      process.terminate()
    for process, job, _ in running.values():
      try:
        process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        process.kill()
      table.finished(job, 'interrupted')
    raise


def run_vectorized(jobs: list[Job], table: Table, options: RunnerOptions) -> None:
  """Runs each group of members that share a program as the lanes of one program, group after group.

  A group that crashes (rather than diverging member by member) fails its unfinished members and
  the sweep goes on with the next group.
  """
  del options
  from gan_jax.train import program
  for group in program.group_by_program([job.config for job in jobs]):
    with contextlib.ExitStack() as claims:
      members = [jobs[i] for i in group if _claim(jobs[i], table, claims)]
      if members:
        _run_group(members, table)


def _run_group(members: list[Job], table: Table) -> None:
  """Trains `members` (claimed by this process) as the lanes of one program."""
  from gan_jax.train import loop
  logging.info('sweep: %d member(s) as one vectorized program: %s', len(members),
               ', '.join(job.member.name for job in members))
  for job in members:
    table.started(job)
  pending = dict(enumerate(members))

  def done(position: int, status: str, error: str) -> None:
    table.finished(pending.pop(position), status, error)

  try:
    loop.train([job.config for job in members], [job.workdir for job in members], on_done=done)
  except KeyboardInterrupt:
    for job in pending.values():
      table.finished(job, 'interrupted')
    raise
  except Exception as e:  # A crashing group is recorded and the sweep goes on.
    logging.debug('%s', traceback.format_exc())
    for job in pending.values():
      table.finished(job, 'failed', _failure(job, e))


# Name -> runner. A runner gets the jobs still to run (finished members are already skipped),
# the sweep's Table and the RunnerOptions; it must claim each job (`_claim`) right before training
# it, call table.started(job) and table.finished(job, status, error) for each job it trains, and
# let KeyboardInterrupt through.
# launch.py's --runner choices are this dict's keys.
RUNNERS: dict[str, Callable[[list[Job], Table, RunnerOptions], None]] = {
    'sequential': run_sequential,
    'processes': run_processes,
    'vectorized': run_vectorized,
}


def run(sweep: Sweep, runner: str = 'sequential', options: RunnerOptions | None = None) -> Table:
  """Runs the sweep's unfinished selected members with `runner`; returns the final table."""
  if runner not in RUNNERS:
    raise UserError(f'unknown --runner={runner}; choose one of {", ".join(RUNNERS)}')
  options = options or RunnerOptions()
  if runner == 'processes':
    device_slots(options.parallel)  # Checks --parallel before anything is written.
  write_sweep_json(sweep)
  table = Table(sweep)
  todo = []
  for job in sweep.jobs:
    if is_finished(job):
      table.skipped(job)
    else:
      todo.append(job)
      table.rows[job.member.name].update(status='pending', error='')
  table.write()
  if len(todo) < len(sweep.jobs):
    logging.info('sweep: skipping %d finished member(s)', len(sweep.jobs) - len(todo))
  RUNNERS[runner](todo, table, options)
  return table


# ----------------------------------------------------------------------------------------------
# launch.py --sweep


def describe(sweep: Sweep, runner: str) -> str:
  """The --dry_run text: base config, then each selected member with its overrides and state."""
  lines = [f'sweep {sweep.name}: --exp={sweep.exp}, {len(sweep.jobs)} of {len(sweep.members)} member(s), '
           f'runner {runner}, directory {sweep.directory}']
  if sweep.jobs:
    base = config_lib.flatten(config_lib.to_dict(sweep.jobs[0].config))
    swept = {k for m in sweep.members for k in m.values} | set(sweep_lib.RESERVED_KEYS)
    lines.append('config shared by the members:')
    lines += [f'  {k} = {v!r}' for k, v in sorted(base.items()) if k not in swept]
  lines.append('members (index, name, state, overrides):')
  for job in sweep.jobs:
    status = run_dir.read_status(job.workdir)
    state = 'finished, will be skipped' if is_finished(job) else (
        f'{status["status"]} at step {status.get("step")}, will resume' if status else 'new')
    overrides = ' '.join(f'--config.{k}={t}' for k, t in job.member.override_args())
    lines.append(f'  [{job.member.index}] {job.member.name} ({state}): {overrides}')
  return '\n'.join(lines)


def export_wandb(sweep: Sweep) -> str:
  """Writes <sweep dir>/sweep.yaml for `wandb sweep`; returns the instructions to print."""
  import yaml
  fixed = [f'--exp={sweep.exp}', *[f'--config.{k}={t}' for k, t in sweep.base_overrides if k != 'log.group'],
           f'--config.log.group={sweep.name}']
  selected = [job.member for job in sweep.jobs]
  config, count = sweep_lib.wandb_sweep_config(sweep.spec, sweep.members, selected, fixed, sweep.name,
                                               sweep.jobs[0].config.log.project)
  if 'sweep_index' in config['parameters']:  # Each agent run expands the sweep again: the same spec.
    config['command'].insert(-2, f'--workdir={sweep.directory}')
    if sweep.given_spec:
      config['command'].insert(-2, f'--sweep_spec={json.dumps(sweep.spec)}')
  write_sweep_json(sweep)
  path = sweep.directory / 'sweep.yaml'
  path.write_text(yaml.safe_dump(config, sort_keys=False))
  count_flag = f'--count {count} ' if count else ''
  return (f'wrote {path} (method {config["method"]}, {len(selected)} run(s)). From the repository root '
          f'({LAUNCH.parent}) on any machine:\n'
          f'  wandb sweep {path}    # creates the sweep; prints its ID\n'
          f'  wandb agent {count_flag}ENTITY/{config["project"]}/SWEEP_ID    # on each machine or GPU, '
          'as often as you like')


def launch(exp: str, overrides: list[tuple[str, str]], directory: str | None = None, filter_text: str | None = None,
           index_text: str | None = None, dry_run: bool = False, runner: str = 'sequential',
           parallel: int | None = None, wandb_sweep: bool = False, spec: Any = None) -> int:
  """`launch.py --sweep`: returns the exit status (0 when every selected member finished).

  `spec` replaces the experiment's get_sweep() (for scripts and tests).
  """
  if runner not in RUNNERS:
    raise UserError(f'unknown --runner={runner}; choose one of {", ".join(RUNNERS)}')
  if parallel is not None and runner != 'processes':
    raise UserError('--parallel applies to --runner=processes only')
  if parallel is not None and parallel < 1:
    raise UserError(f'--parallel must be >= 1 (got {parallel})')
  sweep = prepare(exp, overrides, directory, filter_text, index_text, spec)
  validate(sweep)
  from gan_jax import compile_cache  # After validation: JAX starts once the input is known to be good.
  compile_cache.enable()
  if dry_run:
    print(describe(sweep, runner))
    return 0
  if wandb_sweep:
    print(export_wandb(sweep))
    return 0
  try:
    table = run(sweep, runner, RunnerOptions(parallel=parallel))
  except KeyboardInterrupt:
    print(f'sweep interrupted; rerun the same command (with --workdir={sweep.directory}) to resume',
          file=sys.stderr)
    return 130
  return summarize(sweep, table)


def summarize(sweep: Sweep, table: Table) -> int:
  """Prints how the selected members ended; returns the exit status (1 when any failed)."""
  table.write()  # Refreshes the members other processes trained.
  rows = [table.rows[job.member.name] for job in sweep.jobs]
  finished = [r for r in rows if r['status'] == 'finished']
  elsewhere = [r for r in rows if r['name'] in table.elsewhere and r['status'] != 'finished']
  failed = [r for r in rows if r['status'] != 'finished' and r['name'] not in table.elsewhere]
  skipped = f'; {len(table.elsewhere)} skipped as another process was training them' if table.elsewhere else ''
  print(f'sweep {sweep.name}: {len(finished)} of {len(rows)} member(s) finished{skipped}; table in {table.path}')
  for row in elsewhere:
    print(f'  {row["name"]}: being trained by {table.elsewhere[row["name"]]}')
  for row in failed:
    print(f'  {row["name"]}: {row["status"]} at step {row["step"]}: {row["error"]}')
  return 1 if failed else 0
