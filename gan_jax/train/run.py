"""What a run is, apart from its changing state: `build_run(config) -> Run`.

A Run holds the data, the schedule (gan_jax.train.schedule), the optimizers and loss, and builds
for any phase the models, the pure train step and the sampler. It is the one place that knows
how a progressive run differs from a plain one (models of a stage with a fade-in weight, real
images pooled to the stage, samples shown at the data's size); the loop and the program builder
only see phases.
"""
import dataclasses
from typing import Callable

import jax
import optax

from gan_jax import data as data_lib
from gan_jax import logging as log_lib
from gan_jax import losses
from gan_jax import models
from gan_jax.errors import UserError
from gan_jax.models import progan
from gan_jax.train import schedule as schedule_lib
from gan_jax.train import state as state_lib
from gan_jax.train import steps as steps_lib
from gan_jax.train.schedule import Phase

# step(state, batch, rng, fade) -> (state, metrics); fade: the phase's float32 [2] fade-in bounds.
PhaseStep = Callable[[state_lib.GANState, dict, jax.Array, jax.Array], tuple[state_lib.GANState, steps_lib.Metrics]]


def validate(config) -> None:
  """Checks values that would otherwise fail deep inside JAX (the data is not loaded)."""
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
  losses.get(config.loss, config.label_smoothing)
  if config.g_loss not in steps_lib.G_LOSSES:
    raise UserError(f"unknown g_loss {config.g_loss!r}; choose '' (the loss's own), 'feature_matching' or 'value' "
                    "(the value function with both data terms: the unrolled GAN's surrogate)")
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
  _validate_translation(config)
  if config.data.captions:
    from gan_jax.data import captions
    if config.data.name not in captions.ATTRIBUTES:
      raise UserError(f'data.captions: captions exist for {", ".join(captions.ATTRIBUTES)}, not {config.data.name!r}')
    if config.data.task:
      raise UserError('data.captions and data.task (image-to-image) do not combine; set one of them')
  if config.eval.eval_every < 0:
    raise UserError(f'eval.eval_every must be >= 0, 0 meaning only at the end (got {config.eval.eval_every})')
  models.compute_dtype(t.dtype)
  log_lib.resolve_wandb_mode(config.log.wandb)
  progressive = schedule_lib.is_progressive(config)
  if progressive != (config.model.name == 'progan'):
    raise UserError('model progan and a progressive schedule (config.progressive) go together; start from '
                    '--exp=progan' if progressive else
                    'model progan grows through a schedule (config.progressive); start from --exp=progan')
  if progressive:
    if config.g_loss:
      raise UserError(f"progressive growing does not support g_loss={config.g_loss!r}; set --config.g_loss=''")
    if config.optim.decay != 'constant':
      raise UserError('optim.decay is not supported with progressive growing (each stage runs at its own '
                      "learning rate); leave it 'constant'")
  schedule_lib.phases(config)


def _validate_translation(config) -> None:
  tr = config.translate
  weights = {name: tr[name] for name in ('adversarial', 'l1', 'l2', 'features', 'cycle', 'identity')}
  for name, value in weights.items():
    if value < 0:
      raise UserError(f'translate.{name} must be >= 0, 0 meaning off (got {value})')
  if not config.data.task:
    if weights != {'adversarial': 1.0, 'l1': 0.0, 'l2': 0.0, 'features': 0.0, 'cycle': 0.0, 'identity': 0.0}:
      raise UserError('translate.* weights apply to image-to-image runs (data.task); start from --exp=pix2pix, '
                      '--exp=srgan, --exp=inpainting or --exp=cyclegan')
    return
  paired_terms = [name for name in ('l1', 'l2', 'features') if weights[name]]
  cycle_terms = [name for name in ('cycle', 'identity') if weights[name]]
  if config.data.task.startswith('cycle_') and paired_terms:
    raise UserError(f'an unpaired task ({config.data.task}) has no targets for translate.{", ".join(paired_terms)}; '
                    'use translate.cycle and translate.identity')
  if not config.data.task.startswith('cycle_') and cycle_terms:
    raise UserError(f'translate.{", ".join(cycle_terms)} apply to unpaired tasks (data.task=cycle_edges or '
                    'cycle_fashion, --exp=cyclegan)')
  if not any(weights.values()):
    raise UserError('every term of G\'s loss is off: set translate.adversarial or a reconstruction weight > 0')


@dataclasses.dataclass
class Run:
  """The parts of a run that do not change while it trains.

  Attributes:
    config: the run's config.
    source: the data as evaluation sees it (its own example shape and classes).
    train_source: the data the program draws from (progressive runs: images fitted to the final
      resolution; else `source`).
    phases: the schedule.
    g_opt, d_opt: the players' optimizers.
    feature_fn: image-to-image runs with translate.features > 0: the frozen domain classifier's
      features, images [B, H, W, C] -> [B, 128] (else None).
    text_encoder: model.text_pretrained: the pretrained caption reader's encoder params, which
      G's and D's text encoders start from (loaded here, outside any trace; else None).
  """
  config: object
  source: data_lib.Source
  train_source: data_lib.Source
  phases: list[Phase]
  g_opt: optax.GradientTransformation
  d_opt: optax.GradientTransformation
  feature_fn: Callable | None = None
  text_encoder: dict | None = None

  @property
  def conditional(self) -> bool:
    """Whether G and D take class labels."""
    return models.is_conditional(self.config.model)

  @property
  def final_resolution(self) -> int:
    """A progressive run's last resolution (0 for a plain run)."""
    return schedule_lib.final_resolution(self.config)

  def models(self, phase: Phase | None = None, alpha=None, axis_name: str | None = None):
    """(G, D) of `phase` (default: the whole model, a progressive run's last stage); `alpha`: a
    progressive stage's fade-in weight; `axis_name`: the data-parallel axis of BatchNorm and
    minibatch-stddev statistics."""
    final = self.final_resolution
    if final:
      stage = phase.stage if phase else progan.num_stages(final) - 1
      return progan.build(self.config.model, final, self.train_source.shape[-1], stage, alpha,
                          models.compute_dtype(self.config.train.dtype), axis_name)
    return models.build(self.config.model, self.source.shape, self.config.train.dtype, self.source.num_classes,
                        axis_name, self.source.task, self.source.vocab_size)

  def _alpha(self, phase: Phase, alpha):
    """The fade-in weight the stage's modules take: None where there is nothing to fade from (plain
    runs and the 4x4 stage), else `alpha` (traced, so one program serves a fade-in and its stable phase)."""
    return None if phase.stage == 0 else alpha

  def init_state(self, rng: jax.Array) -> state_lib.GANState:
    """Fresh state from `rng`, shaped for every phase (a progressive run's modules of all stages)."""
    g, d = self.models()
    return state_lib.init(g, d, self.g_opt, self.d_opt, self.config.model.z_dim, self.train_source.shape, rng,
                          ema=self.config.train.ema_decay > 0, penalty_config=self.config.penalty,
                          conditional=self.conditional, source_shape=self.source.input_shape,
                          text_length=self.source.arrays['text'].shape[1] if 'text' in self.source.arrays else 0,
                          params_fn=self._with_text_encoder if self.text_encoder is not None else None)

  def _with_text_encoder(self, params: dict) -> dict:
    from gan_jax.models import text_pretraining
    return text_pretraining.with_encoder(params, self.text_encoder)

  def step(self, phase: Phase, axis_name: str | None = None) -> PhaseStep:
    """The pure train step of `phase` (gan_jax.train.steps), with a progressive stage's real images
    brought to its resolution and blended by alpha = ramp(state.step, fade)."""
    options = steps_lib.StepOptions.from_config(self.config, axis_name, self.source.num_classes)
    loss = losses.get(self.config.loss, self.config.label_smoothing)

    def step(state, batch, rng, fade):
      alpha = self._alpha(phase, schedule_lib.ramp(state.step, fade))
      g, d = self.models(phase, alpha, axis_name)
      if phase.resolution:
        batch = {**batch, 'image': schedule_lib.real_at(batch['image'], phase.resolution, alpha)}
      return steps_lib.make_train_step(g, d, self.g_opt, self.d_opt, loss, options, self.feature_fn)(
          state, batch, rng)

    return step

  @property
  def train_step(self) -> Callable:
    """`(state, batch, rng) -> (state, metrics)`: the first phase's pure step on one device."""
    step, fade = self.step(self.phases[0]), self.phases[0].fade
    return lambda state, batch, rng: step(state, batch, rng, fade)

  def generator_params(self, state: state_lib.GANState):
    """The params samples and evaluations use: the EMA of G's params when enabled."""
    return state.ema_params if self.config.train.ema_decay > 0 else state.g.params

  def generate(self, state: state_lib.GANState, z: jax.Array, labels: jax.Array | None = None,
               phase: Phase | None = None, alpha=1.0) -> jax.Array:
    """G's samples [N, *source.shape] for latents z [N, z_dim] (and class labels int32 [N] for a
    conditional model, caption tokens int32 [N, T] for a text-conditioned one, or task inputs
    float32 [N, *source.source_shape] for an image-to-image one, in `labels`) in eval mode; a progressive run's at `phase` (default the last) and fade-in weight
    `alpha`, upsampled and cropped to the data's size."""
    phase = phase or self.phases[-1]
    cond = {}
    if self.source.task:
      cond = {'source': labels}
    elif self.conditional:
      if labels is None:
        raise UserError('this model is class-conditional: give a label per sample')
      cond = {'labels': labels}
    g, _ = self.models(phase, self._alpha(phase, alpha))
    out, _ = steps_lib.apply_model(g, self.generator_params(state), state.g.batch_stats, z, train=False, **cond)
    if phase.resolution:
      side = self.source.shape[0]
      out = schedule_lib.view_at(out, side, schedule_lib.padded_side(side, self.final_resolution))
    return out

  def sampler(self, phase: Phase) -> Callable:
    """Jitted `sample(state, z, labels, alpha)`: `generate` at `phase`."""
    return jax.jit(lambda state, z, labels, alpha: self.generate(state, z, labels, phase, alpha))


def build_run(config) -> Run:
  """Validates `config`, loads the data and builds the schedule, optimizers and (to check them) models."""
  validate(config)
  phases = schedule_lib.phases(config)
  source = train_source = data_lib.make_source(config.data)
  final = schedule_lib.final_resolution(config)
  if final:
    if not source.is_image:
      raise UserError(f'progressive growing needs an image data set; data.name is {config.data.name!r}')
    images = schedule_lib.fit_images(source.arrays['image'], final)
    train_source = dataclasses.replace(source, shape=images.shape[1:], arrays={**source.arrays, 'image': images})
  g_opt, d_opt = state_lib.make_optimizers(config)
  feature_fn = None
  if config.translate.features:
    from gan_jax.metrics import evaluator  # The domain classifier, as the evaluation loads it.
    feature_fn = evaluator.domain_classifier(config, source, 'translate.features').feature_fn
  text_encoder = None
  if config.model.text_pretrained and source.vocab_size:
    from gan_jax.metrics import evaluator
    from gan_jax.models import text_pretraining
    text_encoder = text_pretraining.load_or_train(config.data, evaluator.models_dir(config), source.vocab_size,
                                                  config.model.text_dim, config.model.text_encoder)
  run = Run(config, source, train_source, phases, g_opt, d_opt, feature_fn, text_encoder)
  run.models()  # Model options are checked here, before any workdir is touched.
  return run
