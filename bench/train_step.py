"""Times the jitted train loop of an experiment on this machine's devices and prints a table.

  python bench/train_step.py                       # vanilla (DCGAN, MNIST, batch 64)
  python bench/train_step.py --exp=wgan_gp --steps=20 --config.data.batch_size=128
  python bench/train_step.py --lanes=3             # 3 seeds in one vmapped program (--runner=vectorized)

Figures: compile time of one `--steps`-iteration program, then ms per iteration (one D step
block + one G step) and iterations/s, median of `--repeats` timed programs after a warm-up.
Uses synthetic data of the experiment's shape when the dataset is missing (speed does not
depend on pixel values).
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

flags.DEFINE_string('exp', 'vanilla', 'Experiment NAME[:ARG].')
flags.DEFINE_integer('steps', 20, 'Iterations per timed program (one jit call).')
flags.DEFINE_integer('repeats', 5, 'Timed programs; the median is reported.')
flags.DEFINE_integer('lanes', 1, 'Runs (seeds 0..lanes-1) in one vmapped program, as --runner=vectorized trains them.')
FLAGS = flags.FLAGS


def measure(config, steps: int, repeats: int, lanes: int = 1) -> dict:
  """Compile seconds and the median time per iteration of `repeats` blocks of `steps` iterations
  of `lanes` runs in one program (an iteration advances every lane by one step)."""
  run = run_lib.build_run(config)
  phase = run.phases[0]
  program = program_lib.Program(run, phase, program_lib.Layout(lanes), on_device=True)
  if lanes == 1:
    state, key = run.init_state(jax.random.key(0)), jax.random.key(1)
  else:
    state = jax.jit(jax.vmap(run.init_state))(program_lib.stack([jax.random.key(i) for i in range(lanes)]))
    key = program_lib.stack([jax.random.key(100 + i) for i in range(lanes)])
  data = jax.device_put(run.train_source.arrays)
  fade, sums = phase.fade, program.zero_sums()
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
  config = experiments.load_config(FLAGS.exp)
  config_lib.apply_overrides(config, OVERRIDES)
  r = measure(config, FLAGS.steps, FLAGS.repeats, FLAGS.lanes)
  device = jax.devices()[0]
  print('| experiment | device | batch | d_steps | dtype | G upsample | lanes | compile (s) | ms / iteration | '
        'iterations / s | run-iterations / s |')
  print('|---|---|---|---|---|---|---|---|---|---|---|')
  print(f'| {FLAGS.exp} | {device.platform} x{jax.device_count()} | {config.data.batch_size} | '
        f'{config.train.d_steps} | {config.train.dtype} | {config.model.upsample} | {FLAGS.lanes} | {r["compile_s"]:.1f} | '
        f'{r["ms_per_iter"]:.1f} | {r["iters_per_s"]:.1f} | {FLAGS.lanes * r["iters_per_s"]:.1f} |')


if __name__ == '__main__':
  OVERRIDES, rest = config_lib.split_override_args(sys.argv)
  app.run(main, argv=rest)
