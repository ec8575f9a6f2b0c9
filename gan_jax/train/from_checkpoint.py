"""What `launch.py --mode=eval|sample` does with a trained run's latest checkpoint.

  evaluate(config, workdir)                 -> the config.eval.metrics results, appended to eval.jsonl
  sample(config, workdir, num_samples, out, labels) -> writes an .npz of generated samples

`config` is the run's config (its saved config.json, or the experiment's with overrides); keys
that change shapes must match the saved ones, as when resuming.
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import config as config_lib
from gan_jax import logging as log_lib
from gan_jax.errors import UserError
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.models import conditioning
from gan_jax.train import loop
from gan_jax.train import state as state_lib

SAMPLE_KEY_SALT = 0x53414D  # Samples come from fold_in(key(seed), salt), apart from training and eval.


def saved_config(workdir: pathlib.Path) -> config_lib.ConfigDict:
  """The config a run saved in <workdir>/config.json (keys added to the schema since: their defaults)."""
  path = pathlib.Path(workdir) / 'config.json'
  if not path.exists():
    raise UserError(f'{path} does not exist: {workdir} is not a gan_jax run directory (check --workdir)')
  try:
    return config_lib.ConfigDict(config_lib.with_defaults(json.loads(path.read_text())))
  except json.JSONDecodeError as e:
    raise UserError(f'{path} is not valid JSON ({e})') from None


def load_latest(config, workdir: pathlib.Path) -> tuple[loop.Run, state_lib.GANState]:
  """The run built from `config` and its latest loadable checkpointed state.

  Raises:
    UserError if `workdir` is no run, its saved config differs in shape keys, or it has no checkpoint.
  """
  workdir = pathlib.Path(workdir)
  diffs = config_lib.shape_differences(config_lib.to_dict(saved_config(workdir)), config_lib.to_dict(config))
  if diffs:
    raise UserError(f'the config differs from the one saved in {workdir} in keys that change shapes '
                    f'({"; ".join(diffs)}); use the saved values')
  run = loop.build_run(config)
  checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints')
  try:
    state = checkpoints.restore_latest(run.init_state(jax.random.key(0)))
  finally:
    checkpoints.close()
  if state is None:
    raise UserError(f'{workdir / "checkpoints"} holds no checkpoint yet; train first (--mode=train)')
  return run, state


def evaluate(config, workdir: pathlib.Path) -> dict[str, float]:
  """Evaluates the latest checkpoint on config.eval.metrics; appends {'step', ...} to eval.jsonl.

  The draws are those training's evaluation makes at the same step, so the numbers match.
  """
  if not config.eval.metrics:
    raise UserError(f'no eval metrics configured; pass --config.eval.metrics=NAME,... '
                    f'(one or more of {", ".join(evaluator_lib.METRICS)})')
  run, state = load_latest(config, workdir)
  evaluator = evaluator_lib.Evaluator(config, run.source)
  step = int(state.step)
  results = loop.make_evaluate(run, evaluator)(state, step, config.train.seed)
  log_lib.RunLogger(workdir, {}, config_lib.ConfigDict({'wandb': 'disabled'})).write(step, results, name='eval')
  return {'step': step, **results}


def sample(config, workdir: pathlib.Path, num_samples: int, out: pathlib.Path, labels: str | None = None) -> pathlib.Path:
  """Writes `num_samples` generated samples of the latest checkpoint to `out` (.npz).

  The file holds 'samples': float32 [num_samples, *example shape] in the data range ([-1, 1]
  for images, the mixture's coordinates for 2D points) and 'step': the checkpoint's step; for a
  class-conditional model also 'labels': int32 [num_samples], the classes requested. `labels`
  (the --labels flag, conditional models only): 'balanced' (0, 1, ..., K-1 repeated; the
  default), one label for all samples, or one comma-separated label per sample.
  """
  if num_samples < 1:
    raise UserError(f'--num_samples must be >= 1 (got {num_samples})')
  out = pathlib.Path(out)
  if out.suffix != '.npz':
    raise UserError(f'--out={out}: samples are written as .npz; give a file name ending in .npz')
  if not out.parent.exists():
    raise UserError(f'--out={out}: the directory {out.parent} does not exist')
  run, state = load_latest(config, workdir)
  extra = {}
  if run.conditional:
    extra['labels'] = conditioning.parse_labels(labels or 'balanced', num_samples, run.source.num_classes)
  elif labels is not None:
    raise UserError(f'--labels: the run in {workdir} is unconditional (model.g_cond is empty); drop --labels')
  generate = jax.jit(run.generate)
  batch = config.eval.batch_size
  key = jax.random.fold_in(jax.random.key(config.train.seed), SAMPLE_KEY_SALT)
  chunks = []
  for i in range(-(-num_samples // batch)):
    z = jax.random.normal(jax.random.fold_in(key, i), (batch, config.model.z_dim), jnp.float32)
    batch_labels = None
    if run.conditional:  # Padded to the batch so every call has the compiled shape.
      batch_labels = np.zeros(batch, np.int32)
      chosen = extra['labels'][i * batch:(i + 1) * batch]
      batch_labels[:len(chosen)] = chosen
    chunks.append(np.asarray(generate(state, z, batch_labels), np.float32))
  samples = np.concatenate(chunks)[:num_samples]
  np.savez(out, samples=samples, step=np.int64(state.step), **extra)
  return out
