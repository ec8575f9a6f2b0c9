"""The one compiled-program builder: a phase's iteration for a group of runs on the devices at hand.

`Program(run, phase, layout, on_device)` stacks the transforms in one place:

  iteration(state, metric_sums, data, fade, key)    one run on one device: draw the real batches,
      |                                            run the phase's pure train step, add its metrics
  over the runs (lanes)                             only when several runs share the program:
      |                                            jax.vmap, or on CPU (lane_mapping) one copy of
      |                                            the iteration per lane (convolutional models) or
      |                                            lax.map over vmapped chunks (big MLP groups)
  jax.shard_map over the device mesh                only when there are several devices: the
      |                                            global batch split over 'batch' (data parallel)
      |                                            or, for a group, its runs split over 'runs'
  jax.jit with donated state and metric sums

The iteration's key is `fold_in(key, state.step)`, so a resumed run replays the same randomness,
and every draw is one draw for the global batch sliced per device (gan_jax.draws), so a run gives
the same numbers on 1 or N devices and alone or in a group (to float tolerance).

`Layout.make(lanes, batch_sizes)` picks the mesh: one device: none; several devices and one run:
data parallel over 'batch' (every phase's batch must split evenly); a group whose run count is a
multiple of the device count: its runs split over 'runs', each device training its runs on whole
batches with no cross-device traffic; any other group: each run data parallel. State, metric
sums and keys carry a leading runs axis when there are several lanes.

Why jit + shard_map rather than pmap or automatic sharding: one program spans the devices of all
hosts with ordinary global arrays that Orbax saves collectively, and the step states explicitly
which statistics are global (gradients, BatchNorm, minibatch stddev).

Why no lax.scan over iterations: XLA:CPU runs convolution gradients inside a loop body an order
of magnitude slower than at the top level of a program, and asynchronously dispatched iterations
cost nothing measurable on GPU. For the same reason lanes are mapped per backend (lane_mapping).
"""
import dataclasses
import json
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import compile_cache
from gan_jax import config as config_lib
from gan_jax.errors import UserError
from gan_jax.train import parallel
from gan_jax.train import state as state_lib
from gan_jax.train.run import Run
from gan_jax.train.schedule import BatchSpec, Phase

BATCH = 'batch'  # Mesh axis of data parallelism: the global batch split over devices.
RUNS = 'runs'    # Mesh axis of a group's runs split over devices.
P = jax.sharding.PartitionSpec
CPU_MLP_CHUNK = 8

# Fields that runs of one group may differ in: values held in the state, not in the program.
#   train.seed; optim.{g,d}.{lr,b1,b2} (in the optimizer state); penalty weights (in
#   GANState.loss_weights; whether a penalty is on is part of the program, so 0 and 0.1 fall into
#   different groups while 0.1 and 10 share one); a schedule's per-resolution rates (set in the
#   state at each phase); names.
VECTORIZED_KEYS = ('train.seed', *(f'optim.{p}.{h}' for p in 'gd' for h in ('lr', 'b1', 'b2')),
                   *(f'penalty.{name}' for name in state_lib.LOSS_WEIGHTS), 'progressive.g_lr', 'progressive.d_lr',
                   'log.name', 'log.group')


def program_key(config) -> str:
  """The config with the vectorizable fields blanked out (penalty weights reduced to on/off), as
  JSON: runs with equal keys can share one program as lanes."""
  flat = config_lib.flatten(config_lib.to_dict(config))
  for key in VECTORIZED_KEYS:
    if key not in flat:
      continue
    value = flat.pop(key)
    if key.startswith('penalty.'):
      flat[key + ' > 0'] = value > 0
  return json.dumps(flat, sort_keys=True)


def group_by_program(configs: list) -> list[list[int]]:
  """Indices of `configs` grouped by program_key, groups and members in order of first appearance."""
  groups: dict[str, list[int]] = {}
  for i, config in enumerate(configs):
    groups.setdefault(program_key(config), []).append(i)
  return list(groups.values())


def stack(trees: list) -> Any:
  """Trees stacked along a new leading runs axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


@jax.jit
def _take_lane(tree, lane: jax.Array) -> Any:
  return jax.tree.map(lambda x: x[lane], tree)


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where a group of `lanes` runs executes.

  Attributes:
    lanes: runs sharing the program (1: a single run, whose arrays have no runs axis).
    mesh: the device mesh, or None on one device.
    axis: BATCH, RUNS or None (one device).
  """
  lanes: int
  mesh: jax.sharding.Mesh | None = None
  axis: str | None = None

  @classmethod
  def make(cls, lanes: int, batch_sizes: list[int]) -> 'Layout':
    """The layout of `lanes` runs on every device of every process.

    Raises:
      UserError if data parallelism is needed and a batch size does not split over the devices, or
      a group of runs is asked to span processes.
    """
    devices = jax.devices()
    if len(devices) == 1:
      return cls(lanes)
    if lanes > 1 and jax.process_count() > 1:
      raise UserError('a group of runs (--runner=vectorized) trains in one process; run sweeps without '
                      '--coordinator')
    if lanes > 1 and lanes % len(devices) == 0:
      return cls(lanes, jax.sharding.Mesh(np.array(devices), (RUNS,)), RUNS)
    for batch_size in batch_sizes:
      if batch_size % len(devices):
        raise UserError(f'batch size {batch_size} does not split evenly over {len(devices)} devices '
                        f'({jax.process_count()} process(es)); use a multiple of {len(devices)}')
    return cls(lanes, jax.sharding.Mesh(np.array(devices), (BATCH,)), BATCH)

  @property
  def devices(self) -> int:
    return self.mesh.size if self.mesh is not None else 1

  @property
  def step_axis(self) -> str | None:
    """The axis the train step averages over (data parallelism only)."""
    return BATCH if self.axis == BATCH else None

  def per_device(self, batch_size: int) -> int:
    return batch_size // self.devices if self.axis == BATCH else batch_size

  def describe(self, batch_size: int) -> str:
    """What a run states at its start: backend, devices, processes, runs and batch per device."""
    where = (f'{jax.default_backend()}: {self.devices} device(s) in {jax.process_count()} process(es), '
             f'{self.lanes} run(s) in one program')
    if self.axis == RUNS:
      return f'{where}, {self.lanes // self.devices} run(s) per device; batch {batch_size} per run on one device'
    return f'{where}; global batch {batch_size}, {self.per_device(batch_size)} per device'

  def _put(self, tree, spec):
    if self.mesh is None:  # Committed, as restored checkpoints are: fresh and resumed runs then share
      return jax.device_put(tree, jax.devices()[0])  # one compiled program (and its cache entry).
    if jax.process_count() > 1:
      return parallel.replicate(tree, self.mesh)  # Single runs only (see make): replicated.
    return jax.device_put(tree, jax.sharding.NamedSharding(self.mesh, spec))

  def put_runs(self, tree):
    """State, metric sums or keys: split over 'runs', else replicated."""
    return self._put(tree, P(RUNS) if self.axis == RUNS else P())

  def put_shared(self, tree):
    """Arrays every run and device reads whole (the on-device data set)."""
    return self._put(tree, P())

  def host_batch(self, source, seeds: list[int], step: int, batch: BatchSpec) -> dict:
    """Iteration `step`'s real batches drawn on the host, each run's seeded by (its seed, step) so a
    resumed run replays them: 'image' [d_steps, B, ...] (one run) or [lanes, d_steps, B, ...]."""
    if self.lanes == 1 and self.axis == BATCH:
      sharding = jax.sharding.NamedSharding(self.mesh, P(None, BATCH))
      return parallel.host_batch(source, seeds[0], step, batch, sharding)
    drawn = [batch.split(source.draw_host(np.random.default_rng([seed, step]), batch.size)) for seed in seeds]
    if self.lanes == 1:
      return jax.device_put(drawn[0])
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *drawn)
    spec = {RUNS: P(RUNS), BATCH: P(None, None, BATCH)}.get(self.axis)
    return self._put(stacked, spec)

  def lane(self, tree, lane: int):
    """One run's part of a group's tree, as its own (unstacked) tree; a single run's tree as it is."""
    if self.lanes == 1:
      return tree
    return _take_lane(tree, jnp.asarray(lane, jnp.int32))

  def local(self, tree):
    """A copy this process alone can compute with (evaluation, samples)."""
    return parallel.local_replica(tree) if self.lanes == 1 and self.mesh is not None else tree


class Program:
  """The compiled iteration of one phase for a layout: `program(state, sums, data, fade, keys)`
  -> (state, sums + metrics), with `state` and `sums` donated.

  data: the train source's arrays (on_device: put_shared) or a host batch (Layout.host_batch).
  fade: the phase's float32 [2] fade-in bounds (Phase.fade).
  mapping: how a device computes several lanes (a lane_mapping name); None: lane_mapping's choice.
  """

  def __init__(self, run: Run, phase: Phase, layout: Layout, on_device: bool, mapping: str | None = None):
    self.run, self.phase, self.layout, self.on_device = run, phase, layout, on_device
    self._compiled = None
    self._zeros = None
    iteration = iteration_fn(run, phase, on_device, layout.step_axis, layout.per_device(phase.batch.batch_size))
    mapped = iteration
    if layout.lanes > 1:
      runs_per_device = layout.lanes // layout.devices if layout.axis == RUNS else layout.lanes
      mapped = over_runs(iteration, None if on_device else 0,
                         mapping or lane_mapping(run.config.model.name, runs_per_device))
    if layout.mesh is not None:
      if layout.axis == RUNS:
        data_spec = P() if on_device else P(RUNS)
        in_specs, out_specs = (P(RUNS), P(RUNS), data_spec, P(), P(RUNS)), (P(RUNS), P(RUNS))
      else:
        data_spec = P() if on_device else (P(None, BATCH) if layout.lanes == 1 else P(None, None, BATCH))
        in_specs, out_specs = (P(), P(), data_spec, P(), P()), (P(), P())
      # check_vma=False: gradients of replicated params are per-device values averaged by the step's
      # own pmean (as under vmap), not sums inserted by shard_map's replication tracking.
      mapped = jax.shard_map(mapped, mesh=layout.mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)

    def train_iteration(state, metric_sums, data, fade, keys):
      return mapped(state, metric_sums, data, fade, keys)

    self._jitted = jax.jit(train_iteration, donate_argnums=(0, 1))

  def zero_sums(self):
    """New float32 zeros shaped like the step's metrics (with a runs axis for several lanes), placed
    (the metric sums are donated at each call, so each window starts from a new copy)."""
    if self._zeros is None:
      run = self.run
      state = jax.eval_shape(run.init_state, jax.random.key(0))
      shapes = jax.eval_shape(run.step(self.phase), state, self.phase.batch.shapes(run.train_source),
                              jax.random.key(0), self.phase.fade)[1]
      lead = (self.layout.lanes,) if self.layout.lanes > 1 else ()
      self._zeros = jax.tree.map(lambda s: np.zeros(lead + s.shape, s.dtype), shapes)
    return self.layout.put_runs(self._zeros)

  def compile(self, state, sums, data, fade, keys):
    """Compiles the program for these arguments' shapes and placements (once); returns the executable."""
    if self._compiled is None:
      logging.info('compiling the %s iteration (batch %d, %d run(s)) ...', self.phase.name,
                   self.phase.batch.batch_size, self.layout.lanes)
      started, hits = time.perf_counter(), compile_cache.hits()
      self._compiled = self._jitted.lower(state, sums, data, fade, keys).compile()
      logging.info('compiled the %s iteration (batch %d, %d run(s)) in %.1f s%s', self.phase.name,
                   self.phase.batch.batch_size, self.layout.lanes, time.perf_counter() - started,
                   ' (loaded from the persistent compilation cache)' if compile_cache.hits() > hits else '')
    return self._compiled

  def __call__(self, state, sums, data, fade, keys):
    return self.compile(state, sums, data, fade, keys)(state, sums, data, fade, keys)


def iteration_fn(run: Run, phase: Phase, on_device: bool, axis_name: str | None = None,
                 per_device: int | None = None):
  """`iteration(state, metric_sums, data, fade, key) -> (state, metric_sums + metrics)` of one run on
  one device (not yet mapped or jitted): draws the iteration's real batches (on_device: from the
  data set `data`, one draw for the global batch of which this device takes its `per_device`
  columns under `axis_name`; else `data` is the host batch) and runs the phase's train step."""
  batch, step, draw = phase.batch, run.step(phase, axis_name), run.train_source.draw

  def iteration(state, metric_sums, data, fade, key):
    rng = jax.random.fold_in(key, state.step)
    data_rng, step_rng = jax.random.split(rng)
    real = data
    if on_device:
      real = batch.split(draw(data, data_rng, batch.size))
      if axis_name is not None:
        real = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, jax.lax.axis_index(axis_name) * per_device,
                                                                   per_device, axis=1), real)
    state, metrics = step(state, real, step_rng, fade)
    return state, jax.tree.map(jnp.add, metric_sums, metrics)

  return iteration


def lane_mapping(model_name: str, runs_per_device: int) -> str:
  """How one device computes its group's lanes, as measured on each backend:

  'vmap': one batched program (GPU/TPU; small MLP groups on CPU).
  'unrolled': one copy of the iteration per lane in the program (convolutional models on CPU: vmap
      turns each lane's convolutions into grouped convolutions, which XLA:CPU runs several times
      slower per lane than separate ones; compile time grows with the lanes instead).
  'chunks': lax.map over vmapped chunks of CPU_MLP_CHUNK lanes (MLP groups of more than
      CPU_MLP_CHUNK on CPU: 64 vmapped 2D-ring runs have working sets far beyond the caches, 132
      run-iterations/s measured, chunks of 8: 200, as fast as one run).
  """
  if jax.default_backend() != 'cpu':
    return 'vmap'
  if model_name != 'mlp':
    return 'unrolled'
  return 'chunks' if runs_per_device > CPU_MLP_CHUNK else 'vmap'


def over_runs(iteration, data_axis: int | None, mapping: str, chunk: int = CPU_MLP_CHUNK):
  """`iteration(state, sums, data, fade, key)` over a leading runs axis of state, sums, key (and of
  the data when each run draws its own batches on the host), computed as `mapping` says
  (lane_mapping; 'chunks' of `chunk` runs, the last one may be smaller). Every mapping gives the
  same values."""
  if mapping == 'vmap':
    return jax.vmap(iteration, in_axes=(0, 0, data_axis, None, 0))
  if mapping == 'unrolled':

    def unrolled(state, sums, data, fade, keys):
      lanes = []
      for lane in range(keys.shape[0]):
        take = lambda tree: jax.tree.map(lambda x: x[lane], tree)  # pylint: disable=cell-var-from-loop
        lanes.append(iteration(take(state), take(sums), data if data_axis is None else take(data), fade, keys[lane]))
      return stack(lanes)

    return unrolled

  def chunked(state, sums, data, fade, keys):
    if data_axis is None:
      return jax.lax.map(lambda xs: iteration(xs[0], xs[1], data, fade, xs[2]), (state, sums, keys),
                         batch_size=chunk)
    return jax.lax.map(lambda xs: iteration(xs[0], xs[1], xs[2], fade, xs[3]), (state, sums, data, keys),
                       batch_size=chunk)

  return chunked
