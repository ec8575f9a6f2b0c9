"""The one host loop: `train(configs, workdirs)` for every family, device count and runner.

    run      = build_run(config)                      data, schedule (phases), optimizers, models per phase
    lock     = each run directory's one-writer lock    held by process 0 until the run ends (workdir_lock.py)
    lanes    = one Lane per run                        workdir, logger, checkpoints, health, status
    layout   = where the lanes execute                 one device, data parallel, or runs over devices
    for each phase of the schedule:                    a plain run has one; ProGAN one per fade-in/stable period
      program = Program(run, phase, layout)           compiled once per (resolution, batch), cached
      set the phase's learning rates in the state
      for each iteration: program(state, sums, data, fade, keys)
        at log / sample / checkpoint / eval steps: each live lane logs its means, checks its
        health (a diverged lane stops logging and checkpointing; the others go on), writes its
        samples, checkpoints its own state, is evaluated with its own seed's draws
    a lane that diverged with train.restarts left continues alone, from its last good checkpoint
    with its learning rates lowered, through this same function

`train_and_evaluate(config, workdir)` is the single-run case (a group of one). Lanes of a group
must share a program (program.group_by_program); lanes that resume from different steps are
trained as separate groups, each exactly as it would continue alone.

SIGTERM / SIGINT / SIGUSR2 (gan_jax/stop_signals.py): the iteration in flight finishes, every live lane is
checkpointed at that step and marked interrupted, and Interrupted is raised. Rerunning resumes bit-identically.
"""
import contextlib
import pathlib
import signal
import time
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config_checks
from gan_jax import distributed
from gan_jax import run_dir
from gan_jax import workdir_lock
from gan_jax.errors import UserError
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.train import parallel
from gan_jax.train import program as program_lib
from gan_jax.train import run as run_lib
from gan_jax.train import schedule as schedule_lib
from gan_jax.train import state as state_lib
from gan_jax.sample_grids import fixed_sample_inputs, grid_images, write_audio, write_row_captions, write_samples
from gan_jax.stop_signals import Interrupted, StopSignals
from gan_jax.train.lanes import Due, Lane
from gan_jax.train.progress import Progress

# on_done(position of the run in train's arguments, 'finished' | 'failed', '' or 'diverged: <message>').
OnDone = Callable[[int, str, str], None]


class Diverged(Exception):
  """Training produced non-finite values or collapsed; the last good checkpoint is kept."""


def train_and_evaluate(config, workdir, restarts: int = 0) -> dict[str, Any]:
  """Trains (or resumes) the run described by `config` in `workdir`: `train` of one run.

  Returns:
    {'status': 'finished', 'step', 'metrics': last logged scalars, 'eval': last evaluation results,
     'restarts', 'images_seen', 'compilations', 'message'}.

  Raises:
    UserError for bad input; Diverged when training diverges or collapses with no restart left;
    Interrupted after SIGTERM/SIGINT (a checkpoint of the last completed step is written first).
  """
  result = train([config], [workdir], restarts=restarts)[0]
  if result['status'] == 'diverged':
    raise Diverged(result['message'])
  return result


def train(configs: list, workdirs: list, on_done: OnDone | None = None, restarts: int = 0) -> list[dict[str, Any]]:
  """Trains (or resumes) runs that share a program (one run, or a vectorized group) as lanes of it.

  On divergence (non-finite values, or collapse by train.collapse_patience) a lane stops with its
  last good checkpoint kept; with train.restarts left it then continues alone from that checkpoint
  with every learning rate multiplied by train.restart_lr_factor (config.json records the lowered
  rates and status.json the restart count). `restarts`: those made before this call.

  Args:
    configs: the runs' configs, equal except in program.VECTORIZED_KEYS.
    workdirs: each run's directory.
    on_done: called as each run ends for good.

  Returns:
    Per run: Lane.result() ('status' finished or diverged, 'step', 'metrics', 'eval', 'message', ...).

  Raises:
    UserError for bad input (before any workdir is touched) or configs that do not share a program;
    workdir_lock.InUse (a UserError) when another process trains one of the workdirs; Interrupted
    after SIGTERM/SIGINT; whatever training raises (live runs are then marked failed).
  """
  if len({program_lib.program_key(c) for c in configs}) != 1:
    raise UserError('runs trained as one program must differ only in '
                    f'{", ".join(program_lib.VECTORIZED_KEYS)} (and in no penalty being switched on or off)')
  for c in configs[1:]:
    config_checks.validate(c)
  run = run_lib.build_run(configs[0])
  # Built before any workdir is touched: unknown metrics or missing classifier files fail first.
  evaluating = configs[0].eval.metrics and distributed.is_main()
  evaluator = evaluator_lib.Evaluator(configs[0], run.source) if evaluating else None
  with contextlib.ExitStack() as locks:
    try:
      if distributed.is_main():  # One writer per run directory; the other processes never write it.
        for config, workdir in zip(configs, workdirs):
          run_dir.check(config, workdir)  # Read-only: a refused run leaves no lock file behind.
          locks.enter_context(workdir_lock.hold(workdir))
    except UserError:
      distributed.agree(False)
      raise
    distributed.agree(True)
    return _train_locked(run, evaluator, configs, workdirs, on_done, restarts)


def _train_locked(run: run_lib.Run, evaluator, configs: list, workdirs: list, on_done: OnDone | None,
                  restarts: int) -> list[dict[str, Any]]:
  """`train` once process 0 holds the workdirs' locks."""
  lanes = [Lane.open(c, pathlib.Path(w), restarts) for c, w in zip(configs, workdirs)]
  distributed.sync('workdirs prepared')
  on_done = on_done or (lambda *_: None)
  try:
    # One compiled program: run eagerly, every parameter shape's initializer compiles on its own
    # (twice the cold launch time of a DCGAN).
    if len(lanes) == 1:
      states = [lanes[0].restore(jax.jit(run.init_state)(lanes[0].init_key))]
    else:
      fresh = jax.jit(jax.vmap(run.init_state))(program_lib.stack([lane.init_key for lane in lanes]))
      states = [lane.restore(jax.tree.map(lambda x: x[i], fresh)) for i, lane in enumerate(lanes)]
    starts = sorted({lane.step for lane in lanes})
    for start in starts:
      part = [i for i, lane in enumerate(lanes) if lane.step == start]
      if len(starts) > 1:
        logging.info('%d run(s) resume from step %d', len(part), start)
      with StopSignals() as stop:
        _train_lanes(run, [lanes[i] for i in part], [states[i] for i in part], evaluator, stop)
  except BaseException as e:
    for lane in lanes:
      if lane.live:
        lane.end('failed', f'{type(e).__name__}: {e}')
    raise
  results = []
  for position, lane in enumerate(lanes):
    result = lane.result()
    if lane.status == 'diverged' and lane.restarts < lane.config.train.restarts:
      lowered = schedule_lib.scaled_learning_rates(lane.config, lane.config.train.restart_lr_factor)
      logging.warning('%s: %s; restart %d of %d from the last good checkpoint with the learning rates multiplied '
                      'by %.3g (G %.3g, D %.3g)', lane.workdir.name, lane.message, lane.restarts + 1,
                      lane.config.train.restarts, lane.config.train.restart_lr_factor, lowered.optim.g.lr,
                      lowered.optim.d.lr)
      result = train([lowered], [lane.workdir], restarts=lane.restarts + 1)[0]
    on_done(position, 'finished' if result['status'] == 'finished' else 'failed',
            '' if result['status'] == 'finished' else f'diverged: {result["message"]}')
    results.append(result)
  return results


def _train_lanes(run: run_lib.Run, lanes: list[Lane], states: list, evaluator, stop: StopSignals) -> None:
  """Trains `lanes`, all at the same step, through the rest of the schedule as one program."""
  config, phases = run.config, run.phases
  layout = program_lib.Layout.make(len(lanes), [p.batch.batch_size for p in phases])
  single = len(lanes) == 1
  start, total = lanes[0].step, phases[-1].end_step
  logging.info('training %s from step %d to %d on %s; %s', 'one run' if single else f'{len(lanes)} runs', start,
               total, layout.describe(schedule_lib.phase_at(phases, start).batch.batch_size), config.train.dtype)
  on_device = config.data.on_device or not run.source.is_image
  data = layout.put_shared(run.train_source.arrays) if on_device else None
  state = layout.put_runs(states[0] if single else program_lib.stack(states))
  keys = layout.put_runs(lanes[0].train_key if single else program_lib.stack([lane.train_key for lane in lanes]))
  seeds = [lane.seed for lane in lanes]
  for lane in lanes:
    lane.start()
  samples_in = [fixed_sample_inputs(run.source, config.model.z_dim, run.conditional, lane.sample_key, config.data)
                for lane in lanes]
  if distributed.is_main():
    for lane, inputs in zip(lanes, samples_in):
      write_row_captions(inputs, lane.workdir / 'samples')
  samplers = {}

  def sample_fn(step: int) -> Callable:
    """`generate(lane state, z, labels)` as the run is at iteration `step` (a progressive run's stage and alpha)."""
    phase = schedule_lib.phase_at(phases, step)
    if phase.resolution not in samplers:
      samplers[phase.resolution] = run.sampler(phase)
    sampler, alpha = samplers[phase.resolution], phase.alpha(step)
    return lambda lane_state, z, labels: sampler(lane_state, z, labels, alpha)

  def live() -> list[int]:
    return [i for i, lane in enumerate(lanes) if lane.live]

  def line_prefix(phase) -> str:
    return (f'{phase.name} | ' if len(phases) > 1 else '') + ('' if single else f'{len(live())} runs, means: ')

  def lane_state(i: int):
    return layout.lane(state, i)

  def checkpoint(i: int, step: int) -> bool:
    """Saves lane i's state unless it holds non-finite parameters (then the lane diverges)."""
    lane, own = lanes[i], lane_state(i)
    if not all_finite(own):
      diverge(i, f'non-finite parameters at step {step}')
      return False
    lane.checkpoints.save(step, own)
    return True

  def diverge(i: int, why: str) -> None:
    lane = lanes[i]
    message = (f'{why}; the last good checkpoint is kept (steps {lane.checkpoints.steps()}); lower the learning '
               'rates or add a penalty')
    logging.warning('%s diverged: %s', lane.workdir.name, message)
    lane.end('diverged', message)

  def save_samples(step: int) -> None:
    if not distributed.is_main():
      return
    generate = sample_fn(step)
    for i in live():
      inputs = samples_in[i]
      path = lanes[i].workdir / 'samples' / f'step_{step}.png'
      samples = grid_images(inputs, np.asarray(generate(layout.local(lane_state(i)), inputs.z, inputs.labels)),
                            run.source.unpaired)
      if write_samples(run.source, samples, path, step, inputs.columns):
        lanes[i].logger.media(step, 'samples', path)
      if write_audio(run.source, samples, path.with_suffix('.wav'), inputs.columns):
        lanes[i].logger.media(step, 'audio', path.with_suffix('.wav'))

  def evaluate_lanes(step: int, train_seconds: float) -> None:
    """Evaluates the live lanes at `step`; `train_seconds`: the group's training time until now."""
    generate = sample_fn(step)
    for i in live():
      lane, started = lanes[i], time.perf_counter()
      own = layout.local(lane_state(i))
      lane.last_eval = evaluator.at(lambda z, labels: generate(own, z, labels), lane.seed, step, lane.logger)
      lane.logger.write(step, {**lane.last_eval, **schedule_lib.progress_at(phases, step),
                               'train_seconds': lane.train_seconds + train_seconds}, name='eval')
      logging.info('%seval at step %d (%.1f s): %s', '' if single else f'{lane.workdir.name}: ', step,
                   time.perf_counter() - started, ' '.join(f'{k} {v:.4g}' for k, v in lane.last_eval.items()))

  step = start
  if start == 0 and config.train.sample_every:
    save_samples(0)
  programs: dict[tuple, program_lib.Program] = {}
  progress = Progress(start, total)
  for phase in phases:
    if step >= phase.end_step or not live():
      continue
    state = layout.put_runs(_with_phase_learning_rates(state, lanes, phase, single))
    if phase.program_key not in programs:
      programs[phase.program_key] = program_lib.Program(run, phase, layout, on_device)
    program = programs[phase.program_key]
    sums, fade = program.zero_sums(), layout.put_shared(phase.fade)
    if len(phases) > 1:
      logging.info('phase %s from step %d: %d steps, batch %d', phase.name, step, phase.end_step - step,
                   phase.batch.batch_size)
    batch = data if on_device else layout.host_batch(run.train_source, seeds, step, phase.batch)
    since_log = 0
    first = True
    while step < phase.end_step and live():
      state, sums = program(state, sums, batch, fade, keys)
      step += 1
      since_log += 1
      if first:  # Compilation is not training throughput.
        jax.block_until_ready(sums)
        progress.compiled(step)
        first = False
      signum = stop.stop_at(step)
      if signum:
        _set_step(lanes, step)
        message = (f'{signal.Signals(signum).name} at step {step}: checkpoint written; rerun the same '
                   'command to resume')
        for i in live():
          if checkpoint(i, step):
            lanes[i].end('interrupted', message)
        raise Interrupted(message, signum)
      if step < phase.end_step and not on_device:
        batch = layout.host_batch(run.train_source, seeds, step, phase.batch)
      due = Due.at(config, step, total, evaluator is not None, phase_end=step == phase.end_step)
      if not due:
        if progress.line_due():  # Between log steps: a line by time, so a slow run never looks hung.
          window = jax.device_get(sums)
          shown = {k: float(np.mean([window[k] if single else window[k][i] for i in live()])) / since_log
                   for k in ('d_loss', 'g_loss')}
          logging.info('%s%s', line_prefix(phase), progress.report(step, shown)[1])
        continue
      _set_step(lanes, step)
      host_sums = jax.device_get(sums)
      means = {}
      for i in live():
        means[i] = {k: float(v if single else v[i]) / since_log for k, v in host_sums.items()}
        diverged = lanes[i].health.check(means[i], step, since_log, due.log)
        if diverged:
          diverge(i, diverged)
      if due.log and live():
        shown = {k: float(np.mean([means[i][k] for i in live()])) for k in ('d_loss', 'g_loss')}
        if single:
          shown.update(lanes[0].last_eval)
        steps_per_sec, line = progress.report(step, shown)
        for i in live():
          lanes[i].last = means[i]
          lanes[i].logger.write(step, {**means[i], **schedule_lib.progress_at(phases, step),
                                       'steps_per_sec': steps_per_sec,
                                       'train_seconds': lanes[i].train_seconds + progress.training_seconds})
        logging.info('%s%s', line_prefix(phase), line)
        sums, since_log = program.zero_sums(), 0
      if due.sample and live():
        save_samples(step)
      if due.checkpoint:
        for i in live():
          checkpoint(i, step)
      if due.eval and live():
        evaluating = time.perf_counter()
        evaluate_lanes(step, progress.training_seconds)
        progress.exclude(time.perf_counter() - evaluating)  # Evaluation is not training time,
        progress.restart_clock(step)                         # nor throughput.
  parallel.check_replicas(state)
  _set_step(lanes, step)
  for lane in lanes:
    lane.compilations = len(programs)
    lane.images_seen = schedule_lib.progress_at(phases, lane.step).get('images_seen', lane.step * phases[0].batch.size)
    if lane.live:
      lane.end('finished')


def _set_step(lanes: list[Lane], step: int) -> None:
  """Records `step` as the last completed iteration of the live lanes (at log/checkpoint steps and
  when stopping, not in the per-iteration hot path)."""
  for lane in lanes:
    if lane.live:
      lane.step = step


def _with_phase_learning_rates(state, lanes: list[Lane], phase, single: bool):
  """The state with each lane's learning rates of `phase` (its own schedule's, which may differ)."""
  rates = [(p.g_lr, p.d_lr) for p in (schedule_lib.phase_at(schedule_lib.phases(lane.config), phase.start_step)
                                       for lane in lanes)]
  g, d = (rates[0] if single else (np.array([r[0] for r in rates]), np.array([r[1] for r in rates])))
  return state_lib.with_learning_rates(state, g, d)


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def all_finite(tree) -> bool:
  """Whether every leaf of `tree` is free of NaN and Inf (compiled once per tree structure)."""
  return bool(_all_finite(tree))
