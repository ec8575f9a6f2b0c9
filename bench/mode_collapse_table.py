"""The mode-collapse table: our runs (mean +- standard error over seeds) next to published figures.

  python bench/mode_collapse_table.py [--ring=DIR] [--grid=DIR] [--stacked=DIR] [--out=FILE] [--curves=PNG]
      [--page=RESULTS_PAGE --section=NAME]

DIR is a sweep directory (e.g. of `launch.py --exp=unrolled:ring,compare --sweep
--runner=vectorized --workdir=DIR`) or any folder of run directories. Each run's method is read
from its config.json: WGAN-GP (wasserstein loss), GAN (unroll.steps 0) or unrolled k; its figures
are its last evaluation in eval.jsonl (modes captured, high-quality %, reverse KL in nats; see
gan_jax/metrics/modes.py). Compute is the mean over the method's runs of each run's training
seconds (the last train_seconds of its metrics.jsonl: training wall time over all its attempts,
compilation included, evaluation not; runs trained as lanes of one vectorized program each carry
that program's time). Prints the markdown and writes it to --out if given;
--curves draws modes and high-quality % against iterations per method (mean over seeds, band from
the lowest to the highest seed), ring and grid side by side, and Stacked MNIST's modes and KL
beside them once one of its runs has ended (whether its budget let the DCGAN settle). --page with --section writes the tables
into that page between its lines `<!-- NAME begin -->` and `<!-- NAME end -->` (gan_jax.report.write_section),
keeping the rest. Each of --ring, --grid and --stacked is optional (one at least): the 2D table
is made when --ring or --grid is given, the Stacked MNIST table when --stacked is, so each can
have its own section and figure.
"""
import argparse
import json
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gan_jax import report  # pylint: disable=wrong-import-position
from gan_jax import run_dir  # pylint: disable=wrong-import-position
from gan_jax.errors import UserError  # pylint: disable=wrong-import-position

# (method, ring modes, ring HQ %, grid modes, grid HQ %): 2,500 samples, 3-std high quality.
PUBLISHED_2D = (
    ('GAN (VEEGAN Table 1)', 1, 99.3, 3.3, 0.5),
    ('Unrolled GAN (VEEGAN Table 1)', 7.6, 35.6, 23.6, 16.0),
    ('GAN (PacGAN Table 1)', 6.3, 98.2, 17.3, 94.8),
)
# (method, modes of 1000, KL): Stacked MNIST.
PUBLISHED_STACKED = (
    ('DCGAN (VEEGAN)', '99', '3.40'),
    ('Unrolled GAN (VEEGAN)', '48.7', '4.32'),
    ('DCGAN, D = 1/4 G (PacGAN)', '78.5', '-'),
    ('Unrolled GAN k = 10, D = 1/4 G (PacGAN)', '327.2', '-'),
)
METHOD_ORDER = ('GAN', 'GAN, minimax G loss', 'Unrolled k=1', 'Unrolled k=1, 2 D steps', 'Unrolled k=5', 'Unrolled k=10',
                'Unrolled k=5, surrogate G loss', 'WGAN-GP')


def method_of(config: dict) -> str:
  if config['loss'] == 'wasserstein':
    return 'WGAN-GP' if config['penalty']['gp'] > 0 else 'WGAN'
  k = config['unroll']['steps']
  name = 'GAN' if k == 0 else f'Unrolled k={k}'
  if config.get('g_loss') == 'value':  # The value function as G's loss: at k = 0 the minimax GAN.
    name += ', surrogate G loss' if k else ', minimax G loss'
  if config['train']['d_steps'] > 1:
    name += f', {config["train"]["d_steps"]} D steps'
  if config['model']['name'] == 'dcgan' and config['model']['d_norm'] != 'batch':  # Stacked MNIST's ablation.
    name += f', D norm {config["model"]["d_norm"]}'
  return name + (' (stop-gradient)' if k and config['unroll']['stop_gradient'] else '')


def _ended(run: pathlib.Path) -> bool:
  """Whether the run in directory `run` finished or diverged (its values are final)."""
  return (run_dir.read_status(run) or {}).get('status') in ('finished', 'diverged')


def collect(directory: str) -> dict[str, dict]:
  """{method: {'runs': n, 'finished': n, 'steps': max step, 'train_seconds': [each run's training
  seconds], 'batch_size': the runs' batch, metric: [final values over runs]}} for the runs under
  `directory`. The values are those of ended runs (finished or diverged); a run still going or
  interrupted is only counted in 'runs'."""
  root = pathlib.Path(directory)
  methods: dict[str, dict] = {}
  for config_file in sorted(root.rglob('config.json')):
    run = config_file.parent
    config = json.loads(config_file.read_text())
    entry = methods.setdefault(method_of(config), {'runs': 0, 'finished': 0, 'steps': 0, 'train_seconds': []})
    entry['runs'] += 1
    entry['batch_size'] = config['data']['batch_size']
    status = run_dir.read_status(run) or {}
    entry['finished'] += status.get('status') == 'finished'
    if not _ended(run):
      continue
    trained = run_dir.read_jsonl(run / 'metrics.jsonl').get('train_seconds', {})
    if trained:
      entry['train_seconds'].append(trained[max(trained)])
    series = run_dir.read_jsonl(run / 'eval.jsonl')
    for metric, values in series.items():
      last = max(values)
      entry['steps'] = max(entry['steps'], last)
      entry.setdefault(metric, []).append(values[last])
  return methods


def curves(directory: str) -> dict[str, dict[str, dict[int, list[float]]]]:
  """{method: {metric: {step: [value of each run evaluated at that step]}}} for the ended runs under `directory`."""
  methods: dict[str, dict[str, dict[int, list[float]]]] = {}
  for config_file in sorted(pathlib.Path(directory).rglob('config.json')):
    if not _ended(config_file.parent):
      continue
    entry = methods.setdefault(method_of(json.loads(config_file.read_text())), {})
    for metric, values in run_dir.read_jsonl(config_file.parent / 'eval.jsonl').items():
      for step, value in values.items():
        entry.setdefault(metric, {}).setdefault(step, []).append(value)
  return methods


# Per data set: the (metric, scale, label) of the curves' two rows.
CURVE_PANELS = {
    'ring': (('modes', 1.0, 'modes captured'), ('high_quality', 100.0, 'high-quality samples %')),
    'grid': (('modes', 1.0, 'modes captured'), ('high_quality', 100.0, 'high-quality samples %')),
    'stacked': (('modes', 1.0, 'modes captured (of 1000)'), ('reverse_kl', 1.0, 'reverse KL to uniform (nats)')),
}


def plot_curves(mixtures: dict[str, str], out: str) -> None:
  """Each data set's CURVE_PANELS against iterations, one line per method (mean over its runs, band
  from the lowest to the highest), one column per data set (ring, grid, stacked)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(2, len(mixtures), figsize=(5 * len(mixtures), 6), squeeze=False)
  for column, (name, directory) in enumerate(mixtures.items()):
    methods = curves(directory)
    for row, (metric, scale, label) in enumerate(CURVE_PANELS[name]):
      ax = axes[row, column]
      for method in _ordered(methods):
        series = methods[method].get(metric, {})
        steps = sorted(series)
        values = [np.asarray(series[s]) * scale for s in steps]
        line, = ax.plot(steps, [v.mean() for v in values], label=f'{method} ({len(values[-1]) if values else 0})')
        ax.fill_between(steps, [v.min() for v in values], [v.max() for v in values], color=line.get_color(), alpha=0.15)
      ax.set_xlabel('iteration')
      ax.set_ylabel(label)
      ax.set_title(f'{name}: {label}')
      ax.grid(alpha=0.3)
  axes[0, -1].legend(fontsize=8, title='method (runs)')
  fig.tight_layout()
  fig.savefig(out, dpi=100)
  plt.close(fig)


def mean_se(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
  """'mean +- standard error' (sample std / sqrt(n)), the value alone for one run; inf values make the mean inf."""
  if not values:
    return '-'
  x = np.asarray(values, np.float64) * scale
  if not np.all(np.isfinite(x)):
    return f'inf ({int(np.sum(~np.isfinite(x)))} of {len(x)} runs)'
  if len(x) == 1:
    return f'{x[0]:.{digits}f}'
  return f'{np.mean(x):.{digits}f} ± {np.std(x, ddof=1) / math.sqrt(len(x)):.{digits}f}'


def _seconds(values: list[float] | None) -> str:
  """The mean of the runs' training seconds, '-' without any."""
  return f'{np.mean(values):.0f}' if values else '-'


def _all_modes(values: list[float], total: int) -> str:
  """'k of n': how many of the n ended runs cover all `total` modes ('-' without any). A method's
  outcome can be bimodal (a run either collapses or covers every mode), which a mean hides."""
  return f'{sum(round(v) == total for v in values)} of {len(values)}' if values else '-'


def _ordered(methods: dict) -> list[str]:
  return sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))


def table_2d(ring: dict, grid: dict) -> str:
  lines = ['| Method | Ring modes (of 8) | Ring HQ % | Ring reverse KL | Grid modes (of 25) | Grid HQ % | '
           'Grid reverse KL | Runs with all modes (ring / grid) | Seeds (ring / grid) | Iterations | '
           'Training s per run (ring / grid) |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for method in _ordered({**ring, **grid}):
    r, g = ring.get(method, {}), grid.get(method, {})
    cells = [method]
    for entry in (r, g):
      cells += [mean_se(entry.get('modes', [])), mean_se(entry.get('high_quality', []), 100.0),
                mean_se(entry.get('reverse_kl', []), digits=2)]
    cells += [f'{_all_modes(r.get("modes", []), 8)} / {_all_modes(g.get("modes", []), 25)}',
              f'{r.get("finished", 0)}/{r.get("runs", 0)} / {g.get("finished", 0)}/{g.get("runs", 0)}',
              f'{max(r.get("steps", 0), g.get("steps", 0)) or "-"}',
              f'{_seconds(r.get("train_seconds"))} / {_seconds(g.get("train_seconds"))}']
    lines.append('| ' + ' | '.join(cells) + ' |')
  for name, ring_modes, ring_hq, grid_modes, grid_hq in PUBLISHED_2D:
    lines.append(f'| *published:* {name} | {ring_modes} | {ring_hq} | - | {grid_modes} | {grid_hq} | - | | | | |')
  return '\n'.join(lines)


def table_stacked(stacked: dict) -> str:
  lines = ['| Method | Modes (of 1000) | KL | Seeds | Iterations | Images seen | Training s per run |',
           '|---|---|---|---|---|---|---|']
  for method in _ordered(stacked):
    e = stacked[method]
    images = f'{e["steps"] * e["batch_size"]:,}' if e['steps'] else '-'
    lines.append(f'| {method} | {mean_se(e.get("modes", []))} | {mean_se(e.get("reverse_kl", []), digits=2)} | '
                 f'{e["finished"]}/{e["runs"]} | {e["steps"] or "-"} | {images} | {_seconds(e["train_seconds"])} |')
  for name, modes, kl in PUBLISHED_STACKED:
    lines.append(f'| *published:* {name} | {modes} | {kl} | | | | |')
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--ring', help='runs on the 2D ring')
  parser.add_argument('--grid', help='runs on the 2D grid')
  parser.add_argument('--stacked', help='runs on Stacked MNIST')
  parser.add_argument('--out', help='markdown file to write')
  parser.add_argument('--curves', help='PNG file: modes and high-quality % against iterations, ring and grid')
  parser.add_argument('--page', help='a results page to write the tables into (with --section)')
  parser.add_argument('--section', help='the name of the page\'s section the tables replace')
  args = parser.parse_args(argv)
  if bool(args.page) != bool(args.section):
    parser.error('--page and --section go together')
  if not (args.ring or args.grid or args.stacked):
    parser.error('give --ring, --grid or --stacked (a folder of runs)')
  tables = []
  if args.ring or args.grid:
    tables.append('2D mixtures, last evaluation of each run (2,500 samples; mean ± standard error over seeds):\n\n'
                  + table_2d(collect(args.ring) if args.ring else {}, collect(args.grid) if args.grid else {}))
  if args.stacked:
    tables.append('Stacked MNIST (26,000 samples; mean ± standard error over seeds):\n\n' + table_stacked(
        collect(args.stacked)))
  text = '\n\n'.join(tables) + '\n'
  if args.out:
    pathlib.Path(args.out).write_text(text)
  if args.page:
    try:
      report.write_section(pathlib.Path(args.page), args.section, text)
    except UserError as e:
      raise SystemExit(f'error: {e}') from None
  if args.curves:
    shown = {name: directory for name, directory in (('ring', args.ring), ('grid', args.grid)) if directory}
    if args.stacked and pathlib.Path(args.stacked).is_dir() and curves(args.stacked):  # Once a Stacked MNIST run has ended.
      shown['stacked'] = args.stacked
    if shown:  # Nothing to draw before a run has ended.
      plot_curves(shown, args.curves)
  print(text)
  return text


if __name__ == '__main__':
  main()
