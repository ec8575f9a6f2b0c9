"""A run directory's files: the clock a resumed run continues from, status.json, the checks before writing."""
import json

import pytest

from gan_jax import experiments
from gan_jax import run_dir
from gan_jax import workdir_lock
from gan_jax.errors import UserError


def _write_rows(path, rows, cut: str = ''):
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows) + cut)


def test_a_resumed_run_continues_the_clock_of_its_checkpoint_step(tmp_path):
  # First attempt logged 100-400 and was killed after its checkpoint at 200 (a half-written line
  # last); the second attempt, resumed from 200, logged 300 again with its own clock.
  _write_rows(tmp_path / 'metrics.jsonl',
              [{'step': 100, 'train_seconds': 10.0}, {'step': 200, 'train_seconds': 20.0},
               {'step': 300, 'train_seconds': 30.0}, {'step': 400, 'train_seconds': 40.0},
               {'step': 300, 'train_seconds': 33.0}], cut='{"step": 400, "train_se')
  assert run_dir.logged_train_seconds(tmp_path, 200) == 20.0
  assert run_dir.logged_train_seconds(tmp_path, 350) == 33.0  # The resumed attempt's 300, not the first's.
  assert run_dir.logged_train_seconds(tmp_path, 99) == 0.0
  assert run_dir.logged_train_seconds(tmp_path / 'missing', 300) == 0.0


def test_read_jsonl_keeps_numbers_and_the_last_value_of_a_repeated_step(tmp_path):
  _write_rows(tmp_path / 'eval.jsonl', [{'step': 5, 'fd': 3.0, 'name': 'x', 'ok': True}, {'step': 5, 'fd': 2.0},
                                        {'step': 9, 'fd': 1.5}, {'no_step': 1}])
  assert run_dir.read_jsonl(tmp_path / 'eval.jsonl') == {'fd': {5: 2.0, 9: 1.5}}


def test_status_is_written_whole_and_read_back(tmp_path):
  assert run_dir.read_status(tmp_path) is None
  run_dir.write_status(tmp_path, 'diverged', 7, 'non-finite', restarts=1)
  assert run_dir.read_status(tmp_path) == {'status': 'diverged', 'step': 7, 'message': 'non-finite', 'restarts': 1}
  assert not (tmp_path / 'status.json.tmp').exists()
  (tmp_path / 'status.json').write_text('{"status": "runn')  # Cut short: reads as no status.
  assert run_dir.read_status(tmp_path) is None


def test_check_refuses_a_directory_that_is_not_a_run_and_allows_a_lock_and_job_logs(tmp_path):
  config = experiments.load_config('vanilla:smoke', [])
  workdir = tmp_path / 'run'
  run_dir.check(config, workdir)  # New.
  workdir.mkdir()
  (workdir / workdir_lock.LOCK_FILE).write_text('')
  (workdir / run_dir.CLUSTER_LOGS).mkdir()
  run_dir.check(config, workdir)  # Only what a submitted job leaves before it starts.
  (workdir / 'notes.txt').write_text('mine')
  with pytest.raises(UserError, match='not empty and holds no gan_jax run'):
    run_dir.check(config, workdir)
  (workdir / 'notes.txt').unlink()
  run_dir.prepare(config, workdir)
  assert json.loads((workdir / 'config.json').read_text())['train']['steps'] == config.train.steps
  run_dir.check(config, workdir)  # A run it may resume.
