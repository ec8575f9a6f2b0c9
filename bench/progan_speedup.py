"""ProGAN's claim, measured: how soon each growth schedule reaches the non-progressive baseline's FD.

  python bench/progan_speedup.py --sweep=DIR [--seeds=1,2] [--every_images=64000] [--thresholds=100,50]
      [--out=table.md] [--plots=PREFIX] [--page=RESULTS_PAGE --section=NAME]

DIR is a `progan` sweep directory (`python launch.py --exp=progan:cpu --sweep ...`): members are
grouped by schedule (their `progressive.*` values) and seed. Per schedule, mean +- standard
deviation over its seeds of: the final classifier FD, the images and training wall time (the
runs' own `train_seconds`: compilation included, evaluation left out), and the training time at
which the FD first reached the baseline's final FD (mean over the baseline's seeds), as a fraction
of the baseline's own training time. A schedule that never reached it shows '-' with how many
seeds did. Only finished runs count; --seeds keeps only those seeds (e.g. the ones timed on a quiet
machine). A second table gives, every --every_images images, each schedule's mean FD with its
resolution and mean training seconds there; with --thresholds a third, the training seconds to
each FD threshold and their ratio to the baseline's (the claim at every quality level, not only
the baseline's last). --plots draws FD against images seen and against training seconds, one
line per schedule. --page with --section writes the tables into that page between its lines
`<!-- NAME begin -->` and `<!-- NAME end -->` (gan_jax.report.write_section), keeping the rest.
"""
import argparse
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gan_jax import report  # pylint: disable=wrong-import-position
from gan_jax import run_dir  # pylint: disable=wrong-import-position
from gan_jax.errors import UserError  # pylint: disable=wrong-import-position

SCHEDULE_NAMES = {  # progressive.resolutions/transition_images patterns of experiments/progan.py's schedules.
    'baseline': lambda c: len(c['resolutions']) == 1,
    'nofade': lambda c: len(c['resolutions']) > 1 and not any(c['transition_images']),
    'long': lambda c: len(set(c['stable_images'])) == 1 and any(c['transition_images']),
    'short': lambda c: len(c['resolutions']) > 1 and any(c['transition_images']) and len(set(c['stable_images'])) > 1,
}


def schedule_name(config: dict) -> str:
  return next(name for name, matches in SCHEDULE_NAMES.items() if matches(config['progressive']))


def evaluations(run: pathlib.Path) -> list[dict]:
  """The run's eval.jsonl as one {metric: value} row per evaluated step, in step order (a line cut
  short by a kill is skipped)."""
  series = run_dir.read_jsonl(run / 'eval.jsonl')
  steps = sorted(series.get('classifier_fd', {}))
  return [{metric: values[step] for metric, values in series.items() if step in values} for step in steps]


def read_runs(directory: pathlib.Path, seeds: set[int] | None = None) -> dict[str, list[dict]]:
  """schedule -> finished runs (of `seeds`, or all): {'seed', 'evals': evaluations(run)}."""
  runs: dict[str, list[dict]] = {}
  for config_path in sorted(directory.glob('*/config.json')):
    run = config_path.parent
    if (run_dir.read_status(run) or {}).get('status') != 'finished':
      continue
    config = json.loads(config_path.read_text())
    if seeds is not None and config['train']['seed'] not in seeds:
      continue
    runs.setdefault(schedule_name(config), []).append({'seed': config['train']['seed'], 'evals': evaluations(run)})
  return runs


def time_to_reach(evals: list[dict], target: float) -> float | None:
  """train_seconds of the first evaluation with classifier FD <= target, or None."""
  return next((row['train_seconds'] for row in evals if row['classifier_fd'] <= target), None)


def cell(values: list[float], digits: int = 0) -> str:
  if not values:
    return '-'
  if len(values) == 1:
    return f'{values[0]:.{digits}f}'
  return f'{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}'


def table(runs: dict[str, list[dict]]) -> str:
  if 'baseline' not in runs:
    raise SystemExit('no finished baseline run in the sweep directory')
  baseline_fd = statistics.mean(r['evals'][-1]['classifier_fd'] for r in runs['baseline'])
  baseline_seconds = statistics.mean(r['evals'][-1]['train_seconds'] for r in runs['baseline'])
  lines = [f'Target: the baseline\'s final classifier FD, {baseline_fd:.1f} (mean over {len(runs["baseline"])} '
           f'seed(s)); its training time {baseline_seconds:.0f} s.', '',
           '| schedule | seeds | final FD | images | training s | s to reach the target | fraction of baseline time |',
           '|---|---|---|---|---|---|---|']
  for name in ('long', 'short', 'nofade', 'baseline'):
    members = runs.get(name, [])
    if not members:
      continue
    reached = [t for t in (time_to_reach(r['evals'], baseline_fd) for r in members) if t is not None]
    fraction = cell([t / baseline_seconds for t in reached], 2) if reached else '-'
    lines.append(f'| {name} | {" ".join(str(r["seed"]) for r in sorted(members, key=lambda r: r["seed"]))} | '
                 f'{cell([r["evals"][-1]["classifier_fd"] for r in members], 1)} | '
                 f'{int(members[0]["evals"][-1]["images_seen"])} | '
                 f'{cell([r["evals"][-1]["train_seconds"] for r in members])} | '
                 f'{cell(reached)} ({len(reached)} of {len(members)} reached) | {fraction} |')
  return '\n'.join(lines)


def thresholds_table(runs: dict[str, list[dict]], thresholds: list[float]) -> str:
  """Per schedule, the training seconds to first reach each classifier FD threshold (mean over the
  seeds that reached it, and how many did), and that time over the baseline's."""
  baseline = {t: [s for s in (time_to_reach(r['evals'], t) for r in runs.get('baseline', [])) if s is not None]
              for t in thresholds}
  lines = ['| schedule | ' + ' | '.join(f'FD <= {t:g}: s (seeds), / baseline' for t in thresholds) + ' |',
           '|---' * (len(thresholds) + 1) + '|']
  for name in ('long', 'short', 'nofade', 'baseline'):
    members = runs.get(name, [])
    if not members:
      continue
    cells = []
    for t in thresholds:
      reached = [s for s in (time_to_reach(r['evals'], t) for r in members) if s is not None]
      ratio = (f'{statistics.mean(reached) / statistics.mean(baseline[t]):.2f}'
               if reached and baseline[t] else '-')
      cells.append(f'{cell(reached)} ({len(reached)} of {len(members)}), {ratio}')
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def trajectory(runs: dict[str, list[dict]], every: int) -> str:
  """Mean FD (resolution, mean training s) of each schedule at every `every` images."""
  last = max(int(r['evals'][-1]['images_seen']) for members in runs.values() for r in members)
  marks = list(range(every, last + 1, every))
  lines = ['| schedule | ' + ' | '.join(f'{m // 1000}k' for m in marks) + ' |', '|---' * (len(marks) + 1) + '|']
  for name in ('baseline', 'short', 'long', 'nofade'):
    members = runs.get(name, [])
    if not members:
      continue
    cells = []
    for mark in marks:
      rows = [next((e for e in r['evals'] if e['images_seen'] >= mark), None) for r in members]
      rows = [row for row in rows if row]
      cells.append(f'{statistics.mean(row["classifier_fd"] for row in rows):.0f} ({int(rows[0]["resolution"])}, '
                   f'{statistics.mean(row["train_seconds"] for row in rows):.0f} s)' if rows else '-')
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def plot(runs: dict[str, list[dict]], prefix: str) -> list[str]:
  """PREFIX_fd_vs_images.png and PREFIX_fd_vs_time.png: classifier FD against images seen and
  against training seconds, one line per schedule (mean ± std over its seeds). Returns the paths."""
  paths = []
  for x_key, suffix, interpolate in (('images_seen', 'fd_vs_images', False), ('train_seconds', 'fd_vs_time', True)):
    groups = [(name, [{row[x_key]: row['classifier_fd'] for row in r['evals']} for r in runs[name]])
              for name in ('baseline', 'short', 'long', 'nofade') if name in runs]
    path = pathlib.Path(f'{prefix}_{suffix}.png')
    report.plot_metric(groups, 'classifier_fd', path, x_key, interpolate=interpolate)
    paths.append(str(path))
  return paths


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sweep', required=True, help='the progan sweep directory')
  parser.add_argument('--seeds', help='comma-separated seeds to keep (default: all)')
  parser.add_argument('--every_images', type=int, default=64000, help='images between two columns of the second table')
  parser.add_argument('--thresholds', default='',
                      help='comma-separated classifier FDs: a third table of the time to reach each')
  parser.add_argument('--out', help='markdown file to write the tables to')
  parser.add_argument('--plots', help='PREFIX: write PREFIX_fd_vs_images.png and PREFIX_fd_vs_time.png')
  parser.add_argument('--page', help='a results page to write the tables into (with --section)')
  parser.add_argument('--section', help="the name of the page's section the tables replace")
  args = parser.parse_args(argv)
  if bool(args.page) != bool(args.section):
    parser.error('--page and --section go together')
  seeds = {int(s) for s in args.seeds.split(',')} if args.seeds else None
  runs = read_runs(pathlib.Path(args.sweep), seeds)
  text = table(runs) + '\n\nFD (resolution, training s) against images seen:\n\n' + trajectory(runs, args.every_images)
  if args.thresholds:
    text += ('\n\nTraining seconds to each classifier FD (mean over the seeds that reached it; over the '
             "baseline's mean):\n\n" + thresholds_table(runs, [float(t) for t in args.thresholds.split(',')]))
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text + '\n')
  if args.page:
    try:
      report.write_section(pathlib.Path(args.page), args.section, text)
    except UserError as e:
      raise SystemExit(f'error: {e}') from None
  if args.plots:
    print('\nplots: ' + ', '.join(plot(runs, args.plots)))


if __name__ == '__main__':
  main()
