"""Two sets of runs of one 2D-mixture config, seed by seed: which runs covered every mode.

  python bench/seed_outcomes.py --runs=LABEL=PATTERN [--runs=LABEL=PATTERN ...] [--modes=8] [--out=FILE]

Each PATTERN (a glob) names run directories, or folders holding them at any depth, of one config
differing only in train.seed: e.g. a sweep's GAN row run `--runner=sequential` into one directory
and `--runner=vectorized` into another ('DIR/g_loss=empty,steps=0,*' picks that row of a sweep).
A LABEL given several times gathers the runs of all its patterns.
Prints a markdown table: per seed, each set's last evaluation (modes captured of all, high-quality
%), then per set the runs that ended with every mode covered, and, for two sets, Fisher's exact
test (two-sided, scipy) of whether the sets differ in that fraction. Only ended runs (status
finished or diverged) are counted.
"""
import argparse
import glob
import json
import pathlib
import sys

from scipy import stats

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gan_jax import run_dir  # pylint: disable=wrong-import-position

ENDED = ('finished', 'diverged')


def ended_runs(patterns: list[str]) -> dict[int, dict]:
  """{seed: last evaluation} of the ended runs the glob `patterns` name (one config apart from the seed).

  Raises:
    SystemExit if two of the runs differ in anything but train.seed, log.name and log.group.
  """
  out, reference = {}, None
  config_files = sorted({f for pattern in patterns for path in glob.glob(pattern)
                         for f in pathlib.Path(path).rglob('config.json')})
  for config_file in config_files:
    run = config_file.parent
    status = (run_dir.read_status(run) or {}).get('status')
    evals = run_dir.read_jsonl(run / 'eval.jsonl')  # Lines cut short by a kill are skipped.
    if status not in ENDED or 'modes' not in evals:
      continue
    config = json.loads(config_file.read_text())
    seed = config['train']['seed']
    config['train']['seed'] = 0
    config['log'] = {k: v for k, v in config['log'].items() if k not in ('name', 'group')}
    if reference is not None and config != reference:
      raise SystemExit(f'{run} has another config than the first run of {" ".join(patterns)}; give one config '
                       'per label')
    reference = config
    last = max(evals['modes'])
    out[seed] = {'modes': evals['modes'][last], 'high_quality': evals['high_quality'][last]}
  return out


def mode_count(evaluation: dict) -> int:
  return int(round(evaluation['modes']))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', action='append', required=True, help='LABEL=PATTERN')
  parser.add_argument('--modes', type=int, default=8, help='the mixture\'s modes (ring 8, grid 25)')
  parser.add_argument('--out', help='markdown file to write')
  args = parser.parse_args()
  patterns: dict[str, list[str]] = {}
  for item in args.runs:
    label, sep, pattern = item.partition('=')
    if not sep:
      raise SystemExit(f'--runs={item}: expected LABEL=PATTERN')
    patterns.setdefault(label, []).append(pattern)
  sets = {label: ended_runs(label_patterns) for label, label_patterns in patterns.items()}
  seeds = sorted({s for runs in sets.values() for s in runs})
  lines = ['| seed | ' + ' | '.join(f'{label}: modes, HQ %' for label in sets) + ' |',
           '|---|' + '---|' * len(sets)]
  for seed in seeds:
    cells = [f'{mode_count(runs[seed])}, {100 * runs[seed]["high_quality"]:.1f}' if seed in runs else '-'
             for runs in sets.values()]
    lines.append(f'| {seed} | ' + ' | '.join(cells) + ' |')
  lines.append('')
  covered = {}
  for label, runs in sets.items():
    covered[label] = (sum(mode_count(e) == args.modes for e in runs.values()), len(runs))
    lines.append(f'- {label}: {covered[label][0]} of {covered[label][1]} runs cover all {args.modes} modes')
  if len(sets) == 2:
    (a, n), (b, m) = covered.values()
    if n and m:
      p = stats.fisher_exact([[a, n - a], [b, m - b]]).pvalue
      lines.append(f'- Fisher\'s exact test, two-sided: p = {p:.3f}')
  text = '\n'.join(lines) + '\n'
  print(text, end='')
  if args.out:
    pathlib.Path(args.out).write_text(text)


if __name__ == '__main__':
  main()
