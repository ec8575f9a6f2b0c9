#!/bin/bash
# The 10-seed, 60,000-iteration 2D tables of docs/results/unrolled.md, resumable, in one command:
#   bash bench/run_unrolled_tables.sh [RUNS_DIR]      (default runs/unrolled_60k; RUNNER=sequential)
# The grid's shipped setting (`unrolled:grid`: non-saturating G loss, k = 1, 2 D steps) over seeds
# 0-9, then the `compare` sweeps of the ring and the grid (GAN, unrolled k = 5 and k = 10,
# unrolled k = 5 with the surrogate G loss -- the ring's shipped setting -- and WGAN-GP; seeds 0-9
# each); then the ring's shipped setting with k = 10 (surrogate G loss, seeds 0-9: the ring's
# >= 90 % high-quality target, missed by a point at k = 5, tried with more unrolling); then Stacked MNIST (`unrolled:stacked_mnist`, D = 1/4 of G's channels, 20,000 iterations of
# batch 64 = 1.28M images, evaluated every 2,500): the DCGAN (k = 0) and unrolled k = 5, seed 0
# (the unrolled run 2-4 hours of one core: 2.6 iterations/s on one machine, 1.3-1.8 on a slower one). After each sweep the page's table and curves are rewritten from every run ended so far
# (bench/mode_collapse_table.py --page, section unrolled/60k_10_seeds). Every sweep skips finished
# members and resumes interrupted ones, so rerunning continues where a stop left off; one SIGTERM
# (or Ctrl-C) to its `launch.py --sweep` process stops it cleanly. Each ended run is also kept in
# docs/results/unrolled/records (bench/save_records.py; commit it): on a new machine the script first
# restores the recorded runs into RUNS_DIR, so only the unfinished ones train again. RUNNER=sequential (the default)
# trains one run at a time: on a 2-core CPU doing other work a lone MLP run trains ~2x faster than
# a vectorized group's runs (BUILD.md, "Vectorized sweeps"); use RUNNER=vectorized on a GPU.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-runs/unrolled_60k}
FLAGS="--sweep --runner=${RUNNER:-sequential} --config.log.wandb=disabled"
RECORDS=docs/results/unrolled/records

launch() {  # launch.py "$@"; a stop signal (exit status >= 128) ends the script
  python launch.py "$@"
  status=$?
  if [ $status -ge 128 ]; then echo "run_unrolled_tables: stopped (exit status $status)"; exit $status; fi
}

table() {  # the records, then the 2D and the Stacked MNIST sections of the page, each with its curves
  python bench/save_records.py --runs="$RUNS" --records=$RECORDS || exit 1
  python bench/mode_collapse_table.py --ring="$RUNS/ring" --grid="$RUNS/grid" \
    --curves=docs/results/figures/unrolled_60k_10_seeds_curves.png \
    --page=docs/results/unrolled.md --section=unrolled/60k_10_seeds > /dev/null || exit 1
  python bench/mode_collapse_table.py --stacked="$RUNS/stacked" \
    --curves=docs/results/figures/unrolled_stacked_mnist_curves.png \
    --page=docs/results/unrolled.md --section=unrolled/stacked_mnist > /dev/null || exit 1
}

# The whole body is one function, read before it runs: the script can be edited (git pull) while it runs.
main() {
  mkdir -p "$RUNS/ring" "$RUNS/grid" "$RUNS/stacked"
  python bench/save_records.py --runs="$RUNS" --records=$RECORDS --restore || exit 1
  launch --exp=unrolled:grid $FLAGS --sweep_filter=unroll.steps=1 --workdir="$RUNS/grid/shipped"
  table
  launch --exp=unrolled:ring,compare $FLAGS --workdir="$RUNS/ring/compare"
  table
  launch --exp=unrolled:grid,compare $FLAGS --workdir="$RUNS/grid/compare"
  table
  launch --exp=unrolled:ring $FLAGS --sweep_filter=unroll.steps=10 --workdir="$RUNS/ring/shipped_k10"
  table
  launch --exp=unrolled:stacked_mnist $FLAGS --sweep_filter=unroll.steps=0,unroll.steps=5,train.seed=0 \
    --config.eval.eval_every=2500 --workdir="$RUNS/stacked/sweep"
  table
  echo "run_unrolled_tables: done"
}
main
exit
