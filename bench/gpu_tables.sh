#!/usr/bin/env bash
# The GPU tables of BUILD.md in one command, for a session lent a GPU (about 8 minutes).
#
#   bash bench/gpu_tables.sh [OUT]           # on the GPU machine, from a checkout; OUT: gpu_tables.md
#   SMOKE=1 bash bench/gpu_tables.sh OUT     # the same commands at toy sizes: checks the script on a CPU
#
# Before: the machine needs the CUDA builds of jax and torch (a lent device has its own) and the
# project's other requirements. Where it has no network, carry them as wheels made on a networked
# machine with the device's Python version (PYVER, e.g. 311) and install them there:
#   python -m pip download --only-binary=:all: --python-version=PYVER -d wheels \
#       ml_collections orbax-checkpoint absl-py wandb submitit dm-pix scikit-image tensorflow-datasets \
#       importlib_resources chex pillow matplotlib
#   python -m pip install --no-index --find-links=wheels -r requirements.txt   # on the device
# and copy the data sets (GAN_JAX_DATA: MNIST's idx files) and models/ with the checkout.
#
# Each bench prints its table with the machine line as it goes; each has a time limit, so one that
# runs long cuts only its own rows. The tables go to OUT (and the terminal); paste them into
# BUILD.md's GPU sections. What runs, in order of importance:
#   1. bench/dcgan_speed.py --preset=dcgan64: DCGAN-64 NS at batch 128 and 1024 and WGAN-GP at 128,
#      float32 and bfloat16, JAX against PyTorch eager, FLOP/s against the device's peak.
#   2. bench/inception_speed.py: FID Inception-v3 features at batch 200, float32 / tf32 / bfloat16.
#   3. bench/sweep_vectorized.py: 64 seeds of the 2D ring as one program against the seeds one by one.
#   4. bench/time_to_quality.py at batch 512: wall-clock to classifier FD thresholds, JAX and PyTorch.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_tables.md}"
export GAN_JAX_DATA="${GAN_JAX_DATA:-$(cd .. && pwd)/shared/data}"
if [[ "${SMOKE:-0}" == 1 ]]; then
  limit=(240 240 240 240)
  dcgan=(--only=ns128 --dtypes=float32 --upsample=transpose --iters=1 --repeats=1)
  inception=(--batch=4 --iters=1 --repeats=1 --precisions=float32,tf32)
  sweep=(--runs=2 --steps=20 --sequential_runs=1)
  quality=(--batch=32 --budget_s=8 --every_s=8 --num_samples=1000 --thresholds=1000)
else
  limit=(170 100 90 150)
  dcgan=(--upsample=transpose --torch=eager --iters=20 --repeats=5)
  inception=(--batch=200 --iters=5 --repeats=5)
  sweep=(--runs=64 --steps=2000 --sequential_runs=4)
  quality=(--batch=512 --budget_s=60 --every_s=20 --num_samples=10000 --thresholds=200,150,100,50)
fi

run() {  # run LIMIT_S TITLE COMMAND...: prints the title, then the command's output (its tables).
  local seconds="$1" title="$2"
  shift 2
  echo
  echo "## $title"
  echo '```'
  echo "$*"
  echo '```'
  timeout --signal=INT "$seconds" "$@" 2> >(grep -v -E '^([IW][0-9]{4} |WARNING: Logging before)' >&2)
  local status=$?
  if [[ $status == 124 ]]; then
    echo "(stopped at the ${seconds} s limit: rows above are complete, the rest did not run)"
  elif [[ $status != 0 ]]; then
    echo "(failed with exit status $status)"
  fi
}

{
  echo "# GPU tables, $(date -u +%Y-%m-%d)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  python -c 'import jax, torch; print("jax", jax.__version__, jax.devices(), "| torch", torch.__version__)'
  run "${limit[0]}" "DCGAN iteration, JAX against PyTorch eager" python bench/dcgan_speed.py --preset=dcgan64 "${dcgan[@]}"
  run "${limit[1]}" "FID Inception-v3 feature throughput" python bench/inception_speed.py "${inception[@]}"
  run "${limit[2]}" "64 seeds as one program against one by one (2D ring)" python bench/sweep_vectorized.py "${sweep[@]}"
  run "${limit[3]}" "Time to a classifier FD at a GPU batch size" python bench/time_to_quality.py "${quality[@]}"
} 2>&1 | tee "$out"
