"""The loss study's results page (experiments/loss_study.py) from its runs, and their committed records.

  python bench/loss_study.py --sweep=DIR [--records=RECORDS] [--out=PAGE_DIR] [--page=RESULTS_PAGE]

DIR is the search's sweep directory (`launch.py --exp=loss_study[:fashion_mnist] --sweep`), with the
best draws' other seeds, once run, in DIR/seeds (`launch.py --exp=loss_study:best --sweep
--workdir=DIR/seeds`). With --records, every ended run under DIR (finished or diverged) is first
copied to RECORDS/<name of DIR>/<its path under DIR> (report.RECORD_FILES: config, status and metric
series, no checkpoints or samples; each sweep's sweep.json beside its members), and the page is made
from those records, which then hold every ended run: committed (docs/results/loss_study/records),
they keep a study that spans machines whole, and RECORDS/<name> copied to a new machine is the
sweep directory with its ended members done (a sweep skips finished members).

Writes into PAGE_DIR (default DIR):
  - loss_study.md: the search per loss (gan_jax/search_report.py, as `launch.py --report` shows it:
    best draw and its settings, median and range over the draws, the best draw over its seeds) and
    every search run's final metric by draw and loss;
  - loss_study_spread.png (every draw per loss), loss_study_best_vs_time.png and
    loss_study_budget.png (the best FD a search of k draws can expect, per loss, also as a table);
  - best.json: each loss's best draw as config overrides; copied to
    docs/results/loss_study/best_<data>.json, it is what `loss_study:best` runs with other seeds.

With --page (docs/results/loss_study.md), the same tables also replace the part of that page
between the lines `<!-- loss_study/<name of DIR> begin -->` and `<!-- loss_study/<name of DIR> end -->`,
opened by how many runs had ended and when, and the figures go to the page's figures/ directory
as loss_study_<name of DIR>_spread.png, _best_vs_time.png and _budget.png; the rest of the page is kept.
"""
import argparse
import datetime
import json
import math
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gan_jax import experiments  # pylint: disable=wrong-import-position
from gan_jax import report  # pylint: disable=wrong-import-position
from gan_jax import search_report  # pylint: disable=wrong-import-position
from gan_jax.errors import UserError  # pylint: disable=wrong-import-position

STUDY = experiments.load_module('loss_study')
SHARED = tuple(STUDY.SEARCH)  # The searched values every loss's draw shares (common random numbers).
# What `loss_study:best` sets to rerun a draw: the loss's own values and every searched one.
OVERRIDES = tuple(dict.fromkeys(k for settings, own in STUDY.LOSSES.values()
                                for k in (*settings, *([own[0]] if own else ())))) + SHARED
def _label(key: str) -> str:
  """optim.g.lr -> g.lr, penalty.gp -> gp."""
  return key.split('.', 1)[1] if key.startswith('optim.') else key.split('.')[-1]


def _value(x: float) -> str:
  return f'{x:.1f}' if math.isfinite(x) else 'diverged'


def per_draw(groups: list[search_report.Group], metric: str) -> str:
  """A table of every search run's final `metric` (each configuration's first seed): a row per
  shared draw (sorted by G's learning rate), a column per loss in the study's order, the loss's
  own weight in brackets; '-' where that run has not ended."""
  groups = search_report.in_order(groups, tuple(STUDY.LOSSES))
  cells: dict[tuple, dict[str, str]] = {}
  for group in groups:
    own = STUDY.LOSSES.get(group.name, (None, None))[1]
    for members in group.configs:
      run = members[0]
      text = _value(search_report.final_value(run, metric))
      if own:
        text += f' ({_label(own[0])} {run.config[own[0]]:.2g})'
      cells.setdefault(tuple(run.config[k] for k in SHARED), {})[group.name] = text
  names = [g.name for g in groups]
  lines = ['| draw: ' + ', '.join(_label(k) for k in SHARED) + ' | ' + ' | '.join(names) + ' |',
           '|---' * (len(names) + 1) + '|']
  for draw in sorted(cells):
    shown = ', '.join(f'{v:.2g}' for v in draw)
    lines.append(f'| {shown} | ' + ' | '.join(cells[draw].get(n, '-') for n in names) + ' |')
  return '\n'.join(lines)


def best_overrides(groups: list[search_report.Group]) -> dict[str, dict]:
  """Each loss's best draw as the config overrides that rerun it."""
  return {g.name: {k: g.best_runs[0].config[k] for k in OVERRIDES if k in g.best_runs[0].config} for g in groups}


ALT_TEXT = {'loss_study_spread': "every search run's final FD, per loss",
            'loss_study_best_vs_time': "each loss's best configuration: FD against training wall-clock",
            'loss_study_budget': "the best FD a search of k draws can expect, per loss"}


def update_page(page: pathlib.Path, name: str, groups: list[search_report.Group], tables: str,
                figures: tuple[pathlib.Path, ...]) -> None:
  """Replaces `page`'s section of the sweep `name` (between its markers) with a count of the ended
  runs, `tables` and links to `figures`, copied to the page's figures/ as loss_study_<name>_<stem
  after 'loss_study_'>.png."""
  targets = {figure: page.parent / 'figures' / f'loss_study_{name}_{figure.stem.removeprefix("loss_study_")}.png'
             for figure in figures}
  links = [f'![{ALT_TEXT[figure.stem]}]({target.relative_to(page.parent).as_posix()})'
           for figure, target in targets.items()]
  search = sum(len(g.configs) for g in groups)
  seeds = sum(len(members) - 1 for g in groups for members in g.configs)
  now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
  report.write_section(page, f'loss_study/{name}',
                       f'Runs ended as of {now}: {search} search runs, {seeds} runs of the best draws\' extra seeds '
                       f'(written by `bench/loss_study.py --page`).\n\n{tables}\n\n' + '\n\n'.join(links))
  for figure, target in targets.items():
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(figure, target)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sweep', required=True, help='the loss-study sweep directory (the search; its seeds in DIR/seeds)')
  parser.add_argument('--records', help='the committed record directory: updated with the ended runs, then read')
  parser.add_argument('--metric', default='classifier_fd')
  parser.add_argument('--out', help='where the page, plots and best.json go (default: the sweep directory)')
  parser.add_argument('--page', help='a results page whose section of this sweep (between its markers) is rewritten')
  args = parser.parse_args()
  sweep = pathlib.Path(args.sweep)
  source = sweep
  if args.records:
    source = pathlib.Path(args.records) / sweep.name
    if sweep.is_dir():
      print(f'{report.save_records(sweep, source)} new run record(s) in {source}')
  grouping = STUDY.report_grouping()
  groups = search_report.groups(report.find_runs(source), grouping, args.metric)
  if not groups:
    raise SystemExit(f'no ended run with {args.metric} under {source}')
  out = pathlib.Path(args.out) if args.out else sweep
  out.mkdir(parents=True, exist_ok=True)  # The sweep directory is absent when only records are read.
  spread, timed, budget = out / 'loss_study_spread.png', out / 'loss_study_best_vs_time.png', out / 'loss_study_budget.png'
  search_report.plot_spread(groups, grouping, args.metric, spread)
  search_report.plot_best_against_time(groups, grouping, args.metric, timed)
  search_report.plot_budget(groups, grouping, args.metric, budget)
  (out / 'best.json').write_text(json.dumps(best_overrides(groups), indent=2) + '\n')
  tables = '\n'.join(search_report.table(groups, grouping, args.metric))
  tables += f'\n\nEvery search run (final {args.metric}):\n\n' + per_draw(groups, args.metric)
  tables += (f'\n\nThe best final {args.metric} a search of k of the draws (at random) can expect, per loss '
             '(exact, over every k-subset of the ended draws):\n\n'
             + '\n'.join(search_report.budget_table(groups, grouping, args.metric)))
  text = tables + '\n\n' + '\n'.join(f'![{p.stem}]({p.name})' for p in (spread, timed, budget))
  (out / 'loss_study.md').write_text(text + '\n')
  if args.page:
    try:
      update_page(pathlib.Path(args.page), sweep.name, groups, tables, (spread, timed, budget))
    except UserError as e:
      raise SystemExit(f'error: {e}') from None
  print(text)
  print(f'\nwrote {out / "loss_study.md"}, {out / "best.json"}, {spread}, {timed} and {budget}')


if __name__ == '__main__':
  main()
