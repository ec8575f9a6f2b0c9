"""One run of a program (a lane): its workdir, logger, checkpoints, health checks and status.

A single run is the one-lane case; a vectorized group is N lanes of one program. What a lane
writes into its run directory: gan_jax/run_dir.py.
"""
import dataclasses
import math
import pathlib
from typing import Any

from absl import logging
import jax

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import config as config_lib
from gan_jax import distributed
from gan_jax import logging as log_lib
from gan_jax import run_dir
from gan_jax.train import state as state_lib


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


def run_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """A run's (init, sample, train) keys, split from key(seed)."""
  init_key, sample_key, train_key = jax.random.split(jax.random.key(seed), 3)
  return init_key, sample_key, train_key


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
    workdir = run_dir.prepare(config, workdir) if distributed.is_main() else pathlib.Path(workdir)
    init_key, sample_key, train_key = run_keys(config.train.seed)
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
    self.train_seconds = run_dir.logged_train_seconds(self.workdir, self.step)
    logging.info('resumed from checkpoint at step %d in %s', self.step, self.workdir)
    return state_lib.with_hyperparams(restored, self.config)

  def start(self) -> None:
    self.logger = log_lib.RunLogger(self.workdir, config_lib.to_dict(self.config), self.config.log,
                                    enabled=distributed.is_main())
    if distributed.is_main():
      run_dir.write_status(self.workdir, 'running', self.step, restarts=self.restarts)
      logging.info('run directory %s; %s', self.workdir, self.logger.describe())

  def end(self, status: str, message: str = '') -> None:
    """Records how the run ended (status.json), waits for its checkpoint writes, closes its W&B run."""
    self.status, self.message = status, message
    self.checkpoints.close()
    if distributed.is_main():
      run_dir.write_status(self.workdir, status, self.step, message, restarts=self.restarts)
    if self.logger is not None:
      self.logger.close(0 if status == 'finished' else 1)

  def result(self) -> dict[str, Any]:
    return {'status': self.status, 'step': self.step, 'metrics': self.last, 'eval': self.last_eval,
            'message': self.message, 'restarts': self.restarts, 'images_seen': self.images_seen,
            'compilations': self.compilations}
