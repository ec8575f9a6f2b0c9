"""Does the critic's Wasserstein estimate track sample quality? A table from runs already trained.

  python bench/critic_estimate.py --sweeps=DIR[,DIR...] [--window=500] [--figure=PNG]
      [--page=RESULTS_PAGE --section=NAME]

Arjovsky et al. (2017) and Gulrajani et al. (2017) report that a WGAN critic's estimate of the
Wasserstein distance, E[D(real)] - E[D(fake)], falls as the samples improve, so that the loss
itself says how training goes. This reads every run with the Wasserstein loss under each DIR
(e.g. the loss study's records, docs/results/loss_study/records/mnist: WGAN-GP and weight-clipped
WGAN on 8 random draws of learning rates, betas, critic steps and penalty weight) and, at each of a
run's evaluations, pairs its classifier FD with the estimate averaged over the logged iterations in
the `window` before it (d_real - d_fake of metrics.jsonl, each a mean over its log interval).
Per run: the estimate and the FD at each evaluation and their Spearman rank correlation over the
run (+1: the estimate falls whenever the FD falls). The summary counts, per data set, penalty and
number of critic steps per G step (1 or more), the runs whose rank correlation is at least
AGREE_RHO. --figure draws, for each penalty, the estimate every logged iteration and the FD at
each evaluation of two runs of the first DIR: the multi-step run and the one-step run with the
lowest final FD.
--page with --section writes the tables into that page between its lines `<!-- NAME begin -->`
and `<!-- NAME end -->` (gan_jax.report.write_section), keeping the rest.
"""
import argparse
import pathlib
import sys

import numpy as np
import scipy.stats

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gan_jax import report  # pylint: disable=wrong-import-position
from gan_jax.errors import UserError  # pylint: disable=wrong-import-position

FD = 'classifier_fd'
AGREE_RHO = 0.8  # With 4 evaluations: at most one adjacent pair out of order.


def penalty_of(run: report.Run) -> str:
  """'gradient penalty' or 'weight clipping' (or 'none') for a Wasserstein run."""
  if run.config.get('penalty.gp', 0) > 0:
    return 'gradient penalty'
  return 'weight clipping' if run.config.get('penalty.clip', 0) > 0 else 'none'


def estimate_series(run: report.Run) -> dict[int, float]:
  """{logged step: d_real - d_fake}, the critic's Wasserstein estimate over that log interval."""
  real, fake = run.train.get('d_real', {}), run.train.get('d_fake', {})
  return {step: real[step] - fake[step] for step in sorted(real) if step in fake}


def at_evaluations(run: report.Run, window: int) -> list[tuple[int, float, float]]:
  """[(evaluation step, mean estimate over the logged steps in (step - window, step], FD)]; an
  evaluation with no logged step in its window is left out."""
  estimates = estimate_series(run)
  points = []
  for step, fd in sorted(run.eval.get(FD, {}).items()):
    inside = [value for s, value in estimates.items() if step - window < s <= step]
    if inside:
      points.append((step, float(np.mean(inside)), fd))
  return points


def rank_correlation(points: list[tuple[int, float, float]]) -> float:
  """Spearman's rho between the estimate and the FD over a run's evaluations (nan below 3)."""
  if len(points) < 3:
    return float('nan')
  return float(scipy.stats.spearmanr([p[1] for p in points], [p[2] for p in points]).statistic)


def collect(directories: list[str], window: int) -> list[dict]:
  """One row per Wasserstein run under the directories: its data, penalty, settings and points."""
  rows = []
  for order, directory in enumerate(directories):
    for run in report.find_runs(directory):
      if run.config.get('loss') != 'wasserstein' or run.state not in ('finished', 'diverged'):
        continue
      points = at_evaluations(run, window)
      weight = run.config['penalty.gp'] if penalty_of(run) == 'gradient penalty' else run.config.get('penalty.clip', 0)
      rows.append({'data': run.config['data.name'], 'penalty': penalty_of(run), 'weight': weight,
                   'critic_steps': run.config['train.d_steps'], 'd_lr': run.config['optim.d.lr'],
                   'g_lr': run.config['optim.g.lr'], 'seed': run.config['train.seed'], 'points': points,
                   'rho': rank_correlation(points), 'run': run, 'order': order})
  return sorted(rows, key=lambda r: (r['order'], r['penalty'], r['critic_steps'] == 1, r['d_lr'], r['seed']))


def _steps_class(critic_steps: int) -> str:
  return '1 critic step' if critic_steps == 1 else '2-5 critic steps'


def runs_table(rows: list[dict]) -> str:
  lines = ['| data | penalty (weight) | critic steps | D lr, G lr | seed | estimate at each evaluation | '
           'classifier FD at each evaluation | rank correlation |', '|---|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f'| {r["data"]} | {r["penalty"]} ({r["weight"]:.3g}) | {r["critic_steps"]} | '
                 f'{r["d_lr"]:.2g}, {r["g_lr"]:.2g} | {r["seed"]} | '
                 + ' / '.join(f'{w:.3g}' for _, w, _ in r['points']) + ' | '
                 + ' / '.join(f'{fd:.0f}' for _, _, fd in r['points']) + f' | {r["rho"]:.2f} |')
  return '\n'.join(lines)


def summary_table(rows: list[dict]) -> str:
  groups: dict[tuple[str, str, str], list[float]] = {}  # In the rows' order.
  for r in rows:
    groups.setdefault((r['data'], r['penalty'], _steps_class(r['critic_steps'])), []).append(r['rho'])
  lines = [f'| data | penalty | critic steps per G step | runs | rank correlation >= {AGREE_RHO} | '
           'median rank correlation |', '|---|---|---|---|---|---|']
  for (data, penalty, steps), rhos in groups.items():
    agree = sum(rho >= AGREE_RHO - 1e-9 for rho in rhos)  # Spearman's 0.8 may come out as 0.79999....
    lines.append(f'| {data} | {penalty} | {steps} | {len(rhos)} | {agree} of {len(rhos)} | {np.median(rhos):.2f} |')
  return '\n'.join(lines)


def plot(rows: list[dict], path: str) -> None:
  """Per penalty (rows of panels): the multi-step and the one-step run with the lowest final FD,
  among the runs of the first directory."""
  rows = [r for r in rows if r['order'] == 0]
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  penalties = sorted({r['penalty'] for r in rows})
  fig, axes = plt.subplots(len(penalties), 2, figsize=(10, 3.4 * len(penalties)), squeeze=False)
  for i, penalty in enumerate(penalties):
    for j, one_step in enumerate((False, True)):
      chosen = [r for r in rows if r['penalty'] == penalty and (r['critic_steps'] == 1) == one_step and r['points']]
      ax = axes[i][j]
      if not chosen:
        ax.set_axis_off()
        continue
      best = min(chosen, key=lambda r: r['points'][-1][2])
      estimates = estimate_series(best['run'])
      ax.plot(list(estimates), list(estimates.values()), color='tab:blue', lw=1)
      ax.set_ylabel('critic estimate E[D(real)] - E[D(fake)]', color='tab:blue', fontsize=8)
      ax.set_xlabel('iteration')
      fd_axis = ax.twinx()
      fd_axis.plot([p[0] for p in best['points']], [p[2] for p in best['points']], 'o-', color='tab:red')
      fd_axis.set_ylabel('classifier FD', color='tab:red', fontsize=8)
      ax.set_title(f'{best["data"]}, {penalty} {best["weight"]:.3g}, {best["critic_steps"]} critic step(s), '
                   f'D lr {best["d_lr"]:.2g}, seed {best["seed"]}: rank corr. {best["rho"]:.2f}', fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sweeps', required=True, help='comma-separated directories of runs')
  parser.add_argument('--window', type=int, default=500, help='iterations before an evaluation to average over')
  parser.add_argument('--figure', help='PNG file: estimate and FD against iterations for chosen runs')
  parser.add_argument('--page', help='a results page to write the tables into (with --section)')
  parser.add_argument('--section', help="the name of the page's section the tables replace")
  args = parser.parse_args(argv)
  if bool(args.page) != bool(args.section):
    parser.error('--page and --section go together')
  try:
    rows = collect(args.sweeps.split(','), args.window)
  except UserError as e:
    raise SystemExit(f'error: {e}') from None
  if not rows:
    raise SystemExit(f'error: no ended run with the Wasserstein loss under {args.sweeps}')
  text = (f'Runs agreeing (Spearman rank correlation of the estimate with the classifier FD over a run\'s '
          f'evaluations >= {AGREE_RHO}):\n\n{summary_table(rows)}\n\nEvery run (the estimate averaged over the '
          f'{args.window} iterations before each evaluation):\n\n{runs_table(rows)}\n')
  if args.page:
    try:
      report.write_section(pathlib.Path(args.page), args.section, text)
    except UserError as e:
      raise SystemExit(f'error: {e}') from None
  if args.figure:
    plot(rows, args.figure)
  print(text)
  return text


if __name__ == '__main__':
  main()
