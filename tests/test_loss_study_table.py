"""bench/loss_study.py: the loss study's table, best draws and plots from run directories."""
import importlib.util
import json
import pathlib
import statistics

import pytest

from gan_jax import experiments


def _table_module():
  path = pathlib.Path(__file__).resolve().parents[1] / 'bench' / 'loss_study.py'
  spec = importlib.util.spec_from_file_location('loss_study_table', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _write_run(directory: pathlib.Path, overrides: dict, status: str, fds: list[float]) -> None:
  """A run directory as the loop leaves it: config.json, status.json and eval.jsonl (FD every 1000 steps)."""
  config = experiments.load_config('loss_study', [(k, str(v)) for k, v in overrides.items()])
  directory.mkdir(parents=True)
  (directory / 'config.json').write_text(config.to_json())
  (directory / 'status.json').write_text(json.dumps({'status': status, 'step': 1000 * len(fds)}))
  records = [{'step': 1000 * (i + 1), 'classifier_fd': fd, 'train_seconds': 10.0 * (i + 1)} for i, fd in enumerate(fds)]
  (directory / 'eval.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))


@pytest.fixture(name='sweeps')
def _sweeps(tmp_path):
  """Two losses x three draws of the search, one draw diverged; the hinge loss's best draw also
  run with seeds 1 and 2 in a second directory; one run still going (not counted)."""
  search, seeds = tmp_path / 'search', tmp_path / 'seeds'
  draws = [{'optim.g.lr': 1e-4, 'train.d_steps': 1}, {'optim.g.lr': 3e-4, 'train.d_steps': 2},
           {'optim.g.lr': 5e-4, 'train.d_steps': 5}]
  finals = {'hinge': [90.0, 30.0, 60.0], 'least_squares': [40.0, None, 200.0]}
  for loss, values in finals.items():
    for i, (draw, fd) in enumerate(zip(draws, values)):
      status, series = ('diverged', [500.0]) if fd is None else ('finished', [800.0, 400.0, fd])
      _write_run(search / f'{loss}-{i}', {'loss': loss, **draw}, status, series)
  _write_run(search / 'hinge-running', {'loss': 'hinge', 'optim.g.lr': 7e-4}, 'running', [10.0])
  (search / 'sweep.json').write_text('{"name": "search", "exp": "loss_study"}\n')
  for seed, fd in ((1, 34.0), (2, 38.0)):
    _write_run(seeds / f'hinge-seed{seed}', {'loss': 'hinge', **draws[1], 'train.seed': seed}, 'finished', [500.0, 200.0, fd])
  return search, seeds


def test_the_table_ranks_losses_by_best_draw_and_counts_diverged_draws(sweeps):
  table = _table_module()
  losses = table.collect(list(sweeps), 'classifier_fd')
  text, best = table.summary(losses, 'classifier_fd')
  rows = {line.split(' | ')[0][2:]: line.split(' | ') for line in text.splitlines()[2:]}
  assert list(rows) == ['hinge', 'least_squares']  # Best search FD first: 30 before 40.
  hinge, squares = rows['hinge'], rows['least_squares']
  assert hinge[1:3] == ['3 (0)', '30.0'] and 'g.lr=0.0003' in hinge[3] and 'd_steps=2' in hinge[3]
  assert hinge[4:6] == ['60.0', '30.0 - 90.0']
  assert hinge[6] == f'{statistics.mean([30, 34, 38]):.1f} ± {statistics.stdev([30, 34, 38]):.1f} (3) |'
  assert squares[1:3] == ['3 (1)', '40.0'] and squares[4:6] == ['200.0', '40.0 - diverged']
  assert best['least_squares']['overrides']['loss'] == 'least_squares'
  assert best['hinge']['overrides']['optim.g.lr'] == 3e-4 and best['hinge']['overrides']['train.d_steps'] == 2


def test_the_command_writes_the_page_best_draws_and_both_plots(sweeps, monkeypatch, capsys):
  table = _table_module()
  search, seeds = sweeps
  monkeypatch.setattr('sys.argv', ['loss_study.py', f'--sweep={search}', f'--seeds_sweep={seeds}'])
  table.main()
  best = json.loads((search / 'best.json').read_text())
  assert set(best) == {'hinge', 'least_squares'} and best['hinge']['train.d_steps'] == 2
  page = (search / 'loss_study.md').read_text()
  assert '| hinge | 3 (0) | 30.0 |' in page and '![loss_study_spread](loss_study_spread.png)' in page
  for name in ('loss_study_spread.png', 'loss_study_best_vs_time.png'):
    assert (search / name).stat().st_size > 5_000
  assert 'wrote' in capsys.readouterr().out


def test_records_keep_the_ended_runs_and_alone_give_the_same_table(sweeps, monkeypatch, tmp_path):
  """--records copies the ended runs (not the running one) and, read on another machine without
  the sweep directories, they give the same table; a run in both places counts once."""
  table = _table_module()
  search, seeds = sweeps
  records = tmp_path / 'records'
  monkeypatch.setattr('sys.argv', ['loss_study.py', f'--sweep={search}', f'--seeds_sweep={seeds}', f'--records={records}'])
  table.main()
  assert sorted(p.name for p in (records / 'search').iterdir()) == sorted(
      [f'{loss}-{i}' for loss in ('hinge', 'least_squares') for i in range(3)] + ['sweep.json'])
  assert sorted(p.name for p in (records / 'seeds').iterdir()) == ['hinge-seed1', 'hinge-seed2']
  assert sorted(p.name for p in (records / 'seeds' / 'hinge-seed1').iterdir()) == ['config.json', 'eval.jsonl',
                                                                                    'status.json']
  assert (records / 'search' / 'sweep.json').read_text() == (search / 'sweep.json').read_text()
  other = records / 'fashion_search'  # Another study's records: not read for this one.
  _write_run(other / 'hinge-0', {'loss': 'hinge', 'optim.g.lr': 2e-4, 'data.name': 'fashion_mnist'}, 'finished', [1.0])
  page = (search / 'loss_study.md').read_text()
  monkeypatch.setattr('sys.argv', ['loss_study.py', f'--sweep={tmp_path / "elsewhere" / "search"}',
                                   f'--seeds_sweep={tmp_path / "elsewhere" / "seeds"}', f'--records={records}'])
  table.main()  # On a machine without the sweep directories: the records alone give the page.
  assert (tmp_path / 'elsewhere' / 'search' / 'loss_study.md').read_text() == page
  expected = table.summary(table.collect(list(sweeps), 'classifier_fd'), 'classifier_fd')[0]
  copies = [records / 'search', records / 'seeds']
  assert table.summary(table.collect(copies, 'classifier_fd'), 'classifier_fd')[0] == expected
  assert table.summary(table.collect(copies + [search, seeds], 'classifier_fd'), 'classifier_fd')[0] == expected


def test_the_per_draw_table_puts_each_search_run_in_its_draw_and_loss(sweeps):
  table = _table_module()
  text = table.per_draw(table.collect(list(sweeps), 'classifier_fd'), 'classifier_fd')
  lines = text.splitlines()
  assert lines[0] == '| draw: g.lr, d.lr, g.b1, d.b1, d_steps | least_squares | hinge |'
  rows = [line.split(' | ') for line in lines[2:]]
  assert [row[0] for row in rows] == ['| 0.0001, 0.0002, 0.5, 0.5, 1', '| 0.0003, 0.0002, 0.5, 0.5, 2',
                                      '| 0.0005, 0.0002, 0.5, 0.5, 5']
  assert [row[1:] for row in rows] == [['40.0', '90.0 |'], ['diverged', '30.0 |'], ['200.0', '60.0 |']]
