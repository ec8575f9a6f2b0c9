"""The loss study's results (experiments/loss_study.py): best FD per loss, the spread over the search, the seeds.

  python bench/loss_study.py --sweep=DIR [--seeds_sweep=DIR2] [--records=DIR3] [--metric=classifier_fd] [--out=FILE]

DIR holds the runs of `launch.py --exp=loss_study[:fashion_mnist] --sweep`; DIR2, once run, those of
`launch.py --exp=loss_study:best --sweep` (each loss's best draw with seeds 1 and 2). Each run's
loss is named from its config (`loss_of`). Prints and writes (into DIR):
  - per loss: finished search draws, the best final FD among them with its hyperparameters, the
    median and spread (min-max) of the draws' final FDs, and, when the best draw's other seeds have
    run, its FD mean ± std over all its seeds;
  - a strip plot of every draw's final FD per loss (the shape of Lucic et al.'s Fig. 4), and FD
    against training wall-clock of each loss's best draw;
  - best.json: each loss's best draw as config overrides; copied to
    docs/results/loss_study/best_<data>.json, it is what `loss_study:best` runs with other seeds.
With --records, the ended runs' record files (RECORD_FILES: config, status, metric series; no
checkpoints or samples) are also read from DIR3/<name of DIR> (and of DIR2), and every ended run of
DIR and DIR2 is copied there, with the sweep's sweep.json: committed
(docs/results/loss_study/records), they keep a study that spans machines whole, and
DIR3/<sweep> copied to a new machine is that sweep's directory with its ended members done
(a sweep skips finished members).
"""
import argparse
import json
import pathlib
import shutil
import statistics
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gan_jax import report  # pylint: disable=wrong-import-position

SEARCHED = ('optim.g.lr', 'optim.d.lr', 'optim.g.b1', 'optim.d.b1', 'train.d_steps', 'penalty.clip', 'penalty.gp',
            'penalty.dragan', 'loss', 'model.d_norm')
SHARED = SEARCHED[:5]  # The searched values every loss's draw shares (common random numbers).
OWN_WEIGHT = {'wgan': 'penalty.clip', 'wgan_gp': 'penalty.gp', 'dragan': 'penalty.dragan'}
LOSS_ORDER = ('minimax', 'non_saturating', 'least_squares', 'hinge', 'wgan', 'wgan_gp', 'dragan')
RECORD_FILES = ('config.json', 'status.json', 'metrics.jsonl', 'eval.jsonl')  # All that report.Run reads.


def loss_of(config: dict) -> str:
  """The study's name of a run's loss (experiments/loss_study.LOSSES) from its flattened config."""
  if config['loss'] == 'wasserstein':
    return 'wgan_gp' if config['penalty.gp'] > 0 else 'wgan'
  if config['penalty.dragan'] > 0:
    return 'dragan'
  return config['loss']


def draw_key(config: dict) -> tuple:
  """What identifies a draw across seeds: its searched values."""
  return tuple(config[k] for k in SEARCHED)


def collect(directories: list[pathlib.Path], metric: str) -> dict[str, dict[tuple, list[report.Run]]]:
  """loss -> draw -> its ended runs (one per seed), from every directory: finished ones with the
  metric, and diverged ones (non-finite values: their final counts as infinite). A run found in
  several directories (the same searched values and seed) counts once: the last found."""
  ended = {}
  for run in (r for directory in directories for r in report.find_runs(directory)):
    if run.state == 'diverged' or (run.state == 'finished' and metric in run.eval):
      ended[draw_key(run.config) + (run.config['train.seed'],)] = run
  losses: dict[str, dict[tuple, list[report.Run]]] = {}
  for run in ended.values():
    losses.setdefault(loss_of(run.config), {}).setdefault(draw_key(run.config), []).append(run)
  return losses


def save_records(losses: dict, records: pathlib.Path) -> int:
  """Copies each ended run's RECORD_FILES to records/<its sweep's directory name>/<its own>, with the
  sweep's sweep.json, so that records/<sweep> copied to a new machine is a sweep directory whose
  recorded members count as done; returns how many runs were new."""
  new = 0
  for run in (r for draws in losses.values() for runs in draws.values() for r in runs):
    sweep = run.path.parent
    target = records / sweep.name / run.path.name
    if run.path.resolve() == target.resolve():
      continue
    new += not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    for path in [run.path / name for name in RECORD_FILES] + [sweep / 'sweep.json']:
      if path.exists():
        shutil.copyfile(path, target.parent / path.name if path.name == 'sweep.json' else target / path.name)
  return new


def _label(key: str) -> str:
  """optim.g.lr -> g.lr, penalty.gp -> gp."""
  return key.split('.', 1)[1] if key.startswith('optim.') else key.split('.')[-1]


def final(run: report.Run, metric: str) -> float:
  """The run's last evaluation of `metric`; infinite for a diverged run."""
  if run.state == 'diverged':
    return float('inf')
  series = run.eval[metric]
  return series[max(series)]


def _value(x: float) -> str:
  return f'{x:.1f}' if np.isfinite(x) else 'diverged'



def in_order(names) -> list[str]:
  """The loss names in LOSS_ORDER (any others after them), the same for every data set's tables and plots."""
  return [n for n in LOSS_ORDER if n in names] + sorted(set(names) - set(LOSS_ORDER))


def per_draw(losses: dict, metric: str) -> str:
  """A table of every search run's final `metric`: a row per shared draw (by G's learning rate),
  a column per loss, the loss's own weight in brackets; '-' where that run has not ended."""
  names = in_order(losses)
  cells: dict[tuple, dict[str, str]] = {}
  for name in names:
    for runs in losses[name].values():
      for run in (r for r in runs if r.config['train.seed'] == 0):
        text = _value(final(run, metric))
        if name in OWN_WEIGHT:
          text += f' ({_label(OWN_WEIGHT[name])} {run.config[OWN_WEIGHT[name]]:.2g})'
        cells.setdefault(tuple(run.config[k] for k in SHARED), {})[name] = text
  lines = ['| draw: ' + ', '.join(_label(k) for k in SHARED) + ' | ' + ' | '.join(names) + ' |',
           '|---' * (len(names) + 1) + '|']
  for draw in sorted(cells):
    shown = ', '.join(f'{v:.2g}' for v in draw)
    lines.append(f'| {shown} | ' + ' | '.join(cells[draw].get(n, '-') for n in names) + ' |')
  return '\n'.join(lines)


def summary(losses: dict, metric: str) -> tuple[str, dict[str, dict]]:
  """The table (losses by best search FD) and, per loss, its best draw: overrides, the draws' finals, path."""
  rows = []
  for name, draws in losses.items():
    search = {key: run for key, runs in draws.items() for run in runs if run.config['train.seed'] == 0}
    if search:
      values = {key: final(run, metric) for key, run in search.items()}
      rows.append((min(values.values()), name, draws, search, values))
  lines = [f'| loss | draws ended (diverged) | best {metric} (seed 0) | its hyperparameters | median of the draws | '
           f'range of the draws | best draw over seeds (mean ± std, n) |', '|---|---|---|---|---|---|---|']
  best = {}
  for best_value, name, draws, search, values in sorted(rows, key=lambda row: row[0]):
    key = min(values, key=values.get)
    run = search[key]
    over_seeds = [final(r, metric) for r in draws[key]]
    if len(over_seeds) < 2:
      seeds_text = '-'
    elif all(np.isfinite(over_seeds)):
      seeds_text = f'{statistics.mean(over_seeds):.1f} ± {statistics.stdev(over_seeds):.1f} ({len(over_seeds)})'
    else:
      seeds_text = ', '.join(map(_value, over_seeds))
    hyper = {k: run.config[k] for k in SEARCHED if k in run.config}
    shown = ', '.join(f'{_label(k)}={v:.4g}' if isinstance(v, float) else f'{_label(k)}={v}'
                      for k, v in hyper.items()
                      if k not in ('loss', 'model.d_norm') and (not k.startswith('penalty.') or v))
    finals = list(values.values())
    diverged = sum(not np.isfinite(x) for x in finals)
    lines.append(f'| {name} | {len(finals)} ({diverged}) | {_value(best_value)} | {shown} | '
                 f'{_value(statistics.median(finals))} | {_value(min(finals))} - {_value(max(finals))} | {seeds_text} |')
    best[name] = {'overrides': hyper, 'finals': finals, 'best_run': str(run.path)}
  return '\n'.join(lines), best


def plots(losses: dict, best: dict, metric: str, out_dir: pathlib.Path) -> list[pathlib.Path]:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  names = in_order(best)
  fig, ax = plt.subplots(figsize=(7, 4))
  rng = np.random.default_rng(0)
  finite = [x for name in names for x in best[name]['finals'] if np.isfinite(x)]
  top = max(finite) * 1.5 if finite else 1.0  # Where diverged draws are drawn (as x).
  for i, name in enumerate(names):
    finals = np.asarray(best[name]['finals'])
    jitter = i + rng.uniform(-0.15, 0.15, len(finals))
    ok = np.isfinite(finals)
    ax.scatter(jitter[ok], finals[ok], s=18, alpha=0.7)
    ax.scatter(jitter[~ok], np.full((~ok).sum(), top), s=24, marker='x', color='k')
    if np.isfinite(np.median(finals)):
      ax.hlines(np.median(finals), i - 0.3, i + 0.3, color='k', linewidth=1)
  ax.set_xticks(range(len(names)), names, rotation=30)
  ax.set_ylabel(f'final {metric} (lower is better)')
  ax.set_yscale('log')
  ax.set_title('every draw of the search, per loss (line: median; x at the top: diverged)')
  fig.tight_layout()
  strip = out_dir / 'loss_study_spread.png'
  fig.savefig(strip, dpi=100)
  plt.close(fig)
  fig, ax = plt.subplots(figsize=(7, 4))
  for name in names:
    run = report.Run(pathlib.Path(best[name]['best_run']))
    seconds = run.eval.get('train_seconds', {})
    steps = sorted(s for s in run.eval[metric] if s in seconds)
    ax.plot([seconds[s] for s in steps], [run.eval[metric][s] for s in steps], marker='o', label=name)
  ax.set_xlabel('training seconds')
  ax.set_ylabel(metric)
  ax.set_yscale('log')
  ax.legend(fontsize=8)
  ax.set_title('best draw of each loss against wall-clock')
  fig.tight_layout()
  curve = out_dir / 'loss_study_best_vs_time.png'
  fig.savefig(curve, dpi=100)
  plt.close(fig)
  return [strip, curve]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sweep', required=True, help='the loss-study sweep directory (the search)')
  parser.add_argument('--seeds_sweep', help="the directory of `--exp=loss_study:best --sweep` (the best draws' other seeds)")
  parser.add_argument('--records', help='the committed record directory: read, and updated with the ended runs')
  parser.add_argument('--metric', default='classifier_fd')
  parser.add_argument('--out', help='markdown file (default: <sweep>/loss_study.md)')
  args = parser.parse_args()
  directory = pathlib.Path(args.sweep)
  sweeps = [directory] + ([pathlib.Path(args.seeds_sweep)] if args.seeds_sweep else [])
  records = pathlib.Path(args.records) if args.records else None
  copies = [records / sweep.name for sweep in sweeps] if records else []  # Each sweep's own records only.
  losses = collect([s for s in copies + sweeps if s.is_dir()], args.metric)  # Live runs, found last, win.
  if not losses:
    raise SystemExit(f'no finished run with {args.metric} under {directory}')
  text, best = summary(losses, args.metric)
  directory.mkdir(parents=True, exist_ok=True)  # Absent when only records were read.
  text += '\n\nEvery search run (final ' + args.metric + '):\n\n' + per_draw(losses, args.metric)
  figures = plots(losses, best, args.metric, directory)
  (directory / 'best.json').write_text(json.dumps({k: v['overrides'] for k, v in best.items()}, indent=2) + '\n')
  text += '\n\n' + '\n'.join(f'![{p.stem}]({p.name})' for p in figures)
  out = pathlib.Path(args.out) if args.out else directory / 'loss_study.md'
  out.write_text(text + '\n')
  print(text)
  if records:
    print(f'{save_records(losses, records)} new run record(s) in {records}')
  print(f'\nwrote {out}, {directory / "best.json"} and {", ".join(str(p) for p in figures)}')


if __name__ == '__main__':
  main()
