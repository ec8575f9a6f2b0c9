"""launch.py --cluster: submitit's LocalExecutor and DebugExecutor for real, SLURM through stub
sbatch/srun programs that record what they are given (no cluster here)."""
import json
import os
import pathlib
import random
import socket
import subprocess
import signal
import sys
import textwrap
import threading
import time

from absl import flags
import numpy as np
import pytest

from gan_jax import cluster
from gan_jax import experiments
from gan_jax import report
from gan_jax.errors import UserError
from gan_jax import from_checkpoint
from gan_jax.train import loop
from tests.conftest import REPO_ROOT

SMOKE = ['--exp=vanilla:smoke', '--config.log.wandb=disabled']


def _launch(*args, cwd: pathlib.Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, str(REPO_ROOT / 'launch.py'), *args], cwd=cwd, capture_output=True,
                        text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def parsed_flags():
  """launch.py's flags parsed (cluster.submit_* read none, but absl logging wants them parsed)."""
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


@pytest.fixture
def stub_slurm(tmp_path) -> tuple[dict, pathlib.Path]:
  """PATH with `sbatch` (copies the submission file it is given, answers a job id) and `srun`."""
  bin_dir, record = tmp_path / 'stub_bin', tmp_path / 'sbatch_record'
  bin_dir.mkdir()
  record.mkdir()
  (bin_dir / 'sbatch').write_text(textwrap.dedent(f'''\
      #!/bin/sh
      cp "$1" "{record}/submission.sh"
      echo "Submitted batch job 4242"
      '''))
  (bin_dir / 'srun').write_text('#!/bin/sh\nexit 0\n')
  for program in ('sbatch', 'srun'):
    (bin_dir / program).chmod(0o755)
  return {'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'}, record / 'submission.sh'


def _sbatch_options(submission: pathlib.Path) -> dict[str, str]:
  options = {}
  for line in submission.read_text().splitlines():
    if line.startswith('#SBATCH --'):
      key, _, value = line[len('#SBATCH --'):].partition('=')
      options[key] = value
  return options


# ---------------------------------------------------------------------------------------------
# Mistakes: one line, exit status 2, nothing written or submitted.


@pytest.mark.parametrize('args, message', [
    (['--cluster=local', '--nodes=0'], '--nodes must be positive'),
    (['--cluster=local', '--time_min=0'], '--time_min must be positive'),
    (['--cluster=local', '--gpus_per_node=-1'], '--gpus_per_node must be >= 0'),
    (['--cluster=local', '--mem_gb=-4'], '--mem_gb must be positive'),
    (['--cluster=local', '--nodes=2'], '--cluster=local runs on this machine: --nodes must be 1'),
    (['--cluster=debug', '--tasks_per_node=2'], '--cluster=debug runs in this process'),
    (['--cluster=local', '--partition=gpu'], '--partition and --slurm_opt apply to --cluster=slurm only'),
    (['--partition=gpu'], '--partition needs --cluster'),
    (['--cluster=local', '--slurm_opt=account'], '--slurm_opt=account: give an sbatch option as KEY=VALUE'),
    (['--cluster=local', '--sweep', '--tasks_per_node=2'], 'sweep members run one task each'),
    (['--cluster=local', '--array_parallelism=2'], '--array_parallelism needs --sweep'),
    (['--cluster=local', '--sweep', '--runner=processes'], '--runner=processes does not apply on a cluster'),
    (['--cluster=local', '--coordinator=localhost:1234'], '--coordinator does not apply with --cluster'),
    (['--cluster=local', '--mode=eval'], '--cluster trains'),
    (['--cluster=slurm'], 'no SLURM here (sbatch and srun not on PATH); --cluster=local runs the same jobs'),
])
def test_cluster_mistakes_are_one_line_errors_before_anything_is_written(tmp_path, args, message):
  workdir = tmp_path / 'run'
  no_slurm = {'PATH': os.pathsep.join(p for p in os.environ['PATH'].split(os.pathsep)
                                      if not (pathlib.Path(p) / 'sbatch').exists())}
  result = _launch(*SMOKE, f'--workdir={workdir}', *args, cwd=tmp_path, env=no_slurm)
  assert result.returncode == 2, result.stderr
  assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr, result.stderr
  assert not workdir.exists()


def test_missing_submitit_names_the_package_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, 'submitit', None)  # What `import submitit` sees when it is not installed.
  with pytest.raises(UserError, match=r'needs the submitit package: python -m pip install submitit'):
    cluster.check('local', cluster.Resources(), sweep=False)


# ---------------------------------------------------------------------------------------------
# SLURM through stubs: what is submitted.


def test_slurm_run_is_one_job_with_the_requested_resources(tmp_path, stub_slurm):
  env, submission = stub_slurm
  workdir = tmp_path / 'run'
  result = _launch(*SMOKE, f'--workdir={workdir}', '--cluster=slurm', '--nodes=2', '--tasks_per_node=4',
                   '--gpus_per_node=4', '--cpus_per_task=8', '--mem_gb=64', '--time_min=30', '--partition=gpu',
                   '--slurm_opt=account=proj', '--slurm_opt=qos=high', cwd=tmp_path, env=env)
  assert result.returncode == 0, result.stderr
  assert 'submitted vanilla:smoke as SLURM job 4242 (2 node(s) x 4 task(s))' in result.stdout
  assert f'tail -f {workdir / "slurm" / "4242_0_log.err"}' in result.stdout and 'scancel 4242' in result.stdout
  options = _sbatch_options(submission)
  assert {k: options[k] for k in ('nodes', 'ntasks-per-node', 'gpus-per-node', 'cpus-per-task', 'mem', 'time',
                                  'partition', 'account', 'qos', 'signal')} == {
      'nodes': '2', 'ntasks-per-node': '4', 'gpus-per-node': '4', 'cpus-per-task': '8', 'mem': '64GB',
      'time': '30', 'partition': 'gpu', 'account': 'proj', 'qos': 'high', 'signal': 'USR2@90'}
  assert 'array' not in options
  assert options['output'].startswith(str(workdir / 'slurm'))
  assert 'srun' in submission.read_text()  # Every task runs the job function (jax.distributed across them).
  # Nothing of the run itself is written before the job starts: the directory holds only the job's files.
  assert [p.name for p in workdir.iterdir()] == ['slurm']


@pytest.mark.parametrize('runner, elements, jobs', [
    ('sequential', 6, [f'4242_{i}' for i in range(6)]),
    ('vectorized', 2, ['4242_0'] * 3 + ['4242_1'] * 3),  # Each loss's 3 seeds as the lanes of one program.
])
def test_slurm_sweep_is_one_job_array_with_the_requested_parallelism(tmp_path, stub_slurm, runner, elements, jobs):
  env, submission = stub_slurm
  directory = tmp_path / 'sweep'
  result = _launch(*SMOKE, '--sweep', f'--runner={runner}', f'--workdir={directory}', '--cluster=slurm',
                   '--array_parallelism=2', '--gpus_per_node=1', '--time_min=45', '--partition=short', cwd=tmp_path,
                   env=env)
  assert result.returncode == 0, result.stderr
  assert f'as SLURM job array 4242 ({elements} element(s), at most 2 at once)' in result.stdout, result.stdout
  options = _sbatch_options(submission)
  assert (options['array'], options['nodes'], options['ntasks-per-node'], options['gpus-per-node'], options['time'],
          options['partition']) == (f'0-{elements - 1}%2', '1', '1', '1', '45', 'short')
  rows = [json.loads(l) for l in (directory / 'sweep.jsonl').read_text().splitlines()]
  assert [(r['status'], r['job']) for r in rows] == [('pending', job) for job in jobs]
  assert json.loads((directory / 'sweep.json').read_text())['exp'] == 'vanilla:smoke'


def test_resubmitting_a_sweep_submits_only_its_unfinished_members(tmp_path, stub_slurm, parsed_flags):
  directory = tmp_path / 'sweep'
  code = cluster.submit_sweep('vanilla:smoke', [('log.wandb', 'disabled')], directory, None, '0,1', 'sequential',
                              'debug', cluster.Resources())
  assert code == 0
  env, submission = stub_slurm
  result = _launch(*SMOKE, '--sweep', f'--workdir={directory}', '--cluster=slurm', cwd=tmp_path, env=env)
  assert result.returncode == 0, result.stderr
  assert 'as SLURM job array 4242 (4 element(s)' in result.stdout, result.stdout
  assert _sbatch_options(submission)['array'] == '0-3%4'
  rows = [json.loads(l) for l in (directory / 'sweep.jsonl').read_text().splitlines()]
  assert [r['status'] for r in rows] == ['finished'] * 2 + ['pending'] * 4
  assert [r['job'] for r in rows[2:]] == [f'4242_{i}' for i in range(4)] and rows[0]['job'].startswith('DEBUG_')


# ---------------------------------------------------------------------------------------------
# Start-up inside a job.


def _free_slurm_job_id() -> int:
  """A job id whose derived coordinator port (JAX: 61440 + id % 4096) is free here."""
  for _ in range(100):
    job_id = random.randrange(1, 1 << 20)
    with socket.socket() as s:
      try:
        s.bind(('localhost', 61440 + job_id % 4096))
        return job_id
      except OSError:
        continue
  raise RuntimeError('no free port in 61440-65535')


def test_a_slurm_environment_is_detected_without_arguments(tmp_path):
  code = ('from gan_jax import distributed\n'
          'n = distributed.initialize_from_job()\n'
          'import jax\n'
          'print("processes", n, jax.process_index(), jax.process_count())\n')
  job_id = _free_slurm_job_id()
  processes = []
  for task in range(2):  # The variables srun sets for each task of a 2-task step on one node.
    env = {**os.environ, 'SLURM_JOB_ID': str(job_id), 'SLURM_STEP_NODELIST': 'localhost', 'SLURM_NTASKS': '2',
           'SLURM_PROCID': str(task), 'SLURM_LOCALID': str(task), 'SLURM_STEP_NUM_NODES': '1'}
    processes.append(subprocess.Popen([sys.executable, '-c', code], cwd=REPO_ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
  outputs = [p.communicate(timeout=120) for p in processes]
  for task, (p, (out, err)) in enumerate(zip(processes, outputs)):
    assert p.returncode == 0, err
    assert f'processes 2 {task} 2' in out, (out, err)


def test_one_task_needs_no_distributed_start(monkeypatch):
  for name in ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_PROCID', 'SLURM_LOCALID', 'SUBMITIT_LOCAL_GLOBALID',
               'SUBMITIT_LOCAL_JOB_ID'):
    monkeypatch.setenv(name, '0')
  monkeypatch.setenv('SLURM_NTASKS', '1')
  monkeypatch.setenv('SUBMITIT_LOCAL_NTASKS', '1')
  from gan_jax import distributed
  assert distributed.initialize_from_job() == 1


# ---------------------------------------------------------------------------------------------
# Real jobs.


def test_debug_engine_runs_the_job_in_this_process(tmp_path, monkeypatch, parsed_flags):
  calls = []
  train = loop.train_and_evaluate

  def spy(config, workdir, *args, **kwargs):  # Calls through; records which process trained.
    calls.append(os.getpid())
    return train(config, workdir, *args, **kwargs)

  monkeypatch.setattr(loop, 'train_and_evaluate', spy)
  workdir = tmp_path / 'run'
  code = cluster.submit_run('vanilla:smoke', [('log.wandb', 'disabled')], workdir, 'debug', cluster.Resources())
  assert code == 0
  assert calls == [os.getpid()]
  assert json.loads((workdir / 'status.json').read_text()) ['status'] == 'finished'


@pytest.mark.slow
def test_local_sweep_records_a_failing_member_and_finishes_the_others(tmp_path, parsed_flags, capsys):
  directory = tmp_path / 'sweep'
  spec = [{'product': {'train.seed': [0, 1]}}, {'product': {'data.dir': [str(tmp_path / 'nowhere')]}}]
  code = cluster.submit_sweep('vanilla:smoke', [('log.wandb', 'disabled')], directory, None, None, 'sequential',
                              'local', cluster.Resources(array_parallelism=2), spec=spec)
  out = capsys.readouterr().out
  assert code == 1, out
  assert 'as 3 local job(s), 2 at once' in out and '2 of 3 member(s) finished' in out, out
  rows = {r['name']: r for r in map(json.loads, (directory / 'sweep.jsonl').read_text().splitlines())}
  assert [r['status'] for r in rows.values()] == ['finished', 'finished', 'failed'], rows
  failed = list(rows.values())[2]
  assert failed['error'].startswith('error: ') and 'nowhere' in failed['error'], failed
  assert all(r['job'] for r in rows.values())
  for row in list(rows.values())[:2]:
    steps = [json.loads(l)['step'] for l in (directory / row['workdir'] / 'metrics.jsonl').read_text().splitlines()]
    assert steps[-1] == 20 and row['step'] == 20
  # The report reads the members as it does for a local sweep.
  report.write_report(directory)
  assert '2 run(s) in 1 configuration(s)' in (directory / 'report.md').read_text()


@pytest.mark.slow
def test_local_job_of_two_tasks_trains_one_run_data_parallel(tmp_path):
  workdir = tmp_path / 'run'
  result = _launch(*SMOKE, f'--workdir={workdir}', '--cluster=local', '--tasks_per_node=2', cwd=tmp_path)
  assert result.returncode == 0, result.stdout + result.stderr
  assert f'run finished at step 20 in {workdir}' in result.stdout
  logs = [(workdir / 'slurm').glob(f'*_{task}_log.err') for task in range(2)]
  logs = [next(iter(task_logs)).read_text() for task_logs in logs]
  for log in logs:
    assert '2 device(s) in 2 process(es)' in log
    assert 'state identical in all 2 processes' in log  # Every process ends with the same parameters.
  # Both processes took part in every step (the same global losses); one of them wrote the logs.
  losses = [[line.split('| d_loss')[1] for line in log.splitlines() if '| d_loss' in line] for log in logs]
  assert len(losses[0]) == 4 and losses[0] == losses[1]
  assert [json.loads(l)['step'] for l in (workdir / 'metrics.jsonl').read_text().splitlines()] == [5, 10, 15, 20]
  assert json.loads((workdir / 'status.json').read_text())['status'] == 'finished'


REQUEUE_RUN = [('log.wandb', 'disabled'), ('train.steps', '3000'), ('train.checkpoint_every', '200'),
               ('train.log_every', '200'), ('train.sample_every', '0')]


def _warn_when_logged(slurm_dir: pathlib.Path, line: str, timeout_s: float = 600) -> threading.Thread:
  """Sends SIGUSR2 (what SLURM and LocalExecutor send before a time limit) to the job's task once its
  log shows `line`: a warning tied to progress, not to this machine's speed."""
  def watch():
    end = time.time() + timeout_s
    while time.time() < end:
      for log in slurm_dir.glob('*_0_log.err'):
        if line in log.read_text():
          controller = int(log.name.split('_')[0])  # A local job's id is its controller's pid.
          for task in (pathlib.Path(f'/proc/{controller}/task/{controller}/children').read_text().split()):
            os.kill(int(task), signal.SIGUSR2)
          return
      time.sleep(0.2)
  watcher = threading.Thread(target=watch, daemon=True)
  watcher.start()
  return watcher


@pytest.mark.slow
def test_a_job_warned_of_its_time_limit_is_requeued_and_ends_bit_identical(tmp_path, parsed_flags):
  # The warning arrives at step 1000-1200 of 3000: the task checkpoints, stops, is requeued by
  # submitit and resumes from that checkpoint; its final state equals an uninterrupted run's.
  watcher = _warn_when_logged(tmp_path / 'cut' / 'slurm', 'step 1000/3000')
  assert cluster.submit_run('vanilla:smoke', REQUEUE_RUN, tmp_path / 'cut', 'local', cluster.Resources()) == 0
  watcher.join(timeout=1)
  assert cluster.submit_run('vanilla:smoke', REQUEUE_RUN, tmp_path / 'whole', 'local', cluster.Resources()) == 0
  log = ''.join(p.read_text() for p in (tmp_path / 'cut' / 'slurm').glob('*_0_log.*'))
  assert 'SIGUSR2 received' in log and 'Requeued job' in log and 'resumed from checkpoint at step' in log, log[-3000:]
  assert 'Requeued job' not in ''.join(p.read_text() for p in (tmp_path / 'whole' / 'slurm').glob('*_0_log.*'))
  config = experiments.load_config('vanilla:smoke', REQUEUE_RUN)
  cut = from_checkpoint.load_latest(config, tmp_path / 'cut').state
  whole = from_checkpoint.load_latest(config, tmp_path / 'whole').state
  assert int(cut.step) == int(whole.step) == 3000
  import jax
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), cut, whole)
  assert json.loads((tmp_path / 'cut' / 'status.json').read_text())['status'] == 'finished'
