#!/bin/bash
# ProGAN's speed-up grown to 32x32 (`progan:cpu32`, docs/results/progan.md), resumable, in one command:
#   bash bench/run_progan_speedup.sh [RUNS_DIR]        (default runs/progan_speedup32)
# For seeds 0, 1 and 2 in turn, the four schedules one after another (long, short, nofade, baseline),
# each run with this machine to itself as far as possible (pin it, e.g. `taskset -c 0 bash ...`:
# the tables compare wall-clock); after each seed the page's section progan/cpu32 and its two
# figures are rewritten from every finished run (bench/progan_speedup.py). Each sweep skips
# finished members and resumes interrupted ones, so rerunning continues where a stop left off; one
# SIGTERM (or Ctrl-C) to its `launch.py --sweep` process stops it cleanly. About 1.5-2 hours of one
# core per seed. Several processes may run the script on one RUNS_DIR (one per core): each trains
# the members no other holds, and the tables wait for a finished baseline. Each ended run is also
# kept in docs/results/progan/records (bench/save_records.py; commit it): on a new machine the
# script first restores the recorded runs into RUNS_DIR, so only the unfinished ones train again.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-runs/progan_speedup32}
RECORDS=docs/results/progan/records

launch() {  # launch.py "$@"; a stop signal (exit status >= 128) ends the script
  python launch.py "$@"
  status=$?
  if [ $status -ge 128 ]; then echo "run_progan_speedup: stopped (exit status $status)"; exit $status; fi
}

# The whole body is one function, read before it runs: the script can be edited (git pull) while it runs.
main() {
  python bench/save_records.py --runs="$RUNS" --records=$RECORDS --restore || exit 1
  for seed in 0 1 2; do
    launch --exp=progan:cpu32 --sweep --runner=sequential --sweep_filter=train.seed=$seed --workdir="$RUNS" \
      --config.log.wandb=disabled
    python bench/save_records.py --runs="$RUNS" --records=$RECORDS || exit 1
    python bench/progan_speedup.py --sweep="$RUNS" --thresholds=200,100,60,40,30 \
      --plots=docs/results/figures/progan_cpu32 --page=docs/results/progan.md --section=progan/cpu32 > /dev/null \
      || echo "run_progan_speedup: the tables were not rewritten (see above); the runs go on"
  done
  echo "run_progan_speedup: done"
}
main
exit
