"""Wall time of a seed sweep: one vectorized program vs the members run one by one.

  python bench/sweep_vectorized.py [--runs=64] [--steps=200] [--sequential_runs=8] [--exp=vanilla:ring]

Both runners go through the whole sweep machinery (sweep_runners.launch: per-member workdir,
config.json, metrics.jsonl, a final sample plot and checkpoint; W&B disabled). The sequential
runner runs `--sequential_runs` of the members and its total for all `--runs` is extrapolated from
them (stated in the table); --sequential_runs=RUNS measures all of them. Prints a table with the
wall time ratio, and the training loops' throughput alone (run-iterations per second, the median
of the steps_per_sec the members logged, times the runs sharing the program), which leaves out
what each member costs besides training (compiling, sample plots, checkpoints).
"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import logging as absl_logging  # noqa: E402
import jax  # noqa: E402

from gan_jax import logging as log_lib  # noqa: E402
from gan_jax import sweep_runners  # noqa: E402


def time_sweep(exp: str, runner: str, overrides: list[tuple[str, str]], spec: dict, index: str,
               directory: pathlib.Path) -> float:
  started = time.perf_counter()
  status = sweep_runners.launch(exp, overrides, str(directory), index_text=index, runner=runner, spec=spec)
  seconds = time.perf_counter() - started
  if status != 0:
    raise SystemExit(f'the {runner} sweep failed (exit status {status}); see {directory}/sweep.jsonl')
  return seconds


def run_iterations_per_sec(directory: pathlib.Path, runs_per_program: int) -> float:
  """Median logged steps_per_sec over the members' logs (the first log of each, which follows the
  step-0 sample plot, left out), times the runs each program trains."""
  rates = []
  for path in directory.glob('*/metrics.jsonl'):
    records = [json.loads(line) for line in path.read_text().splitlines()]
    rates += [r['steps_per_sec'] for r in records[1:]]
  return statistics.median(rates) * runs_per_program


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--exp', default='vanilla:ring')
  parser.add_argument('--runs', type=int, default=64)
  parser.add_argument('--steps', type=int, default=200)
  parser.add_argument('--sequential_runs', type=int, default=8)
  args = parser.parse_args()
  absl_logging.use_absl_handler()  # As under absl's app.run: gan_jax's progress lines, libraries' warnings.
  log_lib.quiet_library_logs()
  spec = {'product': {'train.seed': list(range(args.runs))}}
  overrides = [('log.wandb', 'disabled'), ('train.steps', str(args.steps)), ('train.log_every', str(args.steps // 4)),
               ('train.sample_every', str(args.steps)), ('train.checkpoint_every', '0')]
  measured = min(args.sequential_runs, args.runs)
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    vectorized = time_sweep(args.exp, 'vectorized', overrides, spec, f'0-{args.runs - 1}', tmp / 'vectorized')
    sequential = time_sweep(args.exp, 'sequential', overrides, spec, f'0-{measured - 1}', tmp / 'sequential')
    loop_rates = {'vectorized': run_iterations_per_sec(tmp / 'vectorized', args.runs),
                  'sequential': run_iterations_per_sec(tmp / 'sequential', 1)}
  sequential_total = sequential * args.runs / measured
  device = jax.devices()[0]
  print(f'\n{args.exp}, {args.runs} seeds x {args.steps} steps; {device.platform} ({device.device_kind}), '
        f'{os.cpu_count()} CPU cores, jax {jax.__version__}')
  print('| runner | runs timed | wall s (timed) | s per run | wall s for all runs | wall ratio | '
        'train loop run-iterations/s | loop ratio |')
  print('|---|---|---|---|---|---|---|---|')
  estimated = ' (estimated)' if measured < args.runs else ''
  print(f'| sequential | {measured} | {sequential:.1f} | {sequential / measured:.2f} | '
        f'{sequential_total:.1f}{estimated} | 1.0 | {loop_rates["sequential"]:.0f} | 1.0 |')
  print(f'| vectorized | {args.runs} | {vectorized:.1f} | {vectorized / args.runs:.2f} | {vectorized:.1f} | '
        f'{sequential_total / vectorized:.1f}x | {loop_rates["vectorized"]:.0f} | '
        f'{loop_rates["vectorized"] / loop_rates["sequential"]:.2f}x |')


if __name__ == '__main__':
  main()
