"""What the D regularizers cost: ms per train iteration (5 critic steps + 1 G step) and the ratio
to the same iteration without a penalty, for the MNIST DCGAN critic without BatchNorm.

  python bench/penalty_cost.py                     # WGAN-GP setup, batch 64
  python bench/penalty_cost.py --steps=10 --config.data.batch_size=128

Rows: no penalty (Wasserstein loss), WGAN-GP (penalty.gp=10: one double-backpropagated input
gradient per critic step, on interpolates), R1 (penalty.r1=10, on the real batch), and weight
clipping (penalty.clip=0.01, no extra gradient). Timing as in bench/train_step.py: one compiled
iteration dispatched `--steps` times, median of `--repeats` blocks, after compilation.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.

from absl import app
from absl import flags
import jax

from bench import train_step as train_step_bench
from gan_jax import config as config_lib
from gan_jax import experiments

FLAGS = flags.FLAGS  # --exp, --steps, --repeats: those of bench/train_step.py.

VARIANTS = (
    ('none', {'penalty.gp': '0'}),
    ('gp (WGAN-GP)', {}),
    ('r1', {'penalty.gp': '0', 'penalty.r1': '10'}),
    ('clip', {'penalty.gp': '0', 'penalty.clip': '0.01'}),
)


def main(argv):
  del argv
  rows = []
  for name, overrides in VARIANTS:
    config = experiments.load_config(FLAGS.exp)
    config_lib.apply_overrides(config, [('model.d_norm', 'none'), ('train.d_steps', '5'), *OVERRIDES,
                                        *overrides.items()])
    rows.append((name, config, train_step_bench.measure(config, FLAGS.steps, FLAGS.repeats)))
  base_ms = rows[0][2]['ms_per_iter']
  device = jax.devices()[0]
  print(f'{FLAGS.exp}: {device.platform} x{jax.device_count()}, batch {rows[0][1].data.batch_size}, '
        f'd_steps {rows[0][1].train.d_steps}, D channels {rows[0][1].model.d_channels}, jax {jax.__version__}')
  print('| penalty | compile (s) | ms / iteration | x no penalty |')
  print('|---|---|---|---|')
  for name, _, r in rows:
    print(f'| {name} | {r["compile_s"]:.1f} | {r["ms_per_iter"]:.1f} | {r["ms_per_iter"] / base_ms:.2f} |')


if __name__ == '__main__':
  OVERRIDES, rest = config_lib.split_override_args(sys.argv)
  FLAGS.set_default('exp', 'wgan_gp')
  app.run(main, argv=rest)
