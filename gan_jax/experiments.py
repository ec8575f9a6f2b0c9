"""Finding experiment files and turning `--exp=NAME[:ARG]` plus overrides into a config."""
import importlib.util
import pathlib

from gan_jax import config as config_lib
from gan_jax.errors import UserError

EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parents[1] / 'experiments'


def names() -> list[str]:
  return sorted(p.stem for p in EXPERIMENTS_DIR.glob('*.py') if not p.stem.startswith('_'))


def load_module(name: str):
  """Imports experiments/<name>.py."""
  path = EXPERIMENTS_DIR / f'{name}.py'
  if not name or not path.exists():
    raise UserError(f'unknown experiment {name!r}; choose one of {", ".join(names())}')
  spec = importlib.util.spec_from_file_location(f'experiments.{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(exp: str, overrides=()) -> config_lib.ConfigDict:
  """`exp` is NAME or NAME:ARG; overrides are (dotted key, text) pairs applied afterwards."""
  name, _, arg = exp.partition(':')
  module = load_module(name)
  config = module.get_config(arg or None)
  return config_lib.apply_overrides(config, overrides)


IMAGE_SETS = ('mnist', 'fashion_mnist', 'cifar10')  # The image data sets an option after the colon can name.


def parse_options(exp: str, arg: str | None, valid: tuple[str, ...],
                  exclusive: tuple[tuple[str, ...], ...] = ()) -> frozenset[str]:
  """The options of `--exp=EXP:a,b` (`arg` = 'a,b'), checked against `valid`.

  Raises:
    UserError for an unknown option (listing the valid ones), or for two options of one group of
    `exclusive`.
  """
  options = [o for o in (arg or '').split(',') if o]
  unknown = [o for o in options if o not in valid]
  if unknown:
    raise UserError(f'{exp}: unknown option(s) {", ".join(unknown)}; valid: {", ".join(valid)}')
  for group in exclusive:
    clash = [o for o in options if o in group]
    if len(clash) > 1:
      raise UserError(f'{exp}: choose one of {", ".join(group)}; got {", ".join(clash)}')
  return frozenset(options)


def chosen(options: frozenset[str], choices: tuple[str, ...], default: str) -> str:
  """The one of `choices` among `options`, else `default` (parse_options checks there is at most one)."""
  return next((o for o in choices if o in options), default)


TRANSLATION_SETS = ('mnist', 'fashion_mnist')  # Image-to-image tasks need a domain classifier to be scored.
TRANSLATION_SEEDS = (0, 1, 2)


def translation_config(task: str, data_name: str, smoke: bool) -> config_lib.ConfigDict:
  """The settings the image-to-image experiments (pix2pix, srgan, inpainting) share.

  U-Net G and PatchGAN D of 16 base channels (gan_jax.models.translation), z of 8 as the noise
  source, the non-saturating loss with pix2pix's 100 * L1 reconstruction term, Adam 2e-4 / 0.5
  (Isola et al. 2017), batch 64, 1000 iterations (64,000 images); evaluated every 500 on the first 10,000 test
  pairs: PSNR/SSIM, label preservation (class_accuracy) and classifier FD.
  """
  c = config_lib.base()
  c.data.name, c.data.task = data_name, task
  c.model.name = 'unet'
  c.model.g_channels = c.model.d_channels = 16
  c.model.z_dim = 8
  c.translate.l1 = 100.0
  c.train.update(dict(steps=1000, log_every=100, sample_every=500, checkpoint_every=500))
  c.eval.metrics = ('reconstruction', 'class_accuracy', 'classifier_fd')
  c.eval.eval_every = 500
  if smoke:
    config_lib.shrink_to_smoke(c)
  return c


def translation_sweep(members: list[dict]) -> list[dict]:
  """Each member (fixed overrides, e.g. the non-adversarial baseline) x TRANSLATION_SEEDS: one program per member."""
  return [{'product': {**{k: [v] for k, v in member.items()}, 'train.seed': list(TRANSLATION_SEEDS)}}
          for member in members]
