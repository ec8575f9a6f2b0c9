"""`train_and_evaluate(config, workdir)`: one run from config to checkpoints, logs and samples.

Run directory:
  config.json        the resolved config (a rerun on the same workdir resumes; shape changes refused)
  status.json        {'status': running|finished|diverged|failed, 'step', 'message'}
  metrics.jsonl      one JSON object per log step: step, d_loss, g_loss, ..., steps_per_sec
  eval.jsonl         one JSON object per evaluation: step and the config.eval.metrics results
  samples/step_N.png fixed-noise sample grid (scatter plot for 2D data; one class per row for
                     class-conditional models, the same latent down each column)
  figures/modes_N.png at each evaluation of 'modes': the evaluated 2D points and their mode histogram
  checkpoints/N/     Orbax checkpoints of the whole GANState
  wandb/             W&B run files (offline mode)
"""
import copy
import dataclasses
import json
import math
import pathlib
import signal
import threading
import time
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import logging as log_lib
from gan_jax import losses
from gan_jax import models
from gan_jax import plots
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.errors import UserError
from gan_jax.train import parallel
from gan_jax.train import state as state_lib
from gan_jax.train import steps as steps_lib
from gan_jax.train.progress import Progress

NUM_GRID_SAMPLES = 64
NUM_SCATTER_SAMPLES = 2500
CLASS_GRID_COLUMNS = 10  # Class-conditional grids: samples per class row.
EVAL_KEY_SALT = 0x45564C  # Evaluation draws come from fold_in(key(seed), salt), apart from training's.


class Diverged(Exception):
  """Training produced non-finite values or collapsed; the last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
  """SIGTERM or SIGINT stopped the run after checkpointing its last completed step.

  A KeyboardInterrupt, so sweep runners stop the sweep and record the member as interrupted.
  """

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


class StopSignals:
  """While active, SIGTERM and SIGINT only set `received` (the signal number); the loop stops cleanly.

  A second signal while one is pending raises KeyboardInterrupt at once. Handlers are installed
  only on the main thread (Python allows no others) and restored on exit.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.received: int | None = None
    self._previous = {}

  def _handle(self, signum, frame) -> None:
    del frame
    if self.received is not None:
      raise KeyboardInterrupt(f'second {signal.Signals(signum).name}: stopping without a checkpoint')
    self.received = signum
    logging.warning('%s received: finishing the current step, then checkpointing and stopping',
                    signal.Signals(signum).name)

  def __enter__(self) -> 'StopSignals':
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)


@dataclasses.dataclass
class Run:
  """The pieces of a run that do not change while it trains."""
  config: Any
  source: data_lib.Source
  g_model: Any
  d_model: Any
  g_opt: optax.GradientTransformation
  d_opt: optax.GradientTransformation
  train_step: Callable

  @property
  def conditional(self) -> bool:
    """Whether G and D take class labels."""
    return models.is_conditional(self.config.model)

  def init_state(self, rng: jax.Array) -> state_lib.GANState:
    return state_lib.init(self.g_model, self.d_model, self.g_opt, self.d_opt, self.config.model.z_dim,
                          self.source.shape, rng, ema=self.config.train.ema_decay > 0,
                          penalty_config=self.config.penalty, conditional=self.conditional)

  def generator_params(self, state: state_lib.GANState):
    """The params samples and evaluations use: the EMA of G's params when enabled."""
    return state.ema_params if self.config.train.ema_decay > 0 else state.g.params

  def generate(self, state: state_lib.GANState, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """G's samples for latents z [N, z_dim] and class labels int32 [N] in eval mode (EMA params when
    enabled). Unconditional models ignore `labels`; conditional ones need them."""
    cond = {}
    if self.conditional:
      if labels is None:
        raise UserError('this model is class-conditional: give a label per sample')
      cond = {'labels': labels}
    out, _ = steps_lib.apply_model(self.g_model, self.generator_params(state), state.g.batch_stats, z, train=False,
                                   **cond)
    return out


@dataclasses.dataclass(frozen=True)
class Due:
  """What a host loop does after completing iteration `step`: log, save samples, checkpoint, evaluate."""
  log: bool
  sample: bool
  checkpoint: bool
  eval: bool

  @classmethod
  def at(cls, config, step: int, last_step: int, evaluating: bool) -> 'Due':
    """Every train.log_every / sample_every / checkpoint_every and eval.eval_every steps (0: never),
    and at `last_step` all of them (samples only if sample_every, evaluation only if `evaluating`)."""
    t, end = config.train, step == last_step

    def every(n: int) -> bool:
      return bool(n) and step % n == 0

    return cls(log=every(t.log_every) or end, sample=bool(t.sample_every) and (every(t.sample_every) or end),
               checkpoint=every(t.checkpoint_every) or end,
               eval=evaluating and (every(config.eval.eval_every) or end))

  def __bool__(self) -> bool:
    return self.log or self.sample or self.checkpoint or self.eval


class Health:
  """The divergence checks of one run's logged windows (plain, progressive and vectorized runs alike).

  `check(means, step, since_log, logged)` returns why the run diverged, or None while it is healthy:
  a non-finite metric mean over the window of `since_log` iterations ending at `step`, or (counted
  on logged windows only) the train.collapse_patience-th consecutive log with d_loss <=
  train.collapse_d_loss (collapse_patience 0: never).
  """

  def __init__(self, train_config):
    self.patience = train_config.collapse_patience
    self.threshold = train_config.collapse_d_loss
    self.collapsed_logs = 0

  def check(self, means: dict[str, float], step: int, since_log: int, logged: bool) -> str | None:
    bad = ', '.join(f'{k}={v}' for k, v in means.items() if not math.isfinite(v))
    if bad:
      return f'non-finite values between steps {step - since_log} and {step} ({bad})'
    if logged and self.patience:
      self.collapsed_logs = self.collapsed_logs + 1 if means['d_loss'] <= self.threshold else 0
      if self.collapsed_logs >= self.patience:
        return (f'collapse: d_loss <= {self.threshold:g} at {self.collapsed_logs} consecutive logs up to step {step} '
                '(D wins outright)')
    return None


def validate(config) -> None:
  """Checks values that would otherwise fail deep inside JAX."""
  t = config.train
  for name in ('steps', 'd_steps', 'log_every'):
    if t[name] < 1:
      raise UserError(f'train.{name} must be >= 1 (got {t[name]})')
  for name in ('sample_every', 'checkpoint_every'):
    if t[name] < 0:
      raise UserError(f'train.{name} must be >= 0, 0 meaning never (got {t[name]})')
  if config.data.batch_size < 1:
    raise UserError(f'data.batch_size must be >= 1 (got {config.data.batch_size})')
  if not 0.0 <= t.ema_decay < 1.0:
    raise UserError(f'train.ema_decay must be in [0, 1) (got {t.ema_decay})')
  for player in ('g', 'd'):
    o = config.optim[player]
    if not (o.lr > 0 and 0 <= o.b1 < 1 and 0 <= o.b2 < 1):
      raise UserError(f'optim.{player}: need lr > 0 and betas in [0, 1) (got lr={o.lr}, b1={o.b1}, b2={o.b2})')
  if config.optim.decay not in state_lib.DECAYS:
    raise UserError(f'unknown optim.decay {config.optim.decay!r}; choose one of {", ".join(state_lib.DECAYS)}')
  if not 0.0 <= config.optim.decay_to <= 1.0:
    raise UserError(f'optim.decay_to is the final fraction of the learning rate, in [0, 1] '
                    f'(got {config.optim.decay_to})')
  losses.get(config.loss)
  if config.g_loss not in ('', 'feature_matching'):
    raise UserError(f"unknown g_loss {config.g_loss!r}; choose '' (the loss's own) or 'feature_matching'")
  p = config.penalty
  for name in (*state_lib.LOSS_WEIGHTS, 'clip', 'instance_noise_steps'):
    if p[name] < 0:
      raise UserError(f'penalty.{name} must be >= 0, 0 meaning off (got {p[name]})')
  gradient_penalties = [name for name in ('gp', 'r1', 'r2', 'dragan') if p[name] > 0]
  if gradient_penalties and config.model.d_norm == 'batch':
    raise UserError(f'penalty {", ".join(gradient_penalties)} needs per-example input gradients, which '
                    "BatchNorm in D mixes across the batch; set --config.model.d_norm=layer, none or spectral")
  if config.unroll.steps < 0:
    raise UserError(f'unroll.steps must be >= 0 (got {config.unroll.steps})')
  for name in ('collapse_patience', 'restarts'):
    if t[name] < 0:
      raise UserError(f'train.{name} must be >= 0, 0 meaning off (got {t[name]})')
  if not 0.0 < t.restart_lr_factor < 1.0:
    raise UserError(f'train.restart_lr_factor must be in (0, 1) (got {t.restart_lr_factor})')
  if config.model.d_cond == 'acgan' and not config.acgan.weight > 0:
    raise UserError(f"model.d_cond='acgan' needs acgan.weight > 0 (got {config.acgan.weight})")
  if config.eval.eval_every < 0:
    raise UserError(f'eval.eval_every must be >= 0, 0 meaning only at the end (got {config.eval.eval_every})')
  models.compute_dtype(t.dtype)
  log_lib.resolve_wandb_mode(config.log.wandb)


def build_run(config, axis_name: str | None = None) -> Run:
  """Loads the data and builds models, optimizers and the pure train step (data-parallel over
  `axis_name` when set: see gan_jax.train.parallel)."""
  validate(config)
  source = data_lib.make_source(config.data)
  g_model, d_model = models.build(config.model, source.shape, config.train.dtype, source.num_classes, axis_name)
  g_opt, d_opt = state_lib.make_optimizers(config)
  train_step = steps_lib.make_train_step(g_model, d_model, g_opt, d_opt, losses.get(config.loss),
                                         steps_lib.StepOptions.from_config(config, axis_name, source.num_classes))
  return Run(config, source, g_model, d_model, g_opt, d_opt, train_step)


def prepare_workdir(config, workdir: pathlib.Path) -> pathlib.Path:
  """Creates the run directory or checks that resuming into it is safe; writes config.json.

  Raises:
    UserError if the directory holds something that is not a gan_jax run, or a run whose saved
    config differs in a shape-changing key (the message names the keys).
  """
  workdir = pathlib.Path(workdir)
  current = config_lib.to_dict(config)
  config_file = workdir / 'config.json'
  if config_file.exists():
    try:
      saved = json.loads(config_file.read_text())
    except json.JSONDecodeError as e:
      raise UserError(f'{config_file} is not valid JSON ({e}); fix it or use a new --workdir') from None
    diffs = config_lib.shape_differences(saved, current)
    if diffs:
      raise UserError(f'workdir {workdir} holds a run whose config differs in keys that change shapes '
                      f'({"; ".join(diffs)}); use a new --workdir or the saved values')
  elif workdir.exists() and any(workdir.iterdir()):
    raise UserError(f'workdir {workdir} is not empty and holds no gan_jax run (no config.json); '
                    'choose a new --workdir')
  (workdir / 'samples').mkdir(parents=True, exist_ok=True)
  config_file.write_text(json.dumps(current, indent=2, sort_keys=True) + '\n')
  return workdir


def eval_key(seed: int, step: int) -> jax.Array:
  """The key of the evaluation at `step` of a run with `seed`: its draws depend only on (seed, step)."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), EVAL_KEY_SALT), step)


def make_evaluate(run: Run, evaluator: evaluator_lib.Evaluator) -> Callable[..., dict]:
  """`evaluate(state, step, seed, logger=None) -> {metric: float}` for `run`'s generator.

  The draws depend only on (seed, step), so an evaluation repeated from a checkpoint, or made for
  one run of a vectorized group, gives the same numbers as the one made during training. With a
  RunLogger, runs evaluated on 'modes' also get figures/modes_<step>.png (the evaluated points and
  their mode histogram), logged to W&B as eval/modes_figure.
  """
  generate = jax.jit(run.generate)

  def evaluate(state: state_lib.GANState, step: int, seed: int, logger: log_lib.RunLogger | None = None):
    key = eval_key(seed, step)
    results = evaluator(lambda z, labels: generate(state, z, labels), key)
    if logger is not None and logger.enabled and 'modes' in evaluator.metrics:
      path = logger.workdir / 'figures' / f'modes_{step}.png'
      try:
        path.parent.mkdir(exist_ok=True)
        evaluator.mode_figure(lambda z, labels: generate(state, z, labels), key, path, title=f'step {step}')
        logger.image(step, 'eval/modes_figure', path)
      except OSError as e:
        logging.warning('mode figure of step %d not written (%s); training continues', step, e)
    return results

  return evaluate


def write_status(workdir: pathlib.Path, status: str, step: int, message: str = '', restarts: int = 0) -> None:
  """Writes status.json atomically (process 0 only): status, step, message, and restarts if any."""
  if not parallel.is_main():
    return
  record = {'status': status, 'step': int(step), 'message': message, **({'restarts': restarts} if restarts else {})}
  tmp = workdir / 'status.json.tmp'
  tmp.write_text(json.dumps(record, indent=2) + '\n')
  tmp.replace(workdir / 'status.json')


def fixed_sample_inputs(run: Run, key: jax.Array) -> tuple[jax.Array, jax.Array | None, int | None]:
  """The fixed inputs of a run's sample grids: (z float32 [N, z_dim], labels int32 [N] or None, grid columns or None).

  Unconditional: NUM_GRID_SAMPLES latents (NUM_SCATTER_SAMPLES for 2D data). Conditional: one row
  per class, column j holding the same latent in every row.
  """
  z_dim = run.config.model.z_dim
  if not run.conditional:
    num = NUM_GRID_SAMPLES if run.source.is_image else NUM_SCATTER_SAMPLES
    return jax.random.normal(key, (num, z_dim), jnp.float32), None, None
  classes = run.source.num_classes
  labels = jnp.repeat(jnp.arange(classes, dtype=jnp.int32), CLASS_GRID_COLUMNS)
  column_z = jax.random.normal(key, (CLASS_GRID_COLUMNS, z_dim), jnp.float32)
  return jnp.tile(column_z, (classes, 1)), labels, CLASS_GRID_COLUMNS


def write_samples(source: data_lib.Source, samples: np.ndarray, path: pathlib.Path, step: int,
                  columns: int | None = None) -> bool:
  """Writes G's samples [N, *source.shape] to `path` (PNG): an image grid (`columns` wide, None:
  square), or for 2D data a scatter plot over real points and the mixture's modes. Returns False
  (with a warning) if the disk failed: a full disk loses the picture, not the run."""
  try:
    if source.is_image:
      plots.save_image_grid(samples, path, columns)
    else:
      real = np.asarray(source.mixture.sample(jax.random.key(0), NUM_SCATTER_SAMPLES))
      plots.save_scatter(samples, path, real=real, modes=source.mixture.centers, title=f'step {step}')
  except OSError as e:
    logging.warning('sample grid of step %d not written (%s); training continues', step, e)
    return False
  return True


def train_and_evaluate(config, workdir, restarts: int = 0) -> dict[str, Any]:
  """Trains (or resumes) the run described by `config` in `workdir`.

  On divergence, restarts up to `train.restarts` times from the last good checkpoint (or from
  scratch if there is none) with every learning rate multiplied by `train.restart_lr_factor`
  (lowered_learning_rates); config.json then records the lowered rates and status.json the restart
  count. `restarts`: those already made before this call (a run that diverged in a vectorized group
  continues here, its config already lowered).

  Returns:
    {'status': 'finished', 'step': final step, 'metrics': last logged scalars,
     'eval': last evaluation results ({} without config.eval.metrics), 'restarts': restarts used}.

  Raises:
    UserError for bad input; Diverged when training diverges or collapses with no restart left;
    Interrupted after SIGTERM/SIGINT (a checkpoint of the last completed step is written first).
  """
  if 'progressive' in config:  # A growth schedule: gan_jax.train.progressive runs each attempt.
    from gan_jax.train import progressive
    train_once = progressive.train_once
  else:
    train_once = _train_once
  while True:
    try:
      with StopSignals() as stop:
        return {**train_once(config, pathlib.Path(workdir), stop, restarts), 'restarts': restarts}
    except Diverged as e:
      if restarts == config.train.restarts:
        raise
      restarts += 1
      config = lowered_learning_rates(config)
      logging.warning('%s; restart %d of %d from the last good checkpoint with the learning rates multiplied by '
                      '%.3g (G %.3g, D %.3g)', e, restarts, config.train.restarts, config.train.restart_lr_factor,
                      config.optim.g.lr, config.optim.d.lr)


def lowered_learning_rates(config):
  """A copy of `config` with every learning rate multiplied by train.restart_lr_factor: both
  players', and a progressive schedule's per-resolution ones."""
  config = copy.deepcopy(config)
  factor = config.train.restart_lr_factor
  for player in ('g', 'd'):
    config.optim[player].lr *= factor
  if 'progressive' in config:
    for name in ('g_lr', 'd_lr'):
      rates = config.progressive[name]
      config.progressive[name] = type(rates)(lr * factor for lr in rates)
  return config


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def all_finite(tree) -> bool:
  """Whether every leaf of `tree` is free of NaN and Inf (compiled once per tree structure)."""
  return bool(_all_finite(tree))


def _train_once(config, workdir: pathlib.Path, stop: StopSignals, restarts: int) -> dict[str, Any]:
  """One attempt of train_and_evaluate (see there); `stop` carries a pending SIGTERM/SIGINT."""
  run = build_run(config, parallel.AXIS)
  mesh = parallel.make_mesh(config.data.batch_size)
  is_main = parallel.is_main()
  # Built before the workdir is touched: unknown metrics or missing classifier files fail first.
  evaluator = evaluator_lib.Evaluator(config, run.source) if config.eval.metrics and is_main else None
  workdir = prepare_workdir(config, workdir) if is_main else pathlib.Path(workdir)
  parallel.sync('workdir prepared')
  t = config.train

  key = jax.random.key(t.seed)
  init_key, sample_key, train_key = jax.random.split(key, 3)
  state = parallel.replicate(run.init_state(init_key), mesh)
  train_key = parallel.replicate(train_key, mesh)
  checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints', t.keep_checkpoints)
  restored = checkpoints.restore_latest(state)
  if restored is not None:
    state = parallel.replicate(state_lib.with_hyperparams(restored, config), mesh)
    logging.info('resumed from checkpoint at step %d in %s', int(state.step), workdir)
  start = int(state.step)

  logger = log_lib.RunLogger(workdir, config_lib.to_dict(config), config.log, enabled=is_main)
  write_status(workdir, 'running', start, restarts=restarts)
  on_device = config.data.on_device or not run.source.is_image
  data = parallel.replicate(run.source.arrays, mesh) if on_device else None
  iterate = parallel.make_iteration(run.train_step, run.source.draw, mesh, batch_size=config.data.batch_size,
                                    d_steps=t.d_steps, on_device=on_device)

  def batch_for_step(step: int):
    """Iteration `step`'s real batches; host draws are seeded by (seed, step) so resuming replays them."""
    if on_device:
      return data
    return parallel.host_batch(run.source, t.seed, step, config.data.batch_size, t.d_steps, mesh)

  fixed_z, fixed_labels, grid_columns = fixed_sample_inputs(run, sample_key)
  generate = jax.jit(run.generate)

  def save_samples(step: int) -> None:
    if not is_main:
      return
    path = workdir / 'samples' / f'step_{step}.png'
    samples = np.asarray(generate(parallel.local_replica(state), fixed_z, fixed_labels))
    if not write_samples(run.source, samples, path, step, grid_columns):
      return
    logger.image(step, 'samples', path)

  def save_checkpoint(step: int) -> None:
    """Checkpoints `state` unless a parameter is non-finite (then the run has diverged)."""
    if not all_finite(state):
      raise Diverged(f'non-finite parameters at step {step}; the last good checkpoint is kept '
                     f'(steps {checkpoints.steps()}); lower the learning rates or add a penalty')
    checkpoints.save(step, state)

  health = Health(t)

  evaluate = make_evaluate(run, evaluator) if evaluator else None

  def evaluate_and_log(step: int) -> dict[str, float]:
    started = time.perf_counter()
    results = evaluate(parallel.local_replica(state), step, t.seed, logger)
    logger.write(step, results, name='eval')
    logging.info('eval at step %d (%.1f s): %s', step, time.perf_counter() - started,
                 ' '.join(f'{k} {v:.4g}' for k, v in results.items()))
    return results

  step = start
  last = {}
  last_eval = {}
  progress = Progress(start, t.steps)
  exit_code = 1
  try:
    if start == 0 and t.sample_every:
      save_samples(0)
    batch = batch_for_step(step)
    sums = parallel.zero_metrics(run.train_step, state, run.source.shape, t.d_steps, config.data.batch_size,
                                 train_key, mesh)
    started = time.perf_counter()
    iterate = iterate.lower(state, sums, batch, train_key).compile()
    logging.info('compiled the train iteration in %.1f s', time.perf_counter() - started)
    progress.restart_clock(step)
    since_log = 0
    while step < t.steps:
      state, sums = iterate(state, sums, batch, train_key)
      step += 1
      since_log += 1
      if stop.received is not None:
        save_checkpoint(step)
        checkpoints.close()
        name = signal.Signals(stop.received).name
        message = f'{name} at step {step}: checkpoint written; rerun the same command to resume'
        write_status(workdir, 'interrupted', step, message, restarts=restarts)
        raise Interrupted(message, stop.received)
      if step < t.steps:
        batch = batch_for_step(step)
      due = Due.at(config, step, t.steps, evaluate is not None)
      if not due:
        continue
      means = {k: float(v) / since_log for k, v in jax.device_get(sums).items()}
      diverged = health.check(means, step, since_log, due.log)
      if diverged:
        raise Diverged(f'{diverged}; the last good checkpoint is kept (steps {checkpoints.steps()}); lower the '
                       'learning rates or add a penalty')
      if due.log:
        last = means
        steps_per_sec, line = progress.report(step, {**{k: last[k] for k in ('d_loss', 'g_loss')}, **last_eval})
        logger.write(step, {**last, 'steps_per_sec': steps_per_sec})
        logging.info('%s', line)
        sums = jax.tree.map(jnp.zeros_like, sums)
        since_log = 0
      if due.sample:
        save_samples(step)
      if due.checkpoint:
        save_checkpoint(step)
      if due.eval:
        last_eval = evaluate_and_log(step)
        progress.restart_clock(step)  # Evaluation time is not training throughput.
    checkpoints.close()
    write_status(workdir, 'finished', step, restarts=restarts)
    exit_code = 0
    return {'status': 'finished', 'step': step, 'metrics': last, 'eval': last_eval}
  except Diverged as e:
    checkpoints.close()
    write_status(workdir, 'diverged', step, str(e), restarts=restarts)
    raise
  except Interrupted:
    raise
  except BaseException as e:
    checkpoints.close()
    write_status(workdir, 'failed', step, f'{type(e).__name__}: {e}')
    raise
  finally:
    logger.close(exit_code)
