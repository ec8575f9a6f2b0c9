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
