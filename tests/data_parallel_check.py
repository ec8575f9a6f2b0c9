"""Data-parallel checks that need several devices; run by tests/test_parallel.py in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (pytest's own process has initialised JAX with one).

Prints one JSON object of measured differences; the test asserts on them.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import experiments
from gan_jax.errors import UserError
from gan_jax.train import program as program_lib
from gan_jax.train import run as run_lib

ITERATIONS = 2


def max_difference(a, b) -> float:
  leaves = jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b))
  return max(leaves)


def max_replica_spread(tree) -> float:
  """Largest difference between any device's copy of a replicated array and device 0's."""
  spread = 0.0
  for leaf in jax.tree.leaves(tree):
    copies = [np.asarray(shard.data) for shard in leaf.addressable_shards]
    spread = max([spread] + [float(np.max(np.abs(c - copies[0]))) for c in copies])
  return spread


def train(run, layout, state, data, key, on_device):
  """ITERATIONS iterations of the run's first phase laid out by `layout`; (state, metric sums)."""
  phase = run.phases[0]
  program = program_lib.Program(run, phase, layout, on_device)
  state, sums = layout.put_runs(jax.tree.map(jnp.copy, state)), program.zero_sums()
  data = layout.put_shared(data) if on_device else data
  fade, key = layout.put_shared(phase.fade), layout.put_runs(key)
  for _ in range(ITERATIONS):
    state, sums = program(state, sums, data, fade, key)
  return state, sums


def main():
  assert jax.device_count() == 8, jax.devices()
  config = experiments.load_config('vanilla:smoke', [('data.batch_size', '16'), ('train.d_steps', '1'),
                                                      ('train.ema_decay', '0.9')])
  key, init_key = jax.random.split(jax.random.key(0))
  run = run_lib.build_run(config)
  state = run.init_state(init_key)
  shape = (config.train.d_steps, config.data.batch_size, *run.source.shape)
  batch = {'image': jax.random.uniform(jax.random.key(1), shape, jnp.float32, -1.0, 1.0),
           'label': jnp.zeros(shape[:2], jnp.int32)}

  one_device = program_lib.Layout(1)
  reference, reference_sums = train(run, one_device, state, batch, key, on_device=False)
  layout = program_lib.Layout.make(1, [config.data.batch_size])
  sharded = jax.device_put(batch, jax.sharding.NamedSharding(layout.mesh, program_lib.P(None, program_lib.BATCH)))
  dp_state, dp_sums = train(run, layout, state, sharded, key, on_device=False)

  # The same step with per-device BatchNorm statistics (models without the axis name): must differ.
  local_bn = run_lib.build_run(config)
  models = local_bn.models
  local_bn.models = lambda phase=None, alpha=None, axis_name=None: models(phase, alpha, None)
  local_bn_state, _ = train(local_bn, layout, state, sharded, key, on_device=False)

  # On-device draws: one draw for the global batch, so 8 devices train as one does.
  drawn_reference, _ = train(run, one_device, state, run.train_source.arrays, key, on_device=True)
  drawn_state, _ = train(run, layout, state, run.train_source.arrays, key, on_device=True)

  # A group of 8 runs split over the 8 devices by runs ('runs' axis): each device trains its run on
  # whole batches, as one device training all 8 lanes does.
  ring = run_lib.build_run(experiments.load_config('vanilla:ring,smoke', []))
  keys = jax.random.split(jax.random.key(3), 8)
  lanes = jax.vmap(ring.init_state)(keys)
  runs_layout = program_lib.Layout.make(8, [ring.phases[0].batch.batch_size])
  by_runs, _ = train(ring, runs_layout, lanes, ring.train_source.arrays, keys, on_device=True)
  one_device_lanes, _ = train(ring, program_lib.Layout(8), lanes, ring.train_source.arrays, keys, on_device=True)

  try:
    program_lib.Layout.make(1, [12])
    indivisible_error = ''
  except UserError as e:
    indivisible_error = str(e)

  print(json.dumps({
      'layout': layout.describe(config.data.batch_size),
      'moved': max_difference(reference.g.params, state.g.params),
      'state': max_difference(reference, dp_state),
      'batch_stats': max_difference((reference.g.batch_stats, reference.d.batch_stats),
                                    (dp_state.g.batch_stats, dp_state.d.batch_stats)),
      'metrics': max_difference(reference_sums, dp_sums),
      'local_bn_params': max_difference((reference.g.params, reference.d.params),
                                        (local_bn_state.g.params, local_bn_state.d.params)),
      'step': int(dp_state.step),
      'replica_spread': max_replica_spread(drawn_state),
      'drawn_moved': max_difference(drawn_state.g.params, state.g.params),
      'drawn_state': max_difference(drawn_reference, drawn_state),
      'indivisible_error': indivisible_error,
      'runs_layout': runs_layout.describe(ring.phases[0].batch.batch_size),
      'runs_moved': max_difference(one_device_lanes.g.params, lanes.g.params),
      'runs_state': max_difference(one_device_lanes, by_runs),

  }))


if __name__ == '__main__':
  main()
