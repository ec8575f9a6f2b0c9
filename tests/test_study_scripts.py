"""The long-study scripts. bench/run_loss_study.sh, run with a stand-in `python` that records its
commands: each data set's seed sweep goes into its own search's directory with its own --exp, and
each search's best draws are copied to that data set's best_<data>.json. bench/save_records.py, with
a real sweep: the records it keeps are members the sweep skips on another machine."""
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys

import pytest

from tests import bench_scripts

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = ('mnist', 'fashion_mnist')

STAND_IN = """#!/bin/bash
echo "$*" >> "$CALLS"
exit 0
"""


def test_each_data_set_keeps_its_own_seed_sweep_and_best_draws(tmp_path):
  repo, runs = tmp_path / 'repo', tmp_path / 'runs'
  (repo / 'bench').mkdir(parents=True)
  shutil.copy(REPO / 'bench' / 'run_loss_study.sh', repo / 'bench')
  for data in DATA:
    (runs / data).mkdir(parents=True)
    (runs / data / 'best.json').write_text(json.dumps({'from': data}))
    (repo / 'docs' / 'results' / 'loss_study' / 'records' / data).mkdir(parents=True)
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  (bin_dir / 'python').write_text(STAND_IN)
  (bin_dir / 'python').chmod(stat.S_IRWXU)
  calls = tmp_path / 'calls.txt'
  env = {**os.environ, 'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', 'CALLS': str(calls)}
  done = subprocess.run(['bash', str(repo / 'bench' / 'run_loss_study.sh'), str(runs)], env=env,
                        capture_output=True, text=True, timeout=60)
  assert done.returncode == 0 and 'run_loss_study: done' in done.stdout, done.stdout + done.stderr

  seed_sweeps = {}
  for line in calls.read_text().splitlines():
    args = dict(a.split('=', 1) for a in line.split() if a.startswith('--') and '=' in a)
    if args.get('--exp', '').startswith('loss_study:best'):
      seed_sweeps.setdefault(args['--exp'], set()).add(args['--workdir'])
  assert seed_sweeps == {f'loss_study:best,{data}': {str(runs / data / 'seeds')} for data in DATA}, seed_sweeps
  for data in DATA:
    best = repo / 'docs' / 'results' / 'loss_study' / f'best_{data}.json'
    assert json.loads(best.read_text()) == {'from': data}


_SWEEP_SCRIPT = ('import json, sys\n'
                 'from gan_jax import sweep_runners\n'
                 'a = json.loads(sys.argv[1])\n'
                 "sys.exit(sweep_runners.launch('vanilla:smoke', a['overrides'], a['dir'], spec=a['spec']))\n")
_SMOKE = [('log.wandb', 'disabled'), ('train.steps', '20'), ('train.log_every', '10'),
          ('train.checkpoint_every', '10'), ('train.sample_every', '20')]
_LOSSES = {'product': {'loss': ['minimax', 'non_saturating']}}


def _sweep(directory: pathlib.Path) -> subprocess.CompletedProcess:
  args = json.dumps({'overrides': _SMOKE, 'dir': str(directory), 'spec': [_LOSSES]})
  return subprocess.run([sys.executable, '-c', _SWEEP_SCRIPT, args], cwd=REPO, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.slow
def test_records_restored_on_a_new_machine_are_finished_members_their_sweep_skips(tmp_path):
  """bench/save_records.py: a real sweep's ended runs go to the records (a run still going does
  not; no checkpoints or samples), and restored into another machine's empty run folder they are
  members the same sweep skips, their files unchanged."""
  save_records = bench_scripts.load('save_records')
  first, records, second = tmp_path / 'first', tmp_path / 'records', tmp_path / 'second'
  done = _sweep(first / 'sweep')
  assert done.returncode == 0, done.stdout + done.stderr
  going = first / 'sweep' / 'going'  # A run still training when the records are saved.
  going.mkdir()
  shutil.copyfile(first / 'sweep' / 'loss=minimax' / 'config.json', going / 'config.json')
  (going / 'status.json').write_text(json.dumps({'status': 'running', 'step': 10}))
  save_records.main([f'--runs={first}', f'--records={records}'])
  assert sorted(p.name for p in (records / 'sweep').iterdir()) == ['loss=minimax', 'loss=non_saturating', 'sweep.json']
  kept = {p.name for p in (records / 'sweep' / 'loss=minimax').iterdir()}
  assert {'config.json', 'status.json', 'metrics.jsonl'} <= kept <= {'config.json', 'status.json', 'metrics.jsonl',
                                                                     'eval.jsonl'}, kept

  save_records.main([f'--runs={second}', f'--records={records}', '--restore'])
  restored = {p: p.read_bytes() for p in second.rglob('*') if p.is_file()}
  assert {p.relative_to(second) for p in restored} == {p.relative_to(records) for p in records.rglob('*') if p.is_file()}
  again = _sweep(second / 'sweep')
  assert again.returncode == 0, again.stdout + again.stderr
  assert '2 of 2 member(s) finished' in again.stdout, again.stdout + again.stderr
  for path, content in restored.items():
    if path.name != 'sweep.json':  # The sweep rewrites its own description; the members' files stay.
      assert path.read_bytes() == content, path
  assert not list(second.rglob('checkpoints')), 'a restored member was trained again'
