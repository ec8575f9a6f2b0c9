"""Evaluation inside a training run, and `launch.py --mode=eval|sample` on its checkpoint."""
import json
import pathlib
import shutil

import numpy as np
import pytest

from gan_jax import experiments
from gan_jax.errors import UserError
from gan_jax import from_checkpoint
from gan_jax.train import loop
from tests.conftest import REPO_ROOT
from tests.test_cli import launch

pytestmark = pytest.mark.slow

EVAL_OVERRIDES = {'eval.metrics': 'classifier_fd,classifier_score', 'eval.eval_every': '10',
                  'eval.num_samples': '200', 'eval.num_real': '500', 'eval.batch_size': '100'}


@pytest.fixture(scope='module')
def models_dir(tmp_path_factory) -> pathlib.Path:
  """A copy of the MNIST classifier, so cached real statistics are written outside the repo."""
  directory = tmp_path_factory.mktemp('models')
  for path in (REPO_ROOT / 'models').glob('mnist_classifier.*'):
    shutil.copy(path, directory)
  return directory


@pytest.fixture(scope='module')
def evaluated_run(tmp_path_factory, models_dir):
  """A vanilla:smoke MNIST run (20 steps) evaluated at steps 10 and 20: (config, workdir, result)."""
  if not (REPO_ROOT.parent / 'shared' / 'data' / 'mnist').is_dir() and not pathlib.Path(
      __import__('os').environ['GAN_JAX_DATA'], 'mnist').is_dir():
    pytest.skip('MNIST files not found (set GAN_JAX_DATA)')
  overrides = [('log.wandb', 'disabled'), ('eval.models_dir', str(models_dir)), *EVAL_OVERRIDES.items()]
  config = experiments.load_config('vanilla:smoke', overrides)
  workdir = tmp_path_factory.mktemp('run') / 'smoke'
  return config, workdir, loop.train_and_evaluate(config, workdir)


def _eval_records(workdir: pathlib.Path) -> list[dict]:
  return [json.loads(line) for line in (workdir / 'eval.jsonl').read_text().splitlines()]


def test_training_evaluates_every_eval_every_steps(evaluated_run):
  _, workdir, result = evaluated_run
  records = _eval_records(workdir)
  assert [r['step'] for r in records] == [10, 20]
  for r in records:
    assert r['classifier_fd'] > 0 and np.isfinite(r['classifier_fd'])
    assert 1.0 <= r['classifier_score'] <= 10.0
  assert result['eval'] == {k: v for k, v in records[-1].items() if k not in ('step', 'train_seconds')}
  assert 0 < records[0]['train_seconds'] < records[1]['train_seconds']


def test_eval_mode_reproduces_the_last_evaluation(evaluated_run):
  config, workdir, result = evaluated_run
  again = from_checkpoint.evaluate(config, workdir)
  assert again['step'] == 20
  for key, value in result['eval'].items():
    np.testing.assert_allclose(again[key], value, rtol=1e-5)
  assert _eval_records(workdir)[-1]['step'] == 20


def _cli_eval(workdir: pathlib.Path, *args: str) -> dict:
  """`launch.py --mode=eval` on `workdir`: the result it prints."""
  evaluated = launch(f'--workdir={workdir}', '--mode=eval', *args)
  assert evaluated.returncode == 0, evaluated.stderr
  return json.loads(evaluated.stdout.strip().splitlines()[-1])


def _cli_samples(workdir: pathlib.Path, num: int, out: pathlib.Path) -> tuple[np.ndarray, int]:
  """`launch.py --mode=sample` on `workdir`: (the samples written to `out`, checked to be float32 in
  [-1, 1] and not constant, their checkpoint's step)."""
  sampled = launch(f'--workdir={workdir}', '--mode=sample', f'--num_samples={num}', f'--out={out}')
  assert sampled.returncode == 0, sampled.stderr
  with np.load(out) as f:
    samples, step = f['samples'], int(f['step'])
  assert len(samples) == num and samples.dtype == np.float32
  assert samples.min() >= -1.0 and samples.max() <= 1.0 and samples.std() > 0.01
  return samples, step


def test_cli_eval_and_sample_from_the_saved_config(evaluated_run, tmp_path):
  _, workdir, result = evaluated_run
  printed = _cli_eval(workdir, '--config.eval.metrics=classifier_fd')
  assert printed['step'] == 20 and set(printed) == {'step', 'classifier_fd'}
  np.testing.assert_allclose(printed['classifier_fd'], result['eval']['classifier_fd'], rtol=1e-5)
  samples, step = _cli_samples(workdir, 150, tmp_path / 'samples.npz')
  assert samples.shape == (150, 28, 28, 1) and step == 20


def test_bad_checkpoint_mode_input_is_one_line(evaluated_run, tmp_path):
  _, workdir, _ = evaluated_run
  cases = [
      (['--mode=eval'], '--mode=eval needs --workdir'),
      ([f'--workdir={tmp_path}', '--mode=eval'], 'is not a gan_jax run directory'),
      ([f'--workdir={workdir}', '--mode=sample', f'--out={tmp_path / "s.png"}'], 'ending in .npz'),
      ([f'--workdir={workdir}', '--mode=eval', '--config.eval.metrics=fdi'], "unknown eval metric\\(s\\) 'fdi'"),
      (['--exp=vanilla:smoke', '--num_samples=5'], '--num_samples needs --mode=sample'),
  ]
  for args, message in cases:
    result = launch(*args)
    assert result.returncode == 2, (args, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), (args, result.stderr)
    assert __import__('re').search(message, lines[0]), (args, lines[0])


def test_no_checkpoint_yet_is_a_user_error(tmp_path, models_dir):
  config = experiments.load_config('vanilla:smoke', [('log.wandb', 'disabled')])
  (tmp_path / 'config.json').write_text(json.dumps(json.loads(config.to_json())))
  with pytest.raises(UserError, match='holds no checkpoint yet'):
    from_checkpoint.load_latest(config, tmp_path)


@pytest.fixture(scope='module')
def progressive_run(tmp_path_factory, models_dir):
  """A progan:smoke run (4x4 stable, 8x8 fade-in, 8x8 stable; 4 iterations each) evaluated and
  checkpointed at steps 6 (the middle of the fade-in) and 12: (config, workdir, eval records)."""
  overrides = [('log.wandb', 'disabled'), ('eval.models_dir', str(models_dir)), *EVAL_OVERRIDES.items(),
               ('eval.metrics', 'classifier_fd'), ('eval.eval_every', '6'), ('train.checkpoint_every', '6')]
  config = experiments.load_config('progan:smoke', overrides)
  workdir = tmp_path_factory.mktemp('progan') / 'run'
  assert loop.train_and_evaluate(config, workdir)['step'] == 12
  return config, workdir, _eval_records(workdir)


def test_eval_mode_on_a_progressive_run_mid_fade_in(progressive_run, tmp_path):
  """A checkpoint taken while 8x8 fades in is evaluated at that stage and alpha: the numbers
  training logged at step 6, with the same schedule position in eval.jsonl."""
  config, workdir, records = progressive_run
  during_training = records[0]
  assert (during_training['step'], during_training['resolution'], during_training['alpha']) == (6, 8, 0.5)
  mid_fade = tmp_path / 'mid_fade'
  mid_fade.mkdir()
  shutil.copy(workdir / 'config.json', mid_fade / 'config.json')
  shutil.copytree(workdir / 'checkpoints' / '6', mid_fade / 'checkpoints' / '6')
  again = from_checkpoint.evaluate(config, mid_fade)
  assert again['step'] == 6
  np.testing.assert_allclose(again['classifier_fd'], during_training['classifier_fd'], rtol=1e-5)
  written = _eval_records(mid_fade)[-1]
  assert {k: written[k] for k in ('step', 'images_seen', 'resolution', 'alpha')} == {
      k: during_training[k] for k in ('step', 'images_seen', 'resolution', 'alpha')}


def test_cli_eval_and_sample_a_progressive_run(progressive_run, tmp_path):
  _, workdir, records = progressive_run
  printed = _cli_eval(workdir)
  assert printed['step'] == 12
  np.testing.assert_allclose(printed['classifier_fd'], records[-1]['classifier_fd'], rtol=1e-5)
  samples, step = _cli_samples(workdir, 70, tmp_path / 'samples.npz')
  assert samples.shape == (70, 28, 28, 1) and step == 12
  # The 8x8 stage's samples shown at 28x28 (nearest upsampling to 32, cropped by 2): constant 4x4
  # blocks from pixel 2 on, and neighbouring blocks that the 4x4 stage (8-pixel blocks) would merge differ.
  blocks = samples[:, 2:26, 2:26, 0].reshape(70, 6, 4, 6, 4)
  np.testing.assert_array_equal(blocks, np.broadcast_to(blocks[:, :, :1, :, :1], blocks.shape))
  assert np.mean(blocks[:, 1, 0] != blocks[:, 2, 0]) > 0.5
