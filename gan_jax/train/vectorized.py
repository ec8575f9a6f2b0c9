"""Several runs as one `jax.vmap`-ed program over a leading run axis (the 'vectorized' sweep runner).

Runs whose configs differ only in values that change neither shapes nor the computation's
structure share one compiled program: their GANStates are stacked along a leading axis, the
iteration of gan_jax/train/steps.py is vmapped over (state, metric sums, key), and the data
arrays are shared (in_axes None). The vectorizable fields (VECTORIZED_KEYS) are:

  train.seed                    each run's init, sample and train keys
  optim.{g,d}.{lr,b1,b2}        Adam's hyperparameters, held in the optimizer state
  penalty.{gp,r1,r2,dragan,d_weight_decay,instance_noise,drift}
                                regularizer weights, held in GANState.loss_weights; whether a
                                penalty is on (weight > 0) is part of the program, so 0 and 0.1
                                fall into different groups while 0.1 and 10 share one
  log.name, log.group           names only

Every other field (loss, g_loss, model, data, unroll, penalty.clip / gp_one_sided /
instance_noise_steps, train.d_steps / dtype / ema_decay / steps / log_every / sample_every /
checkpoint_every / keep_checkpoints, eval, log.wandb / project) must be equal: `group_by_program`
splits runs into groups that can share a program (a group of one is fine).

Each run keeps the outputs of gan_jax/train/loop.py in its own workdir (config.json, status.json,
metrics.jsonl, samples/step_N.png, checkpoints/ of its own unstacked state, its own W&B run), so
a run started here can be resumed by `train_and_evaluate` and vice versa. metrics.jsonl's
steps_per_sec is the group's iterations per second (every run advances at that rate).

Resuming: each run restores its own newest checkpoint. Runs of a group that resume from different
steps (e.g. one diverged earlier, or a kill came between two runs' checkpoint writes) are split
by that step and each part runs as its own vmapped program, so every run continues exactly as it
would alone.

Evaluation: every run is evaluated on config.eval.metrics at the steps `train_and_evaluate` would
evaluate it, with the same draws (they depend on the run's seed and the step), into its own
eval.jsonl and W&B run.

Divergence: a run whose logged means or parameters become non-finite, or that collapses
(train.collapse_patience), is recorded as diverged at that boundary (status.json, `on_done`),
exactly as `train_and_evaluate` records it, and its last good checkpoint is kept. It stays in the
batch (no operation mixes runs, so its NaNs touch no other run; dropping it would mean recompiling)
but is no longer logged, sampled or checkpointed. A group whose runs have all diverged stops. With
train.restarts > 0, each diverged run then continues alone once the group is done, through
`train_and_evaluate`: from its last good checkpoint with the learning rates lowered, as its first
restart.

SIGTERM / SIGINT: the iteration in flight finishes, every live run is checkpointed at that step
and marked interrupted, and loop.Interrupted is raised (as train_and_evaluate does).

When it pays: on an accelerator a small model leaves most of the device idle, and R runs cost
little more than one; on CPU the arithmetic grows with R, and the gain is the per-run overhead
saved (one compilation, one process, one host loop for all runs). See BUILD.md for figures.

On CPU, MLP groups of more than CPU_MLP_CHUNK runs are computed CPU_MLP_CHUNK runs at a time
(`lax.map` over chunks of vmapped runs, still one program): 64 vmapped 2D-ring runs have working
sets (e.g. [64, 512, 256] latents) far beyond the caches and trained at 132 run-iterations/s here,
chunks of 8 at 200, as fast as one run alone. Convolutional models stay fully vmapped: XLA:CPU
runs convolution gradients inside a loop body an order of magnitude slower (gan_jax/train/steps.py).
"""
import dataclasses
import json
import pathlib
import signal
import time
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import config as config_lib
from gan_jax import logging as log_lib
from gan_jax.errors import UserError
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.train import loop
from gan_jax.train import state as state_lib
from gan_jax.train import steps as steps_lib
from gan_jax.train.progress import Progress

VECTORIZED_KEYS = ('train.seed', *(f'optim.{p}.{h}' for p in 'gd' for h in ('lr', 'b1', 'b2')),
                   *(f'penalty.{name}' for name in state_lib.LOSS_WEIGHTS), 'log.name', 'log.group')

CPU_MLP_CHUNK = 8  # Runs per vmapped chunk of an MLP group on CPU (see the module docstring).

# on_done(position of the run in train_members' arguments, 'finished' | 'failed', error text).
OnDone = Callable[[int, str, str], None]


def program_key(config) -> str:
  """The config with the vectorizable fields blanked out (penalty weights reduced to on/off), as
  JSON: runs with equal keys can share one vmapped program."""
  flat = config_lib.flatten(config_lib.to_dict(config))
  for key in VECTORIZED_KEYS:
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


def _stack(trees: list) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


@jax.jit
def _take_lane(tree, lane: jax.Array) -> Any:
  return jax.tree.map(lambda x: x[lane], tree)


def _lane(tree, lane: int) -> Any:
  """One run's slice of a stacked tree; the lane is traced, so all lanes share one compiled program."""
  return _take_lane(tree, jnp.asarray(lane, jnp.int32))


@dataclasses.dataclass
class _Member:
  """One run of the group and its per-run resources."""
  index: int                  # position in train_members' arguments
  config: Any
  workdir: pathlib.Path
  checkpoints: checkpoint_lib.Checkpointer
  state: state_lib.GANState   # unstacked: initial or restored
  sample_key: jax.Array
  train_key: jax.Array
  logger: log_lib.RunLogger | None = None
  live: bool = True
  step: int = 0
  status: str = ''
  message: str = ''
  last: dict = dataclasses.field(default_factory=dict)
  last_eval: dict = dataclasses.field(default_factory=dict)

  def end(self, status: str, message: str = '') -> None:
    """Records how the run ended (status.json), waits for its checkpoint writes, closes its W&B run."""
    self.live, self.status, self.message = False, status, message
    self.checkpoints.close()
    loop.write_status(self.workdir, status, self.step, message)
    if self.logger is not None:
      self.logger.close(0 if status == 'finished' else 1)


def train_members(configs: list, workdirs: list, on_done: OnDone | None = None) -> list[dict[str, Any]]:
  """Trains (or resumes) runs that share a program (see group_by_program) as one vmapped program.

  Args:
    configs: the runs' configs, equal except in VECTORIZED_KEYS.
    workdirs: each run's directory (as for loop.train_and_evaluate).
    on_done: called as each run ends: (its position, 'finished' or 'failed', '' or
      'diverged: <message>').

  Returns:
    Per run: {'status': 'finished' | 'diverged', 'step', 'metrics': last logged scalars, 'message'}.

  Raises:
    UserError for bad input or configs that do not share a program; whatever training raises
    (runs not yet ended are then marked failed in their status.json).
  """
  if len({program_key(c) for c in configs}) != 1:
    raise UserError('train_members needs configs that differ only in '
                    f'{", ".join(VECTORIZED_KEYS)} (and in no penalty being switched on or off)')
  config = configs[0]
  if 'progressive' in config:
    raise UserError('progressive (ProGAN) runs change programs at every stage and are not vectorized; use '
                    '--runner=sequential or --runner=processes')
  for c in configs:
    loop.validate(c)
  run = loop.build_run(config)
  # Before any workdir is touched, as in train_and_evaluate; eval settings are equal across the group.
  evaluator = evaluator_lib.Evaluator(config, run.source) if config.eval.metrics else None
  on_done = on_done or (lambda *_: None)

  workdirs = [loop.prepare_workdir(c, workdir) for c, workdir in zip(configs, workdirs)]
  keys = _stack([jax.random.split(jax.random.key(c.train.seed), 3) for c in configs])  # As train_and_evaluate.
  fresh = jax.jit(jax.vmap(run.init_state))(keys[:, 0])
  members: list[_Member] = []
  try:
    for i, (c, workdir) in enumerate(zip(configs, workdirs)):
      state = state_lib.with_hyperparams(_lane(fresh, i), c)
      checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints', c.train.keep_checkpoints)
      members.append(_Member(i, c, workdir, checkpoints, state, keys[i, 1], keys[i, 2]))
      restored = checkpoints.restore_latest(state)
      if restored is not None:
        members[-1].state = state_lib.with_hyperparams(restored, c)
        members[-1].step = int(restored.step)
        logging.info('resumed from checkpoint at step %d in %s', members[-1].step, workdir)
    by_start: dict[int, list[_Member]] = {}
    for m in members:
      by_start.setdefault(m.step, []).append(m)
    for start, part in sorted(by_start.items()):
      if len(by_start) > 1:
        logging.info('%d run(s) resume from step %d', len(part), start)
      with loop.StopSignals() as stop:
        _train_lanes(run, part, start, on_done, evaluator, stop)
    for m in members:
      if m.status == 'diverged' and m.config.train.restarts:
        _restart_alone(m, on_done)
  except BaseException as e:
    for m in members:
      if m.live:
        m.end('failed', f'{type(e).__name__}: {e}')
    raise
  return [{'status': m.status, 'step': m.step, 'metrics': m.last, 'eval': m.last_eval, 'message': m.message}
          for m in members]


def _restart_alone(m: _Member, on_done: OnDone) -> None:
  """Continues a run that diverged in its group as train_and_evaluate continues a diverged run:
  alone, from its last good checkpoint, with every learning rate lowered (its first restart of
  train.restarts)."""
  config = loop.lowered_learning_rates(m.config)
  logging.warning('%s: restart 1 of %d alone, from its last good checkpoint, with learning rates G %.3g, D %.3g',
                  m.workdir.name, config.train.restarts, config.optim.g.lr, config.optim.d.lr)
  try:
    result = loop.train_and_evaluate(config, m.workdir, restarts=1)
  except loop.Diverged as e:
    m.message = str(e)
    on_done(m.index, 'failed', f'diverged: {e}')
    return
  m.status, m.message, m.step, m.last, m.last_eval = 'finished', '', result['step'], result['metrics'], result['eval']
  on_done(m.index, 'finished', '')


def _chunk_size(config, runs: int) -> int | None:
  """Runs per vmapped chunk, or None for one vmap over all `runs` (see CPU_MLP_CHUNK)."""
  if jax.default_backend() == 'cpu' and config.model.name == 'mlp' and runs > CPU_MLP_CHUNK:
    return CPU_MLP_CHUNK
  return None


def _over_runs(iteration: Callable, on_device: bool, chunk: int | None) -> Callable:
  """`iteration(state, sums, data, key)` over a leading run axis of state, sums, key (and of the
  data when each run draws its own batches on the host): one vmap, or `lax.map` over chunks of
  `chunk` vmapped runs (the same values; the last chunk may be smaller)."""
  if chunk is None:
    return jax.vmap(iteration, in_axes=(0, 0, None if on_device else 0, 0))

  def chunked(state, sums, data, keys):
    if on_device:
      return jax.lax.map(lambda xs: iteration(xs[0], xs[1], data, xs[2]), (state, sums, keys), batch_size=chunk)
    return jax.lax.map(lambda xs: iteration(*xs), (state, sums, data, keys), batch_size=chunk)

  return chunked


def _train_lanes(run: loop.Run, members: list[_Member], start: int, on_done: OnDone,
                 evaluator: evaluator_lib.Evaluator | None, stop: loop.StopSignals) -> None:
  """Trains `members`, all at step `start`, as one vmapped program to config.train.steps."""
  config = members[0].config
  t = config.train
  is_main = jax.process_index() == 0
  for m in members:
    m.logger = log_lib.RunLogger(m.workdir, config_lib.to_dict(m.config), m.config.log, enabled=is_main)
    loop.write_status(m.workdir, 'running', start)

  on_device = config.data.on_device or not run.source.is_image
  data = jax.device_put(run.source.arrays) if on_device else None
  iteration = steps_lib.iteration_fn(run.train_step, run.source.draw, batch_size=config.data.batch_size,
                                     d_steps=t.d_steps, on_device=on_device)
  iterate = jax.jit(_over_runs(iteration, on_device, _chunk_size(config, len(members))), donate_argnums=(0, 1))

  def batch_for_step(step: int):
    """Host draws are seeded by (run's seed, step), as train_and_evaluate draws them."""
    if on_device:
      return data
    draws = []
    for m in members:
      rng = np.random.default_rng([m.config.train.seed, step])
      flat = run.source.draw_host(rng, t.d_steps * config.data.batch_size)
      draws.append({k: v.reshape(t.d_steps, config.data.batch_size, *v.shape[1:]) for k, v in flat.items()})
    return jax.tree.map(lambda *xs: np.stack(xs), *draws)

  state = _stack([m.state for m in members])
  for m in members:
    m.state = None  # The stacked state owns the arrays from here on.
  train_keys = _stack([m.train_key for m in members])
  fixed = [loop.fixed_sample_inputs(run, m.sample_key) for m in members]
  fixed_z, (_, fixed_labels, grid_columns) = _stack([z for z, _, _ in fixed]), fixed[0]  # Labels: the same for all.
  generate = jax.jit(jax.vmap(run.generate, in_axes=(0, 0, None)))

  def save_samples(step: int, lanes: list[int]) -> None:
    if not is_main:
      return
    samples = np.asarray(generate(state, fixed_z, fixed_labels))
    for lane in lanes:
      m = members[lane]
      path = m.workdir / 'samples' / f'step_{step}.png'
      if loop.write_samples(run.source, samples[lane], path, step, grid_columns):
        m.logger.image(step, 'samples', path)

  evaluate = loop.make_evaluate(run, evaluator) if evaluator else None

  def diverge(lane: int, message: str) -> None:
    m = members[lane]
    m.end('diverged', message)
    lanes.remove(lane)
    logging.warning('%s diverged: %s', m.workdir.name, message)
    if not m.config.train.restarts:  # Else train_members restarts it alone once the group is done.
      on_done(m.index, 'failed', f'diverged: {message}')

  def checkpoint(step: int, lane: int) -> bool:
    """Saves the lane's state unless it holds non-finite parameters (then the lane diverges)."""
    m, lane_state = members[lane], _lane(state, lane)
    if not loop.all_finite(lane_state):
      diverge(lane, f'non-finite parameters at step {step}; the last good checkpoint is kept '
                    f'(steps {m.checkpoints.steps()}); lower the learning rates or add a penalty')
      return False
    m.checkpoints.save(step, lane_state)
    return True

  lanes = list(range(len(members)))
  health = [loop.Health(t) for _ in members]
  if start == 0 and t.sample_every:
    save_samples(0, lanes)
  batch = batch_for_step(start)
  one_sums = steps_lib.zero_metrics(run.train_step, _lane(state, 0), steps_lib.example_batch(
      t.d_steps, config.data.batch_size, run.source.shape), train_keys[0])
  sums = jax.tree.map(lambda z: jnp.zeros((len(members), *z.shape), z.dtype), one_sums)
  started = time.perf_counter()
  iterate = iterate.lower(state, sums, batch, train_keys).compile()
  logging.info('compiled the train iteration of %d runs in %.1f s', len(members), time.perf_counter() - started)
  progress = Progress(start, t.steps)
  step, since_log = start, 0
  while step < t.steps and lanes:
    state, sums = iterate(state, sums, batch, train_keys)
    step += 1
    since_log += 1
    if stop.received is not None:
      name = signal.Signals(stop.received).name
      message = f'{name} at step {step}: checkpoint written; rerun the same command to resume'
      for lane in list(lanes):
        members[lane].step = step
        if checkpoint(step, lane):
          members[lane].end('interrupted', message)
      raise loop.Interrupted(message, stop.received)
    if step < t.steps:
      batch = batch_for_step(step)
    due = loop.Due.at(config, step, t.steps, evaluate is not None)
    if not due:
      continue
    host_sums = jax.device_get(sums)
    means = {}
    for lane in list(lanes):
      m = members[lane]
      m.step = step
      means[lane] = {k: float(v[lane]) / since_log for k, v in host_sums.items()}
      diverged = health[lane].check(means[lane], step, since_log, due.log)
      if diverged:
        diverge(lane, f'{diverged}; the last good checkpoint is kept (steps {m.checkpoints.steps()}); lower the '
                      'learning rates or add a penalty')
    if due.log and lanes:
      shown = {k: float(np.mean([means[lane][k] for lane in lanes])) for k in ('d_loss', 'g_loss')}
      steps_per_sec, line = progress.report(step, shown)
      for lane in lanes:
        members[lane].last = means[lane]
        members[lane].logger.write(step, {**means[lane], 'steps_per_sec': steps_per_sec})
      logging.info('%d runs, means: %s', len(lanes), line)
      sums = jax.tree.map(jnp.zeros_like, sums)
      since_log = 0
    if due.sample and lanes:
      save_samples(step, lanes)
    if due.checkpoint:
      for lane in list(lanes):
        checkpoint(step, lane)
    if due.eval:
      for lane in lanes:
        m = members[lane]
        m.last_eval = evaluate(_lane(state, lane), step, m.config.train.seed, m.logger)
        m.logger.write(step, m.last_eval, name='eval')
      progress.restart_clock(step)  # Evaluation time is not training throughput.
  for lane in lanes:
    members[lane].end('finished')
    on_done(members[lane].index, 'finished', '')
