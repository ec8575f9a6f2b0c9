"""The report's search view (gan_jax/search_report.py): a search's configurations per group, on run
directories written in the loop's formats."""
import itertools
import json
import statistics
import subprocess
import sys

import pytest

from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax import report
from gan_jax import search_report
from gan_jax import sweep as sweep_lib
from gan_jax.errors import UserError
from tests.conftest import REPO_ROOT
from tests.test_report import write_run


def _fd_run(path, overrides, fds, status='finished'):
  """A run whose classifier FD is evaluated every 100 steps (10 training seconds apart)."""
  write_run(path, overrides=[*overrides, ('eval.metrics', 'classifier_fd')], status=status,
            evals=[{'step': 100 * (i + 1), 'classifier_fd': fd, 'train_seconds': 10.0 * (i + 1)}
                   for i, fd in enumerate(fds)])


@pytest.fixture(name='search')
def _search(tmp_path):
  """Two losses x three learning rates (seed 0), one diverged; hinge's best learning rate also with
  seeds 1 and 2 (under seeds/), and another of its learning rates with a seed 1 that beats every
  seed-0 value (it must not change which configuration is best); one run still going."""
  finals = {'hinge': {1e-4: 90.0, 3e-4: 30.0, 5e-4: 60.0}, 'least_squares': {1e-4: 40.0, 3e-4: None, 5e-4: 200.0}}
  for loss, by_lr in finals.items():
    for lr, fd in by_lr.items():
      series, status = ([500.0], 'diverged') if fd is None else ([800.0, fd], 'finished')
      _fd_run(tmp_path / f'{loss},lr={lr}', [('loss', loss), ('optim.g.lr', lr)], series, status)
  for seed, fd in ((1, 34.0), (2, 38.0)):
    _fd_run(tmp_path / 'seeds' / f'hinge,seed={seed}', [('loss', 'hinge'), ('optim.g.lr', 3e-4), ('train.seed', seed)],
            [700.0, fd])
  _fd_run(tmp_path / 'hinge,lr=0.0001,seed=1', [('loss', 'hinge'), ('optim.g.lr', 1e-4), ('train.seed', 1)], [5.0])
  _fd_run(tmp_path / 'hinge,lr=0.0007', [('loss', 'hinge'), ('optim.g.lr', 7e-4)], [1.0], status='running')
  return tmp_path


def test_groups_are_ranked_and_each_best_is_chosen_on_its_first_seed_and_shown_over_its_seeds(search):
  grouping = search_report.grouping_for(search, 'loss')
  groups = search_report.groups(report.find_runs(search), grouping, 'classifier_fd')
  assert [g.name for g in groups] == ['hinge', 'least_squares']  # Best first: 30 before 40.
  hinge, squares = groups
  assert sorted(hinge.values) == [30.0, 60.0, 90.0]  # Seed 0's values: the seed-1 FD of 5 is not a draw's value.
  assert [r.config['train.seed'] for r in hinge.best_runs] == [0, 1, 2]
  assert hinge.best_runs[0].config['optim.g.lr'] == 3e-4
  assert sorted(squares.values) == [40.0, 200.0, float('inf')]  # The diverged run counts as the worst.
  rows = {line.split(' | ')[0][2:]: line.split(' | ')[1:] for line in
          search_report.table(groups, grouping, 'classifier_fd')[2:]}
  assert rows['hinge'] == ['3 (0)', '30', 'lr=0.0003', '60', '30 - 90',
                           f'{statistics.mean([30, 34, 38]):.4g} ± {statistics.stdev([30, 34, 38]):.4g} (3) |']
  assert rows['least_squares'] == ['3 (1)', '40', 'lr=0.0001', '200', '40 - diverged', '- |']


def test_a_higher_is_better_metric_picks_the_largest_and_ranks_descending(tmp_path):
  for loss, values in (('hinge', [3.0, 7.0]), ('minimax', [9.0, 1.0])):
    for i, value in enumerate(values):
      write_run(tmp_path / f'{loss}{i}', overrides=[('loss', loss), ('optim.g.lr', 1e-4 * (i + 1)),
                                                    ('eval.metrics', 'modes')], evals=[{'step': 1, 'modes': value}])
  groups = search_report.groups(report.find_runs(tmp_path), search_report.grouping_for(tmp_path, 'loss'), 'modes')
  assert [(g.name, g.values[g.best]) for g in groups] == [('minimax', 9.0), ('hinge', 7.0)]


def test_report_by_opens_the_report_with_the_search_and_its_plots(search):
  report.write_report(search, by='loss')
  md = (search / 'report.md').read_text()
  assert md.index('## The search by loss') < md.index('## Every configuration') < md.index('| loss | lr |')
  assert '| hinge | 3 (0) | 30 |' in md
  assert '| loss | k = 1 | k = 2 | k = 3 |' in md
  assert '| hinge | 60 | 40 | 30 |' in md  # (30 + 60 + 90) / 3; pairs: 30, 30, 60.
  assert '| least_squares | diverged | 93.33 | 40 |' in md  # A one-draw search may hold only the diverged run.
  for name in ('search_classifier_fd.png', 'search_classifier_fd_best_vs_time.png', 'search_classifier_fd_budget.png'):
    assert f'](report_plots/{name})' in md
    assert (search / 'report_plots' / name).stat().st_size > 5_000


@pytest.mark.parametrize('lower', [True, False])
def test_expected_best_of_k_is_the_mean_over_every_k_subset(lower):
  values = [7.0, 3.0, 11.0, 3.0, 5.0, float('inf') if lower else -float('inf')]
  pick = min if lower else max
  for k, expected in enumerate(search_report.expected_best(values, lower), 1):
    subsets = list(itertools.combinations(values, k))
    if k == 1:  # One draw can be the diverged run.
      assert expected == values[-1]
      continue
    assert expected == pytest.approx(statistics.mean(pick(s) for s in subsets), rel=1e-12)


def test_without_a_grouping_the_report_has_no_search_section(search):
  report.write_report(search)
  assert '## The search by' not in (search / 'report.md').read_text()


def test_an_unknown_report_by_field_is_a_one_line_error_and_writes_nothing(search):
  with pytest.raises(UserError, match='--report_by=optim.g.lrr: no run under .* has this config field'):
    report.write_report(search, by='optim.g.lrr')
  assert not (search / 'report.md').exists()
  for args in ([f'--report={search}', '--report_by=nope'], ['--report_by=loss']):
    result = subprocess.run([sys.executable, str(REPO_ROOT / 'launch.py'), *args], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith('error: --report_by'), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_every_loss_study_member_is_named_by_its_loss():
  """The study's grouping names each of its sweep's members by the loss that made it, from the
  member's whole config as the run saves it (a DRAGAN run is non-saturating with a penalty)."""
  study = experiments.load_module('loss_study')
  members = sweep_lib.expand(study.get_sweep())
  names = []
  for member in members:
    config = experiments.load_config('loss_study', [(k, sweep_lib.value_text(v)) for k, v in member.items()])
    names.append(study.report_grouping().group_of(config_lib.flatten(config_lib.to_dict(config))))
  assert names == [name for name in study.LOSSES for _ in range(study.DRAWS)]


def test_a_loss_study_sweep_is_reported_by_loss_without_a_flag(tmp_path):
  sweep = tmp_path / 'sweep'
  for loss, penalty, fd in (('minimax', (), 90.0), ('wasserstein', [('model.d_norm', 'none'), ('penalty.gp', 10.0)], 40.0),
                            ('wasserstein', [('penalty.clip', 0.01)], 70.0)):
    _fd_run(sweep / f'{loss}{fd}', [('loss', loss), *penalty], [500.0, fd])
  (sweep / 'sweep.json').write_text(json.dumps({'name': 'loss_study', 'exp': 'loss_study'}))
  report.write_report(sweep)
  search = (sweep / 'report.md').read_text().split('## Every configuration')[0].split('The best final')[0]
  rows = [line.split(' | ')[:3] for line in search.splitlines() if line.startswith(('| minimax', '| wgan'))]
  assert rows == [['| wgan_gp', '1 (0)', '40'], ['| wgan', '1 (0)', '70'], ['| minimax', '1 (0)', '90']]


def test_a_configuration_is_chosen_on_its_lowest_seed_in_number_order(tmp_path):
  """Seeds 9 and 10 of one configuration: seed 9's run is the search's value (not '10' < '9')."""
  for seed, fd in ((9, 50.0), (10, 5.0)):
    _fd_run(tmp_path / f'seed{seed}', [('loss', 'hinge'), ('train.seed', seed)], [fd])
  _fd_run(tmp_path / 'other', [('loss', 'minimax'), ('train.seed', 9)], [20.0])
  groups = search_report.groups(report.find_runs(tmp_path), search_report.grouping_for(tmp_path, 'loss'),
                                'classifier_fd')
  assert [(g.name, g.values) for g in groups] == [('minimax', [20.0]), ('hinge', [50.0])]
