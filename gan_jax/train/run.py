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

from gan_jax import config_checks
from gan_jax import data as data_lib
from gan_jax import losses
from gan_jax import models
from gan_jax import optimizers
from gan_jax.errors import UserError
from gan_jax.models import progan
from gan_jax.train import schedule as schedule_lib
from gan_jax.train import state as state_lib
from gan_jax.train import steps as steps_lib
from gan_jax.train.schedule import BatchSpec, Phase

# step(state, batch, rng, fade) -> (state, metrics); fade: the phase's float32 [2] fade-in bounds.
PhaseStep = Callable[[state_lib.GANState, dict, jax.Array, jax.Array], tuple[state_lib.GANState, steps_lib.Metrics]]


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
        batch = {**batch, 'image': progan.real_at(batch['image'], phase.resolution, alpha)}
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
      out = progan.view_at(out, side, progan.padded_side(side, self.final_resolution))
    return out

  def sampler(self, phase: Phase) -> Callable:
    """Jitted `sample(state, z, labels, alpha)`: `generate` at `phase`."""
    return jax.jit(lambda state, z, labels, alpha: self.generate(state, z, labels, phase, alpha))


def make_optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """(G's, D's) optimizers for a run: G makes train.steps updates, D train.steps * d_steps."""
  steps, d_steps = config.train.steps, BatchSpec.from_config(config).d_steps
  return (optimizers.make_optimizer(config.optim, 'g', steps),
          optimizers.make_optimizer(config.optim, 'd', steps * d_steps))


def build_run(config) -> Run:
  """Validates `config`, loads the data and builds the schedule, optimizers and (to check them) models."""
  config_checks.validate(config)
  phases = schedule_lib.phases(config)
  source = train_source = data_lib.make_source(config.data)
  final = schedule_lib.final_resolution(config)
  if final:
    if not source.is_image:
      raise UserError(f'progressive growing needs an image data set; data.name is {config.data.name!r}')
    images = progan.fit_images(source.arrays['image'], final)
    train_source = dataclasses.replace(source, shape=images.shape[1:], arrays={**source.arrays, 'image': images})
  g_opt, d_opt = make_optimizers(config)
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
