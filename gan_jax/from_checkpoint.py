"""What `launch.py --mode=eval|sample` does with a trained run's latest checkpoint.

  evaluate(config, workdir, append)         -> the config.eval.metrics results (appended to eval.jsonl)
  sample(config, workdir, num_samples, out, labels) -> writes an .npz of generated samples

Both only read the run (checkpoints opened read-only, no lock taken), so they work on a run that
another process is training; evaluating such a run must not append to the eval.jsonl its trainer
writes (launch.py passes append=False then).

`config` is the run's config (its saved config.json, or the experiment's with overrides); keys
that change shapes must match the saved ones, as when resuming. Progressive (ProGAN) runs are
read at the stage and fade-in weight of their checkpoint's step, as training evaluated them.
"""
import dataclasses
import json
import pathlib
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import logging as log_lib
from gan_jax.errors import UserError
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.models import conditioning
from gan_jax.train import run as run_lib
from gan_jax.train import schedule as schedule_lib
from gan_jax.train import state as state_lib

LIST_ATTEMPTS = 5
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


@dataclasses.dataclass(frozen=True)
class Trained:
  """A run's generator at its latest checkpoint.

  Attributes:
    state: the restored GANState.
    step: its iteration.
    source: the data the run trained on, as its evaluations see it (a progressive run's original
      image size, not the padded one it trained at).
    conditional: G takes class labels.
    generate: `(z float32 [B, z_dim], labels int32 [B] or None) -> samples [B, *source.shape]`, in
      eval mode with the EMA params when enabled (jitted).
    progress: values every eval record of the run carries besides the metrics (progressive runs:
      images_seen, resolution, alpha; else none).
  """
  state: state_lib.GANState
  step: int
  source: data_lib.Source
  conditional: bool
  generate: Callable[[jax.Array, jax.Array | None], jax.Array]
  progress: dict[str, float]


def _restore(workdir: pathlib.Path, template: state_lib.GANState) -> state_lib.GANState:
  """The run's newest checkpoint. A live run's trainer may delete its oldest checkpoint while the
  list is read: the read is then retried (LIST_ATTEMPTS times)."""
  for attempt in range(LIST_ATTEMPTS):
    try:
      checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints', read_only=True)
      try:
        state = checkpoints.restore_latest(template)
      finally:
        checkpoints.close()
      break
    except FileNotFoundError:
      if attempt == LIST_ATTEMPTS - 1:
        raise UserError(f'the checkpoints in {workdir / "checkpoints"} kept changing while being read; '
                        'try again') from None
      time.sleep(0.2)
  if state is None:
    raise UserError(f'{workdir / "checkpoints"} holds no checkpoint yet; train first (--mode=train)')
  return state


def load_latest(config, workdir: pathlib.Path) -> Trained:
  """The generator of the run in `workdir` at its latest loadable checkpoint, built from `config`.

  Raises:
    UserError if `workdir` is no run, its saved config differs in shape keys, or it has no checkpoint.
  """
  workdir = pathlib.Path(workdir)
  diffs = config_lib.shape_differences(config_lib.to_dict(saved_config(workdir)), config_lib.to_dict(config))
  if diffs:
    raise UserError(f'the config differs from the one saved in {workdir} in keys that change shapes '
                    f'({"; ".join(diffs)}); use the saved values')
  run = run_lib.build_run(config)
  state = _restore(workdir, jax.jit(run.init_state)(jax.random.key(0)))  # The template; jitted: see loop.py.
  step = int(state.step)
  phase = schedule_lib.phase_at(run.phases, step)
  sampler, alpha = run.sampler(phase), phase.alpha(step)
  return Trained(state, step, run.source, run.conditional, lambda z, labels: sampler(state, z, labels, alpha),
                 schedule_lib.progress_at(run.phases, step))


def evaluate(config, workdir: pathlib.Path, append: bool = True) -> dict[str, float]:
  """Evaluates the latest checkpoint on config.eval.metrics; with `append`, appends {'step', ...}
  to the run's eval.jsonl.

  The draws are those training's evaluation makes at the same step, so the numbers match.
  """
  if not config.eval.metrics:
    raise UserError(f'no eval metrics configured; pass --config.eval.metrics=NAME,... '
                    f'(one or more of {", ".join(evaluator_lib.METRICS)})')
  trained = load_latest(config, workdir)
  evaluator = evaluator_lib.Evaluator(config, trained.source)
  results = evaluator.at(trained.generate, config.train.seed, trained.step)
  if append:
    log_lib.RunLogger(workdir, {}, config_lib.ConfigDict({'wandb': 'disabled'})).write(
        trained.step, {**results, **trained.progress}, name='eval')
  return {'step': trained.step, **results}


def sample(config, workdir: pathlib.Path, num_samples: int, out: pathlib.Path, labels: str | None = None) -> pathlib.Path:
  """Writes `num_samples` generated samples of the latest checkpoint to `out` (.npz).

  The file holds 'samples': float32 [num_samples, *example shape] in the data range ([-1, 1]
  for images, the mixture's coordinates for 2D points) and 'step': the checkpoint's step; for a
  class-conditional model also 'labels': int32 [num_samples], the classes requested. `labels`
  (the --labels flag, conditional models only): 'balanced' (0, 1, ..., K-1 repeated; the
  default), one label for all samples, or one comma-separated label per sample. An image-to-image
  model translates the first num_samples test inputs of its task; the file then also holds
  'inputs' and 'targets' (uint8, as gan_jax.data.paired makes them). A text-conditioned model draws
  one sample for each of the first num_samples test captions; the file then also holds 'captions'
  (their text), 'tokens' (as the model read them) and 'labels' (their classes).
  """
  if num_samples < 1:
    raise UserError(f'--num_samples must be >= 1 (got {num_samples})')
  out = pathlib.Path(out)
  if out.suffix != '.npz':
    raise UserError(f'--out={out}: samples are written as .npz; give a file name ending in .npz')
  if not out.parent.exists():
    raise UserError(f'--out={out}: the directory {out.parent} does not exist')
  trained = load_latest(config, workdir)
  extra = {}
  text = 'text' in trained.source.arrays
  if text:
    if labels is not None:
      raise UserError(f'--labels: the run in {workdir} draws for test captions (data.captions); drop --labels')
    tokens, images, classes = data_lib.load_captioned(config.data, 'test')
    if num_samples > len(tokens):
      raise UserError(f'--num_samples={num_samples}: the test split has {len(tokens)} captions')
    from gan_jax.data import captions
    extra = {'tokens': tokens[:num_samples], 'labels': classes[:num_samples],
             'captions': np.asarray(captions.make(config.data.name, images[:num_samples], classes[:num_samples],
                                                  data_lib.CAPTION_SEED))}
  elif trained.source.task:
    if labels is not None:
      raise UserError(f'--labels: the run in {workdir} translates test inputs (data.task={config.data.task!r}); '
                      'drop --labels')
    inputs, targets, _ = data_lib.load_pairs(config.data, 'test')
    if num_samples > len(inputs):
      raise UserError(f'--num_samples={num_samples}: the test split has {len(inputs)} pairs')
    extra = {'inputs': inputs[:num_samples], 'targets': targets[:num_samples]}
  elif trained.conditional:
    extra['labels'] = conditioning.parse_labels(labels or 'balanced', num_samples, trained.source.num_classes)
  elif labels is not None:
    raise UserError(f'--labels: the run in {workdir} is unconditional (model.g_cond is empty); drop --labels')
  batch = config.eval.batch_size
  key = jax.random.fold_in(jax.random.key(config.train.seed), SAMPLE_KEY_SALT)
  chunks = []
  for i in range(-(-num_samples // batch)):
    z = jax.random.normal(jax.random.fold_in(key, i), (batch, config.model.z_dim), jnp.float32)
    batch_labels = None
    rows = evaluator_lib.padded_rows(i * batch, batch, num_samples)
    if text:
      batch_labels = jnp.asarray(extra['tokens'][rows])
    elif trained.source.task:  # Padded to the batch so every call has the compiled shape.
      batch_labels = data_lib.unit_range(jnp.asarray(extra['inputs'][rows]))
    elif trained.conditional:  # Padded to the batch so every call has the compiled shape.
      batch_labels = np.zeros(batch, np.int32)
      chosen = extra['labels'][i * batch:(i + 1) * batch]
      batch_labels[:len(chosen)] = chosen
    chunks.append(np.asarray(trained.generate(z, batch_labels), np.float32))
  samples = np.concatenate(chunks)[:num_samples]
  np.savez(out, samples=samples, step=np.int64(trained.step), **extra)
  return out
