"""One writer per run directory (gan_jax/workdir_lock.py), with real processes holding real locks."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gan_jax import workdir_lock
from tests.conftest import REPO_ROOT
from tests.test_cli import launch, snapshot

HOLD_SCRIPT = """
import sys, time
from gan_jax import workdir_lock
with workdir_lock.hold(sys.argv[1]):
  print('held', flush=True)
  time.sleep(600)
"""


def start_holder(workdir):
  process = subprocess.Popen([sys.executable, '-c', HOLD_SCRIPT, str(workdir)], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, text=True)
  assert process.stdout.readline().strip() == 'held'
  return process


def test_a_held_lock_names_its_holder_and_dies_with_it(tmp_path):
  holder_process = start_holder(tmp_path)
  try:
    holder = workdir_lock.holder(tmp_path)
    assert holder is not None and holder.pid == holder_process.pid
    with pytest.raises(workdir_lock.InUse, match=rf'{tmp_path} is in use by pid {holder_process.pid} on '):
      with workdir_lock.hold(tmp_path):
        pass
    assert workdir_lock.holder(tmp_path).pid == holder_process.pid  # Probing took nothing away.
  finally:
    holder_process.send_signal(signal.SIGKILL)
    holder_process.wait()
  assert workdir_lock.holder(tmp_path) is None  # The kernel released it: no stale lock.
  with workdir_lock.hold(tmp_path):
    with workdir_lock.hold(tmp_path):  # Re-entrant within a process.
      assert json.loads((tmp_path / 'lock').read_text())['pid'] == os.getpid()
    assert workdir_lock.holder(tmp_path).pid == os.getpid()
  assert (tmp_path / 'lock').read_text() == ''  # Released with its record.


def wait_for(predicate, timeout=120.0):
  deadline = time.monotonic() + timeout
  while not predicate():
    assert time.monotonic() < deadline, 'timed out'
    time.sleep(0.2)


def test_a_second_launch_on_a_live_run_refuses_and_a_killed_run_resumes(tmp_path):
  workdir = tmp_path / 'run'
  common = ['--exp=vanilla:ring', '--config.log.wandb=disabled', '--config.train.log_every=20',
            '--config.train.checkpoint_every=20', '--config.eval.metrics=', f'--workdir={workdir}']
  first = subprocess.Popen([sys.executable, str(REPO_ROOT / 'launch.py'), *common, '--config.train.steps=1000000'],
                           cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    wait_for(lambda: (workdir / 'checkpoints').is_dir() and any(
        p.name.isdigit() for p in (workdir / 'checkpoints').iterdir()))
    first.send_signal(signal.SIGSTOP)  # Frozen: nothing it writes can change the directory.
    time.sleep(0.5)
    before = snapshot(workdir)
    second = launch(*common, '--config.train.steps=1000000')
    assert second.returncode == 2, second.stderr
    error_lines = [line for line in second.stderr.splitlines() if line.startswith('error:')]
    assert error_lines == [f'error: {workdir} is in use by pid {first.pid} on {os.uname().nodename} since '
                           + error_lines[0].split(' since ')[1]]
    assert 'wait for it, stop it, or choose another --workdir' in error_lines[0]
    assert snapshot(workdir) == before

    sampled = launch('--mode=sample', f'--workdir={workdir}', '--num_samples=16', f'--out={tmp_path / "s.npz"}')
    assert sampled.returncode == 0, sampled.stderr
    assert f'is being trained by pid {first.pid}' in sampled.stderr
    assert snapshot(workdir) == before  # Reading a live run writes nothing in it.
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  stopped_at = json.loads((workdir / 'status.json').read_text())['step']
  relaunched = launch(*common, f'--config.train.steps={stopped_at + 60}')
  assert relaunched.returncode == 0, relaunched.stderr
  assert 'resumed from checkpoint at step' in relaunched.stderr
  status = json.loads((workdir / 'status.json').read_text())
  assert status['status'] == 'finished' and status['step'] == stopped_at + 60


@pytest.mark.slow
def test_two_sweep_launches_on_one_directory_train_each_member_once(tmp_path):
  sweep_dir = tmp_path / 'sweep'
  steps, log_every = 1500, 50
  args = [sys.executable, str(REPO_ROOT / 'launch.py'), '--exp=vanilla:ring', '--sweep',
          '--sweep_filter=loss=non_saturating', f'--workdir={sweep_dir}', '--config.log.wandb=disabled',
          f'--config.train.steps={steps}', f'--config.train.log_every={log_every}', '--config.eval.metrics=']
  processes = [subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
  outputs = [p.communicate(timeout=600) for p in processes]
  for process, (out, err) in zip(processes, outputs):
    assert process.returncode == 0, err
  members = [f'loss=non_saturating,seed={seed}' for seed in range(3)]
  for name in members:
    steps_logged = [json.loads(line)['step'] for line in (sweep_dir / name / 'metrics.jsonl').read_text().splitlines()]
    assert steps_logged == list(range(log_every, steps + 1, log_every)), name  # Once, in order.
    assert json.loads((sweep_dir / name / 'status.json').read_text())['status'] == 'finished'
  summaries = [next(line for line in out.splitlines() if line.startswith('sweep ')) for out, _ in outputs]
  # The launch that ends first may see a member the other still trains: it says so.
  assert any('3 of 3 member(s) finished' in line for line in summaries), summaries
  assert any('skipped as another process was training them' in line for line in summaries), summaries
  # Each member was trained by exactly one of the two launches; the other skipped it.
  trained = [err.count(' started in ') for _, err in outputs]
  assert sum(trained) == 3, (trained, summaries)
  rows = [json.loads(line) for line in (sweep_dir / 'sweep.jsonl').read_text().splitlines()]
  assert {row['name']: row['status'] for row in rows if row['name'] in members} == dict.fromkeys(members, 'finished')
