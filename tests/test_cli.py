"""launch.py on bad input: one line `error: ...`, exit status 2, nothing in the workdir overwritten."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def launch(*args, env_extra=None, cwd=None):
  env = {**os.environ, **(env_extra or {})}
  return subprocess.run([sys.executable, str(REPO_ROOT / 'launch.py'), *args], capture_output=True, text=True,
                        env=env, cwd=cwd or REPO_ROOT, timeout=300)


def snapshot(directory: pathlib.Path) -> dict:
  return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.rglob('*') if p.is_file()}


@pytest.fixture(scope='module')
def existing_workdir(tmp_path_factory):
  """A workdir holding a finished smoke run's files (as a user's earlier run would)."""
  workdir = tmp_path_factory.mktemp('cli') / 'run'
  result = launch('--exp=vanilla:smoke', '--config.train.steps=2', '--config.log.wandb=disabled',
                  f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr
  return workdir


@pytest.mark.parametrize('args, message', [
    (['--exp=nope'], "unknown experiment 'nope'; choose one of .*vanilla"),
    (['--exp=vanilla:huge'], 'vanilla: unknown option'),
    (['--exp=vanilla:smoke', '--config.train.stpes=3'], "unknown config key 'train.stpes'; valid keys of config.train: .*steps"),
    (['--exp=vanilla:smoke', '--config.train.steps=many'], 'train.steps'),
    (['--exp=vanilla:smoke', '--config.loss=wasserstien'], 'unknown loss'),
    (['--exp=vanilla:smoke', '--config.data.batch_size=0'], 'data.batch_size must be >= 1'),
    (['--exp=vanilla:smoke', '--config.model.g_channels=16'], r'differs in keys that change shapes \(model.g_channels: 8 -> 16\)'),
    (['--exp=vanilla:smoke', '--bogus_flag=1'], 'bogus_flag'),
    (['--exp=vanilla:smoke', 'stray'], 'unexpected arguments stray'),
    (['--exp=vanilla:smoke', '--config.train.d_steps=0'], r'train\.d_steps must be >= 1'),
    (['--exp=vanilla:smoke', '--config.optim.d.lr=-1'], r'optim\.d: need lr > 0'),
    (['--exp=vanilla:smoke', '--config.train.dtype=float16'], "unknown train.dtype 'float16'"),
    (['--exp=vanilla:smoke', '--config.model.name=resnet'], "unknown model 'resnet'"),
    (['--exp=vanilla:smoke', '--config.model.d_norm=group'], "unknown model.d_norm 'group'"),
    (['--exp=vanilla:smoke', '--config.data.name=imagenet'], "unknown dataset 'imagenet'"),
    (['--exp=vanilla:smoke', '--config.eval.metrics=fdi'], r"unknown eval metric\(s\) 'fdi'"),
    (['--exp=vanilla:smoke', '--config.penalty.gp=10'], 'needs per-example input gradients'),
    (['--exp=vanilla:smoke', '--config.train.restarts=-1'], r'train\.restarts must be >= 0'),
    (['--exp=vanilla:smoke', '--config.train.restart_lr_factor=2'], r'train\.restart_lr_factor must be in \(0, 1\)'),
    (['--exp=vanilla:smoke', '--sweep_index=0'], '--sweep_index needs --sweep'),
    (['--exp=vanilla:smoke', '--sweep'], 'is not empty and holds no sweep'),
    (['--mode=sample', '--num_samples=0'], '--num_samples must be >= 1'),
    (['--mode=eval'], 'no eval metrics configured'),
    (['--report=/nonexistent/runs'], 'is not a directory'),
])
def test_bad_input_fails_fast_and_touches_nothing(existing_workdir, args, message):
  before = snapshot(existing_workdir)
  result = launch(*args, '--config.log.wandb=disabled', f'--workdir={existing_workdir}')
  assert result.returncode == 2, result.stderr
  error_lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
  assert len(error_lines) == 1, result.stderr
  assert 'Traceback' not in result.stderr
  assert re.search(message, error_lines[0]), error_lines[0]
  assert snapshot(existing_workdir) == before


def test_missing_data_dir_names_the_files_and_how_to_get_them(tmp_path):
  workdir = tmp_path / 'run'
  result = launch('--exp=vanilla:smoke', '--config.log.wandb=disabled', f'--workdir={workdir}',
                  f'--config.data.dir={tmp_path / "nowhere"}')
  assert result.returncode == 2
  assert result.stderr.startswith('error: ') and len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert 'nowhere' in result.stderr and 'mnist' in result.stderr.lower() and 'BUILD.md' in result.stderr
  assert 'Place the files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz in' in result.stderr
  assert not workdir.exists() and not (tmp_path / 'nowhere').exists()  # The failed download left nothing.


def test_non_run_directory_is_not_used(tmp_path):
  (tmp_path / 'notes.txt').write_text('mine')
  result = launch('--exp=vanilla:smoke', '--config.log.wandb=disabled', f'--workdir={tmp_path}')
  assert result.returncode == 2 and 'holds no gan_jax run' in result.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']
