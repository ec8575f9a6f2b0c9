"""A hyperparameter search seen per group (Lucic et al. 2018's view of a loss study): the section
`launch.py --report` adds when the runs are grouped.

The groups come from `--report_by=FIELD` (a config field's values) or from the sweep's experiment,
when its file defines `report_grouping() -> Grouping` (experiments/loss_study.py groups by loss).
Within a group, runs with the same config apart from the seed are one configuration; the search's
value of a configuration is the final metric of its first seed's run (a diverged run counts as the
worst value), the best configuration is chosen on it, and that configuration's other seeds (run
afterwards, e.g. by the sweep's `:best` option into a directory under the search) give its mean ±
std. Per group: configurations ended (diverged), the best value and the settings that vary within
the group, the median and range over configurations, and the best configuration over its seeds;
a strip plot of every configuration's value per group, the best configurations' metric
against training wall time, and the best value a search of k configurations drawn at random can
expect, k = 1 .. the search's size (a table and a plot: how the groups rank at a smaller budget).
"""
import dataclasses
import json
import math
import pathlib
import statistics
from typing import Callable

import numpy as np

from gan_jax import experiments
from gan_jax import report
from gan_jax import sweep as sweep_lib
from gan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Grouping:
  """How a search's runs are grouped.

  Attributes:
    label: what a group is, for headings and columns (e.g. 'loss').
    group_of: a run's flattened config -> its group's name, or None to leave the run out.
    order: group names in the order the plots show them (others follow, sorted); the table
      ranks groups by their best value.
  """
  label: str
  group_of: Callable[[dict], str | None]
  order: tuple[str, ...] = ()


@dataclasses.dataclass
class Group:
  """One group's ended configurations.

  Attributes:
    name: the group's name.
    configs: per configuration, its ended runs sorted by seed (the first is the search's run).
    values: per configuration, the final metric of its first run (diverged: the worst value).
    best: the index of the best configuration by `values`.
  """
  name: str
  configs: list[list[report.Run]]
  values: list[float]
  best: int

  @property
  def best_runs(self) -> list[report.Run]:
    return self.configs[self.best]


def grouping_for(directory: pathlib.Path, by: str | None = None) -> Grouping | None:
  """`by` (a config field) as a Grouping, else the grouping of the experiment named in
  directory/sweep.json (its `report_grouping()`), else None."""
  if by:
    return Grouping(by, lambda config: sweep_lib.value_text(config[by]) if by in config else None)
  try:
    exp = json.loads((directory / 'sweep.json').read_text()).get('exp', '')
    module = experiments.load_module(exp.partition(':')[0])
  except (OSError, json.JSONDecodeError, UserError):
    return None
  return module.report_grouping() if hasattr(module, 'report_grouping') else None


def final_value(run: report.Run, metric: str) -> float:
  """The run's last value of `metric`; for a diverged run the worst (inf, or -inf where higher is better)."""
  if run.state == 'diverged':
    return math.inf if report.lower_is_better(metric) else -math.inf
  series = run.eval[metric]
  return series[max(series)]


def search_metric(runs: list[report.Run]) -> str | None:
  """The first of the runs' configured eval.metrics that some run has evaluated."""
  for run in runs:
    for metric in run.config.get('eval.metrics', ()):
      if any(metric in r.eval for r in runs):
        return metric
  return None


def groups(runs: list[report.Run], grouping: Grouping, metric: str) -> list[Group]:
  """The ended runs (finished with `metric`, or diverged) by group and configuration, groups ranked
  by their best value (best first)."""
  ended = [r for r in runs if r.state == 'diverged' or (r.state == 'finished' and r.eval.get(metric))]
  by_name: dict[str, list[list[report.Run]]] = {}
  for _, members in report.group_runs(ended)[1] if ended else ():
    members = sorted(members, key=lambda r: r.config.get(report.SEED_KEY, 0))  # Seed 9 before seed 10.
    name = grouping.group_of(members[0].config)
    if name is not None:
      by_name.setdefault(name, []).append(members)
  lower = report.lower_is_better(metric)
  result = []
  for name, configs in by_name.items():
    values = [final_value(members[0], metric) for members in configs]
    best = int(np.argmin(values) if lower else np.argmax(values))
    result.append(Group(name, configs, values, best))
  return sorted(result, key=lambda g: g.values[g.best] if lower else -g.values[g.best])


def _value(x: float) -> str:
  return f'{x:.4g}' if math.isfinite(x) else 'diverged'


def _settings(group: Group) -> str:
  """The best configuration's values of the fields that vary within its group."""
  fields = report.differing_fields([members[0] for members in group.configs])
  labels = sweep_lib.short_labels(fields)
  config = group.best_runs[0].config
  shown = [f'{labels[k]}={v:.4g}' if isinstance(v, float) else f'{labels[k]}={sweep_lib.value_text(v)}'
           for k, v in ((k, config.get(k)) for k in fields)]
  return ', '.join(shown) or '-'


def _over_seeds(group: Group, metric: str) -> str:
  finals = [final_value(r, metric) for r in group.best_runs]
  if len(finals) < 2:
    return '-'
  if not all(math.isfinite(x) for x in finals):
    return ', '.join(map(_value, finals))
  return f'{statistics.mean(finals):.4g} ± {statistics.stdev(finals):.4g} ({len(finals)})'


def table(groups_: list[Group], grouping: Grouping, metric: str) -> list[str]:
  """The markdown table, a row per group."""
  lines = [f'| {grouping.label} | configurations ended (diverged) | best final {metric} (first seed) | its settings | '
           'median over configurations | range over configurations | best configuration over seeds (mean ± std, n) |',
           '|---|---|---|---|---|---|---|']
  for g in groups_:
    diverged = sum(r.state == 'diverged' for r in (members[0] for members in g.configs))
    lines.append(f'| {g.name} | {len(g.configs)} ({diverged}) | {_value(g.values[g.best])} | {_settings(g)} | '
                 f'{_value(statistics.median(g.values))} | {_value(min(g.values))} - {_value(max(g.values))} | '
                 f'{_over_seeds(g, metric)} |')
  return lines


def expected_best(values: list[float], lower: bool) -> list[float]:
  """E[best of k configurations drawn at random, without replacement, from `values`], k = 1..n.

  Exact: with the values sorted best first, the i-th is the best of a random k-subset with
  probability C(n - i, k - 1) / C(n, k). A diverged configuration (inf, or -inf where higher is
  better) makes the expectation that value for every k that can draw only diverged ones.
  """
  ranked = sorted(values, reverse=not lower)
  n = len(ranked)
  result = []
  for k in range(1, n + 1):
    weights = [math.comb(n - i, k - 1) / math.comb(n, k) for i in range(1, n + 1)]
    result.append(math.fsum(w * v for w, v in zip(weights, ranked) if w > 0))
  return result


def budget_table(groups_: list[Group], grouping: Grouping, metric: str) -> list[str]:
  """Per group, the expected best `metric` of k configurations drawn at random from its ended ones,
  for k = 1, 2, 4, ... and the largest k (the search's best): how a small search budget ranks them."""
  largest = max(len(g.configs) for g in groups_)
  ks = sorted({*(2 ** i for i in range(largest.bit_length()) if 2 ** i <= largest), largest})
  lines = [f'| {grouping.label} | ' + ' | '.join(f'k = {k}' for k in ks) + ' |', '|---' * (len(ks) + 1) + '|']
  lower = report.lower_is_better(metric)
  for g in groups_:
    expected = expected_best(g.values, lower)
    lines.append(f'| {g.name} | ' + ' | '.join(_value(expected[k - 1]) if k <= len(expected) else '-' for k in ks) + ' |')
  return lines


def in_order(groups_: list[Group], order: tuple[str, ...]) -> list[Group]:
  """The groups in `order`, any others after them sorted by name."""
  rank = {name: i for i, name in enumerate(order)}
  return sorted(groups_, key=lambda g: (rank.get(g.name, len(rank)), g.name))


def plot_spread(groups_: list[Group], grouping: Grouping, metric: str, path: pathlib.Path) -> None:
  """Every configuration's value per group (jittered; a line at the median; diverged ones as x at the top)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  shown = in_order(groups_, grouping.order)
  fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
  rng = np.random.default_rng(0)
  finite = [x for g in shown for x in g.values if math.isfinite(x)]
  edge = (max(finite) * 1.5 if report.lower_is_better(metric) else min(finite) / 1.5) if finite else 1.0
  for i, g in enumerate(shown):
    values = np.asarray(g.values)
    x = i + rng.uniform(-0.15, 0.15, len(values))
    ok = np.isfinite(values)
    ax.scatter(x[ok], values[ok], s=18, alpha=0.7)
    ax.scatter(x[~ok], np.full((~ok).sum(), edge), s=24, marker='x', color='k')
    if ok.all():
      ax.hlines(np.median(values), i - 0.3, i + 0.3, color='k', linewidth=1)
  ax.set_xticks(range(len(shown)), [g.name for g in shown], rotation=30)
  ax.set_ylabel(f'final {metric} ({"lower" if report.lower_is_better(metric) else "higher"} is better)')
  if finite and min(finite) > 0:
    ax.set_yscale('log')
  ax.set_title(f'every configuration per {grouping.label} (line: median; x: diverged)', fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_best_against_time(groups_: list[Group], grouping: Grouping, metric: str, path: pathlib.Path) -> None:
  """Each group's best configuration's metric against training wall time (mean ± std over its seeds)."""
  lines = [(g.name, [report.against(r.eval.get(metric, {}), r.eval, report.TIME_KEY) for r in g.best_runs])
           for g in in_order(groups_, grouping.order)]
  report.plot_metric(lines, metric, path, report.TIME_KEY, interpolate=True)  # Log y when the FDs span > 10x.


def plot_budget(groups_: list[Group], grouping: Grouping, metric: str, path: pathlib.Path) -> None:
  """Each group's expected best `metric` against the number of configurations tried (expected_best)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  lower = report.lower_is_better(metric)
  fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
  shown = []
  for g in in_order(groups_, grouping.order):
    expected = expected_best(g.values, lower)
    ks = [k for k, v in enumerate(expected, 1) if math.isfinite(v)]
    ax.plot(ks, [expected[k - 1] for k in ks], 'o-', markersize=3, label=g.name)
    shown += [expected[k - 1] for k in ks]
  if shown and min(shown) > 0 and max(shown) > 10 * min(shown):
    ax.set_yscale('log')
  ax.set_xlabel(f'configurations tried (drawn at random from each {grouping.label}\'s ended ones)')
  ax.set_ylabel(f'expected best final {metric}')
  ax.legend(fontsize=8, ncol=2)
  ax.set_title(f'the best {metric} a search of k configurations can expect, per {grouping.label}', fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def write_section(runs: list[report.Run], grouping: Grouping, plots_dir: pathlib.Path) -> list[str]:
  """The report's markdown section (table and plots written into plots_dir), or [] when no run has ended."""
  metric = search_metric(runs)
  found = groups(runs, grouping, metric) if metric else []
  if not found:
    return []
  spread, timed = plots_dir / f'search_{metric}.png', plots_dir / f'search_{metric}_best_vs_time.png'
  budget = plots_dir / f'search_{metric}_budget.png'
  plot_spread(found, grouping, metric, spread)
  plot_best_against_time(found, grouping, metric, timed)
  plot_budget(found, grouping, metric, budget)
  return [f'## The search by {grouping.label}', '',
          f'Configurations of each {grouping.label}, chosen on their first seed\'s final {metric}; the best one\'s '
          'other seeds give its mean ± std.', '', *table(found, grouping, metric), '',
          f'![{metric} of every configuration](report_plots/{spread.name})', '',
          f'![{metric} of the best configurations against training wall time](report_plots/{timed.name})', '',
          f'The best final {metric} a search of k configurations drawn at random can expect, per {grouping.label}:',
          '', *budget_table(found, grouping, metric), '',
          f'![expected best {metric} against the configurations tried](report_plots/{budget.name})', '']
