"""A run's schedule: the phases the one loop (gan_jax.train.loop) runs in order.

A plain run is one phase of `train.steps` iterations. A progressive-growing (ProGAN, Karras et al.
2018) run, a config with a `progressive` group, is a phase per resolution's fade-in and stable
period; the schedule is data (see experiments/progan.py):
  resolutions        stage resolutions, consecutive doublings from 4 or later, e.g. (4, 8, 16, 32);
                     a single entry such as (32,) is the non-progressive baseline
  stable_images      real images shown to D in each resolution's stable phase
  transition_images  images of the fade-in into each resolution (the first entry is unused; 0 =
                     the new stage starts at full weight)
  batch_sizes        batch size per resolution (() = data.batch_size)
  g_lr, d_lr         Adam learning rate per resolution (() = optim.g.lr / optim.d.lr)
A per-resolution tuple of one value applies to every resolution. For each resolution a transition
phase (alpha ramped linearly from 0 to 1 over its iterations; none for the first resolution) then a
stable phase. An iteration shows D `batch.size` (= batch_size * train.d_steps) real images, so a
phase of N images lasts ceil(N / that) iterations. `train.steps` caps the total.

Phases with the same `program_key` (resolution and batch) share one compiled program: alpha is
computed inside it from the traced `state.step` and the phase's `fade` bounds, an argument.

How a stage sees real images and shows its samples: gan_jax.models.progan (fit_images, real_at, view_at).
"""
import copy
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config as config_lib
from gan_jax.errors import UserError
from gan_jax.models import progan

@dataclasses.dataclass(frozen=True)
class BatchSpec:
  """The real examples of one iteration: `d_steps` D updates of `batch_size` (global) examples each.

  The one place d_steps and the batch size are read from the config (`from_config`); the step's
  batch is 'image' float32 [d_steps, batch_size, *example_shape], 'label' int32 [d_steps, batch_size]
  (and whatever else the source draws per example: image-to-image inputs, caption tokens).
  """
  d_steps: int
  batch_size: int

  @classmethod
  def from_config(cls, config, batch_size: int | None = None) -> 'BatchSpec':
    return cls(config.train.d_steps, batch_size or config.data.batch_size)

  @property
  def size(self) -> int:
    """Real examples per iteration."""
    return self.d_steps * self.batch_size

  def split(self, flat, per_device: int | None = None):
    """{k: [d_steps * n, ...]} -> {k: [d_steps, n, ...]} with n = per_device or batch_size."""
    n = per_device or self.batch_size
    return {k: v.reshape(self.d_steps, n, *v.shape[1:]) for k, v in flat.items()}

  def shapes(self, source) -> dict:
    """The step's batch as ShapeDtypeStructs: what `source` (a data.Source) draws, split into D steps."""
    arrays = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), source.arrays)
    return jax.eval_shape(lambda arrays, key: self.split(source.draw(arrays, key, self.size)), arrays,
                          jax.random.key(0))


@dataclasses.dataclass(frozen=True)
class Phase:
  """One phase: a plain run's whole length, or a resolution's fade-in or stable period.

  Attributes:
    start_step: the global iteration (state.step) the phase begins at.
    num_steps: its iterations.
    batch: its real examples per iteration.
    start_images: real images seen before the phase.
    g_lr, d_lr: Adam learning rates during the phase.
    resolution: a progressive stage's image side (0: a plain run, the data's own shape).
    fading: a transition phase (alpha ramps from 0 to 1 over it).
  """
  start_step: int
  num_steps: int
  batch: BatchSpec
  start_images: int
  g_lr: float
  d_lr: float
  resolution: int = 0
  fading: bool = False

  @property
  def end_step(self) -> int:
    return self.start_step + self.num_steps

  @property
  def stage(self) -> int:
    """The progressive stage (0 = 4x4; 0 for plain runs)."""
    return progan.num_stages(self.resolution) - 1 if self.resolution else 0

  @property
  def name(self) -> str:
    if not self.resolution:
      return 'train'
    return f'{self.resolution}x{self.resolution} {"fade-in" if self.fading else "stable"}'

  @property
  def program_key(self) -> tuple[int, int]:
    """Phases with equal keys run the same compiled program."""
    return self.resolution, self.batch.batch_size

  @property
  def fade(self) -> np.ndarray:
    """float32 [2]: (first step, steps) of the fade-in, the traced input of `ramp`; (0, 0) otherwise."""
    return np.array([self.start_step, self.num_steps] if self.fading else [0, 0], np.float32)

  def alpha(self, step: int) -> float:
    """The fade-in weight at iteration `step` (1 outside a fade-in)."""
    return float(ramp(step, self.fade))

  def images_seen(self, step: int) -> int:
    return self.start_images + (step - self.start_step) * self.batch.size


def ramp(step, fade):
  """alpha at iteration `step` of a fade-in over `fade` = (start, steps): (step - start) / steps in
  [0, 1]; 1 when steps is 0. Traceable: a program compiled once serves every step and phase."""
  fade = jnp.asarray(fade, jnp.float32)
  ramped = jnp.clip((jnp.asarray(step, jnp.float32) - fade[0]) / jnp.maximum(fade[1], 1.0), 0.0, 1.0)
  return jnp.where(fade[1] > 0, ramped, 1.0)


def progressive_config(**values) -> config_lib.ConfigDict:
  """The `config.progressive` group with its defaults (a 4 -> 32 schedule); `values` override them."""
  c = config_lib.ConfigDict(dict(resolutions=(4, 8, 16, 32), stable_images=(60_000,), transition_images=(60_000,),
                                 batch_sizes=(), g_lr=(), d_lr=()))
  c.update(values)
  return c


def is_progressive(config) -> bool:
  """Whether the run grows through a schedule of resolutions (the config has a `progressive` group)."""
  return 'progressive' in config


def final_resolution(config) -> int:
  """A progressive run's last resolution, whatever train.steps cuts the schedule to (0: a plain run).
  Its modules exist from the start, so the state has one shape throughout."""
  return int(config.progressive.resolutions[-1]) if is_progressive(config) and config.progressive.resolutions else 0


def _per_resolution(p, name: str, count: int, default) -> list:
  values = list(p[name]) if len(p[name]) else [default]
  if len(values) == 1:
    values *= count
  if len(values) != count:
    raise UserError(f'progressive.{name} has {len(values)} values for {count} resolutions {tuple(p.resolutions)}; '
                    'give one value per resolution, or one for all')
  return values


def phases(config) -> list[Phase]:
  """The run's phases: one for a plain run, else those of `config.progressive` cut at train.steps.

  Raises:
    UserError (progressive) for resolutions that are not consecutive doublings of 4 * 2**k, tuples
    of the wrong length, negative image counts, batch sizes that minibatch stddev cannot group, an
    empty schedule.
  """
  if not is_progressive(config):
    batch = BatchSpec.from_config(config)
    return [Phase(0, config.train.steps, batch, 0, config.optim.g.lr, config.optim.d.lr)]
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
  result, step, images = [], 0, 0
  for i, r in enumerate(resolutions):
    batch = BatchSpec.from_config(config, batches[i])
    for fading, count in ((True, transition[i] if i else 0), (False, stable[i])):
      num_steps = min(math.ceil(count / batch.size), config.train.steps - step)
      if num_steps <= 0:
        continue
      result.append(Phase(step, num_steps, batch, images, g_lrs[i], d_lrs[i], r, fading))
      step += num_steps
      images += num_steps * batch.size
  if not result:
    raise UserError('the progressive schedule has no iterations; set progressive.stable_images > 0')
  return result


def phase_at(schedule: list[Phase], step: int) -> Phase:
  """The phase iteration `step` runs in (the last phase for the step after the schedule's end)."""
  return next((p for p in schedule if p.start_step <= step < p.end_step), schedule[-1])


def progress_at(schedule: list[Phase], step: int) -> dict[str, float]:
  """What every metrics and eval record of a progressive run carries: images_seen, resolution and
  alpha at iteration `step` ({} for a plain run)."""
  phase = phase_at(schedule, step)
  if not phase.resolution:
    return {}
  return {'images_seen': phase.images_seen(min(step, phase.end_step)), 'resolution': phase.resolution,
          'alpha': phase.alpha(step)}


def scaled_learning_rates(config, factor: float):
  """A copy of `config` with every learning rate multiplied by `factor`: both players', and a
  progressive schedule's per-resolution ones."""
  config = copy.deepcopy(config)
  for player in ('g', 'd'):
    config.optim[player].lr *= factor
  if is_progressive(config):
    for name in ('g_lr', 'd_lr'):
      rates = config.progressive[name]
      config.progressive[name] = type(rates)(lr * factor for lr in rates)
  return config
