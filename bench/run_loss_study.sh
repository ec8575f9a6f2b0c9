#!/bin/bash
# The whole loss study (experiments/loss_study.py), resumable, in one command:
#   bash bench/run_loss_study.sh [RUNS_DIR]        (default runs/loss_study; PARALLEL=2 runs at a time)
# For each data set (MNIST, then Fashion-MNIST): the search (56 runs, two draws of every loss per
# launch so that a partial search compares every loss on the same draws), then each loss's best
# draw with seeds 1 and 2 (RUNS_DIR/<data>/seeds, a loss at a time), with the page's section,
# figures and records made by bench/loss_study.py after each launch (and docs/results/wgan_gp.md's
# critic-estimate section from the records' Wasserstein runs, bench/critic_estimate.py). A sweep directory missing on this machine starts from the
# committed records (docs/results/loss_study/records/<data>), whose runs it skips. Every stage
# skips finished members, so rerunning continues where a stop left off. Stop it with one SIGTERM
# (or Ctrl-C) to its `launch.py --sweep` process: the members checkpoint, and the script ends.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-runs/loss_study}
RECORDS=docs/results/loss_study/records
FLAGS="--sweep --runner=processes --parallel=${PARALLEL:-2} --config.log.wandb=disabled"

launch() {  # launch.py "$@"; a stop signal (exit status >= 128) ends the script
  python launch.py "$@"
  status=$?
  if [ $status -ge 128 ]; then echo "run_loss_study: stopped (exit status $status)"; exit $status; fi
}

record() {  # $1: the sweep directory; then the WGAN critic-estimate section of docs/results/wgan_gp.md
  python bench/loss_study.py --sweep="$1" --records=$RECORDS --page=docs/results/loss_study.md > /dev/null || exit 1
  local sweeps="" recorded  # Local: main's loop variable `data` must survive this call.
  for recorded in mnist fashion_mnist; do
    [ -d $RECORDS/$recorded ] && sweeps="$sweeps${sweeps:+,}$RECORDS/$recorded"
  done
  python bench/critic_estimate.py --sweeps="$sweeps" --figure=docs/results/figures/wgan_critic_estimate.png \
    --page=docs/results/wgan_gp.md --section=wgan_gp/critic_estimate > /dev/null \
    || echo "run_loss_study: docs/results/wgan_gp.md not updated (no Wasserstein run recorded yet?)"
}

# The whole body is one function, read before it runs: the script can be edited (git pull) while it runs.
main() {
  for data in mnist fashion_mnist; do
    exp=loss_study; [ $data = mnist ] || exp=loss_study:$data
    sweep=$RUNS/$data
    if [ ! -d "$sweep" ] && [ -d $RECORDS/$data ]; then
      mkdir -p "$RUNS" && cp -r $RECORDS/$data "$sweep"
    fi
    for pair in "0 1" "2 3" "4 5" "6 7"; do
      set -- $pair
      index=$(for loss in 0 1 2 3 4 5 6; do echo -n "$((loss * 8 + $1)),$((loss * 8 + $2)),"; done)
      launch --exp=$exp $FLAGS --workdir="$sweep" --sweep_index=${index%,}
      record "$sweep"
    done
    cp "$sweep/best.json" docs/results/loss_study/best_$data.json
    for first in 0 2 4 6 8 10 12; do  # loss_study:best's 14 members: 7 losses x seeds 1 and 2, a loss at a time
      launch --exp=loss_study:best,$data $FLAGS --workdir="$sweep/seeds" --sweep_index=$first-$((first + 1))
      record "$sweep"
    done
  done
  echo "run_loss_study: done"
}
main
exit
