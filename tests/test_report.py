"""The comparison report, on run directories written here in the loop's formats (the slow sweep test
in test_sweep.py builds one from real runs)."""
import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import report
from gan_jax.errors import UserError
from tests.conftest import REPO_ROOT


def write_run(path, overrides=(), metrics=(), evals=(), status='finished', step=None):
  """A run directory as gan_jax.train.loop leaves it (config.json, status.json, *.jsonl)."""
  path.mkdir(parents=True)
  config = config_lib.apply_overrides(config_lib.base(), [(k, str(v)) for k, v in overrides])
  (path / 'config.json').write_text(json.dumps(config_lib.to_dict(config)))
  last = max([r['step'] for r in [*metrics, *evals]], default=0)
  (path / 'status.json').write_text(json.dumps({'status': status, 'step': step or last, 'message': ''}))
  for name, records in (('metrics', metrics), ('eval', evals)):
    if records:
      (path / f'{name}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
  for junk in ('checkpoints/100/default', 'samples', 'wandb/run-1/files'):
    (path / junk).mkdir(parents=True)
  (path / 'wandb' / 'run-1' / 'files' / 'config.json').write_text('{"not": "a run"}')


def _grid(tmp_path):
  """2 losses x 3 seeds with eval metrics classifier_fd (lower is better) and modes (higher)."""
  rng = np.random.default_rng(0)
  truth = {}
  for loss in ('minimax', 'hinge'):
    for seed in range(3):
      fd = rng.uniform(1, 10, size=4)
      modes = rng.integers(1, 9, size=4).astype(float)
      d_loss = rng.uniform(0.5, 1.5, size=4)
      steps = [100, 200, 300, 400]
      write_run(tmp_path / 'sweep' / f'loss={loss},seed={seed}',
                overrides=[('loss', loss), ('train.seed', seed), ('log.name', f'{loss}{seed}'), ('log.group', 'g')],
                metrics=[{'step': s, 'd_loss': d, 'g_loss': -d, 'steps_per_sec': 50.0} for s, d in zip(steps, d_loss)],
                evals=[{'step': s, 'classifier_fd': f, 'modes': m, 'histogram': [1, 2]}
                       for s, f, m in zip(steps, fd, modes)])
      truth[(loss, seed)] = {'fd': fd, 'modes': modes, 'd_loss': d_loss}
  return truth


def _csv_rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def test_table_has_final_and_best_mean_and_std_over_seeds_per_configuration(tmp_path):
  truth = _grid(tmp_path)
  message = report.write_report(tmp_path)
  assert '6 run(s) in 2 configuration(s)' in message
  rows = _csv_rows(tmp_path / 'report.csv')
  # Grouped by the one differing field: the seed, log.name and log.group are ignored.
  assert [(r['loss'], r['runs'], r['seeds'], r['status'], r['step']) for r in rows] == [
      ('hinge', '3', '0 1 2', '3 finished', '400'), ('minimax', '3', '0 1 2', '3 finished', '400')]
  for row in rows:
    t = [truth[(row['loss'], seed)] for seed in range(3)]
    expected = {
        'classifier_fd_final': [x['fd'][-1] for x in t],
        'classifier_fd_best': [x['fd'].min() for x in t],     # a distance: lower is better
        'modes_final': [x['modes'][-1] for x in t],
        'modes_best': [x['modes'].max() for x in t],          # higher is better
        'd_loss_final': [x['d_loss'][-1] for x in t],
        'g_loss_final': [-x['d_loss'][-1] for x in t],
    }
    for column, values in expected.items():
      assert math.isclose(float(row[f'{column}_mean']), np.mean(values), rel_tol=1e-12), column
      assert math.isclose(float(row[f'{column}_std']), np.std(values, ddof=1), rel_tol=1e-9), column
  assert 'histogram_final_mean' not in rows[0] and 'steps_per_sec_final_mean' not in rows[0]
  md = (tmp_path / 'report.md').read_text()
  assert ('| loss | runs | seeds | status | step | classifier_fd final | classifier_fd best (min) | modes final | '
          'modes best (max) | d_loss final | g_loss final |') in md
  hinge_fd = [truth[('hinge', s)]['fd'][-1] for s in range(3)]
  assert f'{np.mean(hinge_fd):.4g} ± {np.std(hinge_fd, ddof=1):.4g}' in md.splitlines()[6]
  plots = sorted(p.name for p in (tmp_path / 'report_plots').iterdir())
  assert plots == ['classifier_fd.png', 'd_loss.png', 'g_loss.png', 'modes.png']
  for name in plots:
    assert f'](report_plots/{name})' in md
    assert (tmp_path / 'report_plots' / name).read_bytes()[:4] == b'\x89PNG'


def test_a_step_logged_twice_by_a_resumed_run_counts_once_with_its_last_value(tmp_path):
  write_run(tmp_path / 'a', metrics=[{'step': 10, 'd_loss': 1.0, 'g_loss': 1.0}, {'step': 20, 'd_loss': 5.0, 'g_loss': 1.0},
                                     {'step': 20, 'd_loss': 2.0, 'g_loss': 1.0}],
            evals=[{'step': 20, 'fid': 0.5}, {'step': 20, 'fid': 9.0}, {'step': 30, 'fid': 3.0}])
  rows = _csv_rows(tmp_path / 'report.csv') if report.write_report(tmp_path) else None
  assert rows[0]['d_loss_final_mean'] == '2.0' and rows[0]['d_loss_final_std'] == ''  # one run: no std
  assert rows[0]['fid_best_mean'] == '3.0' and rows[0]['fid_final_mean'] == '3.0'


def test_unfinished_runs_are_listed_and_differing_fields_of_any_depth_group(tmp_path):
  write_run(tmp_path / 'x' / 'lr1', overrides=[('optim.d.lr', 1e-4)], metrics=[{'step': 5, 'd_loss': 1.0, 'g_loss': 2.0}])
  write_run(tmp_path / 'y' / 'deeper' / 'lr2', overrides=[('optim.d.lr', 1e-3), ('optim.g.lr', 1e-3)], status='diverged',
            step=3)
  report.write_report(tmp_path, tmp_path / 'out')
  rows = _csv_rows(tmp_path / 'out' / 'report.csv')
  assert [(r['optim.d.lr'], r['optim.g.lr'], r['status']) for r in rows] == [('0.0001', '0.0002', '1 finished'),
                                                                 ('0.001', '0.001', '1 diverged')]
  assert rows[1]['d_loss_final_mean'] == ''
  md = (tmp_path / 'out' / 'report.md').read_text()
  assert '- y/deeper/lr2: diverged at step 3' in md
  assert not (tmp_path / 'report.md').exists()


def test_runs_that_differ_only_in_seed_form_one_row(tmp_path):
  for seed in (0, 1):
    write_run(tmp_path / f's{seed}', overrides=[('train.seed', seed)], metrics=[{'step': 1, 'd_loss': seed, 'g_loss': 0.0}])
  report.write_report(tmp_path)
  rows = _csv_rows(tmp_path / 'report.csv')
  assert len(rows) == 1 and rows[0]['runs'] == '2' and rows[0]['d_loss_final_mean'] == '0.5'
  assert 'grouped by nothing' in (tmp_path / 'report.md').read_text()


@pytest.mark.parametrize('name, lower', [('classifier_fd', True), ('fid', True), ('kid', True), ('reverse_kl', True),
                                         ('modes', False), ('is', False), ('precision', False), ('high_quality', False)])
def test_best_direction(name, lower):
  assert report.lower_is_better(name) == lower


def test_missing_or_empty_directory_is_a_one_line_error(tmp_path):
  with pytest.raises(UserError, match='is not a directory'):
    report.write_report(tmp_path / 'nope')
  (tmp_path / 'empty' / 'wandb').mkdir(parents=True)
  with pytest.raises(UserError, match=r'no run directories \(folders with config.json\) under'):
    report.write_report(tmp_path / 'empty')
  for command in ([sys.executable, '-m', 'gan_jax.report', str(tmp_path / 'empty')],
                  [sys.executable, str(REPO_ROOT / 'launch.py'), f'--report={tmp_path / "nope"}']):
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith('error: report: ') and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_command_line_writes_the_report(tmp_path):
  _grid(tmp_path)
  result = subprocess.run([sys.executable, '-m', 'gan_jax.report', str(tmp_path / 'sweep')], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)
  assert result.returncode == 0, result.stderr
  assert (tmp_path / 'sweep' / 'report.md').exists() and (tmp_path / 'sweep' / 'report.csv').exists()


def test_progressive_runs_are_plotted_against_images_seen(tmp_path, monkeypatch):
  # Two schedules whose steps show different numbers of images: the plot's x values are images seen.
  for name, per_step in (('small', 16), ('large', 64)):
    steps = [10, 20]
    write_run(tmp_path / name, overrides=[('data.batch_size', per_step)],
              metrics=[{'step': s, 'd_loss': 1.0, 'g_loss': 1.0, 'images_seen': s * per_step} for s in steps],
              evals=[{'step': s, 'classifier_fd': 5.0 / s, 'images_seen': s * per_step, 'resolution': 8, 'alpha': 1.0}
                     for s in steps])
  plotted = {}
  monkeypatch.setattr(report, 'plot_metric', lambda groups, metric, path, x_label='step': plotted.setdefault(
      metric, (x_label, {label: series for label, (series,) in groups})))
  report.write_report(tmp_path)
  x_label, lines = plotted['classifier_fd']
  assert x_label == 'images_seen'
  assert lines == {'batch_size=16': {160: 0.5, 320: 0.25}, 'batch_size=64': {640: 0.5, 1280: 0.25}}
  header = next(csv.reader(open(tmp_path / 'report.csv')))
  assert 'images_seen_final_mean' in header and not any(h.startswith(('alpha', 'resolution')) for h in header)


def test_eval_metrics_are_also_plotted_against_training_wall_time(tmp_path, monkeypatch):
  # Two seeds timed separately: their FD curves are put on a common grid of seconds before averaging.
  for seed, timed in ((0, {10: 4.0, 30: 2.0}), (1, {20: 3.0, 40: 1.0})):
    steps = [100, 200]
    write_run(tmp_path / f'seed={seed}', overrides=[('train.seed', seed)],
              metrics=[{'step': s, 'd_loss': 1.0, 'g_loss': 1.0, 'train_seconds': t} for s, t in zip(steps, timed)],
              evals=[{'step': s, 'classifier_fd': fd, 'train_seconds': t} for s, (t, fd) in zip(steps, timed.items())])
  plotted = {}

  def plot(groups, metric, path, x_label='step', interpolate=False):
    series_list = groups[0][1]
    if interpolate:
      series_list = report._on_common_grid(series_list)
    plotted[path.name] = (x_label, series_list)

  monkeypatch.setattr(report, 'plot_metric', plot)
  report.write_report(tmp_path)
  assert plotted['classifier_fd.png'][0] == 'step'
  x_label, series_list = plotted['classifier_fd_vs_time.png']
  assert x_label == 'train_seconds'
  # Each run is interpolated within its own range only (never extrapolated).
  assert series_list == [{10: 4.0, 20: 3.0, 30: 2.0}, {20: 3.0, 30: 2.0, 40: 1.0}]
  header = next(csv.reader(open(tmp_path / 'report.csv')))
  assert 'train_seconds_final_mean' in header and 'train_seconds_final_final_mean' not in header
  assert not any(h.startswith('train_seconds_best') for h in header)


def test_write_section_replaces_only_its_own_part_of_a_page(tmp_path):
  page = tmp_path / 'page.md'
  page.write_text('intro\n<!-- a begin -->\nold\n<!-- a end -->\nmiddle\n<!-- b begin -->\nb\n<!-- b end -->\n')
  report.write_section(page, 'a', '\nnew table\n\n')
  assert page.read_text() == 'intro\n<!-- a begin -->\nnew table\n<!-- a end -->\nmiddle\n<!-- b begin -->\nb\n<!-- b end -->\n'
  for broken in ('<!-- a begin -->\n<!-- a end -->\n<!-- a end -->\n',  # Twice.
                 '<!-- a end -->\nx\n<!-- a begin -->\n',               # Out of order.
                 'no markers\n'):
    page.write_text(broken)
    with pytest.raises(UserError, match='<!-- a begin -->'):
      report.write_section(page, 'a', 'new')
    assert page.read_text() == broken
