"""A run directory's files, and the checks that make writing into one safe.

  lock               held by the one process training the run (gan_jax/workdir_lock.py): pid, host, since
  config.json        the resolved config (a rerun on the same workdir resumes; shape changes refused)
  status.json        {'status': running|finished|interrupted|diverged|failed, 'step', 'message'[, 'restarts']}
  metrics.jsonl      one JSON object per log step: step, d_loss, g_loss, ..., steps_per_sec, train_seconds
                     (wall time training so far, compilation included, evaluation not; progressive
                     runs also images_seen, resolution, alpha)
  eval.jsonl         one JSON object per evaluation: step, train_seconds and the config.eval.metrics results
  samples/step_N.png fixed-input sample grid (gan_jax/sample_grids.py: scatter plot for 2D data, one
                     class or caption per row for conditional models, input | output | target for
                     image-to-image models)
  figures/modes_N.png at each evaluation of 'modes': the evaluated 2D points and their mode histogram
  checkpoints/N/     Orbax checkpoints of the run's own (unstacked) GANState
  wandb/             W&B run files (offline mode)
  slurm/             a run submitted with --cluster: submitit's job scripts, pickles and logs (gan_jax/cluster.py)

Only process 0 writes these (gan_jax.distributed.is_main); the training loop writes them through
gan_jax.train.lanes.Lane, the sweep runners and reports read them.
"""
import json
import pathlib

from gan_jax import config as config_lib
from gan_jax import workdir_lock
from gan_jax.errors import UserError

CLUSTER_LOGS = 'slurm'  # The job folder of a run or sweep submitted with --cluster.


def check(config, workdir: pathlib.Path) -> None:
  """Checks, reading only, that `workdir` is new, empty or a run `config` may resume.

  Raises:
    UserError if the directory holds something that is not a gan_jax run, or a run whose saved
    config differs in a shape-changing key (the message names the keys).
  """
  workdir = pathlib.Path(workdir)
  config_file = workdir / 'config.json'
  if config_file.exists():
    try:
      saved = json.loads(config_file.read_text())
    except json.JSONDecodeError as e:
      raise UserError(f'{config_file} is not valid JSON ({e}); fix it or use a new --workdir') from None
    diffs = config_lib.shape_differences(saved, config_lib.to_dict(config))
    if diffs:
      raise UserError(f'workdir {workdir} holds a run whose config differs in keys that change shapes '
                      f'({"; ".join(diffs)}); use a new --workdir or the saved values')
  elif workdir.exists() and any(p.name not in (workdir_lock.LOCK_FILE, CLUSTER_LOGS) for p in workdir.iterdir()):
    raise UserError(f'workdir {workdir} is not empty and holds no gan_jax run (no config.json); '
                    'choose a new --workdir')


def prepare(config, workdir: pathlib.Path) -> pathlib.Path:
  """Creates the run directory (or checks that resuming into it is safe: `check`) and writes
  config.json. The caller holds the directory's lock (gan_jax/workdir_lock.py)."""
  workdir = pathlib.Path(workdir)
  check(config, workdir)
  (workdir / 'samples').mkdir(parents=True, exist_ok=True)
  (workdir / 'config.json').write_text(json.dumps(config_lib.to_dict(config), indent=2, sort_keys=True) + '\n')
  return workdir


def write_status(workdir: pathlib.Path, status: str, step: int, message: str = '', restarts: int = 0) -> None:
  """Writes status.json atomically: status, step, message, and restarts if any."""
  record = {'status': status, 'step': int(step), 'message': message, **({'restarts': restarts} if restarts else {})}
  tmp = workdir / 'status.json.tmp'
  tmp.write_text(json.dumps(record, indent=2) + '\n')
  tmp.replace(workdir / 'status.json')


def read_status(workdir: pathlib.Path) -> dict | None:
  """status.json's record, or None when there is none (or it cannot be read)."""
  try:
    return json.loads((workdir / 'status.json').read_text())
  except (FileNotFoundError, json.JSONDecodeError):
    return None


def read_jsonl(path: pathlib.Path) -> dict[str, dict[int, float]]:
  """{metric: {step: value}} of the numeric fields of metrics.jsonl or eval.jsonl; a repeated step
  (logged again after a resume) keeps its last value."""
  series: dict[str, dict[int, float]] = {}
  if not path.exists():
    return series
  for line in path.read_text().splitlines():
    try:
      record = json.loads(line)
      step = int(record['step'])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
      continue  # A line cut short by a kill.
    for key, value in record.items():
      if key != 'step' and isinstance(value, (int, float)) and not isinstance(value, bool):
        series.setdefault(key, {})[step] = float(value)
  return series


def logged_train_seconds(workdir: pathlib.Path, step: int) -> float:
  """The train_seconds logged at the last step at or before `step` (0 if none): where a resumed
  run's clock continues."""
  logged = read_jsonl(workdir / 'metrics.jsonl').get('train_seconds', {})
  return max(((s, v) for s, v in logged.items() if s <= step), default=(0, 0.0))[1]
