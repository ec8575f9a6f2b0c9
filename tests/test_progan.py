"""ProGAN: equalized-lr layers, pixel norm, fade-in, minibatch stddev, the schedule, and a progressive run
that compiles once per resolution and resumes exactly from a mid-fade checkpoint."""
import json
import math
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import checkpoint as checkpoint_lib
from gan_jax import experiments
from gan_jax.errors import UserError
from gan_jax.models import layers
from gan_jax.models import progan
from gan_jax.train import loop
from gan_jax.train import run as run_lib
from gan_jax.train import schedule
from tests import bench_scripts

Z_DIM = 8
CHANNELS = 8


def _params(final=8, channels=1):
  key = jax.random.key(0)
  g = progan.Generator(final, channels, CHANNELS, stage=0)
  d = progan.Discriminator(final, CHANNELS, stage=0)
  g_params = g.init(key, jnp.zeros((1, Z_DIM)))['params']
  d_params = d.init(jax.random.key(1), jnp.zeros((4, final, final, channels)))['params']
  return g_params, d_params


def test_init_creates_every_stage():
  g_params, d_params = _params(final=16)
  for r in (4, 8, 16):
    assert f'to_rgb_{r}' in g_params and f'from_rgb_{r}' in d_params
  assert {'conv_8_a', 'conv_8_b', 'conv_16_a', 'conv_16_b'} <= set(g_params) & set(d_params)
  assert g_params['conv_16_b']['kernel'].shape == (3, 3, progan.channels_at(16, CHANNELS), CHANNELS // 2)


def test_generator_fade_in_endpoints():
  g_params, _ = _params()
  z = jax.random.normal(jax.random.key(2), (6, Z_DIM))
  g = lambda s, alpha=None: progan.Generator(8, 1, CHANNELS, stage=s, alpha=alpha).apply({'params': g_params}, z)
  previous = g(0)
  new = g(1)
  assert new.shape == (6, 8, 8, 1)
  np.testing.assert_array_equal(g(1, 0.0), progan.upsample(previous))
  np.testing.assert_array_equal(g(1, 1.0), new)
  np.testing.assert_allclose(g(1, 0.25), 0.75 * progan.upsample(previous) + 0.25 * new, rtol=1e-5, atol=1e-6)
  assert not np.allclose(new, progan.upsample(previous), atol=1e-3)  # The new block does change the output.


def test_discriminator_fade_in_endpoints():
  _, d_params = _params()
  x = jax.random.normal(jax.random.key(3), (8, 8, 8, 1))
  d = lambda s, images, alpha=None: progan.Discriminator(8, CHANNELS, stage=s, alpha=alpha).apply(
      {'params': d_params}, images)
  np.testing.assert_allclose(d(1, x, 0.0), d(0, progan.downsample(x)), rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(d(1, x, 1.0), d(1, x))


def test_equalized_dense_unit_variance_and_runtime_scale():
  layer = layers.EqualizedDense(256, gain=math.sqrt(2.0))
  x = jax.random.normal(jax.random.key(4), (5, 512))
  params = layer.init(jax.random.key(5), x)['params']
  kernel = np.asarray(params['kernel'])
  assert kernel.shape == (512, 256)
  # 131072 N(0, 1) draws: the sample variance is within 1 +- 0.02 (about 4 standard errors).
  assert abs(kernel.var() - 1.0) < 0.02 and abs(kernel.mean()) < 0.01
  np.testing.assert_array_equal(params['bias'], 0.0)
  expected = np.asarray(x, np.float64) @ (kernel.astype(np.float64) * math.sqrt(2.0) / math.sqrt(512))
  np.testing.assert_allclose(layer.apply({'params': params}, x), expected, rtol=1e-5, atol=1e-5)


def test_equalized_conv_unit_variance_and_runtime_scale():
  layer = layers.EqualizedConv(64, kernel_size=3, gain=1.0)
  x = jax.random.normal(jax.random.key(6), (2, 5, 5, 32))
  params = layer.init(jax.random.key(7), x)['params']
  kernel = np.asarray(params['kernel'], np.float64)
  assert kernel.shape == (3, 3, 32, 64)
  assert abs(kernel.var() - 1.0) < 0.03  # 18432 draws.
  # The centre pixel's output by hand: its 3x3 neighbourhood dotted with kernel / sqrt(3 * 3 * 32).
  patch = np.asarray(x, np.float64)[:, 1:4, 1:4, :]
  expected = np.einsum('bhwc,hwco->bo', patch, kernel) / math.sqrt(3 * 3 * 32)
  np.testing.assert_allclose(layer.apply({'params': params}, x)[:, 2, 2], expected, rtol=1e-5, atol=1e-5)


def test_pixel_norm():
  x = jnp.array([[3.0, 4.0], [0.0, 2.0]])
  np.testing.assert_allclose(layers.pixel_norm(x), x / np.sqrt([[12.5], [2.0]]), rtol=1e-6)


def test_minibatch_stddev_hand_built_batch():
  # Two examples of 1x2 pixels, 1 channel, one group: per-feature stds |a - b| / 2 are 1 and 3; mean 2.
  x = jnp.array([[[[1.0], [2.0]]], [[[3.0], [8.0]]]])
  out = layers.MinibatchStdDev(group_size=2).apply({}, x)
  assert out.shape == (2, 1, 2, 2)
  np.testing.assert_array_equal(out[..., :1], x)
  np.testing.assert_allclose(out[..., 1], 2.0, rtol=1e-6)


def test_real_images_blend_and_padding():
  images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28, 1)
  fitted = progan.fit_images(images, 32)
  assert fitted.shape == (2, 32, 32, 1) and (fitted[:, :2] == 0).all() and (fitted[:, 2:30, 2:30] == images).all()
  x = jax.random.normal(jax.random.key(8), (3, 16, 16, 1))
  x8 = progan.real_at(x, 8)
  np.testing.assert_allclose(x8[0, 0, 0, 0], x[0, :2, :2, 0].mean(), rtol=1e-6)
  np.testing.assert_array_equal(progan.real_at(x, 8, 1.0), x8)
  np.testing.assert_allclose(progan.real_at(x, 8, 0.0), progan.upsample(progan.downsample(x8)), rtol=1e-6)
  view = progan.view_at(jnp.ones((2, 4, 4, 1)) * 2.0, 28, 32)
  assert view.shape == (2, 28, 28, 1) and float(view.max()) == 1.0


def _config(**overrides):
  items = [('log.wandb', 'disabled')] + [(k.replace('__', '.'), str(v)) for k, v in overrides.items()]
  return experiments.load_config('progan:smoke', items)


def test_schedule_phases_images_and_alpha():
  config = _config(progressive__resolutions='(4, 8, 16)', progressive__stable_images='(32, 64, 16)',
                   progressive__transition_images='(999, 48, 0)', progressive__batch_sizes='(16, 8, 8)',
                   progressive__g_lr='(1e-3,)')
  phases = schedule.phases(config)
  assert [(p.name, p.start_step, p.num_steps, p.batch.batch_size, p.start_images) for p in phases] == [
      ('4x4 stable', 0, 2, 16, 0), ('8x8 fade-in', 2, 6, 8, 32), ('8x8 stable', 8, 8, 8, 80),
      ('16x16 stable', 16, 2, 8, 144)]  # No fade into 4x4 (first) or 16x16 (0 images).
  fade = phases[1]
  assert [fade.alpha(s) for s in (2, 5, 8)] == [0.0, 0.5, 1.0] and phases[2].alpha(9) == 1.0
  assert fade.images_seen(5) == 32 + 3 * 8 and all(p.g_lr == 1e-3 for p in phases)
  assert schedule.phase_at(phases, 7) is fade and schedule.phase_at(phases, 99) is phases[-1]
  capped = schedule.phases(_config(train__steps=5))
  assert capped[-1].end_step == 5 and capped[-1].fading


def test_compared_schedules_share_one_image_budget_at_cpu_and_cpu32():
  progan_exp = experiments.load_module('progan')
  for option, resolutions, budget in (('cpu', (4, 8, 16), 320_000), ('cpu32', (4, 8, 16, 32), 448_000)):
    members = progan_exp.schedules(option)
    for name, m in members.items():
      assert sum(m['stable_images']) + sum(m['transition_images'][1:]) == budget, (option, name)
      assert m['resolutions'] == (resolutions[-1:] if name == 'baseline' else resolutions)
    assert members['short']['stable_images'][:-1] == (16_000,) * (len(resolutions) - 1)
    config = experiments.load_config(f'progan:{option}')
    assert config.model.g_channels == 32 and config.data.batch_size == 32
  with pytest.raises(UserError, match='choose one of'):
    experiments.load_config('progan:cpu,cpu32')


@pytest.mark.parametrize('overrides, message', [
    (dict(progressive__resolutions='(4, 16)'), 'double'),
    (dict(progressive__resolutions='(4, 12)'), '4 * 2**k'),
    (dict(progressive__stable_images='(1, 2, 3)'), 'one value per resolution'),
    (dict(progressive__batch_sizes='(6,)'), 'multiple of the minibatch-stddev group'),
    (dict(progressive__stable_images='(0,)', progressive__transition_images='(0,)'), 'no iterations'),
])
def test_schedule_errors(overrides, message):
  with pytest.raises(UserError, match=re.escape(message)):
    schedule.phases(_config(**overrides))


def _lowerings(events, name='jit(train_iteration)'):
  return sum(1 for event, fun_name in events if event == '/jax/core/compile/jaxpr_to_mlir_module_duration'
             and fun_name == name)


def _state_at(workdir, config, step):
  run = run_lib.build_run(config)
  init_key = jax.random.split(jax.random.key(config.train.seed), 3)[0]  # As the loop initialises.
  template = run.init_state(init_key)
  checkpoints = checkpoint_lib.Checkpointer(workdir / 'checkpoints', keep=100)
  restored = checkpoints._manager.restore(step, args=checkpoint_lib.ocp.args.StandardRestore(
      jax.tree.map(checkpoint_lib.ocp.utils.to_shape_dtype_struct, template)))
  checkpoints.close()
  return template, restored


@pytest.mark.slow
def test_progressive_run_compiles_once_per_resolution_and_resumes_mid_fade(tmp_path, data_dir):
  """progan:smoke (4x4 stable, 8x8 fade-in, 8x8 stable; 4 iterations each) end to end."""
  events = []
  jax.monitoring.register_event_duration_secs_listener(lambda event, _, fun_name='', **kw: events.append(
      (event, fun_name)))
  config = _config(train__checkpoint_every=2, train__keep_checkpoints=10)
  full = tmp_path / 'full'
  result = loop.train_and_evaluate(config, full)
  assert result['status'] == 'finished' and result['step'] == 12 and result['images_seen'] == 12 * 16
  # One program per resolution, however many steps and phases it serves.
  assert result['compilations'] == 2 and _lowerings(events) == 2
  records = [json.loads(line) for line in (full / 'metrics.jsonl').read_text().splitlines()]
  assert [(r['step'], r['resolution'], r['alpha']) for r in records][1:6] == [
      (4, 8, 0.0), (6, 8, 0.5), (8, 8, 1.0), (10, 8, 1.0), (12, 8, 1.0)]
  assert all(np.isfinite(r['d_loss']) for r in records)
  # Parameters carry across stages: 8x8 blocks untouched (Adam moments zero) until their stage, then trained.
  init, at_4 = _state_at(full, config, 4)
  _, at_12 = _state_at(full, config, 12)
  np.testing.assert_array_equal(at_4.g.params['conv_8_a']['kernel'], init.g.params['conv_8_a']['kernel'])
  np.testing.assert_array_equal(at_4.d.params['from_rgb_8']['kernel'], init.d.params['from_rgb_8']['kernel'])
  assert not np.allclose(at_12.g.params['conv_8_a']['kernel'], init.g.params['conv_8_a']['kernel'])
  assert not np.allclose(at_4.g.params['conv_4']['kernel'], init.g.params['conv_4']['kernel'])

  # Resume from the checkpoint in the middle of the fade-in (step 6, alpha 0.5): the same final state.
  resumed = tmp_path / 'resumed'
  resumed.mkdir()
  shutil.copy(full / 'config.json', resumed / 'config.json')
  shutil.copytree(full / 'checkpoints' / '6', resumed / 'checkpoints' / '6')
  events.clear()
  result = loop.train_and_evaluate(config, resumed)
  assert result['step'] == 12 and result['compilations'] == 1 and _lowerings(events) == 1
  _, resumed_12 = _state_at(resumed, config, 12)
  for a, b in zip(jax.tree.leaves(at_12), jax.tree.leaves(resumed_12)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_progressive_divergence_restarts_with_every_schedule_rate_lowered(tmp_path, data_dir):
  """A run resumed at the 8x8 fade-in with absurd per-resolution learning rates diverges, and
  restarts from its last good checkpoint with the schedule's rates lowered, then finishes."""
  healthy = _config(train__steps=4, train__checkpoint_every=2)
  assert loop.train_and_evaluate(healthy, tmp_path)['step'] == 4
  absurd = _config(train__checkpoint_every=2, progressive__g_lr='(1e30, 1e30)', progressive__d_lr='(1e30, 1e30)',
                   train__restarts=1, train__restart_lr_factor=1e-33)
  result = loop.train_and_evaluate(absurd, tmp_path)
  assert result['status'] == 'finished' and result['step'] == 12 and result['restarts'] == 1
  status = json.loads((tmp_path / 'status.json').read_text())
  assert status['status'] == 'finished' and status['restarts'] == 1
  saved = json.loads((tmp_path / 'config.json').read_text())['progressive']
  np.testing.assert_allclose(saved['g_lr'] + saved['d_lr'], [1e-3] * 4, rtol=1e-6)
  _, final = _state_at(tmp_path, absurd, 12)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(final))


@pytest.mark.slow
def test_progressive_collapse_signal_stops_the_run_as_diverged(tmp_path, data_dir):
  # Any d_loss is below 1e9, so the collapse signal fires at the third log (logs every 2 steps).
  config = _config(train__collapse_patience=3, train__collapse_d_loss=1e9)
  with pytest.raises(loop.Diverged, match=r'collapse: d_loss <= 1e\+09 at 3 consecutive logs up to step 6'):
    loop.train_and_evaluate(config, tmp_path)
  status = json.loads((tmp_path / 'status.json').read_text())
  assert status['status'] == 'diverged' and status['message'].startswith('collapse')


def test_speedup_table_times_each_schedule_to_the_baselines_final_fd(tmp_path, capsys):
  speedup = bench_scripts.load('progan_speedup')
  schedules = experiments.load_module('progan').schedules('cpu')

  def write(schedule, seed, evals, status='finished'):
    run = tmp_path / f'{schedule},seed={seed}'
    run.mkdir()
    config = experiments.load_config('progan:cpu')
    config.progressive.update(schedules[schedule])
    config.train.seed = seed
    (run / 'config.json').write_text(config.to_json())
    (run / 'status.json').write_text(json.dumps({'status': status}))
    rows = [dict(step=i + 1, classifier_fd=fd, train_seconds=t, images_seen=32_000 * (i + 1), resolution=16)
            for i, (fd, t) in enumerate(evals)]
    (run / 'eval.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows) + '{"step": 99, "classif')

  write('baseline', 0, [(300, 40), (210, 80), (200, 100)])
  write('baseline', 1, [(300, 40), (194, 90), (190, 120)])  # Target: mean final FD 195 at 110 s.
  write('short', 0, [(300, 30), (195, 60), (190, 90)])  # At the target counts as reaching it.
  write('long', 0, [(400, 20), (250, 50)])
  write('nofade', 0, [(100, 10)], status='running')  # Not finished: left out.
  page = tmp_path / 'progan.md'
  page.write_text('intro\n<!-- speedup begin -->\nold\n<!-- speedup end -->\nrest\n')
  speedup.main([f'--sweep={tmp_path}', '--every_images=64000', '--thresholds=250,195',
                f'--plots={tmp_path / "speedup"}', f'--page={page}', '--section=speedup'])
  text = capsys.readouterr().out
  tables = text.split('\n\nplots: ')[0].strip()
  assert page.read_text() == f'intro\n<!-- speedup begin -->\n{tables}\n<!-- speedup end -->\nrest\n'
  assert "final classifier FD, 195.0 (mean over 2 seed(s)); its training time 110 s" in text
  assert '| short | 0 | 190.0 | 96000 | 90 | 60 (1 of 1 reached) | 0.55 |' in text
  assert '| long | 0 | 250.0 | 64000 | 50 | - (0 of 1 reached) | - |' in text
  assert '| baseline | 0 1 | 195.0 ± 7.1 | 96000 | 110 ± 14 | 90 (1 of 2 reached) | 0.82 |' in text
  assert '| nofade |' not in text
  assert '| baseline | 202 (16, 85 s) |' in text  # Mean FD and seconds at 64k images over both seeds.
  # Time to each threshold: the baseline reaches 250 at 80 / 90 s (mean 85), 195 in one seed (90 s).
  assert '| long | 50 (1 of 1), 0.59 | - (0 of 1), - |' in text
  assert '| short | 60 (1 of 1), 0.71 | 60 (1 of 1), 0.67 |' in text
  assert '| baseline | 85 ± 7 (2 of 2), 1.00 | 90 (1 of 2), 1.00 |' in text
  assert all((tmp_path / f'speedup_fd_{kind}.png').stat().st_size > 0 for kind in ('vs_images', 'vs_time'))
