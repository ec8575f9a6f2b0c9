"""Where a run's numbers and pictures go: `metrics.jsonl` always, Weights & Biases when it works.

`metrics.jsonl` (one JSON object per log step) is the record the project itself reads (tests,
reports); W&B is for browsing and comparing runs. A W&B failure (not installed, unreachable,
crashing) is reported once and training goes on with the local record.

W&B mode (`config.log.wandb`): 'online', 'offline' (files under <workdir>/wandb, upload later
with `wandb sync`), 'disabled', or 'auto': online when credentials exist ($WANDB_API_KEY or a
netrc entry for the W&B host), offline otherwise.
"""
import json
import netrc
import os
import pathlib
import secrets
from typing import Any

from absl import logging

from gan_jax.errors import UserError

WANDB_MODES = ('auto', 'online', 'offline', 'disabled')


def resolve_wandb_mode(mode: str) -> str:
  if mode not in WANDB_MODES:
    raise UserError(f'unknown log.wandb mode {mode!r}; choose one of {", ".join(WANDB_MODES)}')
  if mode != 'auto':
    return mode
  if os.environ.get('WANDB_API_KEY'):
    return 'online'
  try:
    auth = netrc.netrc().authenticators('api.wandb.ai')
  except (FileNotFoundError, netrc.NetrcParseError, OSError):
    auth = None
  return 'online' if auth else 'offline'


class RunLogger:
  """Appends scalars to <workdir>/<name>.jsonl and mirrors them (and images) to W&B.

  Several loggers may be open at once in one process (the vectorized sweep runner), each its own W&B run.
  """

  def __init__(self, workdir: pathlib.Path, config_dict: dict, log_config, enabled: bool = True):
    self.workdir = pathlib.Path(workdir)
    self.enabled = enabled
    self._wandb_run = None
    if not enabled:
      return
    mode = resolve_wandb_mode(log_config.wandb)
    if mode != 'disabled':
      self._start_wandb(mode, config_dict, log_config)

  def _start_wandb(self, mode: str, config_dict: dict, log_config) -> None:
    id_file = self.workdir / 'wandb_id.txt'
    try:
      import wandb
      run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(6)
      id_file.write_text(run_id)
      self._wandb_run = wandb.init(
          project=log_config.project, group=log_config.group or None, name=log_config.name or None,
          dir=str(self.workdir), config=config_dict, mode=mode, id=run_id, resume='allow', reinit='create_new',
          settings=wandb.Settings(silent=True, console='off'))
    except Exception as e:  # W&B must never stop training.
      logging.warning('W&B could not start (%s: %s); logging to metrics.jsonl only', type(e).__name__, e)
      self._wandb_run = None

  def describe(self) -> str:
    """Where this run's W&B record goes, for the run's start-up lines."""
    run = self._wandb_run
    if run is None:
      return 'W&B off (metrics.jsonl only)'
    if getattr(run, 'offline', False) or not getattr(run, 'url', None):
      return f'W&B offline in {self.workdir / "wandb"} (upload: wandb sync {self.workdir / "wandb"}/offline-run-*)'
    return f'W&B {run.url}'

  def write(self, step: int, values: dict[str, Any], name: str = 'metrics') -> None:
    """Appends {'step': step, **values} to <name>.jsonl and logs it to W&B (prefixed by name)."""
    if not self.enabled:
      return
    record = {'step': int(step), **{k: _to_json(v) for k, v in values.items()}}
    try:
      with open(self.workdir / f'{name}.jsonl', 'a') as f:
        f.write(json.dumps(record) + '\n')
    except OSError as e:  # A full or failing disk loses this record, not the run.
      logging.warning('%s.jsonl: the record of step %d was not written (%s); training continues', name, step, e)
    if name != 'metrics':
      values = {f'{name}/{k}': v for k, v in values.items()}
    self._wandb_log(step, values)

  def media(self, step: int, key: str, path: pathlib.Path) -> None:
    """Logs a written file to W&B under `key`: a PNG as an image, a WAV as audio."""
    if self._wandb_run is None:
      return
    try:
      import wandb
      self._wandb_log(step, {key: wandb.Audio(str(path)) if path.suffix == '.wav' else wandb.Image(str(path))})
    except Exception as e:
      logging.warning('W&B upload of %s failed (%s); the file is at %s', key, e, path)

  def _wandb_log(self, step: int, values: dict) -> None:
    if self._wandb_run is None:
      return
    try:
      self._wandb_run.log(values, step=int(step))
    except Exception as e:
      logging.warning('W&B logging failed (%s); continuing with metrics.jsonl only', e)
      self._wandb_run = None

  def close(self, exit_code: int = 0) -> None:
    if self._wandb_run is None:
      return
    try:
      self._wandb_run.finish(exit_code=exit_code)
    except Exception as e:
      logging.warning('W&B finish failed (%s)', e)
    self._wandb_run = None


def _to_json(value):
  try:
    return float(value)
  except (TypeError, ValueError):
    return value


class _DropLibraryInfo:
  """absl handler filter: hides INFO/DEBUG records written by library code (Orbax is verbose)."""

  def filter(self, record) -> bool:
    return record.levelno >= 30 or 'site-packages' not in record.pathname


def quiet_library_logs() -> None:
  """Shows warnings and errors from libraries but INFO lines only from gan_jax itself."""
  import logging as std_logging
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _DropLibraryInfo) for f in handler.filters):
    handler.addFilter(_DropLibraryInfo())
  std_logging.getLogger('absl').setLevel(std_logging.INFO)
