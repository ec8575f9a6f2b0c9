"""How far a run trained as a lane of a vectorized group drifts from the same run trained alone.

  python bench/lane_drift.py [--exp=unrolled:ring,compare] [--member=0] [--lanes=3] [--steps=2000]

The sweep's members `--member` .. `--member + lanes - 1` (the same program, different seeds) are
trained as one vmapped group, member `--member` also alone, and alone once more from initial
parameters nudged by one float32 ulp (each value moved to its next float away from zero). Prints,
at steps 1, 2, 5, 10, 20, ..., the largest absolute difference over every parameter and optimizer
state value between the lone run and (a) its lane, (b) its nudged copy, with G's loss in each.

What it shows: a lane computes the same draws and the same updates as the lone run, its values
differing only in float rounding (batched matrix products sum in another order, about 1e-8 at step
1); whether such a difference stays at rounding level or grows to the size of an update is a
property of the training dynamics, which the nudged run measures with no vmap involved.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import experiments  # noqa: E402
from gan_jax import sweep  # noqa: E402
from gan_jax import sweep_runners  # noqa: E402
from gan_jax.train import lanes  # noqa: E402
from gan_jax.train import program as program_lib  # noqa: E402
from gan_jax.train import run as run_lib  # noqa: E402
from gan_jax.train import state as state_lib  # noqa: E402

CHECKS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


def max_difference(a, b) -> float:
  """The largest |a - b| over the float leaves of two trees of one structure."""
  return max((float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
              if jnp.issubdtype(x.dtype, jnp.floating)), default=0.0)


def nudged(params):
  """`params` with every float value moved by one ulp away from zero."""
  return jax.tree.map(lambda x: jnp.nextafter(x, jnp.where(x < 0, -jnp.inf, jnp.inf)).astype(x.dtype)
                      if jnp.issubdtype(x.dtype, jnp.floating) else x, params)


class Trainer:
  """`lanes` runs as one program (the loop's own Program and Layout), stepped one iteration at a time."""

  def __init__(self, run, configs, init_keys, train_keys, states=None):
    phase = run.phases[0]
    self.layout = program_lib.Layout.make(len(configs), [phase.batch.batch_size])
    self.program = program_lib.Program(run, phase, self.layout, on_device=True)
    self.fade = phase.fade
    if states is None:
      init = jax.jit(run.init_state) if len(configs) == 1 else jax.jit(jax.vmap(run.init_state))
      fresh = init(init_keys[0] if len(configs) == 1 else program_lib.stack(init_keys))
      states = [fresh] if len(configs) == 1 else [jax.tree.map(lambda x, i=i: x[i], fresh) for i in range(len(configs))]
    states = [state_lib.with_hyperparams(s, c) for s, c in zip(states, configs)]
    one = len(configs) == 1
    self.state = self.layout.put_runs(states[0] if one else program_lib.stack(states))
    self.keys = self.layout.put_runs(train_keys[0] if one else program_lib.stack(train_keys))
    self.data = self.layout.put_shared(run.train_source.arrays)

  def step(self) -> float:
    """One iteration; returns the first run's G loss."""
    self.state, metrics = self.program(self.state, self.program.zero_sums(), self.data, self.fade, self.keys)
    return float(np.asarray(metrics['g_loss']).reshape(-1)[0])

  def first(self):
    return self.state if self.layout.lanes == 1 else self.layout.lane(self.state, 0)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--exp', default='unrolled:ring,compare')
  parser.add_argument('--member', type=int, default=0)
  parser.add_argument('--lanes', type=int, default=3)
  parser.add_argument('--steps', type=int, default=2000)
  args = parser.parse_args()
  base = experiments.load_config(args.exp)
  members = sweep.make_members(sweep_runners.load_spec(args.exp), base)
  chosen = members[args.member:args.member + args.lanes]
  configs = [sweep.member_config(base, m, 'lane_drift') for m in chosen]
  run = run_lib.build_run(configs[0])
  keys = [lanes.run_keys(c.train.seed) for c in configs]  # As the loop derives them.
  init_keys, train_keys = [k[0] for k in keys], [k[2] for k in keys]
  group = Trainer(run, configs, init_keys, train_keys)
  alone = Trainer(run, configs[:1], init_keys[:1], train_keys[:1])
  start = jax.jit(run.init_state)(init_keys[0])
  moved = Trainer(run, configs[:1], init_keys[:1], train_keys[:1],
                  states=[start.replace(g=start.g.replace(params=nudged(start.g.params)),
                                        d=start.d.replace(params=nudged(start.d.params)))])
  print(f'{args.exp}: member {chosen[0].name} alone, as lane 0 of {len(chosen)} ({", ".join(m.name for m in chosen)}), '
        'and alone from parameters nudged by one ulp')
  print('| step | max abs difference: lane 0 vs alone | nudged vs alone | G loss alone | lane 0 | nudged |')
  print('|---|---|---|---|---|---|')
  for step in range(1, args.steps + 1):
    losses = (alone.step(), group.step(), moved.step())
    if step in CHECKS or step == args.steps:
      print(f'| {step} | {max_difference(alone.first(), group.first()):.2e} | '
            f'{max_difference(alone.first(), moved.first()):.2e} | {losses[0]:.4f} | {losses[1]:.4f} | '
            f'{losses[2]:.4f} |', flush=True)


if __name__ == '__main__':
  main()
