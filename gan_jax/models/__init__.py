"""Model construction from `config.model`: `build(model_config, example_shape, dtype) -> (G, D)`.

Every G maps (z [B, z_dim], train) -> samples [B, *example_shape]; every D maps
(samples, train) -> logits [B]. Both may carry a 'batch_stats' collection (BatchNorm).
Class-conditional models (`model.g_cond` / `model.d_cond`, gan_jax.models.conditioning) also
take `labels=` int32 [B]. Image-to-image models ('unet', gan_jax.models.translation) take the task's
input as `source=` [B, h, w, C_in]: G maps (z, source) to an output image, D scores
(image, source) pairs with one logit per patch, [B, P]; for an unpaired (CycleGAN) task they are
the pairs of networks of both directions.
"""
import flax.linen as nn
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import conditioning, dcgan, mlp, text, translation

MODELS = ('dcgan', 'mlp', 'unet')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


D_NORMS = ('batch', 'layer', 'spectral', 'none')
G_NORMS = ('batch', 'virtual')
D_MINIBATCH = ('', 'stddev', 'discrimination')


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
  if value not in choices:
    raise UserError(f'unknown {key} {value!r}; choose one of {", ".join(repr(c) for c in choices)}')


def compute_dtype(name: str):
  if name not in DTYPES:
    raise UserError(f'unknown train.dtype {name!r}; choose one of {", ".join(DTYPES)}')
  return DTYPES[name]


def is_conditional(model_config) -> bool:
  """Whether the models take labels (model.g_cond set)."""
  return bool(model_config.g_cond)


def build(model_config, example_shape: tuple[int, ...], dtype_name: str = 'float32', num_classes: int = 0,
          axis_name: str | None = None, task: str = '', vocab_size: int = 0) -> tuple[nn.Module, nn.Module]:
  """The (generator, discriminator) pair for data whose examples have `example_shape` and
  `num_classes` classes (0 = unlabelled); `task`: the image-to-image task (gan_jax.data.paired) the
  'unet' models translate for ('' for the others); `vocab_size`: of the caption tokens text-conditioned
  models read (model.g_cond='text'; 0 without captions).

  axis_name: the data-parallel axis BatchNorm takes its batch statistics over (None: per device).
  """
  dtype = compute_dtype(dtype_name)
  name = model_config.name
  conditioning.check_config(model_config, num_classes)
  if (name == 'unet') != bool(task):
    raise UserError(f'model unet and an image-to-image task (data.task) go together; start from --exp=pix2pix, '
                    f'--exp=srgan or --exp=inpainting (model {name!r}, data.task {task!r})')
  if name == 'dcgan':
    if len(example_shape) != 3 or example_shape[0] != example_shape[1]:
      raise UserError(f'model dcgan needs square images; the data has examples of shape {example_shape} '
                      '(use --config.model.name=mlp for 2D data)')
    if model_config.upsample not in ('subpixel', 'transpose'):
      raise UserError(f'unknown model.upsample {model_config.upsample!r}; choose transpose or subpixel')
    dcgan.num_scales(example_shape[0])
    _check_choice('model.d_norm', model_config.d_norm, D_NORMS)
    _check_choice('model.d_minibatch', model_config.d_minibatch, D_MINIBATCH)
    _check_choice('model.g_norm', model_config.g_norm, G_NORMS)
    if model_config.g_norm == 'virtual' and (model_config.g_cond or model_config.vbn_reference < 1):
      raise UserError(f"model.g_norm='virtual' needs an unconditional G (model.g_cond='') and "
                      f'model.vbn_reference >= 1 (got {model_config.g_cond!r}, {model_config.vbn_reference})')
    if not is_conditional(model_config):
      num_classes = 0
    m = model_config
    text_options = ()
    if m.g_cond == 'text':
      if not vocab_size:
        raise UserError("model.g_cond='text' needs captions: set --config.data.captions=true (or start from "
                        '--exp=text2image)')
      _check_choice('model.text_encoder', m.text_encoder, text.ENCODERS)
      if m.text_dim < 1:
        raise UserError(f'model.text_dim must be >= 1 (got {m.text_dim})')
      text_options = (vocab_size, m.text_dim, m.text_encoder, m.text_frozen)
    elif m.text_pretrained:
      raise UserError("model.text_pretrained needs a text-conditioned model: --config.model.g_cond=text "
                      '--config.model.d_cond=text (or start from --exp=text2image:pretrained)')
    elif vocab_size:
      raise UserError("data.captions needs a text-conditioned model: --config.model.g_cond=text "
                      '--config.model.d_cond=text (or start from --exp=text2image)')
    return (dcgan.Generator(tuple(example_shape), m.g_channels, m.upsample, dtype, axis_name=axis_name,
                            cond=m.g_cond, num_classes=num_classes, label_dim=m.label_dim, norm=m.g_norm,
                            num_reference=m.vbn_reference if m.g_norm == 'virtual' else 0, text_options=text_options),
            dcgan.Discriminator(m.d_channels, m.d_norm, m.d_minibatch, dtype, axis_name=axis_name,
                                cond=m.d_cond, num_classes=num_classes, text_options=text_options))
  if name == 'mlp':
    if len(example_shape) != 1:
      raise UserError(f'model mlp needs flat examples; the data has shape {example_shape} (use dcgan)')
    _check_choice('model.d_norm', model_config.d_norm, ('none', 'layer', 'spectral'))
    if model_config.d_minibatch:
      raise UserError("model mlp has no minibatch layers; set --config.model.d_minibatch=''")
    if is_conditional(model_config):
      raise UserError("model mlp is unconditional; use --config.model.name=dcgan or set model.g_cond='' and "
                      "model.d_cond=''")
    m = model_config
    if m.d_hidden < 0 or m.d_layers < 0 or not m.d_input_scale > 0:
      raise UserError(f'model.d_hidden and model.d_layers must be >= 0 (0: as G) and model.d_input_scale > 0 '
                      f'(got {m.d_hidden}, {m.d_layers}, {m.d_input_scale})')
    return (mlp.Generator(example_shape[0], m.hidden, m.layers, dtype),
            mlp.Discriminator(m.d_hidden or m.hidden, m.d_layers or m.layers, m.d_norm, dtype, m.d_input_scale))
  if name == 'unet':
    if len(example_shape) != 3 or example_shape[0] != example_shape[1] or example_shape[0] % 4:
      raise UserError(f'model unet needs square images whose side divides by 4; the data has {example_shape}')
    _check_choice('model.d_norm', model_config.d_norm, ('batch', 'layer', 'none'))
    if is_conditional(model_config) or model_config.d_minibatch:
      raise UserError("model unet is conditioned on its input image alone; set model.g_cond='', model.d_cond='' "
                      "and model.d_minibatch=''")
    m = model_config
    if task.startswith('cycle_'):
      return (translation.CycleGenerators(tuple(example_shape), m.g_channels, dtype, axis_name),
              translation.CycleDiscriminators(m.d_channels, m.d_norm, dtype, axis_name))
    return (translation.UNet(tuple(example_shape), m.g_channels, task.startswith('inpaint'), dtype, axis_name),
            translation.PatchDiscriminator(m.d_channels, m.d_norm, dtype, axis_name))
  if name == 'progan':
    raise UserError('model progan grows through a schedule (config.progressive): start from --exp=progan')
  raise UserError(f'unknown model {name!r}; choose one of {", ".join(MODELS)} (--config.model.name=NAME)')
