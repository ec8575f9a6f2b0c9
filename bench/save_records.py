"""A long study's committed records: its ended runs' files, kept in the repository across machines.

  python bench/save_records.py --runs=DIR --records=RECORDS            (after a launch)
  python bench/save_records.py --runs=DIR --records=RECORDS --restore  (before the first launch on a machine)

Without --restore, each ended run (finished or diverged) under DIR is copied to RECORDS/<its path
under DIR>: config.json, status.json, metrics.jsonl and eval.jsonl (gan_jax.report.RECORD_FILES,
all that the reports and the bench tables read; no checkpoints or samples), with each sweep's
sweep.json beside its members. With --restore, each recorded run that DIR lacks is copied back to
DIR/<its path>: a sweep launched on DIR then skips it as finished, so a study whose machine was
replaced continues with only its unfinished runs. The study scripts (bench/run_unrolled_tables.sh,
bench/run_progan_speedup.sh) do both; commit RECORDS as runs end.
"""
import argparse
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gan_jax import report  # pylint: disable=wrong-import-position
from gan_jax.errors import UserError  # pylint: disable=wrong-import-position


def restore(records: pathlib.Path, runs: pathlib.Path) -> int:
  """Copies each run recorded under `records` that `runs` lacks (no config.json there) to `runs`,
  with its sweep.json where the folder has none; returns how many runs were copied."""
  copied = 0
  for run in report.find_runs(records):
    target = runs / run.path.relative_to(records)
    if (target / 'config.json').exists():
      continue
    shutil.copytree(run.path, target, dirs_exist_ok=True)
    sweep_file = run.path.parent / 'sweep.json'
    if sweep_file.exists() and not (target.parent / 'sweep.json').exists():
      shutil.copyfile(sweep_file, target.parent / 'sweep.json')
    copied += 1
  return copied


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', required=True, help='the study\'s run folder (its sweeps\' workdirs under it)')
  parser.add_argument('--records', required=True, help='the committed record folder (e.g. docs/results/<page>/records)')
  parser.add_argument('--restore', action='store_true', help='copy the recorded runs DIR lacks back into DIR')
  args = parser.parse_args(argv)
  runs, records = pathlib.Path(args.runs), pathlib.Path(args.records)
  try:
    if args.restore:
      if records.is_dir() and any(records.rglob('config.json')):
        print(f'{restore(records, runs)} recorded run(s) restored into {runs}')
    elif runs.is_dir() and any(runs.rglob('config.json')):
      print(f'{report.save_records(runs, records)} new run record(s) in {records}')
  except UserError as e:
    raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
  main()
