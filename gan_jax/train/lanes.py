"""One run of a program (a lane): its workdir, logger, checkpoints, health checks and status.

A single run is the one-lane case; a vectorized group is N lanes of one program. Run directory:
  lock               held by the one process training the run (gan_jax/workdir_lock.py): pid, host, since
  config.json        the resolved config (a rerun on the same workdir resumes; shape changes refused)
  status.json        {'status': running|finished|interrupted|diverged|failed, 'step', 'message'[, 'restarts']}
  metrics.jsonl      one JSON object per log step: step, d_loss, g_loss, ..., steps_per_sec, train_seconds
                     (wall time training so far, compilation included, evaluation not; progressive
                     runs also images_seen, resolution, alpha)
  eval.jsonl         one JSON object per evaluation: step, train_seconds and the config.eval.metrics results
  samples/step_N.png fixed-noise sample grid (scatter plot for 2D data; one class per row for
                     class-conditional models, the same latent down each column; image-to-image
                     models: input | output | target triples of the first test pairs; CycleGAN:
                     a | G_AB(a) | b | G_BA(b))
  figures/modes_N.png at each evaluation of 'modes': the evaluated 2D points and their mode histogram
  checkpoints/N/     Orbax checkpoints of the run's own (unstacked) GANState
  wandb/             W&B run files (offline mode)
  slurm/             a run submitted with --cluster: submitit's job scripts, pickles and logs (gan_jax/cluster.py)
"""
import dataclasses
import json
import math
import pathlib
from typing import Any, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import logging as log_lib
from gan_jax import plots
from gan_jax import workdir_lock
from gan_jax.errors import UserError
from gan_jax.train import parallel
from gan_jax.train import state as state_lib

CLUSTER_LOGS = 'slurm'  # The job folder of a run or sweep submitted with --cluster.
NUM_GRID_SAMPLES = 64
NUM_SCATTER_SAMPLES = 2500
CLASS_GRID_COLUMNS = 10  # Class-conditional grids: samples per class row.
NUM_GRID_CAPTIONS = 10  # Text-conditioned grids: rows (captions).
TRANSLATION_GRID = (8, 4)  # Image-to-image grids: rows, and input | output | target triples per row.


class SampleInputs(NamedTuple):
  """The fixed inputs of a run's sample grids.

  Attributes:
    z: float32 [N, z_dim] latents.
    labels: int32 [N] class labels, float32 [N, *source_shape] task inputs, or None.
    columns: grid columns (None: square).
    targets: image-to-image: the inputs' targets float32 [N, H, W, C], shown beside the outputs.
    captions: text-conditioned: the caption of each grid row (written to samples/captions.txt).
  """
  z: jax.Array
  labels: jax.Array | None
  columns: int | None
  targets: np.ndarray | None = None
  captions: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Due:
  """What the loop does after completing iteration `step`: log, save samples, checkpoint, evaluate."""
  log: bool
  sample: bool
  checkpoint: bool
  eval: bool

  @classmethod
  def at(cls, config, step: int, last_step: int, evaluating: bool, phase_end: bool = False) -> 'Due':
    """Every train.log_every / sample_every / checkpoint_every and eval.eval_every steps (0: never),
    at `last_step` all of them (samples only if sample_every, evaluation only if `evaluating`), and
    a log at the end of every phase."""
    t, end = config.train, step == last_step

    def every(n: int) -> bool:
      return bool(n) and step % n == 0

    return cls(log=every(t.log_every) or end or phase_end,
               sample=bool(t.sample_every) and (every(t.sample_every) or end),
               checkpoint=every(t.checkpoint_every) or end,
               eval=evaluating and (every(config.eval.eval_every) or end))

  def __bool__(self) -> bool:
    return self.log or self.sample or self.checkpoint or self.eval


class Health:
  """The divergence checks of one run's logged windows.

  `check(means, step, since_log, logged)` returns why the run diverged, or None while it is healthy:
  a non-finite metric mean over the window of `since_log` iterations ending at `step`, or (counted
  on logged windows only) the train.collapse_patience-th consecutive log with d_loss <=
  train.collapse_d_loss (collapse_patience 0: never).
  """

  def __init__(self, train_config):
    self.patience = train_config.collapse_patience
    self.threshold = train_config.collapse_d_loss
    self.collapsed_logs = 0

  def check(self, means: dict[str, float], step: int, since_log: int, logged: bool) -> str | None:
    bad = ', '.join(f'{k}={v}' for k, v in means.items() if not math.isfinite(v))
    if bad:
      return f'non-finite values between steps {step - since_log} and {step} ({bad})'
    if logged and self.patience:
      self.collapsed_logs = self.collapsed_logs + 1 if means['d_loss'] <= self.threshold else 0
      if self.collapsed_logs >= self.patience:
        return (f'collapse: d_loss <= {self.threshold:g} at {self.collapsed_logs} consecutive logs up to step {step} '
                '(D wins outright)')
    return None


def check_workdir(config, workdir: pathlib.Path) -> None:
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


def prepare_workdir(config, workdir: pathlib.Path) -> pathlib.Path:
  """Creates the run directory (or checks that resuming into it is safe: `check_workdir`) and
  writes config.json. The caller holds the directory's lock (gan_jax/workdir_lock.py)."""
  workdir = pathlib.Path(workdir)
  check_workdir(config, workdir)
  (workdir / 'samples').mkdir(parents=True, exist_ok=True)
  (workdir / 'config.json').write_text(json.dumps(config_lib.to_dict(config), indent=2, sort_keys=True) + '\n')
  return workdir


def write_status(workdir: pathlib.Path, status: str, step: int, message: str = '', restarts: int = 0) -> None:
  """Writes status.json atomically (process 0 only): status, step, message, and restarts if any."""
  if not parallel.is_main():
    return
  record = {'status': status, 'step': int(step), 'message': message, **({'restarts': restarts} if restarts else {})}
  tmp = workdir / 'status.json.tmp'
  tmp.write_text(json.dumps(record, indent=2) + '\n')
  tmp.replace(workdir / 'status.json')


def fixed_sample_inputs(source: data_lib.Source, z_dim: int, conditional: bool, key: jax.Array,
                        data_config=None) -> SampleInputs:
  """The fixed inputs of a run's sample grids.

  Unconditional: NUM_GRID_SAMPLES latents (NUM_SCATTER_SAMPLES for 2D data). Conditional: one row
  per class, column j holding the same latent in every row. Image-to-image (source.task): the
  first rows x triples test pairs of `data_config`'s task. Text-conditioned (captions): one row per
  caption of the first NUM_GRID_CAPTIONS test images, column j the same latent in every row.
  """
  if source.task:
    rows, triples = TRANSLATION_GRID
    inputs, targets, _ = data_lib.load_pairs(data_config, 'test')
    n = rows * triples
    to_float = lambda images: images[:n].astype(np.float32) / 127.5 - 1.0
    return SampleInputs(jax.random.normal(key, (n, z_dim), jnp.float32), jnp.asarray(to_float(inputs)),
                        (4 if source.unpaired else 3) * triples, to_float(targets))
  if 'text' in source.arrays:
    from gan_jax.data import captions
    tokens, images, labels = data_lib.load_captioned(data_config, 'test')
    rows = NUM_GRID_CAPTIONS
    column_z = jax.random.normal(key, (CLASS_GRID_COLUMNS, z_dim), jnp.float32)
    texts = captions.make(source.name, images[:rows], labels[:rows], data_lib.CAPTION_SEED)
    return SampleInputs(jnp.tile(column_z, (rows, 1)), jnp.asarray(np.repeat(tokens[:rows], CLASS_GRID_COLUMNS, 0)),
                        CLASS_GRID_COLUMNS, captions=tuple(texts))
  if not conditional:
    num = NUM_GRID_SAMPLES if source.is_image else NUM_SCATTER_SAMPLES
    return SampleInputs(jax.random.normal(key, (num, z_dim), jnp.float32), None, None)
  labels = jnp.repeat(jnp.arange(source.num_classes, dtype=jnp.int32), CLASS_GRID_COLUMNS)
  column_z = jax.random.normal(key, (CLASS_GRID_COLUMNS, z_dim), jnp.float32)
  return SampleInputs(jnp.tile(column_z, (source.num_classes, 1)), labels, CLASS_GRID_COLUMNS)


def translation_grid(inputs: np.ndarray, outputs: np.ndarray, targets: np.ndarray, unpaired: bool = False) -> np.ndarray:
  """[3N, H, W, C]: input_0, output_0, target_0, input_1, ... for N pairs; each input is shown by its
  first C channels (an inpainting input's masked image), enlarged to H x W by pixel repetition.
  Unpaired (CycleGAN) examples (a, b) -> outputs (G_BA(b), G_AB(a)): [4N, H, W, C/2] of a, G_AB(a),
  b, G_BA(b)."""
  if unpaired:
    half = outputs.shape[-1] // 2
    outputs = np.asarray(outputs)
    return np.stack([targets[..., :half], outputs[..., half:], targets[..., half:], outputs[..., :half]],
                    axis=1).reshape(-1, *outputs.shape[1:3], half)
  _, height, width, channels = outputs.shape
  shown = np.asarray(inputs)[..., :channels]
  shown = np.repeat(np.repeat(shown, height // shown.shape[1], axis=1), width // shown.shape[2], axis=2)
  return np.stack([shown, np.asarray(outputs), targets], axis=1).reshape(-1, height, width, channels)


def write_samples(source: data_lib.Source, samples: np.ndarray, path: pathlib.Path, step: int,
                  columns: int | None = None) -> bool:
  """Writes G's samples [N, *source.shape] to `path` (PNG): an image grid (`columns` wide, None:
  square), or for 2D data a scatter plot over real points and the mixture's modes. Returns False
  (with a warning) if the disk failed: a full disk loses the picture, not the run."""
  try:
    if source.is_image:
      plots.save_image_grid(samples, path, columns)
    else:
      real = np.asarray(source.mixture.sample(jax.random.key(0), NUM_SCATTER_SAMPLES))
      plots.save_scatter(samples, path, real=real, modes=source.mixture.centers, title=f'step {step}')
  except OSError as e:
    logging.warning('sample grid of step %d not written (%s); training continues', step, e)
    return False
  return True


def logged_train_seconds(workdir: pathlib.Path, step: int) -> float:
  """The train_seconds of the last metrics.jsonl row at or before `step` (0 if none): where a
  resumed run's clock continues."""
  seconds = 0.0
  try:
    lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  except FileNotFoundError:
    return seconds
  for line in lines:
    try:
      row = json.loads(line)
    except json.JSONDecodeError:  # A line cut short by a kill.
      continue
    if row.get('step', step + 1) <= step and 'train_seconds' in row:
      seconds = float(row['train_seconds'])
  return seconds


@dataclasses.dataclass
class Lane:
  """One run: what it writes and how it stands.

  Attributes:
    config: the run's config (it may differ from its group's in VECTORIZED_KEYS).
    workdir: its run directory (prepared).
    restarts: restarts made before this attempt (status.json records them).
    init_key, sample_key, train_key: the run's keys, split from key(train.seed).
    checkpoints, logger, health: its checkpointer, RunLogger (from `start`) and divergence checks.
    step: the last completed iteration; status: '' while training, then finished | diverged |
      interrupted | failed (with `message`); last, last_eval: the latest logged means and evaluation.
    train_seconds: training wall time before this attempt (from its metrics.jsonl when resuming).
  """
  config: Any
  workdir: pathlib.Path
  restarts: int
  init_key: jax.Array
  sample_key: jax.Array
  train_key: jax.Array
  checkpoints: checkpoint_lib.Checkpointer
  health: Health
  logger: log_lib.RunLogger | None = None
  step: int = 0
  status: str = ''
  message: str = ''
  last: dict = dataclasses.field(default_factory=dict)
  last_eval: dict = dataclasses.field(default_factory=dict)
  compilations: int = 0
  images_seen: int = 0
  train_seconds: float = 0.0

  @classmethod
  def open(cls, config, workdir: pathlib.Path, restarts: int) -> 'Lane':
    """Prepares the run directory (process 0) and the run's keys and checkpointer."""
    workdir = prepare_workdir(config, workdir) if parallel.is_main() else pathlib.Path(workdir)
    init_key, sample_key, train_key = jax.random.split(jax.random.key(config.train.seed), 3)
    checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints', config.train.keep_checkpoints)
    return cls(config, workdir, restarts, init_key, sample_key, train_key, checkpoints, Health(config.train))

  @property
  def live(self) -> bool:
    return not self.status

  @property
  def seed(self) -> int:
    return self.config.train.seed

  def restore(self, template: state_lib.GANState) -> state_lib.GANState:
    """The run's newest checkpoint with the config's hyperparameters, or `template` (fresh) if none."""
    restored = self.checkpoints.restore_latest(template)
    if restored is None:
      return state_lib.with_hyperparams(template, self.config)
    self.step = int(restored.step)
    self.train_seconds = logged_train_seconds(self.workdir, self.step)
    logging.info('resumed from checkpoint at step %d in %s', self.step, self.workdir)
    return state_lib.with_hyperparams(restored, self.config)

  def start(self) -> None:
    self.logger = log_lib.RunLogger(self.workdir, config_lib.to_dict(self.config), self.config.log,
                                    enabled=parallel.is_main())
    write_status(self.workdir, 'running', self.step, restarts=self.restarts)
    if parallel.is_main():
      logging.info('run directory %s; %s', self.workdir, self.logger.describe())

  def end(self, status: str, message: str = '') -> None:
    """Records how the run ended (status.json), waits for its checkpoint writes, closes its W&B run."""
    self.status, self.message = status, message
    self.checkpoints.close()
    write_status(self.workdir, status, self.step, message, restarts=self.restarts)
    if self.logger is not None:
      self.logger.close(0 if status == 'finished' else 1)

  def result(self) -> dict[str, Any]:
    return {'status': self.status, 'step': self.step, 'metrics': self.last, 'eval': self.last_eval,
            'message': self.message, 'restarts': self.restarts, 'images_seen': self.images_seen,
            'compilations': self.compilations}
