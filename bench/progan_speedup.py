"""ProGAN's claim, measured: how soon each growth schedule reaches the non-progressive baseline's FD.

  python bench/progan_speedup.py --sweep=DIR [--out=table.md]

DIR is a `progan` sweep directory (`python launch.py --exp=progan:cpu --sweep ...`): members are
grouped by schedule (their `progressive.*` values) and seed. Per schedule, mean +- standard
deviation over its seeds of: the final classifier FD, the images and training wall time (the
runs' own `train_seconds`: compilation included, evaluation left out), and the training time at
which the FD first reached the baseline's final FD (mean over the baseline's seeds), as a fraction
of the baseline's own training time. A schedule that never reached it shows '-' with how many
seeds did. Only finished runs count.
"""
import argparse
import json
import pathlib
import statistics

SCHEDULE_NAMES = {  # progressive.resolutions/transition_images patterns of experiments/progan.py's schedules.
    'baseline': lambda c: len(c['resolutions']) == 1,
    'nofade': lambda c: len(c['resolutions']) > 1 and not any(c['transition_images']),
    'long': lambda c: len(set(c['stable_images'])) == 1 and any(c['transition_images']),
    'short': lambda c: len(c['resolutions']) > 1 and any(c['transition_images']) and len(set(c['stable_images'])) > 1,
}


def schedule_name(config: dict) -> str:
  return next(name for name, matches in SCHEDULE_NAMES.items() if matches(config['progressive']))


def read_runs(directory: pathlib.Path) -> dict[str, list[dict]]:
  """schedule -> finished runs: {'seed', 'evals': [eval.jsonl rows]}."""
  runs: dict[str, list[dict]] = {}
  for config_path in sorted(directory.glob('*/config.json')):
    run = config_path.parent
    status = json.loads((run / 'status.json').read_text()) if (run / 'status.json').exists() else {}
    if status.get('status') != 'finished':
      continue
    config = json.loads(config_path.read_text())
    evals = [json.loads(line) for line in (run / 'eval.jsonl').read_text().splitlines()]
    runs.setdefault(schedule_name(config), []).append({'seed': config['train']['seed'], 'evals': evals})
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


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sweep', required=True, help='the progan sweep directory')
  parser.add_argument('--out', help='markdown file to write the table to')
  args = parser.parse_args()
  text = table(read_runs(pathlib.Path(args.sweep)))
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text + '\n')


if __name__ == '__main__':
  main()
