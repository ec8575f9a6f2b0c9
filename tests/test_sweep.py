"""Sweeps: spec expansion, selection, W&B export, the launch.py flags, and (slow) real 2x2 sweeps
of vanilla:smoke with each CPU runner, killed midway and resumed, then reported."""
import json
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from gan_jax import config as config_lib
from gan_jax import errors
from gan_jax import experiments
from gan_jax import report
from gan_jax import run_dir
from gan_jax import sweep as sweep_lib
from gan_jax import sweep_runners
from gan_jax import workdir_lock
from gan_jax.errors import UserError
from tests.conftest import REPO_ROOT


def _config():
  return experiments.load_config('vanilla:smoke')


def _members(spec):
  return sweep_lib.make_members(spec, _config())


def launch(*args, timeout=300):
  return subprocess.run([sys.executable, str(REPO_ROOT / 'launch.py'), *args], capture_output=True, text=True,
                        cwd=REPO_ROOT, timeout=timeout, env=dict(os.environ))


def _one_error_line(result) -> str:
  assert result.returncode == 2, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.startswith('error: ')]
  assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
  return lines[0]


# ---------------------------------------------------------------------------------------------
# Expansion.


def test_product_is_a_grid_with_the_last_key_fastest_and_named_by_values():
  members = _members({'product': {'loss': ['minimax', 'hinge'], 'train.seed': [0, 1, 2]}})
  assert [m.values for m in members] == [{'loss': l, 'train.seed': s} for l in ('minimax', 'hinge') for s in (0, 1, 2)]
  assert [m.index for m in members] == list(range(6))
  assert members[4].name == 'loss=hinge,seed=1'
  assert members[4].override_args() == [('loss', 'hinge'), ('train.seed', '1')]


def test_zip_pairs_values_elementwise():
  members = _members({'zip': {'optim.g.lr': [1e-4, 2e-4], 'optim.d.lr': [4e-4, 8e-4]}})
  assert [m.values for m in members] == [{'optim.g.lr': 1e-4, 'optim.d.lr': 4e-4},
                                         {'optim.g.lr': 2e-4, 'optim.d.lr': 8e-4}]
  assert [m.name for m in members] == ['g.lr=0.0001,d.lr=0.0004', 'g.lr=0.0002,d.lr=0.0008']


def test_random_search_is_reproducible_within_bounds_and_reads_well():
  spec = {'random': {'num': 50, 'seed': 3, 'fields': {
      'optim.d.lr': {'log_uniform': [1e-5, 1e-3]}, 'train.ema_decay': {'uniform': [0.9, 0.999]},
      'train.d_steps': {'int_uniform': [1, 3]}, 'loss': ['minimax', 'hinge']}}}
  members = _members(spec)
  assert [m.values for m in members] == [m.values for m in _members(spec)]
  assert len(members) == 50
  lrs = np.array([m.values['optim.d.lr'] for m in members])
  assert lrs.min() >= 1e-5 and lrs.max() <= 1e-3
  # Log-uniform: about as many draws in each decade.
  assert 15 <= np.sum(lrs < 1e-4) <= 35
  assert all(0.9 <= m.values['train.ema_decay'] <= 0.999 for m in members)
  assert {m.values['train.d_steps'] for m in members} == {1, 2, 3}
  assert {m.values['loss'] for m in members} == {'minimax', 'hinge'}
  # Values are rounded to 4 significant digits so flags and names stay short.
  assert all(float(f'{v:.4g}') == v for v in lrs)
  other = _members({'random': {**spec['random'], 'seed': 4}})
  assert [m.values for m in other] != [m.values for m in members]


def test_kinds_in_one_dict_multiply_and_a_list_concatenates():
  spec = [{'zip': {'optim.g.lr': [1e-4, 2e-4], 'optim.d.lr': [4e-4, 8e-4]}, 'product': {'train.seed': [0, 1]}},
          {'product': [{'product': {'loss': ['hinge']}}, {'zip': {'train.seed': [7, 8]}}]}]
  members = _members(spec)
  assert [m.values for m in members] == [
      {'optim.g.lr': 1e-4, 'optim.d.lr': 4e-4, 'train.seed': 0},
      {'optim.g.lr': 1e-4, 'optim.d.lr': 4e-4, 'train.seed': 1},
      {'optim.g.lr': 2e-4, 'optim.d.lr': 8e-4, 'train.seed': 0},
      {'optim.g.lr': 2e-4, 'optim.d.lr': 8e-4, 'train.seed': 1},
      {'loss': 'hinge', 'train.seed': 7},
      {'loss': 'hinge', 'train.seed': 8}]
  assert members[-1].name == 'loss=hinge,seed=8'
  assert len({m.name for m in members}) == len(members)


def test_repeated_members_are_dropped():
  members = _members([{'product': {'train.seed': [0, 1]}}, {'product': {'train.seed': [1, 2]}}])
  assert [m.values['train.seed'] for m in members] == [0, 1, 2]


def test_labels_are_the_shortest_unique_key_suffixes():
  assert sweep_lib.short_labels(['optim.g.lr', 'optim.d.lr', 'train.seed', 'loss']) == {
      'optim.g.lr': 'g.lr', 'optim.d.lr': 'd.lr', 'train.seed': 'seed', 'loss': 'loss'}
  assert sweep_lib.short_labels(['a.b.lr', 'c.b.lr']) == {'a.b.lr': 'a.b.lr', 'c.b.lr': 'c.b.lr'}


@pytest.mark.parametrize('spec, message', [
    ({'grid': {'loss': ['hinge']}}, r"unknown kind\(s\) 'grid'; use product, zip, random"),
    ({}, 'unknown kind'),
    ([], 'empty list'),
    ('loss=hinge', 'must be a dict'),
    ({'product': {'loss': 'hinge'}}, r"'loss' needs a non-empty list of values \(got 'hinge'\)"),
    ({'product': {'loss': []}}, 'non-empty list'),
    ({'zip': {'loss': ['a', 'b'], 'train.seed': [0, 1, 2]}}, r'differ in length \(loss: 2, train.seed: 3\)'),
    ({'product': {'train.seed': [0]}, 'zip': {'train.seed': [1]}}, "'train.seed' swept twice"),
    ({'random': {'fields': {'optim.d.lr': [1e-4]}}}, "'num' must be a positive integer"),
    ({'random': {'num': 2, 'fields': {'optim.d.lr': {'log_uniform': [0, 1]}}}}, 'log_uniform needs 0 < lo < hi'),
    ({'random': {'num': 2, 'fields': {'optim.d.lr': {'uniform': [1, 1]}}}}, 'lo < hi'),
    ({'random': {'num': 2, 'fields': {'optim.d.lr': {'normal': [0, 1]}}}}, "needs a list of choices or one of"),
    ({'random': {'num': 2, 'feilds': {}}}, 'sweep random: expected'),
    ({'product': {'train.sed': [0, 1]}}, "sweep member 0 .*unknown config key 'train.sed'; valid keys of config.train: .*seed"),
    ({'product': {'train': [0]}}, '--config.train is a group'),
    ({'product': {'train.seed': [0, 0.5]}}, r'sweep member 1 \(seed=0.5\): --config.train.seed=0.5: expected an integer'),
    ({'product': {'log.name': ['a']}}, "'log.name' is set by the sweep itself"),
])
def test_bad_specs_are_user_errors_that_say_what_is_wrong(spec, message):
  with pytest.raises(UserError, match=message):
    _members(spec)


# ---------------------------------------------------------------------------------------------
# Selection.

GRID = {'product': {'loss': ['minimax', 'non_saturating'], 'train.seed': [0, 1, 2]}}


def test_filter_matches_all_keys_and_either_value_of_a_repeated_key():
  members = _members(GRID)
  chosen = sweep_lib.select(members, _config(), 'loss=minimax,train.seed=0')
  assert [m.name for m in chosen] == ['loss=minimax,seed=0']
  chosen = sweep_lib.select(members, _config(), 'seed=0,seed=2')  # Short labels work too.
  assert [m.index for m in chosen] == [0, 2, 3, 5]
  # A key that is not swept compares with the config's value.
  assert len(sweep_lib.select(members, _config(), 'data.name=mnist')) == 6


def test_filter_values_are_parsed_as_the_fields_type():
  members = _members({'product': {'optim.d.lr': [1e-4, 2e-4]}})
  assert [m.index for m in sweep_lib.select(members, _config(), 'optim.d.lr=0.0001')] == [0]
  assert [m.index for m in sweep_lib.select(members, _config(), 'd.lr=2e-4')] == [1]


def test_index_selects_from_the_whole_expansion():
  members = _members(GRID)
  assert [m.index for m in sweep_lib.select(members, _config(), index_text='4')] == [4]
  assert [m.index for m in sweep_lib.select(members, _config(), index_text='0,2-3')] == [0, 2, 3]
  both = sweep_lib.select(members, _config(), 'loss=non_saturating', '2-4')
  assert [m.index for m in both] == [3, 4]


@pytest.mark.parametrize('filter_text, index_text, message', [
    ('loss', None, r'expected KEY=VALUE\[,KEY=VALUE...\]'),
    ('los=hinge', None, "--sweep_filter: unknown config key 'los'"),
    ('loss=hinge', None, r"matches none of the 6 member\(s\); swept values: loss in \{minimax, non_saturating\}"),
    ('train.seed=x', None, 'expected an integer'),
    (None, '6', r'the sweep has 6 member\(s\), indices 0-5'),
    (None, 'two', 'expected indices and inclusive ranges'),
    (None, '3-1', 'is empty'),
])
def test_bad_filters_and_indices_are_user_errors(filter_text, index_text, message):
  with pytest.raises(UserError, match=message):
    sweep_lib.select(_members(GRID), _config(), filter_text, index_text)


def test_overriding_a_swept_key_is_refused(tmp_path):
  with pytest.raises(UserError, match=r'--config.loss is swept by the sweep; pick its values with --sweep_filter'):
    sweep_runners.prepare('vanilla:smoke', [('loss', 'hinge')], tmp_path / 's', spec=GRID)


def test_an_ambiguous_filter_key_asks_for_the_full_key():
  members = _members({'zip': {'optim.g.lr': [1e-4, 2e-4], 'optim.d.lr': [4e-4, 8e-4]}})
  with pytest.raises(UserError, match="'lr' could be any of optim.g.lr, optim.d.lr; write the full key"):
    sweep_lib.select(members, _config(), 'lr=1e-4')


def test_a_directory_of_another_sweep_or_of_something_else_is_refused(tmp_path):
  sweep = sweep_runners.prepare('vanilla:smoke', [], tmp_path / 's', spec=GRID)
  sweep_runners.write_sweep_json(sweep)
  with pytest.raises(UserError, match='holds a sweep of --exp=vanilla:smoke, not vanilla:ring'):
    sweep_runners.prepare('vanilla:ring', [], tmp_path / 's', spec=GRID)
  (tmp_path / 'other').mkdir()
  (tmp_path / 'other' / 'notes.txt').write_text('mine')
  with pytest.raises(UserError, match='is not empty and holds no sweep'):
    sweep_runners.prepare('vanilla:smoke', [], tmp_path / 'other', spec=GRID)


def test_member_configs_carry_the_sweep_name_and_member_name(tmp_path):
  sweep = sweep_runners.prepare('vanilla:smoke', [('train.steps', '7')], tmp_path / 'cmp', 'seed=1', spec=GRID)
  assert sweep.name == 'vanilla_smoke-cmp'
  assert [j.member.name for j in sweep.jobs] == ['loss=minimax,seed=1', 'loss=non_saturating,seed=1']
  job = sweep.jobs[1]
  assert (job.config.loss, job.config.train.seed, job.config.train.steps) == ('non_saturating', 1, 7)
  assert (job.config.log.group, job.config.log.name) == ('vanilla_smoke-cmp', 'loss=non_saturating,seed=1')
  assert job.workdir == tmp_path / 'cmp' / 'loss=non_saturating,seed=1'
  # The subprocess flags give the same config as the in-process one.
  overrides, _ = config_lib.split_override_args(['launch.py', *job.launch_args])
  assert config_lib.to_dict(experiments.load_config('vanilla:smoke', overrides)) == config_lib.to_dict(job.config)


def test_a_failed_members_error_is_its_last_error_line_else_its_last_words():
  log = 'I1204 starting\nerror: first\nTraceback...\nerror: config.train.steps must be > 0\n\n'
  assert errors.reported_error(log, 'exit status 2', 'm/log') == 'error: config.train.steps must be > 0'
  log = 'I1204 starting\nKilled\n  \n'
  assert errors.reported_error(log, 'exit status 137', 'm/log') == 'exit status 137: Killed (log: m/log)'
  assert errors.reported_error('', 'job 7 failed', 'j.err') == 'job 7 failed (log: j.err)'


def test_table_keeps_a_runners_outcome_over_the_running_status_of_a_dead_member(tmp_path):
  # A member whose process died mid-run leaves status.json 'running'; what its runner recorded
  # (failed, with the error) stands, unless a live process holds the member's lock.
  sweep = sweep_runners.prepare('vanilla:smoke', [], tmp_path / 's', 'seed=0,loss=minimax', spec=GRID)
  job = sweep.jobs[0]
  table = sweep_runners.Table(sweep)
  table.finished(job, 'failed', 'job 7 failed: killed')
  job.workdir.mkdir(parents=True)
  (job.workdir / 'status.json').write_text(json.dumps({'status': 'running', 'step': 3}))
  row = sweep_runners.Table(sweep).rows[job.member.name]
  assert (row['status'], row['error']) == ('failed', 'job 7 failed: killed')
  with workdir_lock.hold(job.workdir):  # Trained right now (here by this process).
    assert sweep_runners.Table(sweep).rows[job.member.name]['status'] == 'running'


# ---------------------------------------------------------------------------------------------
# W&B export.


def _agent_command(sweep_yaml: dict, assignment: dict) -> list[str]:
  """The command `wandb agent` runs for one parameter assignment (wandb's own expansion)."""
  from wandb.sdk.launch.sweeps import utils as wandb_sweep_utils
  args = wandb_sweep_utils.create_sweep_command_args({'args': {k: {'value': v} for k, v in assignment.items()}})
  out = []
  for chunk in sweep_yaml['command']:
    if chunk == '${args}':
      out += args['args']
    elif chunk in ('${env}',):
      continue
    elif chunk == '${interpreter}':
      out.append(sys.executable)
    elif chunk == '${program}':
      out.append(str(REPO_ROOT / sweep_yaml['program']))
    else:
      out.append(chunk)
  return out


def test_wandb_sweep_grid_export_runs_the_same_configs(tmp_path):
  result = launch('--exp=vanilla:smoke', '--sweep', '--wandb_sweep', f'--workdir={tmp_path / "w"}',
                  '--config.train.steps=7')
  assert result.returncode == 0, result.stderr
  assert 'wandb sweep' in result.stdout and 'wandb agent' in result.stdout
  config = yaml.safe_load((tmp_path / 'w' / 'sweep.yaml').read_text())
  assert config['program'] == 'launch.py' and config['method'] == 'grid'
  assert config['parameters'] == {'config.loss': {'values': ['minimax', 'non_saturating']},
                                  'config.train.seed': {'values': [0, 1, 2]}}
  assert config['command'][-1] == '${args}' and '--exp=vanilla:smoke' in config['command']
  assert '--config.train.steps=7' in config['command']
  command = _agent_command(config, {'config.loss': 'minimax', 'config.train.seed': 2})
  run = subprocess.run([*command, '--dry_run'], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
  assert run.returncode == 0, run.stderr
  assert "loss = 'minimax'" in run.stdout and 'train.seed = 2' in run.stdout and 'train.steps = 7' in run.stdout
  assert "log.group = 'vanilla_smoke-w'" in run.stdout


def test_wandb_sweep_random_maps_distributions():
  spec = {'random': {'num': 12, 'seed': 0, 'fields': {'optim.d.lr': {'log_uniform': [1e-5, 1e-3]},
                                                       'train.d_steps': {'int_uniform': [1, 5]},
                                                       'loss': ['minimax', 'hinge']}}}
  members = _members(spec)
  config, count = sweep_lib.wandb_sweep_config(spec, members, members, ['--exp=x'], 'name', 'proj')
  assert count == 12 and config['method'] == 'random'
  assert config['parameters'] == {
      'config.optim.d.lr': {'distribution': 'log_uniform_values', 'min': 1e-5, 'max': 1e-3},
      'config.train.d_steps': {'distribution': 'int_uniform', 'min': 1, 'max': 5},
      'config.loss': {'values': ['minimax', 'hinge']}}


def test_wandb_sweep_falls_back_to_member_indices_for_zip_and_selections(tmp_path):
  result = launch('--exp=vanilla:smoke', '--sweep', '--wandb_sweep', '--sweep_filter=seed=1',
                  f'--workdir={tmp_path / "w"}')
  assert result.returncode == 0, result.stderr
  config = yaml.safe_load((tmp_path / 'w' / 'sweep.yaml').read_text())
  assert config['method'] == 'grid' and config['parameters'] == {'sweep_index': {'values': [1, 4]}}
  command = _agent_command(config, {'sweep_index': 4})
  assert f'--workdir={tmp_path / "w"}' in command and '--sweep' in command
  run = subprocess.run([*command, '--dry_run'], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
  assert run.returncode == 0, run.stderr
  assert '[4] loss=non_saturating,seed=1 (new): --config.loss=non_saturating --config.train.seed=1' in run.stdout
  assert '1 of 6 member(s)' in run.stdout
  zipped = {'zip': {'optim.g.lr': [1e-4, 2e-4], 'optim.d.lr': [4e-4, 8e-4]}}
  members = _members(zipped)
  config, count = sweep_lib.wandb_sweep_config(zipped, members, members, ['--exp=x'], 'n', 'p')
  assert config['parameters'] == {'sweep_index': {'values': [0, 1]}} and count is None


# ---------------------------------------------------------------------------------------------
# launch.py flags.


def test_dry_run_prints_members_and_writes_nothing(tmp_path):
  result = launch('--exp=vanilla:smoke', '--sweep', '--dry_run', '--sweep_filter=train.seed=0,train.seed=1',
                  f'--workdir={tmp_path / "s"}')
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert '4 of 6 member(s)' in lines[0]
  members = [l.strip() for l in lines if re.match(r'\s+\[\d\]', l)]
  assert members == ['[0] loss=minimax,seed=0 (new): --config.loss=minimax --config.train.seed=0',
                     '[1] loss=minimax,seed=1 (new): --config.loss=minimax --config.train.seed=1',
                     '[3] loss=non_saturating,seed=0 (new): --config.loss=non_saturating --config.train.seed=0',
                     '[4] loss=non_saturating,seed=1 (new): --config.loss=non_saturating --config.train.seed=1']
  assert '  train.steps = 20' in lines
  assert not (tmp_path / 's').exists()


def test_sweep_spec_replaces_the_experiments_grid_and_a_wandb_agent_expands_the_same(tmp_path):
  spec = '{"zip": {"train.seed": [10, 11], "loss": ["hinge", "hinge"]}}'
  result = launch('--exp=vanilla:smoke', '--sweep', '--dry_run', f'--sweep_spec={spec}', '--sweep_index=1',
                  f'--workdir={tmp_path / "s"}')
  assert result.returncode == 0, result.stderr
  members = [l.strip() for l in result.stdout.splitlines() if re.match(r'\s+\[\d\]', l)]
  assert members == ['[1] seed=11,loss=hinge (new): --config.train.seed=11 --config.loss=hinge']
  assert '1 of 2 member(s)' in result.stdout
  result = launch('--exp=vanilla:smoke', '--sweep', '--wandb_sweep', f'--sweep_spec={spec}', f'--workdir={tmp_path / "w"}')
  assert result.returncode == 0, result.stderr
  config = yaml.safe_load((tmp_path / 'w' / 'sweep.yaml').read_text())
  assert config['parameters'] == {'sweep_index': {'values': [0, 1]}}
  run = subprocess.run([*_agent_command(config, {'sweep_index': 1}), '--dry_run'], capture_output=True, text=True,
                       cwd=REPO_ROOT, timeout=120)
  assert run.returncode == 0, run.stderr
  assert '[1] seed=11,loss=hinge (new): --config.train.seed=11 --config.loss=hinge' in run.stdout


@pytest.mark.parametrize('args, message', [
    (['--sweep_filter=loss=hinge'], '--sweep_filter needs --sweep'),
    (['--runner=processes'], '--runner needs --sweep'),
    (['--sweep_spec={}'], '--sweep_spec needs --sweep'),
    (['--sweep', '--sweep_spec={"product": {"train.seed": [1,}}'], '--sweep_spec is not valid JSON'),
    (['--sweep', '--sweep_spec={"product": {"train.sed": [1]}}'], 'train.sed'),
    (['--sweep', '--sweep_filter=loss=hinge'], 'matches none of the 6 member'),
    (['--sweep', '--sweep_index=9'], r'the sweep has 6 member\(s\)'),
    (['--sweep', '--config.loss=hinge'], '--config.loss is swept by the sweep'),
    (['--sweep', '--config.optim.d.lr=-1'], r'sweep member 0 \(loss=minimax,seed=0\): optim.d: need lr > 0'),
    (['--sweep', '--parallel=2'], '--parallel applies to --runner=processes only'),
    (['--sweep', '--runner=processes', '--parallel=0'], '--parallel must be >= 1'),
    (['--sweep', '--runner=vectorised'], 'runner'),
])
def test_sweep_flag_mistakes_are_one_line_errors(tmp_path, args, message):
  result = launch('--exp=vanilla:smoke', *args, f'--workdir={tmp_path / "s"}', '--dry_run')
  assert re.search(message, _one_error_line(result)), result.stderr
  assert not (tmp_path / 's').exists()


# ---------------------------------------------------------------------------------------------
# The processes runner's failure handling (fast: the members fail before training).


def _children(pid: int) -> list[int]:
  out = []
  for stat in pathlib.Path('/proc').glob('[0-9]*/stat'):
    try:
      fields = stat.read_text().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
      continue
    if int(fields[1]) == pid:
      out.append(int(stat.parent.name))
  return out


def test_processes_runner_records_crashing_members_and_goes_on(tmp_path, capsys):
  spec = {'product': {'data.dir': [str(tmp_path / 'nowhere'), str(tmp_path / 'nor_here')]}}
  code = sweep_runners.launch('vanilla:smoke', [('log.wandb', 'disabled')], tmp_path / 's', runner='processes',
                              parallel=2, spec=spec)
  assert code == 1
  table = _table(tmp_path / 's')
  assert [r['status'] for r in table.values()] == ['failed', 'failed']
  for (name, row), missing in zip(table.items(), ('nowhere', 'nor_here')):
    assert row['error'].startswith('error: ') and missing in row['error'], row
    assert (tmp_path / 's' / 'logs' / f'{name}.log').exists()
  assert '0 of 2 member(s) finished' in capsys.readouterr().out


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux-only')
def test_members_die_with_a_killed_sweep(tmp_path):
  args = json.dumps({'exp': 'vanilla:smoke', 'overrides': [['log.wandb', 'disabled']], 'dir': str(tmp_path / 's'),
                     'spec': {'product': {'train.seed': [0]}}})
  script = _SWEEP_SCRIPT.replace("spec=a['spec']", "spec=a['spec'], runner='processes', parallel=1")
  parent = subprocess.Popen([sys.executable, '-c', script, args], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
  try:
    deadline = time.monotonic() + 60
    while not _children(parent.pid) and time.monotonic() < deadline:
      time.sleep(0.05)
    children = _children(parent.pid)
    assert children, 'the sweep started no member process'
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5  # A member alone would run for 10 s or more.
    while any(pathlib.Path(f'/proc/{c}').exists() for c in children) and time.monotonic() < deadline:
      time.sleep(0.05)
    alive = [c for c in children if pathlib.Path(f'/proc/{c}').exists()
             and pathlib.Path(f'/proc/{c}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z']
    assert not alive, 'a member process outlived its killed sweep'
  finally:
    try:
      os.killpg(parent.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass


@pytest.mark.slow
def test_ctrl_c_on_a_process_sweep_checkpoints_every_member(tmp_path):
  """A terminal's Ctrl-C sends SIGINT to the sweep and to its members, and the sweep then forwards
  SIGTERM to them: each member must take the two as one request, checkpoint its current step and
  be recorded as interrupted (not failed), so that the rerun resumes it (resuming: tests below)."""
  directory = tmp_path / 's'
  overrides = [['log.wandb', 'disabled'], ['train.steps', '100000'], ['train.log_every', '5'],
               ['train.checkpoint_every', '100000'], ['train.sample_every', '0']]
  args = json.dumps({'exp': 'vanilla:smoke', 'overrides': overrides, 'dir': str(directory),
                     'spec': {'product': {'train.seed': [0, 1]}}})
  script = _SWEEP_SCRIPT.replace("spec=a['spec']", "spec=a['spec'], runner='processes', parallel=2")
  parent = subprocess.Popen([sys.executable, '-c', script, args], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
  members = [directory / 'seed=0', directory / 'seed=1']
  try:
    deadline = time.monotonic() + 240
    while not all((m / 'metrics.jsonl').exists() for m in members) and time.monotonic() < deadline:
      time.sleep(0.05)
    assert all((m / 'metrics.jsonl').exists() for m in members), 'the members did not start training'
    os.killpg(parent.pid, signal.SIGINT)  # What a terminal's Ctrl-C does: the whole process group.
    parent.wait(timeout=120)
  finally:
    try:
      os.killpg(parent.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
  for member in members:
    status = _status(member)
    assert status['status'] == 'interrupted', status
    assert _checkpoints(member) == [status['step']] and status['step'] > 0  # The stopping step, checkpointed.
  assert [row['status'] for row in _table(directory).values()] == ['interrupted', 'interrupted']


@pytest.mark.slow
def test_a_member_stopped_by_a_signal_of_its_own_is_recorded_interrupted_and_the_sweep_goes_on(tmp_path):
  """A member that a signal stopped with its step checkpointed is interrupted, not failed, even when
  the sweep process itself got no signal (what a Ctrl-C looks like when the members exit before the
  sweep process handles its own SIGINT, on a busy machine); the sweep goes on with the next member."""
  directory = tmp_path / 's'
  overrides = [['log.wandb', 'disabled'], ['train.steps', '100000'], ['train.log_every', '5'],
               ['train.checkpoint_every', '100000'], ['train.sample_every', '0']]
  args = json.dumps({'exp': 'vanilla:smoke', 'overrides': overrides, 'dir': str(directory),
                     'spec': {'product': {'train.seed': [0, 1]}}})
  script = _SWEEP_SCRIPT.replace("spec=a['spec']", "spec=a['spec'], runner='processes', parallel=1")
  parent = subprocess.Popen([sys.executable, '-c', script, args], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
  first, second = directory / 'seed=0', directory / 'seed=1'
  try:
    deadline = time.monotonic() + 240
    while not (first / 'metrics.jsonl').exists() and time.monotonic() < deadline:
      time.sleep(0.05)
    member = [c for c in _children(parent.pid) if 'launch.py' in pathlib.Path(f'/proc/{c}/cmdline').read_text()]
    assert len(member) == 1, 'the first member is not training'
    os.kill(member[0], signal.SIGTERM)  # The member alone: the sweep process sees only its exit.
    while not (second / 'metrics.jsonl').exists() and time.monotonic() < deadline:
      time.sleep(0.05)
    assert (second / 'metrics.jsonl').exists(), 'the sweep did not go on with the next member'
    assert _table(directory)['seed=0']['status'] == 'interrupted'
    os.killpg(parent.pid, signal.SIGINT)
    parent.wait(timeout=120)
  finally:
    try:
      os.killpg(parent.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
  assert _status(first)['status'] == 'interrupted' and _checkpoints(first) == [_status(first)['step']]
  assert [row['status'] for row in _table(directory).values()] == ['interrupted', 'interrupted']


# ---------------------------------------------------------------------------------------------
# Real sweeps (slow): 2x2 (loss x seed) of vanilla:smoke, plus one member that diverges.

SMOKE = [('log.wandb', 'disabled'), ('train.steps', '100'), ('train.log_every', '10'),
         ('train.checkpoint_every', '20'), ('train.sample_every', '50')]
GRID_2X2 = {'product': {'loss': ['minimax', 'non_saturating'], 'train.seed': [0, 1]}}
DIVERGING = {'zip': {'optim.d.lr': [1e10], 'optim.g.lr': [1e10]}}
GRID_NAMES = ['loss=minimax,seed=0', 'loss=minimax,seed=1', 'loss=non_saturating,seed=0', 'loss=non_saturating,seed=1']
DIVERGING_NAME = 'd.lr=1e+10,g.lr=1e+10'
_SWEEP_SCRIPT = ('import json, sys\n'
                 'from gan_jax import sweep_runners\n'
                 'a = json.loads(sys.argv[1])\n'
                 "sys.exit(sweep_runners.launch(a['exp'], a['overrides'], a['dir'], spec=a['spec']))\n")


def _start_sequential_sweep(directory: pathlib.Path, log: pathlib.Path) -> subprocess.Popen:
  args = json.dumps({'exp': 'vanilla:smoke', 'overrides': SMOKE, 'dir': str(directory), 'spec': [GRID_2X2, DIVERGING]})
  with open(log, 'w') as f:
    return subprocess.Popen([sys.executable, '-c', _SWEEP_SCRIPT, args], cwd=REPO_ROOT, stdout=f,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _status(workdir: pathlib.Path) -> dict:
  try:
    return json.loads((workdir / 'status.json').read_text())
  except (FileNotFoundError, json.JSONDecodeError):
    return {}


def _checkpoints(workdir: pathlib.Path) -> list[int]:
  return sorted(int(p.name) for p in (workdir / 'checkpoints').glob('*') if p.name.isdigit())


def _steps_and_values(workdir: pathlib.Path, key: str = 'd_loss'):
  records = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [r['step'] for r in records], [r[key] for r in records]


def _table(directory: pathlib.Path) -> dict:
  return {row['name']: row for row in map(json.loads, (directory / 'sweep.jsonl').read_text().splitlines())}


@pytest.fixture(scope='module')
def sequential_sweep(tmp_path_factory):
  """A sequential sweep killed (SIGKILL) while a member has a checkpoint, then resumed.

  Returns the sweep directory and what was on disk at the kill.
  """
  directory = tmp_path_factory.mktemp('sweeps') / 'seq'
  log = directory.parent / 'seq.log'
  process = _start_sequential_sweep(directory, log)
  killed_member = None
  deadline = time.monotonic() + 240
  try:
    while time.monotonic() < deadline and process.poll() is None:
      finished = [n for n in GRID_NAMES if _status(directory / n).get('status') == 'finished']
      running = [n for n in GRID_NAMES if _status(directory / n).get('status') == 'running'
                 and _checkpoints(directory / n)]
      if finished and running:
        killed_member = running[0]
        break
      time.sleep(0.01)
  finally:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
  assert killed_member, f'the sweep ended before a member could be killed midway:\n{log.read_text()[-3000:]}'
  at_kill = {
      'killed': killed_member,
      'checkpoint': _checkpoints(directory / killed_member)[-1],
      'finished': {n: (directory / n / 'status.json').stat().st_mtime_ns for n in GRID_NAMES
                   if _status(directory / n).get('status') == 'finished'},
      'table': _table(directory),
  }
  resumed = _start_sequential_sweep(directory, log)
  returncode = resumed.wait(timeout=300)
  return directory, at_kill, returncode, log.read_text()


@pytest.mark.slow
def test_killed_sequential_sweep_resumes_skipping_finished_members(sequential_sweep):
  directory, at_kill, returncode, output = sequential_sweep
  assert at_kill['table'][at_kill['killed']]['status'] == 'running'
  # The diverging member fails the sweep's exit status, after every other member ran.
  assert returncode == 1, output
  assert '4 of 5 member(s) finished' in output, output
  table = _table(directory)
  assert list(table) == GRID_NAMES + [DIVERGING_NAME]
  for name in GRID_NAMES:
    row = table[name]
    assert (row['status'], row['step'], row['error'], row['workdir']) == ('finished', 100, '', name), row
  assert table['loss=minimax,seed=1']['overrides'] == {'loss': 'minimax', 'train.seed': '1'}
  failed = table[DIVERGING_NAME]
  assert failed['status'] == 'failed' and failed['error'].startswith('diverged: non-finite values'), failed
  assert failed['overrides'] == {'optim.d.lr': '10000000000.0', 'optim.g.lr': '10000000000.0'}
  # Finished members were skipped: their status.json was not rewritten.
  assert at_kill['finished']
  for name, mtime in at_kill['finished'].items():
    assert (directory / name / 'status.json').stat().st_mtime_ns == mtime, name
  # The killed member resumed from its last checkpoint: the steps logged after the restart begin
  # right after that checkpoint, and every step up to the end is logged.
  steps, _ = _steps_and_values(directory / at_kill['killed'])
  restarts = [i for i in range(1, len(steps)) if steps[i] <= steps[i - 1]]
  assert len(restarts) <= 1, steps
  if restarts:
    assert steps[restarts[0]] == at_kill['checkpoint'] + 10, (steps, at_kill)
  else:
    assert steps[0] == 10
  assert sorted(set(steps)) == list(range(10, 101, 10))
  # Every member's run directory is complete and knows its sweep.
  for name in GRID_NAMES:
    workdir = directory / name
    config = json.loads((workdir / 'config.json').read_text())
    assert config['log']['group'] == 'vanilla_smoke-seq' and config['log']['name'] == name
    assert (workdir / 'samples' / 'step_100.png').exists() and _checkpoints(workdir)[-1] == 100
  assert json.loads((directory / 'sweep.json').read_text())['name'] == 'vanilla_smoke-seq'


@pytest.mark.slow
def test_processes_runner_gives_the_same_runs(sequential_sweep, tmp_path):
  """The same four members through launch.py with two processes at a time give the runs of the
  sequential sweep (the killed-and-resumed member included).

  Each process here is pinned to one core while the sequential sweep's XLA used two threads, so
  float32 reductions round differently: the first logs agree to a few 1e-5 and the GAN dynamics
  grow that to about 1e-4 by step 100 (a different seed or loss would differ by far more)."""
  seq_dir = sequential_sweep[0]
  directory = tmp_path / 'proc'
  result = launch('--exp=vanilla:smoke', '--sweep', '--sweep_filter=seed=0,seed=1', '--runner=processes',
                  '--parallel=2', f'--workdir={directory}', *[f'--config.{k}={v}' for k, v in SMOKE], timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  assert '4 of 4 member(s) finished' in result.stdout
  table = _table(directory)
  assert [n for n, r in table.items() if r['status'] == 'finished'] == GRID_NAMES
  assert [r['status'] for n, r in table.items() if n not in GRID_NAMES] == ['pending', 'pending']
  for name in GRID_NAMES:
    workdir = directory / name
    assert _status(workdir) == {'status': 'finished', 'step': 100, 'message': ''}
    log = (directory / 'logs' / f'{name}.log').read_text()
    assert f'--config.log.name={name}' in log and 'run finished at step 100' in log
    config = json.loads((workdir / 'config.json').read_text())
    assert config['log']['group'] == 'vanilla_smoke-proc' and config['log']['name'] == name
    assert (workdir / 'samples' / 'step_100.png').exists() and _checkpoints(workdir)[-1] == 100
    for key in ('d_loss', 'g_loss'):
      steps, values = _steps_and_values(workdir, key)
      assert steps == list(range(10, 101, 10))
      seq_steps, seq_values = _steps_and_values(seq_dir / name, key)
      last = {s: v for s, v in zip(seq_steps, seq_values)}
      np.testing.assert_allclose([last[s] for s in steps[:2]], values[:2], rtol=1e-4, err_msg=f'{name} {key}')
      np.testing.assert_allclose([last[s] for s in steps], values, rtol=2e-3, err_msg=f'{name} {key}')


@pytest.mark.slow
def test_report_of_the_sweep_matches_the_runs_metrics(sequential_sweep):
  directory = sequential_sweep[0]
  result = launch(f'--report={directory}')
  assert result.returncode == 0, result.stderr
  assert '5 run(s) in 3 configuration(s)' in result.stdout
  rows = list(__import__('csv').DictReader((directory / 'report.csv').open()))
  assert [(r['loss'], r['optim.d.lr'], r['runs'], r['seeds'], r['status']) for r in rows] == [
      ('minimax', '0.0002', '2', '0 1', '2 finished'),
      ('non_saturating', '0.0002', '2', '0 1', '2 finished'),
      ('non_saturating', '10000000000.0', '1', '0', '1 diverged')]
  for row, loss in zip(rows[:2], ('minimax', 'non_saturating')):
    for key in ('d_loss', 'g_loss'):
      finals = []
      for seed in (0, 1):
        steps, values = _steps_and_values(directory / f'loss={loss},seed={seed}', key)
        finals.append({s: v for s, v in zip(steps, values)}[100])  # The last record of step 100.
      assert math.isclose(float(row[f'{key}_final_mean']), np.mean(finals), rel_tol=1e-12)
      assert math.isclose(float(row[f'{key}_final_std']), np.std(finals, ddof=1), rel_tol=1e-9)
  assert rows[2]['d_loss_final_mean'] == ''  # Diverged before its first log.
  md = (directory / 'report.md').read_text()
  assert '| loss | d.lr | g.lr | runs | seeds | status | step | d_loss final | g_loss final |' in md
  assert 'diverged at step' in md
  for name in ('d_loss', 'g_loss'):
    png = directory / 'report_plots' / f'{name}.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and f'report_plots/{name}.png' in md
  assert report.find_runs(directory)[0].path.parent == directory


def test_a_progressive_member_is_finished_at_its_schedules_end_not_at_train_steps(tmp_path):
  # A ProGAN run's length is its schedule (448,000 images of batch 32 = 14,000 iterations for every
  # progan:cpu32 member); train.steps (1e9) only caps it. Finished there, the sweep must skip it (a
  # record restored without checkpoints would otherwise train again from step 0).
  sweep = sweep_runners.prepare('progan:cpu32', [], tmp_path / 's')
  assert len(sweep.jobs) == 12
  for job in sweep.jobs:
    assert sweep_runners.end_step(job.config) == 14_000 < job.config.train.steps
    job.workdir.mkdir(parents=True)
    run_dir.write_status(job.workdir, 'finished', 13_999)
    assert not sweep_runners.is_finished(job)
    run_dir.write_status(job.workdir, 'finished', 14_000)
    assert sweep_runners.is_finished(job)
  # The same images in batches of 16 take twice the iterations: the runs are not finished for that.
  longer = sweep_runners.prepare('progan:cpu32', [('data.batch_size', '16')], tmp_path / 'longer',
                                 filter_text='train.seed=0')
  assert [sweep_runners.end_step(job.config) for job in longer.jobs] == [28_000] * 4
  for job in longer.jobs:
    job.workdir.mkdir(parents=True)
    run_dir.write_status(job.workdir, 'finished', 14_000)
    assert not sweep_runners.is_finished(job)
  # A plain member ends at train.steps.
  plain = sweep_runners.prepare('vanilla:smoke', [], tmp_path / 'plain', spec=GRID)
  job = plain.jobs[0]
  job.workdir.mkdir(parents=True)
  run_dir.write_status(job.workdir, 'finished', job.config.train.steps)
  assert sweep_runners.end_step(job.config) == job.config.train.steps and sweep_runners.is_finished(job)
  run_dir.write_status(job.workdir, 'finished', job.config.train.steps - 1)
  assert not sweep_runners.is_finished(job)
