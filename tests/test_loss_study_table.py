"""bench/loss_study.py: the loss study's page, best draws, plots and committed records from run directories."""
import json
import pathlib
import statistics

import pytest

from gan_jax import experiments
from tests import bench_scripts


def _write_run(directory: pathlib.Path, overrides: dict, status: str, fds: list[float]) -> None:
  """A run directory as the loop leaves it: config.json, status.json, eval.jsonl (FD every 1000
  steps) and a checkpoint (not a record)."""
  config = experiments.load_config('loss_study', [(k, str(v)) for k, v in overrides.items()])
  directory.mkdir(parents=True)
  (directory / 'config.json').write_text(config.to_json())
  (directory / 'status.json').write_text(json.dumps({'status': status, 'step': 1000 * len(fds)}))
  records = [{'step': 1000 * (i + 1), 'classifier_fd': fd, 'train_seconds': 10.0 * (i + 1)} for i, fd in enumerate(fds)]
  (directory / 'eval.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
  (directory / 'checkpoints' / '1000').mkdir(parents=True)


@pytest.fixture(name='search')
def _search(tmp_path):
  """Two losses x three draws of the search, one draw diverged; the hinge loss's best draw also
  run with seeds 1 and 2 in the search's seeds/ directory; one run still going (not counted)."""
  search = tmp_path / 'runs' / 'mnist'
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
    _write_run(search / 'seeds' / f'hinge-seed{seed}', {'loss': 'hinge', **draws[1], 'train.seed': seed}, 'finished',
               [500.0, 200.0, fd])
  (search / 'seeds' / 'sweep.json').write_text('{"name": "seeds", "exp": "loss_study:best"}\n')
  return search


def _run(table, monkeypatch, *args):
  monkeypatch.setattr('sys.argv', ['loss_study.py', *args])
  table.main()


def test_the_page_ranks_losses_by_best_draw_with_its_seeds_and_writes_best_draws_and_plots(search, monkeypatch):
  table = bench_scripts.load('loss_study')
  _run(table, monkeypatch, f'--sweep={search}')
  page, budget = (search / 'loss_study.md').read_text().split('The best final classifier_fd a search of k')
  rows = {line.split(' | ')[0][2:]: line.split(' | ') for line in page.splitlines()
          if line.startswith(('| hinge', '| least_squares'))}
  assert list(rows) == ['hinge', 'least_squares']  # Best search FD first: 30 before 40.
  hinge, squares = rows['hinge'], rows['least_squares']
  assert hinge[1:4] == ['3 (0)', '30', 'lr=0.0003, d_steps=2']  # The settings that vary within the loss.
  assert hinge[4:6] == ['60', '30 - 90']
  assert hinge[6] == f'{statistics.mean([30, 34, 38]):.4g} ± {statistics.stdev([30, 34, 38]):.4g} (3) |'
  assert squares[1:3] == ['3 (1)', '40'] and squares[4:6] == ['200', '40 - diverged']
  best = json.loads((search / 'best.json').read_text())
  assert best['least_squares']['loss'] == 'least_squares' and best['least_squares']['model.d_norm'] == 'batch'
  assert best['hinge']['optim.g.lr'] == 3e-4 and best['hinge']['train.d_steps'] == 2
  assert set(best['hinge']) == {'loss', 'model.d_norm', 'penalty.clip', 'penalty.gp', 'penalty.dragan', 'optim.g.lr',
                                'optim.d.lr', 'optim.g.b1', 'optim.d.b1', 'train.d_steps'}
  assert '| loss | k = 1 | k = 2 | k = 3 |' in budget and '| hinge | 60 | 40 | 30 |' in budget
  for name in ('loss_study_spread.png', 'loss_study_best_vs_time.png', 'loss_study_budget.png'):
    assert (search / name).stat().st_size > 5_000 and f']({name})' in (search / 'loss_study.md').read_text()


def test_best_json_reruns_each_best_draw_with_the_other_seeds(search, monkeypatch, tmp_path):
  """loss_study:best expands best.json into members whose configs differ from the best search run
  only in the seed."""
  table = bench_scripts.load('loss_study')
  _run(table, monkeypatch, f'--sweep={search}')
  study = experiments.load_module('loss_study')
  monkeypatch.setattr(study, 'BEST_DIR', tmp_path)
  (tmp_path / 'best_mnist.json').write_text((search / 'best.json').read_text())
  from gan_jax import config as config_lib
  from gan_jax import sweep as sweep_lib
  members = sweep_lib.expand(study.get_sweep('best'))
  assert len(members) == 2 * len(study.BEST_SEEDS)
  hinge = [m for m in members if m['loss'] == 'hinge'][0]
  config = experiments.load_config('loss_study:best', [(k, sweep_lib.value_text(v)) for k, v in hinge.items()])
  saved = json.loads((search / 'hinge-1' / 'config.json').read_text())
  rerun = config_lib.flatten(config_lib.to_dict(config))
  assert {k for k, v in config_lib.flatten(saved).items() if rerun[k] != v} == {'train.seed'}


def test_records_keep_the_ended_runs_and_alone_give_the_same_page(search, monkeypatch, tmp_path):
  """--records copies the ended runs (not the running one, no checkpoints), nested sweeps included,
  and, read on another machine without the sweep directory, they give the same page."""
  table = bench_scripts.load('loss_study')
  records = tmp_path / 'records'
  _run(table, monkeypatch, f'--sweep={search}', f'--records={records}')
  assert sorted(p.name for p in (records / 'mnist').iterdir()) == sorted(
      [f'{loss}-{i}' for loss in ('hinge', 'least_squares') for i in range(3)] + ['seeds', 'sweep.json'])
  assert sorted(p.name for p in (records / 'mnist' / 'seeds').iterdir()) == ['hinge-seed1', 'hinge-seed2', 'sweep.json']
  assert sorted(p.name for p in (records / 'mnist' / 'seeds' / 'hinge-seed1').iterdir()) == [
      'config.json', 'eval.jsonl', 'status.json']
  assert (records / 'mnist' / 'sweep.json').read_text() == (search / 'sweep.json').read_text()
  page = (search / 'loss_study.md').read_text()
  _write_run(records / 'fashion_mnist' / 'hinge-0', {'loss': 'hinge', 'data.name': 'fashion_mnist'}, 'finished', [1.0])
  elsewhere = tmp_path / 'elsewhere' / 'mnist'
  _run(table, monkeypatch, f'--sweep={elsewhere}', f'--records={records}')  # Another study's records are not read.
  assert (elsewhere / 'loss_study.md').read_text() == page
  _run(table, monkeypatch, f'--sweep={search}', f'--records={records}')  # Again: nothing new, the same page.
  assert (search / 'loss_study.md').read_text() == page


def test_the_per_draw_table_puts_each_search_run_in_its_draw_and_loss(search, monkeypatch):
  table = bench_scripts.load('loss_study')
  _run(table, monkeypatch, f'--sweep={search}')
  lines = (search / 'loss_study.md').read_text().split('Every search run')[1].splitlines()[2:7]
  assert lines[0] == '| draw: g.lr, d.lr, g.b1, d.b1, d_steps | least_squares | hinge |'
  rows = [line.split(' | ') for line in lines[2:]]
  assert [row[0] for row in rows] == ['| 0.0001, 0.0002, 0.5, 0.5, 1', '| 0.0003, 0.0002, 0.5, 0.5, 2',
                                      '| 0.0005, 0.0002, 0.5, 0.5, 5']
  assert [row[1:] for row in rows] == [['40.0', '90.0 |'], ['diverged', '30.0 |'], ['200.0', '60.0 |']]


def test_the_results_page_gets_its_section_rewritten_and_keeps_the_rest(search, monkeypatch, tmp_path):
  """--page replaces only the sweep's own section (between its markers), with the run counts, the
  tables and the figures copied beside the page; a page without the markers is refused, unchanged."""
  table = bench_scripts.load('loss_study')
  page = tmp_path / 'docs' / 'loss_study.md'
  page.parent.mkdir()
  before, between, after = 'intro\n', '<!-- loss_study/mnist begin -->\nold table\n<!-- loss_study/mnist end -->', '\nrest\n'
  fashion = '<!-- loss_study/fashion_mnist begin -->\nfashion\n<!-- loss_study/fashion_mnist end -->\n'
  page.write_text(before + between + after + fashion)
  _run(table, monkeypatch, f'--sweep={search}', f'--page={page}')
  text = page.read_text()
  assert text.startswith(before + '<!-- loss_study/mnist begin -->\nRuns ended as of ')
  assert text.endswith('<!-- loss_study/mnist end -->' + after + fashion) and 'old table' not in text
  section = text.split('begin -->\n', 1)[1].split('<!-- loss_study/mnist end')[0]
  assert ': 6 search runs, 2 runs of the best draws\' extra seeds' in section  # The running one is not counted.
  assert section.count('\n| hinge | 3 (0) | 30 |') == 1 and 'Every search run' in section
  for name in ('spread', 'best_vs_time', 'budget'):
    assert f'](figures/loss_study_mnist_{name}.png)' in section
    assert (page.parent / 'figures' / f'loss_study_mnist_{name}.png').stat().st_size > 5_000
  page.write_text('no markers\n')
  with pytest.raises(SystemExit, match='loss_study/mnist begin'):
    _run(table, monkeypatch, f'--sweep={search}', f'--page={page}')
  assert page.read_text() == 'no markers\n'
