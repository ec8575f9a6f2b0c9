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
