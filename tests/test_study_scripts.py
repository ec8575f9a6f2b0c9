"""The long-study driver bench/run_loss_study.sh, run with a stand-in `python` that records its
commands: each data set's seed sweep goes into its own search's directory with its own --exp, and
each search's best draws are copied to that data set's best_<data>.json."""
import json
import os
import pathlib
import shutil
import stat
import subprocess

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
