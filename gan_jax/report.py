"""Comparison report of runs: `python -m gan_jax.report DIR` or `python launch.py --report=DIR`.

Reads only run directories under DIR (any folder holding config.json, at any depth; config.json,
status.json, metrics.jsonl, eval.jsonl), so it works with W&B offline or disabled, and writes:

  DIR/report.md            the table below and the plots
  DIR/report.csv           the same numbers at full precision: <metric>_<final|best>_<mean|std>
  DIR/report_plots/*.png   each metric against steps (against images seen when every run logs
                           `images_seen`, as progressive runs do): one line per configuration
                           (mean over seeds) with a band of +- one standard deviation over seeds;
                           each eval metric also against training wall time (`train_seconds`)

A search grouped by a config field (`--report_by=FIELD`) or by its experiment (experiments/loss_study.py
groups by loss) also gets a section per group first: the best configuration, the median and range
over configurations, a strip plot and the best ones against wall time (gan_jax/search_report.py).

Runs are grouped by the config fields that differ between them, ignoring train.seed and log.*
(a sweep's swept fields). Per configuration: the final value (last logged step) and the best value
over steps of each eval metric in eval.jsonl, and the final d_loss and g_loss of metrics.jsonl,
each as mean +- sample std (n - 1) over the runs (seeds). "Best" is the minimum for distances and
divergences (names containing fd, fid, kid, kl, loss, dist, error) and the maximum otherwise
(is, modes, precision, recall, ...). A step logged twice (a resumed run replays the steps after
its last checkpoint) counts once, with its last value.
"""
import argparse
import csv
import json
import math
import os
import pathlib
import re
import shutil
import sys
from typing import Any

import numpy as np

from gan_jax import config as config_lib
from gan_jax import run_dir
from gan_jax import sweep as sweep_lib
from gan_jax.errors import UserError

IGNORED_PREFIXES = ('log.',)
SEED_KEY = 'train.seed'
TRAIN_METRICS = ('d_loss', 'g_loss')
_LOWER_IS_BETTER = ('fd', 'fid', 'kid', 'kl', 'loss', 'dist', 'error')  # Substrings of metric names.
_SKIP_DIRS = {'checkpoints', 'samples', 'wandb', 'logs', 'report_plots', 'jax_cache'}
TIME_KEY = 'train_seconds'  # Eval metrics are also plotted against it when every run logs it.
IMAGES_KEY = 'images_seen'  # The plots' x-axis when every run logs it with its metrics.
# Logged beside the metrics: where the run is, not how well it does. The table shows only the final
# images seen (progressive runs) and training wall time; the plots use them as x-axes.
PROGRESS_KEYS = (IMAGES_KEY, 'resolution', 'alpha', TIME_KEY)


def write_section(page: pathlib.Path, name: str, text: str) -> None:
  """Replaces what stands between the lines `<!-- NAME begin -->` and `<!-- NAME end -->` of a
  results page with `text`, keeping the rest: how a bench keeps its measured part of a committed
  page current.

  Raises:
    UserError if the page lacks the two lines, once each and in order (the page is left unchanged).
  """
  page = pathlib.Path(page)
  begin, end = f'<!-- {name} begin -->', f'<!-- {name} end -->'
  content = page.read_text()
  if content.count(begin) != 1 or content.count(end) != 1 or content.index(begin) > content.index(end):
    raise UserError(f'{page} needs the lines {begin} and {end}, once each, around the part to rewrite; '
                    'add them and rerun')
  head, rest = content.split(begin)
  page.write_text(f'{head}{begin}\n{text.strip()}\n{end}{rest.split(end, 1)[1]}')


def lower_is_better(metric: str) -> bool:
  return any(part in metric.lower() for part in _LOWER_IS_BETTER)


class Run:
  """One run directory's config (flattened), status and metric series."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    try:
      self.config = config_lib.flatten(json.loads((path / 'config.json').read_text()))
    except json.JSONDecodeError as e:
      raise UserError(f'{path / "config.json"} is not valid JSON ({e})') from None
    self.status = run_dir.read_status(path) or {}
    self.train = run_dir.read_jsonl(path / 'metrics.jsonl')
    self.eval = run_dir.read_jsonl(path / 'eval.jsonl')

  @property
  def state(self) -> str:
    return self.status.get('status', 'unknown')

  @property
  def step(self) -> int:
    steps = [s for series in (*self.train.values(), *self.eval.values()) for s in series]
    return int(self.status.get('step', max(steps, default=0)))


def find_runs(directory: str | os.PathLike) -> list[Run]:
  """Every run directory under `directory` (itself included), sorted by path.

  Raises:
    UserError when the directory is missing or holds no run.
  """
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise UserError(f'report: {directory} is not a directory; give a sweep or run directory such as runs/<exp>')
  paths = []
  for root, dirs, files in os.walk(directory):
    if 'config.json' in files:
      paths.append(pathlib.Path(root))
      dirs[:] = []
    else:
      dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
  if not paths:
    raise UserError(f'report: no run directories (folders with config.json) under {directory}')
  return [Run(p) for p in sorted(paths)]


# What a run's record holds: all that Run reads (no checkpoints, samples or W&B files).
RECORD_FILES = ('config.json', 'status.json', 'metrics.jsonl', 'eval.jsonl')


def save_records(directory: str | os.PathLike, records: str | os.PathLike) -> int:
  """Copies each ended run (finished or diverged) under `directory` to `records`/<its path under
  `directory`> (RECORD_FILES), with the sweep.json of the folder it is in; returns how many runs
  were new there. Committed, the records keep a study whole across machines: copied back into a
  new machine's run folder, they are finished members its sweeps skip.

  Raises:
    UserError when `directory` is missing or holds no run.
  """
  directory, records = pathlib.Path(directory), pathlib.Path(records)
  new = 0
  for run in find_runs(directory):
    if run.state not in ('finished', 'diverged'):
      continue
    target = records / run.path.relative_to(directory)
    new += not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
      if (run.path / name).exists():
        shutil.copyfile(run.path / name, target / name)
    if (run.path.parent / 'sweep.json').exists():
      shutil.copyfile(run.path.parent / 'sweep.json', target.parent / 'sweep.json')
  return new


def _hashable(value: Any) -> str:
  return json.dumps(value, sort_keys=True)


def differing_fields(runs: list[Run]) -> list[str]:
  """Config keys whose values differ between runs, except the seed and log.* keys."""
  keys = sorted({k for run in runs for k in run.config})
  out = []
  for key in keys:
    if key == SEED_KEY or key.startswith(IGNORED_PREFIXES):
      continue
    if len({_hashable(run.config.get(key, '<missing>')) for run in runs}) > 1:
      out.append(key)
  return out


def _sort_key(values: tuple) -> tuple:
  return tuple((0, v, '') if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, _hashable(v))
               for v in values)


def group_runs(runs: list[Run]) -> tuple[list[str], list[tuple[dict[str, Any], list[Run]]]]:
  """(the differing fields, [(their values, the runs with those values sorted by seed)])."""
  fields = differing_fields(runs)
  groups: dict[str, tuple[tuple, list[Run]]] = {}
  for run in runs:
    values = tuple(run.config.get(k) for k in fields)
    groups.setdefault(_hashable(values), (values, []))[1].append(run)
  ordered = sorted(groups.values(), key=lambda item: _sort_key(item[0]))
  return fields, [(dict(zip(fields, values)), sorted(members, key=lambda r: (str(r.config.get(SEED_KEY)), str(r.path))))
                  for values, members in ordered]


def _final(series: dict[int, float]) -> float:
  return series[max(series)] if series else math.nan


def _best(series: dict[int, float], lower: bool) -> float:
  values = [v for v in series.values() if not math.isnan(v)]
  if not values:
    return math.nan
  return min(values) if lower else max(values)


def mean_std(values: list[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (n - 1; nan for one value) of the non-nan values."""
  values = [v for v in values if not math.isnan(v)]
  if not values:
    return math.nan, math.nan
  mean = float(np.mean(values))
  std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
  return mean, std


def summarize(runs: list[Run]) -> dict:
  """The table: fields, metric columns and one row per configuration."""
  fields, groups = group_runs(runs)
  eval_metrics = sorted({m for run in runs for m in run.eval if m not in PROGRESS_KEYS})
  columns = [(m, 'final', 'eval') for m in eval_metrics] + [(m, 'best', 'eval') for m in eval_metrics]
  columns = sorted(columns, key=lambda c: (eval_metrics.index(c[0]), c[1] != 'final'))
  if any(IMAGES_KEY in run.eval for run in runs):
    columns.append((IMAGES_KEY, 'final', 'eval'))
  columns += [(m, 'final', 'train') for m in TRAIN_METRICS if any(m in run.train for run in runs)]
  if any(TIME_KEY in run.train for run in runs):
    columns.append((TIME_KEY, 'final', 'train'))
  rows = []
  for values, members in groups:
    row = {'values': values, 'runs': members, 'stats': {}}
    for metric, kind, source in columns:
      per_run = []
      for run in members:
        series = (run.eval if source == 'eval' else run.train).get(metric, {})
        per_run.append(_final(series) if kind == 'final' else _best(series, lower_is_better(metric)))
      row['stats'][(metric, kind)] = (*mean_std(per_run), per_run)
    rows.append(row)
  return {'fields': fields, 'columns': columns, 'rows': rows, 'eval_metrics': eval_metrics}


def _fmt(x: float) -> str:
  if math.isnan(x):
    return ''
  return f'{x:.4g}'


def _cell(mean: float, std: float) -> str:
  if math.isnan(mean):
    return '-'
  return _fmt(mean) if math.isnan(std) else f'{_fmt(mean)} ± {_fmt(std)}'


def _status_text(members: list[Run]) -> str:
  counts: dict[str, int] = {}
  for run in members:
    counts[run.state] = counts.get(run.state, 0) + 1
  return ', '.join(f'{n} {state}' for state, n in counts.items())


def _steps_text(members: list[Run]) -> str:
  steps = sorted({run.step for run in members})
  return str(steps[0]) if len(steps) == 1 else f'{steps[0]}-{steps[-1]}'


def _label(values: dict[str, Any], labels: dict[str, str]) -> str:
  return ', '.join(f'{labels[k]}={sweep_lib.value_text(v)}' for k, v in values.items()) or 'all runs'


def _column_title(metric: str, kind: str) -> str:
  if kind == 'best':
    return f'{metric} best ({"min" if lower_is_better(metric) else "max"})'
  return f'{metric} final'


def against(series: dict[int, float], records: dict[str, dict[int, float]], x_key: str) -> dict[int, float]:
  """`series` re-keyed from steps to the values of `x_key` logged at the same steps ('step': unchanged)."""
  if x_key == 'step':
    return series
  x = records.get(x_key, {})
  return {int(x[step]): value for step, value in series.items() if step in x}


def _on_common_grid(series_list: list[dict[int, float]]) -> list[dict[int, float]]:
  """The series linearly interpolated onto the union of their x values (runs timed separately log
  at different seconds), each only within its own range: no run is extrapolated, so a run that
  stopped early counts only where it has values."""
  grid = np.array(sorted({x for s in series_list for x in s}))
  result = []
  for s in series_list:
    if not s:
      continue
    xs = sorted(s)
    inside = grid[(grid >= xs[0]) & (grid <= xs[-1])]
    result.append(dict(zip(inside.tolist(), np.interp(inside, xs, [s[x] for x in xs]).tolist())))
  return result


def plot_metric(groups: list[tuple[str, list[dict[int, float]]]], metric: str, path: pathlib.Path,
                x_label: str = 'step', interpolate: bool = False, log_y: bool | None = None) -> None:
  """One line per configuration (mean over its runs at each x) with a +- std band, the legend
  below the axes; with `interpolate`, runs logged at different x values are first put on a common
  grid; `log_y`: a logarithmic y axis (None: when every value is positive and they span more than
  10x, as an FD falling from the thousands does)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
  for label, series_list in groups:
    if interpolate:
      series_list = _on_common_grid(series_list)
    steps = sorted({s for series in series_list for s in series})
    if not steps:
      continue
    stats = [mean_std([series[s] for series in series_list if s in series]) for s in steps]
    mean = np.array([m for m, _ in stats])
    std = np.nan_to_num(np.array([sd for _, sd in stats]))
    line, = ax.plot(steps, mean, label=label, linewidth=1.5, marker='o' if len(steps) < 20 else None, markersize=3)
    if len(series_list) > 1:
      ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
  values = [v for _, series_list in groups for series in series_list for v in series.values() if math.isfinite(v)]
  if log_y is None:
    log_y = bool(values) and min(values) > 0 and max(values) > 10 * min(values)
  if log_y:
    ax.set_yscale('log')
  ax.set_xlabel(x_label.replace('_', ' '))
  ax.set_ylabel(metric)
  ax.set_title(f'{metric} (mean ± std over seeds)', fontsize=10)
  ax.grid(alpha=0.3, which='both')
  ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(0.0, -0.15))  # Below the axes: it hides no line.
  fig.savefig(path, bbox_inches='tight')
  plt.close(fig)


def write_report(directory: str | os.PathLike, out: str | os.PathLike | None = None, by: str | None = None) -> str:
  """Writes report.md, report.csv and report_plots/ for the runs under `directory` into `out`
  (default `directory`); returns a one-line summary. With runs grouped (`by`, a config field, or
  the sweep's experiment's report_grouping: gan_jax/search_report.py) report.md opens with the
  search seen per group.

  Raises:
    UserError when the directory holds no run, or no run has the config field `by`.
  """
  from gan_jax import search_report  # It builds on this module.
  directory = pathlib.Path(directory)
  runs = find_runs(directory)
  if by and not any(by in run.config for run in runs):
    raise UserError(f'--report_by={by}: no run under {directory} has this config field (e.g. loss, train.d_steps)')
  grouping = search_report.grouping_for(directory, by)
  out = pathlib.Path(out) if out is not None else directory
  table = summarize(runs)
  fields, columns, rows = table['fields'], table['columns'], table['rows']
  labels = sweep_lib.short_labels(fields)

  plots_dir = out / 'report_plots'
  plots_dir.mkdir(parents=True, exist_ok=True)
  plotted = []
  x_key = IMAGES_KEY if all(IMAGES_KEY in r.eval and IMAGES_KEY in r.train for r in runs) else 'step'
  for metric, source in [(m, 'eval') for m in table['eval_metrics']] + [(m, 'train') for m in TRAIN_METRICS]:
    records = lambda r: r.eval if source == 'eval' else r.train
    groups = [(_label(row['values'], labels), [against(records(r).get(metric, {}), records(r), x_key)
                                                for r in row['runs']]) for row in rows]
    if not any(series for _, series_list in groups for series in series_list):
      continue
    name = re.sub(r'[^A-Za-z0-9._-]', '_', f'{"eval_" if source == "eval" and metric in TRAIN_METRICS else ""}{metric}')
    plot_metric(groups, metric, plots_dir / f'{name}.png', x_key)
    plotted.append((metric, f'report_plots/{name}.png'))
    if source == 'eval' and all(TIME_KEY in r.eval for r in runs):
      timed = [(label, [against(records(r).get(metric, {}), records(r), TIME_KEY) for r in row['runs']])
               for (label, _), row in zip(groups, rows)]
      plot_metric(timed, metric, plots_dir / f'{name}_vs_time.png', TIME_KEY, interpolate=True)
      plotted.append((f'{metric} against training wall time', f'report_plots/{name}_vs_time.png'))

  header = [labels[f] for f in fields] + ['runs', 'seeds', 'status', 'step'] + [_column_title(m, k) for m, k, _ in columns]
  md = [f'# Report: {directory}', '',
        f'{len(runs)} run(s) in {len(rows)} configuration(s), grouped by '
        f'{", ".join(fields) if fields else "nothing (every run has the same config apart from the seed)"}; '
        'values are mean ± sample std over the runs of a configuration.', '',
        '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for row in rows:
    cells = [sweep_lib.value_text(row['values'][f]) for f in fields]
    cells += [str(len(row['runs'])), ' '.join(str(r.config.get(SEED_KEY, '')) for r in row['runs']),
              _status_text(row['runs']), _steps_text(row['runs'])]
    cells += [_cell(*row['stats'][(m, k)][:2]) for m, k, _ in columns]
    md.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
  failed = [r for r in runs if r.state not in ('finished', 'unknown')]
  if failed:
    md += ['', 'Runs not finished:', *[f'- {r.path.relative_to(directory) if r.path != directory else r.path}: '
                                       f'{r.state} at step {r.step} {r.status.get("message", "")}'.rstrip()
                                       for r in failed]]
  if grouping is not None:
    search = search_report.write_section(runs, grouping, plots_dir)
    if search:  # After the title, before the table of every configuration.
      md[2:2] = search + ['## Every configuration', '']
  md += ['', '## Plots', '']
  md += [f'![{metric}]({path})' for metric, path in plotted]
  (out / 'report.md').write_text('\n'.join(md) + '\n')

  with open(out / 'report.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(fields + ['runs', 'seeds', 'status', 'step'] +
                    [f'{m}_{k}_{s}' for m, k, _ in columns for s in ('mean', 'std')])
    for row in rows:
      stats = [x for m, k, _ in columns for x in row['stats'][(m, k)][:2]]
      writer.writerow([sweep_lib.value_text(row['values'][f]) for f in fields] +
                      [len(row['runs']), ' '.join(str(r.config.get(SEED_KEY, '')) for r in row['runs']),
                       _status_text(row['runs']), _steps_text(row['runs'])] +
                      ['' if math.isnan(x) else repr(x) for x in stats])
  return (f'wrote {out / "report.md"}, {out / "report.csv"} and {len(plotted)} plot(s) in {plots_dir}: '
          f'{len(runs)} run(s) in {len(rows)} configuration(s)')


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m gan_jax.report', description=__doc__.split('\n')[0])
  parser.add_argument('directory', help='a sweep directory, or any directory holding run directories')
  parser.add_argument('--out', default=None, help='where to write the report (default: DIR)')
  parser.add_argument('--by', default=None, help='a config field: also show the search per value of it')
  args = parser.parse_args(argv)
  try:
    print(write_report(args.directory, args.out, args.by))
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
