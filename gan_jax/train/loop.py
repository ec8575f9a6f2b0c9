"""`train_and_evaluate(config, workdir)`: one run from config to checkpoints, logs and samples.

Run directory:
  config.json        the resolved config (a rerun on the same workdir resumes; shape changes refused)
  status.json        {'status': running|finished|diverged|failed, 'step', 'message'}
  metrics.jsonl      one JSON object per log step: step, d_loss, g_loss, ..., steps_per_sec
  samples/step_N.png fixed-noise sample grid (scatter plot for 2D data)
  checkpoints/N/     Orbax checkpoints of the whole GANState
  wandb/             W&B run files (offline mode)
"""
import dataclasses
import json
import math
import pathlib
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
from gan_jax.errors import UserError
from gan_jax.train import parallel
from gan_jax.train import state as state_lib
from gan_jax.train import steps as steps_lib
from gan_jax.train.progress import Progress

NUM_GRID_SAMPLES = 64
NUM_SCATTER_SAMPLES = 2500


class Diverged(Exception):
  """Training produced non-finite losses; the last good checkpoint is kept."""


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

  def init_state(self, rng: jax.Array) -> state_lib.GANState:
    return state_lib.init(self.g_model, self.d_model, self.g_opt, self.d_opt, self.config.model.z_dim,
                          self.source.shape, rng, ema=self.config.train.ema_decay > 0,
                          penalty_config=self.config.penalty)

  def generate(self, state: state_lib.GANState, z: jax.Array) -> jax.Array:
    """G's samples for latents z [N, z_dim] in eval mode (EMA params when enabled)."""
    params = state.ema_params if self.config.train.ema_decay > 0 else state.g.params
    out, _ = steps_lib.apply_model(self.g_model, params, state.g.batch_stats, z, train=False)
    return out


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
  models.compute_dtype(t.dtype)
  log_lib.resolve_wandb_mode(config.log.wandb)


def build_run(config, axis_name: str | None = None) -> Run:
  """Loads the data and builds models, optimizers and the pure train step (data-parallel over
  `axis_name` when set: see gan_jax.train.parallel)."""
  validate(config)
  source = data_lib.make_source(config.data)
  g_model, d_model = models.build(config.model, source.shape, config.train.dtype, axis_name)
  g_opt = state_lib.make_optimizer(config.optim.g)
  d_opt = state_lib.make_optimizer(config.optim.d)
  train_step = steps_lib.make_train_step(g_model, d_model, g_opt, d_opt, losses.get(config.loss),
                                         steps_lib.StepOptions.from_config(config, axis_name))
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


def write_status(workdir: pathlib.Path, status: str, step: int, message: str = '', **extra) -> None:
  if not parallel.is_main():
    return
  record = {'status': status, 'step': int(step), 'message': message, **extra}
  tmp = workdir / 'status.json.tmp'
  tmp.write_text(json.dumps(record, indent=2) + '\n')
  tmp.replace(workdir / 'status.json')


def train_and_evaluate(config, workdir) -> dict[str, Any]:
  """Trains (or resumes) the run described by `config` in `workdir`.

  Returns:
    {'status': 'finished', 'step': final step, 'metrics': last logged scalars}.

  Raises:
    UserError for bad input; Diverged when losses become non-finite.
  """
  run = build_run(config, parallel.AXIS)
  mesh = parallel.make_mesh(config.data.batch_size)
  is_main = parallel.is_main()
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
  write_status(workdir, 'running', start)
  on_device = config.data.on_device or not run.source.is_image
  data = parallel.replicate(run.source.arrays, mesh) if on_device else None
  iterate = parallel.make_iteration(run.train_step, run.source.draw, mesh, batch_size=config.data.batch_size,
                                    d_steps=t.d_steps, on_device=on_device)

  def batch_for_step(step: int):
    """Iteration `step`'s real batches; host draws are seeded by (seed, step) so resuming replays them."""
    if on_device:
      return data
    return parallel.host_batch(run.source, t.seed, step, config.data.batch_size, t.d_steps, mesh)

  num_fixed = NUM_GRID_SAMPLES if run.source.is_image else NUM_SCATTER_SAMPLES
  fixed_z = jax.random.normal(sample_key, (num_fixed, config.model.z_dim), jnp.float32)
  generate = jax.jit(run.generate)

  def save_samples(step: int) -> None:
    if not is_main:
      return
    samples = np.asarray(generate(parallel.local_replica(state), fixed_z))
    path = workdir / 'samples' / f'step_{step}.png'
    if run.source.is_image:
      plots.save_image_grid(samples, path)
    else:
      real = np.asarray(run.source.mixture.sample(jax.random.key(0), NUM_SCATTER_SAMPLES))
      plots.save_scatter(samples, path, real=real, modes=run.source.mixture.centers, title=f'step {step}')
    logger.image(step, 'samples', path)

  step = start
  last = {}
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
      if step < t.steps:
        batch = batch_for_step(step)
      log_now = step % t.log_every == 0 or step == t.steps
      sample_now = t.sample_every and (step % t.sample_every == 0 or step == t.steps)
      checkpoint_now = (t.checkpoint_every and step % t.checkpoint_every == 0) or step == t.steps
      if not (log_now or sample_now or checkpoint_now):
        continue
      means = {k: float(v) / since_log for k, v in jax.device_get(sums).items()}
      if not all(math.isfinite(v) for v in means.values()):
        bad = ', '.join(f'{k}={v}' for k, v in means.items() if not math.isfinite(v))
        raise Diverged(f'non-finite values between steps {step - since_log} and {step} ({bad}); the last good '
                       f'checkpoint is kept (steps {checkpoints.steps()}); lower the learning rates or add a penalty')
      if log_now:
        last = means
        steps_per_sec, line = progress.report(step, {k: last[k] for k in ('d_loss', 'g_loss')})
        logger.write(step, {**last, 'steps_per_sec': steps_per_sec})
        logging.info('%s', line)
        sums = jax.tree.map(jnp.zeros_like, sums)
        since_log = 0
      if sample_now:
        save_samples(step)
      if checkpoint_now:
        checkpoints.save(step, state)
    checkpoints.close()
    write_status(workdir, 'finished', step)
    exit_code = 0
    return {'status': 'finished', 'step': step, 'metrics': last}
  except Diverged as e:
    checkpoints.close()
    write_status(workdir, 'diverged', step, str(e))
    raise
  except BaseException as e:
    checkpoints.close()
    write_status(workdir, 'failed', step, f'{type(e).__name__}: {e}')
    raise
  finally:
    logger.close(exit_code)
