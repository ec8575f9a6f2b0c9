"""Runs an experiment: `python launch.py --exp=NAME[:ARG] [--config.a.b=v ...] [--workdir=DIR]`.

`--exp=NAME[:ARG]` loads experiments/NAME.py and calls get_config(ARG); `--config.a.b=v`
overrides any config field (type-checked; unknown keys are an error listing the valid ones).
Mistakes a user can fix print one line `error: ...` and exit with status 2.
"""
import datetime
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging

from gan_jax import config as config_lib
from gan_jax import experiments as experiments_lib
from gan_jax import logging as run_log
from gan_jax.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string('exp', None, 'Experiment NAME[:ARG]: experiments/NAME.py, get_config(ARG).')
flags.DEFINE_string('workdir', None, 'Run directory; default runs/<exp>/<timestamp>. Reuse it to resume.')
flags.DEFINE_enum('mode', 'train', ['train'], 'What to do with the run.')

_overrides: list[tuple[str, str]] = []


def parse_flags(argv: list[str]) -> list[str]:
  """Takes `--config.KEY=VALUE` arguments out of argv (kept in _overrides), then parses absl flags."""
  try:
    overrides, rest = config_lib.split_override_args(argv)
    _overrides.extend(overrides)
    return FLAGS(rest)
  except (UserError, flags.Error) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> int:
  run_log.quiet_library_logs()
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {" ".join(argv[1:])}; flags take the form --name=value')
  if not FLAGS.exp:
    raise UserError(f'--exp is required; experiments: {", ".join(experiments_lib.names())}')
  config = experiments_lib.load_config(FLAGS.exp, _overrides)
  workdir = FLAGS.workdir
  if workdir is None:
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    workdir = pathlib.Path('runs') / FLAGS.exp.replace(':', '_').replace(',', '_') / stamp
  from gan_jax.train import loop  # Imported late: JAX starts only after the flags are valid.
  result = loop.train_and_evaluate(config, pathlib.Path(workdir))
  logging.info('run finished at step %d in %s', result['step'], workdir)
  return 0


def run_main(argv: list[str]) -> None:
  try:
    sys.exit(main(argv))
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(run_main, flags_parser=parse_flags)
