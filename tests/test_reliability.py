"""Nothing lost under interruption, divergence or faults: kills, signals, corrupt checkpoints, full disks."""
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import experiments
from gan_jax.errors import UserError
from gan_jax import from_checkpoint
from gan_jax import run_dir
from gan_jax import stop_signals
from gan_jax.train import loop
from gan_jax.train import run as run_lib
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

# A run long enough to be killed mid-way: ~2 steps per checkpoint, so kills often land mid-write.
RUN_ARGS = ['--exp=vanilla:smoke', '--config.log.wandb=disabled', '--config.train.steps=120',
            '--config.train.checkpoint_every=4', '--config.train.log_every=4', '--config.train.sample_every=0',
            '--config.train.keep_checkpoints=2']


def _config_from_args(args) -> object:
  overrides = [tuple(a[len('--config.'):].split('=', 1)) for a in args if a.startswith('--config.')]
  return experiments.load_config('vanilla:smoke', overrides)


def _start(workdir: pathlib.Path, cache_dir: pathlib.Path, *extra) -> subprocess.Popen:
  env = {**os.environ, 'JAX_COMPILATION_CACHE_DIR': str(cache_dir), 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'}
  return subprocess.Popen([sys.executable, str(REPO_ROOT / 'launch.py'), *RUN_ARGS, *extra, f'--workdir={workdir}'],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _final_state(workdir: pathlib.Path, config):
  """The latest checkpointed state of the run in `workdir`."""
  return from_checkpoint.load_latest(config, workdir).state


def _assert_identical(a, b) -> None:
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def _logged_steps(workdir: pathlib.Path) -> int:
  path = workdir / 'metrics.jsonl'
  return len(path.read_text().splitlines()) if path.exists() else 0


def _writing_checkpoint(workdir: pathlib.Path) -> bool:
  """Whether Orbax has a checkpoint write in flight (its temporary directory exists)."""
  directory = workdir / 'checkpoints'
  return directory.exists() and any('tmp' in p.name for p in directory.iterdir())


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """An uninterrupted run of RUN_ARGS: (workdir, compilation cache dir, final state)."""
  root = tmp_path_factory.mktemp('reliability')
  cache = root / 'jax_cache'
  process = _start(root / 'whole', cache)
  _, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, stderr
  return root, cache, _final_state(root / 'whole', _config_from_args(RUN_ARGS))


def test_sigkill_at_random_points_then_resume_is_bit_identical(reference):
  root, cache, expected = reference
  workdir = root / 'killed'
  rng = random.Random(0)
  kills, kills_mid_write = 0, 0
  while kills < 6:
    before = _logged_steps(workdir)
    process = _start(workdir, cache)
    deadline = time.monotonic() + 300
    while _logged_steps(workdir) <= before and process.poll() is None and time.monotonic() < deadline:
      time.sleep(0.005)  # Wait for this attempt to make progress.
    aim_mid_write = kills % 2 == 0
    stop_at = time.monotonic() + rng.uniform(0.0, 0.4)
    while process.poll() is None and time.monotonic() < stop_at:
      if aim_mid_write and _writing_checkpoint(workdir):
        break
      time.sleep(0.001)
    if process.poll() is not None:  # It finished first: nothing left to kill.
      break
    mid_write = _writing_checkpoint(workdir)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kills += 1
    kills_mid_write += mid_write
  process = _start(workdir, cache)
  _, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, stderr
  assert kills >= 5 and kills_mid_write >= 1, (kills, kills_mid_write)
  assert json.loads((workdir / 'status.json').read_text())['status'] == 'finished'
  _assert_identical(_final_state(workdir, _config_from_args(RUN_ARGS)), expected)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_the_current_step_and_exits_cleanly(reference, signum):
  root, cache, expected = reference
  workdir = root / f'signal_{signum}'
  process = _start(workdir, cache)
  while _logged_steps(workdir) < 2 and process.poll() is None:
    time.sleep(0.005)
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signum, stderr
  status = json.loads((workdir / 'status.json').read_text())
  assert status['status'] == 'interrupted' and signal.Signals(signum).name in status['message']
  assert 'Traceback' not in stderr and 'rerun the same command to resume' in stderr
  steps = checkpoint_lib.Checkpointer(workdir / 'checkpoints').steps()
  assert steps and steps[-1] == status['step'] < 120  # The stopping step itself was checkpointed.
  process = _start(workdir, cache)
  _, stderr = process.communicate(timeout=600)
  assert process.returncode == 0, stderr
  _assert_identical(_final_state(workdir, _config_from_args(RUN_ARGS)), expected)


def _corrupt(checkpoint_dir: pathlib.Path) -> None:
  """Overwrites the array data of one Orbax checkpoint with garbage of the same size."""
  files = [p for p in checkpoint_dir.rglob('*') if p.is_file() and p.stat().st_size > 0]
  assert files
  for path in files:
    path.write_bytes(b'\xff' * path.stat().st_size)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(reference, caplog):
  root, cache, expected = reference
  workdir = root / 'corrupt'
  args = [a if not a.startswith('--config.train.steps=') else '--config.train.steps=60' for a in RUN_ARGS]
  config_half = _config_from_args(args)
  config_half.log.wandb = 'disabled'
  loop.train_and_evaluate(config_half, workdir)
  checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints')
  assert checkpoints.steps() == [56, 60]
  checkpoints.close()
  _corrupt(workdir / 'checkpoints' / '60')
  config = _config_from_args(RUN_ARGS)
  with caplog.at_level('WARNING'):
    result = loop.train_and_evaluate(config, workdir)
  assert result['step'] == 120
  assert any('checkpoint 60' in r.getMessage() and 'could not be loaded' in r.getMessage() for r in caplog.records)
  _assert_identical(_final_state(workdir, config), expected)


def test_divergence_restarts_from_the_last_good_checkpoint_with_a_lower_learning_rate(tmp_path, data_dir):
  healthy = experiments.load_config('vanilla:smoke', [('log.wandb', 'disabled'), ('train.steps', '10'),
                                                      ('train.checkpoint_every', '5')])
  loop.train_and_evaluate(healthy, tmp_path)
  absurd = experiments.load_config('vanilla:smoke', [
      ('log.wandb', 'disabled'), ('train.steps', '30'), ('train.checkpoint_every', '5'), ('train.log_every', '1'),
      ('optim.g.lr', '1e30'), ('optim.d.lr', '1e30'), ('train.restarts', '1'), ('train.restart_lr_factor', '2e-34')])
  result = loop.train_and_evaluate(absurd, tmp_path)
  assert result['status'] == 'finished' and result['step'] == 30 and result['restarts'] == 1
  status = json.loads((tmp_path / 'status.json').read_text())
  assert status['status'] == 'finished' and status['restarts'] == 1
  saved = json.loads((tmp_path / 'config.json').read_text())
  np.testing.assert_allclose([saved['optim']['g']['lr'], saved['optim']['d']['lr']], [2e-4, 2e-4], rtol=1e-6)
  state = _final_state(tmp_path, absurd)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state))


def test_collapse_signal_stops_the_run_as_diverged(tmp_path, data_dir):
  # Any d_loss is below 1e9, so the collapse signal fires at the third log.
  config = experiments.load_config('vanilla:smoke', [('log.wandb', 'disabled'), ('train.collapse_patience', '3'),
                                                     ('train.collapse_d_loss', '1e9')])
  with pytest.raises(loop.Diverged, match=r'collapse: d_loss <= 1e\+09 at 3 consecutive logs up to step 15'):
    loop.train_and_evaluate(config, tmp_path)
  status = json.loads((tmp_path / 'status.json').read_text())
  assert status['status'] == 'diverged' and status['message'].startswith('collapse')
  assert checkpoint_lib.Checkpointer(tmp_path / 'checkpoints').steps() == [10]


@pytest.fixture
def full_disk(tmp_path):
  """A 64 KiB tmpfs: a real full disk (needs permission to mount; skipped otherwise)."""
  mount_point = tmp_path / 'tiny'
  mount_point.mkdir()
  if shutil.which('mount') is None or subprocess.run(
      ['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(mount_point)], capture_output=True).returncode:
    pytest.skip('cannot mount a small tmpfs here')
  yield mount_point
  subprocess.run(['umount', '-l', str(mount_point)], check=False)


def test_full_disk_loses_samples_and_logs_but_not_the_run(tmp_path, full_disk, caplog, data_dir):
  workdir = tmp_path / 'run'
  config = experiments.load_config('vanilla:smoke', [('log.wandb', 'disabled'), ('train.sample_every', '1'),
                                                     ('train.log_every', '1')])
  run_dir.prepare(config, workdir)
  shutil.rmtree(workdir / 'samples')
  (workdir / 'samples').symlink_to(full_disk)  # Sample grids and the metrics log go to the full disk.
  (workdir / 'metrics.jsonl').symlink_to(full_disk / 'metrics.jsonl')
  try:
    with open(full_disk / 'filler', 'wb', buffering=0) as f:  # Fill it.
      while True:
        f.write(b'\0' * 4096)
  except OSError:
    pass
  with caplog.at_level('WARNING'):
    result = loop.train_and_evaluate(config, workdir)
  assert result['status'] == 'finished' and result['step'] == 20
  warnings = [r.getMessage() for r in caplog.records if 'not written' in r.getMessage()]
  assert any('sample grid of step 20' in w for w in warnings), warnings
  assert any('metrics.jsonl: the record of step 20' in w for w in warnings), warnings
  assert checkpoint_lib.Checkpointer(workdir / 'checkpoints').steps() == [10, 20]
  assert json.loads((workdir / 'status.json').read_text())['status'] == 'finished'


def test_crashing_wandb_never_stops_training(tmp_path, data_dir, monkeypatch, caplog):
  import wandb

  def crash(*args, **kwargs):
    raise ConnectionError('W&B service crashed')

  monkeypatch.setattr(wandb.sdk.wandb_run.Run, 'log', crash)
  config = experiments.load_config('vanilla:smoke', [('log.wandb', 'offline')])
  with caplog.at_level('WARNING'):
    result = loop.train_and_evaluate(config, tmp_path)
  assert result['status'] == 'finished'
  assert any('W&B logging failed' in r.getMessage() for r in caplog.records)
  assert len((tmp_path / 'metrics.jsonl').read_text().splitlines()) == 4


def test_a_checkpoint_from_before_the_state_gained_fields_still_loads(tmp_path, caplog):
  """A run saved before GANState had `history` and loss_weights['historical'] (here: a checkpoint
  written without them) resumes: every saved value comes back bit for bit, the new fields start
  from their initial values, and a warning names them. A differing shape is still refused."""
  def state_of(*overrides):
    config = experiments.load_config('vanilla:ring', [('log.wandb', 'disabled'), ('penalty.historical', '0.1'),
                                                      *overrides])
    return run_lib.build_run(config).init_state(jax.random.key(0))

  template = state_of()
  trained = jax.tree.map(lambda x: x + 1 if jnp.issubdtype(x.dtype, jnp.floating) else x, template)
  older = {'step': trained.step, 'g': trained.g, 'd': trained.d, 'ema_params': trained.ema_params,
           'loss_weights': {k: v for k, v in trained.loss_weights.items() if k != 'historical'}}
  writer = checkpoint_lib.Checkpointer(tmp_path)
  writer.save(7, older)
  writer.close()
  with caplog.at_level('WARNING'):
    restored = checkpoint_lib.Checkpointer(tmp_path, read_only=True).restore_latest(template)
  _assert_identical((restored.g, restored.d, restored.step), (trained.g, trained.d, trained.step))
  _assert_identical((restored.history, restored.loss_weights['historical']),
                    (template.history, template.loss_weights['historical']))
  assert any('predates history/d/' in r.getMessage() and 'loss_weights/historical' in r.getMessage()
             for r in caplog.records), [r.getMessage() for r in caplog.records]
  with pytest.raises(UserError, match='could be loaded.*shape'):
    checkpoint_lib.Checkpointer(tmp_path, read_only=True).restore_latest(state_of(('model.hidden', '16')))


def test_a_repeated_stop_signal_is_one_request_and_a_later_one_aborts(monkeypatch):
  """The same stop request delivered twice at once (Ctrl-C to a process group, pkill) only asks for
  the checkpointed stop; a second signal SAME_REQUEST_SECONDS later stops without a checkpoint."""
  now = [100.0]
  monkeypatch.setattr(stop_signals.time, 'monotonic', lambda: now[0])
  with stop_signals.StopSignals() as signals:
    os.kill(os.getpid(), signal.SIGINT)
    now[0] += 0.01
    try:
      os.kill(os.getpid(), signal.SIGTERM)
    except KeyboardInterrupt as e:  # Not pytest's own interrupt: a failure of this test.
      pytest.fail(f'the repeated request aborted: {e}')
    assert signals.received == signal.SIGINT and signals.stop_at(3) == signal.SIGINT
    now[0] += stop_signals.StopSignals.SAME_REQUEST_SECONDS
    with pytest.raises(KeyboardInterrupt, match='second SIGTERM: stopping without a checkpoint'):
      os.kill(os.getpid(), signal.SIGTERM)
