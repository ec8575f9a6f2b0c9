"""Times the jitted train loop of an experiment on this machine's devices and prints a table.

  python bench/train_step.py                       # vanilla (DCGAN, MNIST, batch 64)
  python bench/train_step.py --exp=wgan_gp --steps=20 --config.data.batch_size=128
  python bench/train_step.py --lanes=3             # 3 seeds in one program (--runner=vectorized)
  python bench/train_step.py --lanes=4 --lane_mapping=vmap,unrolled  # how the lanes are computed, side by side
  python bench/train_step.py --exp=all --repeats=2  # the compile-time table: every shipped experiment
                                                   # (and each `--variants` option), one row each

Figures: compile time of one `--steps`-iteration program, then ms per iteration (one D step
block + one G step) and iterations/s, median of `--repeats` timed programs after a warm-up.
Uses synthetic data of the experiment's shape when the dataset is missing (speed does not
depend on pixel values). Compilation is cold: the bench does not use the persistent compilation
cache (gan_jax/compile_cache.py), so the figure is what a first launch pays. A progressive run's
row is its first phase's program (each later resolution compiles its own). The first line gives
the machine: cores, load average and versions.
"""
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.

from absl import app
from absl import flags
import jax

from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax.train import program as program_lib
from gan_jax.train import run as run_lib

flags.DEFINE_string('exp', 'vanilla', "Experiment NAME[:ARG], or 'all' (every experiment file and --variants).")
flags.DEFINE_list('variants', ['vanilla:ring', 'wgan_gp:ring', 'unrolled:grid', 'unrolled:stacked_mnist', 'progan:cpu'],
                  "With --exp=all: experiment options timed besides each experiment's default.")
flags.DEFINE_integer('steps', 20, 'Iterations per timed program (one jit call).')
flags.DEFINE_integer('repeats', 5, 'Timed programs; the median is reported.')
flags.DEFINE_integer('lanes', 1, 'Runs (seeds 0..lanes-1) in one program, as --runner=vectorized trains them.')
flags.DEFINE_list('lane_mapping', ['auto'], "With --lanes > 1: how the lanes are computed, one row each: 'auto' "
                  "(the trainer's choice on this backend), 'vmap', 'unrolled' or 'chunks' "
                  '(gan_jax/train/program.py, lane_mapping).')
FLAGS = flags.FLAGS


def measure(config, steps: int, repeats: int, lanes: int = 1, mapping: str | None = None) -> dict:
  """Compile seconds and the median time per iteration of `repeats` blocks of `steps` iterations
  of `lanes` runs in one program (an iteration advances every lane by one step), the lanes computed
  as `mapping` says (None: the trainer's choice)."""
  run = run_lib.build_run(config)
  phase = run.phases[0]
  layout = program_lib.Layout.make(lanes, [phase.batch.batch_size])  # As the trainer lays runs over devices.
  program = program_lib.Program(run, phase, layout, on_device=True, mapping=mapping)
  if lanes == 1:
    state, key = run.init_state(jax.random.key(0)), jax.random.key(1)
  else:
    state = jax.jit(jax.vmap(run.init_state))(program_lib.stack([jax.random.key(i) for i in range(lanes)]))
    key = program_lib.stack([jax.random.key(100 + i) for i in range(lanes)])
  state, key = layout.put_runs(state), layout.put_runs(key)
  data, fade = layout.put_shared(run.train_source.arrays), layout.put_shared(phase.fade)
  sums = program.zero_sums()
  started = time.perf_counter()
  program.compile(state, sums, data, fade, key)
  compile_s = time.perf_counter() - started
  state, sums = program(state, sums, data, fade, key)
  jax.block_until_ready(sums)
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    for _ in range(steps):
      state, sums = program(state, sums, data, fade, key)
    jax.block_until_ready(sums)
    times.append(time.perf_counter() - started)
  per_step = statistics.median(times) / steps
  return {'compile_s': compile_s, 'ms_per_iter': 1e3 * per_step, 'iters_per_s': 1.0 / per_step}


def main(argv):
  del argv
  import os
  import platform
  exps = sorted(experiments.names()) + FLAGS.variants if FLAGS.exp == 'all' else [FLAGS.exp]
  device = jax.devices()[0]
  print(f'machine: {platform.machine()}, {os.cpu_count()} cores, load average '
        f'{", ".join(f"{x:.2f}" for x in os.getloadavg())}; jax {jax.__version__}; {device.platform} '
        f'x{jax.device_count()}')
  print('| experiment | batch | d_steps | dtype | G upsample | lanes | lane mapping | compile (s) | '
        'ms / iteration | iterations / s | run-iterations / s |')
  print('|---|---|---|---|---|---|---|---|---|---|---|')
  for exp in exps:
    config = experiments.load_config(exp)
    config_lib.apply_overrides(config, OVERRIDES)
    for mapping in FLAGS.lane_mapping if FLAGS.lanes > 1 else ['-']:
      chosen = program_lib.lane_mapping(config.model.name, FLAGS.lanes) if mapping == 'auto' else mapping
      r = measure(config, FLAGS.steps, FLAGS.repeats, FLAGS.lanes, None if mapping == '-' else chosen)
      print(f'| {exp} | {config.data.batch_size} | {config.train.d_steps} | {config.train.dtype} | '
            f'{config.model.upsample} | {FLAGS.lanes} | {chosen} | {r["compile_s"]:.1f} | '
            f'{r["ms_per_iter"]:.1f} | {r["iters_per_s"]:.1f} | {FLAGS.lanes * r["iters_per_s"]:.1f} |',
            flush=True)


if __name__ == '__main__':
  OVERRIDES, rest = config_lib.split_override_args(sys.argv)
  app.run(main, argv=rest)
