"""Progressive growing (ProGAN): `train_once(config, workdir, stop, restarts)` over a growth schedule.

gan_jax.train.loop.train_and_evaluate runs it for any config with a `progressive` group, restarts
after divergence included.

The schedule is data, `config.progressive` (see experiments/progan.py):
  resolutions        stage resolutions, consecutive doublings from 4 or later, e.g. (4, 8, 16, 32);
                     a single entry such as (32,) is the non-progressive baseline
  stable_images      real images shown to D in each resolution's stable phase
  transition_images  images of the fade-in into each resolution (the first entry is unused; 0 =
                     the new stage starts at full weight)
  batch_sizes        batch size per resolution (() = data.batch_size)
  g_lr, d_lr         Adam learning rate per resolution (() = optim.g.lr / optim.d.lr)
A per-resolution tuple of one value applies to every resolution. Phases run in order: for each
resolution a transition phase (alpha ramped linearly from 0 to 1 over its iterations; none for
the first resolution) then a stable phase. An iteration shows D `batch_size * train.d_steps` real
images, so a phase of N images lasts ceil(N / that) iterations. `train.steps` caps the total.

One pytree for all stages (gan_jax.models.progan): the networks are initialised once at the
final resolution and a stage's forward pass uses only the blocks up to its resolution, so the
GANState (params, Adam state, EMA) keeps its shapes across stages and checkpoints have one shape.
At each phase start only the learning rates in the state change (they live in the optimizer
state, `optax.inject_hyperparams`).

Compilation: one jitted iteration per phase (its stage, fade flag and batch size are Python
constants); alpha is computed inside the program from the traced `state.step`, so a transition
phase compiles once and never per step. The iteration draws full-resolution real batches on the
device, average-pools them to the stage's resolution and, during a fade-in, blends them with
their 2x-coarser version upsampled (the paper's real-image interpolation), then runs the shared
train step (gan_jax.train.steps) on the stage's modules.

Data: images are brought to the final resolution once: padded with -1 to a multiple of it (MNIST
28 -> 32, 2 pixels per side), then average-pooled to it (fit_images).

Evaluation: generated images at the stage's resolution are upsampled (nearest) to the padded
resolution, cropped back to the data's own size (32 -> 28 for MNIST) and clipped to [-1, 1]
before the metrics, so the domain classifiers see 28x28 images and early low-resolution stages
are judged as the blurry 28x28 images they produce. eval.jsonl and metrics.jsonl also record
`images_seen` (real images shown to D so far), `resolution` and `alpha`; gan_jax.report plots
against images seen when present.

Divergence (non-finite losses or parameters, or a collapse by train.collapse_patience) stops the
attempt with the last good checkpoint kept; with `train.restarts`, loop.train_and_evaluate resumes
from it with every learning rate of the schedule lowered (loop.lowered_learning_rates). Not
supported here: BatchNorm, feature matching, host-side data.
"""
import dataclasses
import math
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
from gan_jax import data as data_lib
from gan_jax import logging as log_lib
from gan_jax import losses
from gan_jax import models
from gan_jax import plots
from gan_jax.errors import UserError
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.models import progan
from gan_jax.train import loop
from gan_jax.train import state as state_lib
from gan_jax.train import steps as steps_lib
from gan_jax.train.progress import Progress

PER_RESOLUTION = ('stable_images', 'transition_images', 'batch_sizes', 'g_lr', 'd_lr')


def schedule_config(**values) -> config_lib.ConfigDict:
  """The `config.progressive` group with its defaults (a 4 -> 32 schedule); `values` override them."""
  c = config_lib.ConfigDict(dict(
      resolutions=(4, 8, 16, 32),
      stable_images=(60_000,),
      transition_images=(60_000,),
      batch_sizes=(),
      g_lr=(),
      d_lr=(),
  ))
  c.update(values)
  return c


@dataclasses.dataclass(frozen=True)
class Phase:
  """One phase of the schedule: a resolution's fade-in or its stable phase.

  Attributes:
    resolution: the stage's image side; stage = log2(resolution / 4).
    fading: a transition phase (alpha ramps from 0 to 1 over it).
    start_step: the global iteration (state.step) the phase begins at.
    num_steps: its iterations.
    batch_size: real (and fake) examples per D update.
    images_per_step: real images D sees per iteration (batch_size * d_steps).
    start_images: images seen before the phase.
    g_lr, d_lr: Adam learning rates during the phase.
  """
  resolution: int
  fading: bool
  start_step: int
  num_steps: int
  batch_size: int
  images_per_step: int
  start_images: int
  g_lr: float
  d_lr: float

  @property
  def stage(self) -> int:
    return progan.num_stages(self.resolution) - 1

  @property
  def end_step(self) -> int:
    return self.start_step + self.num_steps

  @property
  def name(self) -> str:
    return f'{self.resolution}x{self.resolution} {"fade-in" if self.fading else "stable"}'

  @property
  def fade(self) -> np.ndarray:
    """float32 [2]: (first step, steps) of the fade-in, the traced input of `ramp`; (0, 0) when stable."""
    return np.array([self.start_step, self.num_steps] if self.fading else [0, 0], np.float32)

  def alpha(self, step: int) -> float:
    """The fade-in weight at iteration `step` (1 in a stable phase)."""
    return float(ramp(step, self.fade))

  def images_seen(self, step: int) -> int:
    return self.start_images + (step - self.start_step) * self.images_per_step


def ramp(step, fade):
  """alpha at iteration `step` of a fade-in over `fade` = (start, steps): (step - start) / steps in
  [0, 1]; 1 when steps is 0 (stable). Traceable: a program compiled once serves every step and phase."""
  fade = jnp.asarray(fade, jnp.float32)
  ramped = jnp.clip((jnp.asarray(step, jnp.float32) - fade[0]) / jnp.maximum(fade[1], 1.0), 0.0, 1.0)
  return jnp.where(fade[1] > 0, ramped, 1.0)


def _per_resolution(p, name: str, count: int, default) -> list:
  values = list(p[name]) if len(p[name]) else [default]
  if len(values) == 1:
    values *= count
  if len(values) != count:
    raise UserError(f'progressive.{name} has {len(values)} values for {count} resolutions {tuple(p.resolutions)}; '
                    'give one value per resolution, or one for all')
  return values


def make_schedule(config) -> list[Phase]:
  """The phases of `config.progressive`, cut at `train.steps` iterations.

  Raises:
    UserError for resolutions that are not consecutive doublings of 4 * 2**k, tuples of the wrong
    length, negative image counts, batch sizes that minibatch stddev cannot group, an empty schedule.
  """
  p = config.progressive
  resolutions = [int(r) for r in p.resolutions]
  if not resolutions:
    raise UserError('progressive.resolutions is empty; give e.g. (4, 8, 16, 32)')
  for r in resolutions:
    progan.num_stages(r)
  if any(b != 2 * a for a, b in zip(resolutions, resolutions[1:])):
    raise UserError(f'progressive.resolutions must double at each stage (e.g. (4, 8, 16, 32)); got {tuple(resolutions)}')
  n = len(resolutions)
  stable = _per_resolution(p, 'stable_images', n, None)
  transition = _per_resolution(p, 'transition_images', n, None)
  batches = _per_resolution(p, 'batch_sizes', n, config.data.batch_size)
  g_lrs = _per_resolution(p, 'g_lr', n, config.optim.g.lr)
  d_lrs = _per_resolution(p, 'd_lr', n, config.optim.d.lr)
  group = progan.MINIBATCH_GROUP if config.model.d_minibatch == 'stddev' else 1
  for r, images, fade, batch, g_lr, d_lr in zip(resolutions, stable, transition, batches, g_lrs, d_lrs):
    if images < 0 or fade < 0:
      raise UserError(f'progressive: image counts must be >= 0 (resolution {r}: stable {images}, transition {fade})')
    if batch < 1 or batch % min(group, batch):
      raise UserError(f'progressive.batch_sizes: {batch} at resolution {r} must be >= 1 and a multiple of the '
                      f'minibatch-stddev group {group} (or smaller than it)')
    if not (g_lr > 0 and d_lr > 0):
      raise UserError(f'progressive learning rates must be > 0 (resolution {r}: g {g_lr}, d {d_lr})')
  phases, step, images = [], 0, 0
  for i, r in enumerate(resolutions):
    per_step = batches[i] * config.train.d_steps
    for fading, count in ((True, transition[i] if i else 0), (False, stable[i])):
      num_steps = min(math.ceil(count / per_step), config.train.steps - step)
      if num_steps <= 0:
        continue
      phases.append(Phase(r, fading, step, num_steps, batches[i], per_step, images, g_lrs[i], d_lrs[i]))
      step += num_steps
      images += num_steps * per_step
  if not phases:
    raise UserError('the progressive schedule has no iterations; set progressive.stable_images > 0')
  return phases


def phase_at(phases: list[Phase], step: int) -> Phase:
  """The phase iteration `step` runs in (the last phase for the step after the schedule's end)."""
  return next((p for p in phases if p.start_step <= step < p.end_step), phases[-1])


def progress_at(phases: list[Phase], step: int) -> dict[str, float]:
  """Where iteration `step` stands in the schedule: images_seen, resolution and alpha (logged with
  every metrics and eval record)."""
  phase = phase_at(phases, step)
  return {'images_seen': phase.images_seen(min(step, phase.end_step)), 'resolution': phase.resolution,
          'alpha': phase.alpha(step)}


def padded_side(side: int, final: int) -> int:
  """The side images are padded to before pooling to `final`: the smallest multiple of it >= side."""
  return -(-side // final) * final


def fit_images(images: np.ndarray, final: int) -> np.ndarray:
  """uint8 [N, H, H, C] -> [N, final, final, C]: zero-padded (-1 in the model range) to
  padded_side(H, final), then average-pooled to `final` (MNIST 28 -> 32 -> final)."""
  side = images.shape[1]
  padded = padded_side(side, final)
  if (padded - side) % 2:
    raise UserError(f'images of side {side} cannot be padded evenly to {padded} for the final resolution {final}; '
                    'choose progressive.resolutions ending at another resolution')
  pad = (padded - side) // 2
  images = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  factor = padded // final
  if factor == 1:
    return images
  pooled = images.reshape(images.shape[0], final, factor, final, factor, -1).astype(np.float32).mean(axis=(2, 4))
  return np.round(pooled).astype(np.uint8)


def real_at(images: jax.Array, resolution: int, alpha=None) -> jax.Array:
  """Full-resolution real images [..., F, F, C] as a stage sees them: average-pooled to `resolution`
  and, with `alpha`, blended with their 2x-coarser version upsampled (exactly the pooled images at alpha 1)."""
  x = progan.downsample(images, images.shape[-2] // resolution)
  if alpha is not None:
    x = progan._blend(progan.upsample(progan.downsample(x)), x, alpha)
  return x


def view_at(images: jax.Array, side: int, padded: int) -> jax.Array:
  """Stage-resolution samples [B, r, r, C] -> [B, side, side, C] in [-1, 1]: upsampled (nearest) to the
  `padded` side of fit_images, then centre-cropped to `side` (undoing its padding)."""
  x = progan.upsample(images, padded // images.shape[1])
  start = (padded - side) // 2
  return jnp.clip(x[:, start:start + side, start:start + side], -1.0, 1.0)


def _with_learning_rates(state: state_lib.GANState, g_lr: float, d_lr: float) -> state_lib.GANState:
  def player_with(player: state_lib.Player, lr: float) -> state_lib.Player:
    hyperparams = dict(player.opt_state.hyperparams)
    hyperparams['learning_rate'] = jnp.asarray(lr, hyperparams['learning_rate'].dtype)
    return player.replace(opt_state=player.opt_state._replace(hyperparams=hyperparams))
  return state.replace(g=player_with(state.g, g_lr), d=player_with(state.d, d_lr))


def validate(config) -> None:
  loop.validate(config)
  if config.g_loss:
    raise UserError(f"the progressive driver does not support g_loss={config.g_loss!r}; set --config.g_loss=''")
  make_schedule(config)


class Growth:
  """The pieces of a progressive run that do not change while it trains (models per phase built on demand)."""

  def __init__(self, config):
    validate(config)
    self.config = config
    self.phases = make_schedule(config)
    self.source = data_lib.make_source(config.data)
    if not self.source.is_image:
      raise UserError(f'progressive growing needs an image data set; data.name is {config.data.name!r}')
    self.final = int(config.progressive.resolutions[-1])
    images = fit_images(self.source.arrays['image'], self.final)
    self.train_source = dataclasses.replace(self.source, shape=images.shape[1:],
                                            arrays={**self.source.arrays, 'image': images})
    self.dtype = models.compute_dtype(config.train.dtype)
    if config.optim.decay != 'constant':
      raise UserError('optim.decay is not supported with progressive growing (each stage runs at its own '
                      "learning rate); leave it 'constant'")
    self.g_opt, self.d_opt = state_lib.make_optimizers(config)
    self.loss = losses.get(config.loss)
    self.options = steps_lib.StepOptions.from_config(config)

  def modules(self, stage: int, alpha=None):
    return progan.build(self.config.model, self.final, self.train_source.shape[-1], stage, alpha, self.dtype)

  def init_state(self, rng: jax.Array) -> state_lib.GANState:
    g, d = self.modules(progan.num_stages(self.final) - 1)
    return state_lib.init(g, d, self.g_opt, self.d_opt, self.config.model.z_dim, self.train_source.shape, rng,
                          ema=self.config.train.ema_decay > 0, penalty_config=self.config.penalty)

  def generator_params(self, state: state_lib.GANState):
    return state.ema_params if self.config.train.ema_decay > 0 else state.g.params

  def _alpha(self, resolution: int, alpha):
    """The stage's fade-in weight as the modules take it: None at 4x4 (nothing to fade from)."""
    return None if resolution == 4 else alpha

  def train_step(self, resolution: int, state: state_lib.GANState, data, fade: jax.Array, rng: jax.Array,
                 batch_size: int) -> tuple[state_lib.GANState, steps_lib.Metrics]:
    """One iteration at `resolution`: draws d_steps full-resolution real batches from `data`, brings
    them to the stage (blended by alpha = ramp(state.step, fade)) and runs the shared train step."""
    d_steps = self.config.train.d_steps
    flat = self.train_source.draw(data, jax.random.fold_in(rng, 0), d_steps * batch_size)
    batch = jax.tree.map(lambda a: a.reshape(d_steps, batch_size, *a.shape[1:]), flat)
    alpha = self._alpha(resolution, ramp(state.step, fade))
    g, d = self.modules(progan.num_stages(resolution) - 1, alpha)
    step = steps_lib.make_train_step(g, d, self.g_opt, self.d_opt, self.loss, self.options)
    return step(state, {**batch, 'image': real_at(batch['image'], resolution, alpha)}, jax.random.fold_in(rng, 1))

  def make_iteration(self, resolution: int, batch_size: int) -> Callable:
    """Jitted `progressive_iteration(state, metric_sums, data, fade, key) -> (state, metric_sums + metrics)`.

    As gan_jax.train.steps.make_iteration (rng = fold_in(key, state.step); buffers donated), with
    the fade bounds an argument, so one program serves a resolution's fade-in and stable phases.
    """

    def progressive_iteration(state, metric_sums, data, fade, key):
      rng = jax.random.fold_in(key, state.step)
      state, metrics = self.train_step(resolution, state, data, fade, rng, batch_size)
      return state, jax.tree.map(jnp.add, metric_sums, metrics)

    return jax.jit(progressive_iteration, donate_argnums=(0, 1))

  def zero_metrics(self, resolution: int, batch_size: int, state, data, key) -> steps_lib.Metrics:
    shapes = jax.eval_shape(lambda s, d, f, k: self.train_step(resolution, s, d, f, k, batch_size)[1],
                            state, data, np.zeros(2, np.float32), key)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

  def make_generate(self, resolution: int) -> Callable:
    """Jitted `generate(state, z, alpha) -> [B, side, side, C]`: the stage's G (EMA when on) viewed as the data."""
    side = self.source.shape[0]

    def generate(state, z, alpha):
      g, _ = self.modules(progan.num_stages(resolution) - 1, self._alpha(resolution, alpha))
      out = g.apply({'params': self.generator_params(state)}, z, train=False)
      return view_at(out, side, padded_side(side, self.final))

    return jax.jit(generate)


def train_once(config, workdir: pathlib.Path, stop: loop.StopSignals, restarts: int) -> dict[str, Any]:
  """One attempt at the progressive run of `config` in `workdir` (trained or resumed from its latest
  checkpoint), as gan_jax.train.loop's attempts; `stop` carries a pending SIGTERM/SIGINT, `restarts`
  (those already made) goes to status.json. Returns loop's result plus 'images_seen' and
  'compilations' (iteration programs compiled)."""
  growth = Growth(config)
  phases = growth.phases
  evaluator = evaluator_lib.Evaluator(config, growth.source) if config.eval.metrics else None
  workdir = loop.prepare_workdir(config, workdir)
  t = config.train
  is_main = jax.process_index() == 0
  total = phases[-1].end_step

  key = jax.random.key(t.seed)
  init_key, sample_key, train_key = jax.random.split(key, 3)
  state = growth.init_state(init_key)
  checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints', t.keep_checkpoints)
  restored = checkpoints.restore_latest(state)
  if restored is not None:
    state = state_lib.with_hyperparams(restored, config)
    logging.info('resumed from checkpoint at step %d in %s', int(state.step), workdir)
  start = int(state.step)

  logger = log_lib.RunLogger(workdir, config_lib.to_dict(config), config.log, enabled=is_main)
  loop.write_status(workdir, 'running', start, restarts=restarts)
  data = jax.device_put(growth.train_source.arrays)
  fixed_z = jax.random.normal(sample_key, (loop.NUM_GRID_SAMPLES, config.model.z_dim), jnp.float32)
  generators = {}

  def generate(step: int, z: jax.Array) -> jax.Array:
    phase = phase_at(phases, step)
    if phase.resolution not in generators:
      generators[phase.resolution] = growth.make_generate(phase.resolution)
    return generators[phase.resolution](state, z, ramp(step, phase.fade))

  def save_samples(step: int) -> None:
    if not is_main:
      return
    path = workdir / 'samples' / f'step_{step}.png'
    try:
      plots.save_image_grid(np.asarray(generate(step, fixed_z)), path)
    except OSError as e:
      logging.warning('sample grid of step %d not written (%s); training continues', step, e)
      return
    logger.image(step, 'samples', path)

  def save_checkpoint(step: int) -> None:
    if not loop.all_finite(state):
      raise loop.Diverged(f'non-finite parameters at step {step}; the last good checkpoint is kept '
                          f'(steps {checkpoints.steps()}); lower the learning rates')
    checkpoints.save(step, state)

  def evaluate_and_log(step: int) -> dict[str, float]:
    started = time.perf_counter()
    results = evaluator(lambda z, labels: generate(step, z), loop.eval_key(t.seed, step))
    logger.write(step, {**results, **progress_at(phases, step)}, name='eval')
    logging.info('eval at step %d (%.1f s): %s', step, time.perf_counter() - started,
                 ' '.join(f'{k} {v:.4g}' for k, v in results.items()))
    return results

  step = start
  last, last_eval = {}, {}
  iterations = {}  # (resolution, batch size) -> the compiled iteration.
  health = loop.Health(t)
  progress = Progress(start, total)
  exit_code = 1
  try:
    if start == 0 and t.sample_every:
      save_samples(0)
    for phase in phases:
      if step >= phase.end_step:
        continue
      state = _with_learning_rates(state, phase.g_lr, phase.d_lr)
      program = (phase.resolution, phase.batch_size)
      if program not in iterations:
        started = time.perf_counter()
        zeros = growth.zero_metrics(*program, state, data, train_key)
        iterate = growth.make_iteration(*program).lower(state, zeros, data, phase.fade, train_key).compile()
        iterations[program] = (iterate, zeros)
        logging.info('compiled the %dx%d iteration (batch %d) in %.1f s', phase.resolution, phase.resolution,
                     phase.batch_size, time.perf_counter() - started)
      iterate, zeros = iterations[program]
      sums = jax.tree.map(jnp.zeros_like, zeros)
      fade = jnp.asarray(phase.fade)
      logging.info('phase %s from step %d: %d steps, batch %d', phase.name, step, phase.num_steps, phase.batch_size)
      progress.restart_clock(step)
      since_log = 0
      while step < phase.end_step:
        state, sums = iterate(state, sums, data, fade, train_key)
        step += 1
        since_log += 1
        if stop.received is not None:
          save_checkpoint(step)
          checkpoints.close()
          message = f'{signal.Signals(stop.received).name} at step {step}: checkpoint written; rerun the same command to resume'
          loop.write_status(workdir, 'interrupted', step, message, restarts=restarts)
          raise loop.Interrupted(message, stop.received)
        due = loop.Due.at(config, step, total, evaluator is not None)
        due = dataclasses.replace(due, log=due.log or step == phase.end_step)  # Every phase ends with a log.
        if not due:
          continue
        means = {k: float(v) / since_log for k, v in jax.device_get(sums).items()}
        diverged = health.check(means, step, since_log, due.log)
        if diverged:
          raise loop.Diverged(f'{diverged}; the last good checkpoint is kept (steps {checkpoints.steps()}); lower '
                              'the learning rates')
        if due.log:
          last = means
          steps_per_sec, line = progress.report(step, {**{k: last[k] for k in ('d_loss', 'g_loss')}, **last_eval})
          logger.write(step, {**last, **progress_at(phases, step), 'steps_per_sec': steps_per_sec})
          logging.info('%s | %s', phase.name, line)
          sums = jax.tree.map(jnp.zeros_like, sums)
          since_log = 0
        if due.sample:
          save_samples(step)
        if due.checkpoint:
          save_checkpoint(step)
        if due.eval:
          last_eval = evaluate_and_log(step)
          progress.restart_clock(step)
    checkpoints.close()
    loop.write_status(workdir, 'finished', step, restarts=restarts)
    exit_code = 0
    return {'status': 'finished', 'step': step, 'metrics': last, 'eval': last_eval,
            'images_seen': progress_at(phases, step)['images_seen'], 'compilations': len(iterations)}
  except loop.Diverged as e:
    checkpoints.close()
    loop.write_status(workdir, 'diverged', step, str(e), restarts=restarts)
    raise
  except loop.Interrupted:
    raise
  except BaseException as e:
    checkpoints.close()
    loop.write_status(workdir, 'failed', step, f'{type(e).__name__}: {e}', restarts=restarts)
    raise
  finally:
    logger.close(exit_code)
