"""Data-parallel checks that need several devices; run by tests/test_parallel.py in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (pytest's own process has initialised JAX with one).

Prints one JSON object of measured differences; the test asserts on them.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import experiments
from gan_jax import losses
from gan_jax import models
from gan_jax.errors import UserError
from gan_jax.train import loop
from gan_jax.train import parallel
from gan_jax.train import steps as steps_lib

ITERATIONS = 2


def max_difference(a, b) -> float:
  leaves = jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x - y))), a, b))
  return max(leaves)


def max_replica_spread(tree) -> float:
  """Largest difference between any device's copy of a replicated array and device 0's."""
  spread = 0.0
  for leaf in jax.tree.leaves(tree):
    copies = [np.asarray(shard.data) for shard in leaf.addressable_shards]
    spread = max([spread] + [float(np.max(np.abs(c - copies[0]))) for c in copies])
  return spread


def train(iterate, state, sums, batch, key):
  for _ in range(ITERATIONS):
    state, sums = iterate(state, sums, batch, key)
  return state, sums


def main():
  assert jax.device_count() == 8, jax.devices()
  config = experiments.load_config('vanilla:smoke', [('data.batch_size', '16'), ('train.d_steps', '1'),
                                                      ('train.ema_decay', '0.9')])
  key, init_key = jax.random.split(jax.random.key(0))
  single = loop.build_run(config)
  state = single.init_state(init_key)
  shape = (config.train.d_steps, config.data.batch_size, *single.source.shape)
  batch = {'image': jax.random.uniform(jax.random.key(1), shape, jnp.float32, -1.0, 1.0)}

  iterate = steps_lib.make_iteration(single.train_step, single.source.draw, batch_size=16, d_steps=1,
                                     on_device=False)
  sums = steps_lib.zero_metrics(single.train_step, state, batch, key)
  reference, reference_sums = train(iterate, jax.tree.map(jnp.copy, state), sums, batch, key)

  mesh = parallel.make_mesh(config.data.batch_size)
  sharded = jax.device_put(batch, jax.sharding.NamedSharding(mesh, parallel.P(None, parallel.AXIS)))

  def data_parallel(run):
    iterate = parallel.make_iteration(run.train_step, run.source.draw, mesh, batch_size=16, d_steps=1,
                                      on_device=False)
    sums = parallel.zero_metrics(run.train_step, state, run.source.shape, 1, 16, key, mesh)
    return train(iterate, parallel.replicate(jax.tree.map(jnp.copy, state), mesh), sums, sharded,
                 parallel.replicate(key, mesh))

  dp_state, dp_sums = data_parallel(loop.build_run(config, parallel.AXIS))

  # The same step with per-device BatchNorm statistics (models without the axis name): must differ.
  local_bn = loop.build_run(config, parallel.AXIS)
  g_model, d_model = models.build(config.model, local_bn.source.shape, config.train.dtype, axis_name=None)
  local_bn.train_step = steps_lib.make_train_step(g_model, d_model, local_bn.g_opt, local_bn.d_opt,
                                                  losses.get(config.loss),
                                                  steps_lib.StepOptions.from_config(config, parallel.AXIS))
  local_bn_state, _ = data_parallel(local_bn)

  # On-device draws: every device's copy of the state stays the same.
  run = loop.build_run(config, parallel.AXIS)
  on_device = parallel.make_iteration(run.train_step, run.source.draw, mesh, batch_size=16, d_steps=1,
                                      on_device=True)
  sums = parallel.zero_metrics(run.train_step, state, run.source.shape, 1, 16, key, mesh)
  drawn_state, _ = on_device(parallel.replicate(jax.tree.map(jnp.copy, state), mesh), sums, parallel.replicate(run.source.arrays, mesh),
                             parallel.replicate(key, mesh))

  try:
    parallel.make_mesh(12)
    indivisible_error = ''
  except UserError as e:
    indivisible_error = str(e)

  print(json.dumps({
      'param_scale': max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(reference.g.params)),
      'moved': max_difference(reference.g.params, state.g.params),
      'state': max_difference(reference, dp_state),
      'params': max_difference((reference.g.params, reference.d.params), (dp_state.g.params, dp_state.d.params)),
      'batch_stats': max_difference((reference.g.batch_stats, reference.d.batch_stats),
                                    (dp_state.g.batch_stats, dp_state.d.batch_stats)),
      'metrics': max_difference(reference_sums, dp_sums),
      'local_bn_params': max_difference((reference.g.params, reference.d.params),
                                        (local_bn_state.g.params, local_bn_state.d.params)),
      'step': int(dp_state.step),
      'replica_spread': max_replica_spread(drawn_state),
      'drawn_moved': max_difference(drawn_state.g.params, state.g.params),
      'indivisible_error': indivisible_error,
  }))


if __name__ == '__main__':
  main()
