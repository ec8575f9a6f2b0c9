"""The values a config may hold: `validate(config)` raises a one-line UserError for the first bad one.

Run before anything is loaded or any workdir is touched: by the trainer for each run
(gan_jax/train/run.py), and for every member of a sweep or cluster job before the first starts
(gan_jax/sweep_runners.py, gan_jax/cluster.py), so a bad value fails in seconds, not deep inside
JAX or hours into a sweep. Unknown keys and mistyped values are refused earlier, by
config.apply_overrides.
"""
from gan_jax import logging as log_lib
from gan_jax import losses
from gan_jax import models
from gan_jax import optimizers
from gan_jax.errors import UserError
from gan_jax.train import schedule as schedule_lib
from gan_jax.train import state as state_lib
from gan_jax.train import steps as steps_lib


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
  if config.optim.decay not in optimizers.DECAYS:
    raise UserError(f'unknown optim.decay {config.optim.decay!r}; choose one of {", ".join(optimizers.DECAYS)}')
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
