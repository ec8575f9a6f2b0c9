"""The image-to-image family: reconstruction terms, their wiring into the one step, the models, the
paired data source and the evaluation of translations.

Wiring set-up: G outputs w * source (one learned scalar w; z ignored), D scores a pair by
a . image + b . source + c . (image * source) (the product term tells a matched pair from a
mismatched one), both players take SGD steps, so each update is known in closed form and
a term fed the wrong batch (the first D step's pairs instead of the G update's, or another
example's target) changes the numbers.
"""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import losses
from gan_jax.data import paired
from gan_jax.metrics import classifier as classifier_lib
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.models import translation
from gan_jax import sample_grids
from gan_jax.train import state as state_lib
from gan_jax.train import steps



@pytest.fixture
def x64():
  """Float64 inside the test (gradients compared to analytic forms at 1e-10)."""
  with jax.enable_x64(True):
    yield

SHAPE = (4, 4, 1)
BATCH, D_STEPS = 5, 2


def _central_gradient(f, x, eps=1e-6):
  grad = np.zeros_like(x)
  for i in np.ndindex(x.shape):
    step = np.zeros_like(x)
    step[i] = eps
    grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
  return grad


@pytest.mark.parametrize('term', ['l1', 'l2', 'features'])
def test_reconstruction_gradients_match_analytic_forms_and_finite_differences(term, x64):
  rng = np.random.default_rng(0)
  outputs, targets = rng.normal(size=(3, *SHAPE)), rng.normal(size=(3, *SHAPE))
  kernel = rng.normal(size=(int(np.prod(SHAPE)), 6))
  feature_fn = lambda x: x.reshape(x.shape[0], -1) @ kernel  # Linear features: an analytic gradient.
  fn = {'l1': losses.l1_distance, 'l2': losses.l2_distance,
        'features': lambda o, t: losses.feature_distance(feature_fn, o, t)}[term]
  grad = np.asarray(jax.grad(fn)(jnp.asarray(outputs), jnp.asarray(targets)))
  n = outputs.size
  diff = outputs - targets
  analytic = {'l1': np.sign(diff) / n, 'l2': 2 * diff / n,
              'features': (2 * (diff.reshape(3, -1) @ kernel) @ kernel.T / (3 * 6)).reshape(outputs.shape)}[term]
  np.testing.assert_allclose(grad, analytic, rtol=1e-9, atol=1e-12)
  numeric = _central_gradient(lambda o: float(fn(jnp.asarray(o), jnp.asarray(targets))), outputs)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
  if term == 'features':  # The targets' features are constants.
    np.testing.assert_array_equal(jax.grad(fn, argnums=1)(jnp.asarray(outputs), jnp.asarray(targets)), 0.0)


def test_reconstruction_weights_the_enabled_terms_and_reports_them_unweighted():
  rng = np.random.default_rng(1)
  outputs, targets = jnp.asarray(rng.normal(size=(2, *SHAPE))), jnp.asarray(rng.normal(size=(2, *SHAPE)))
  total, terms = losses.reconstruction(outputs, targets, l1=3.0, l2=0.0, features=0.5, feature_fn=lambda x: x[:, 0, 0])
  assert set(terms) == {'g_l1', 'g_features'}
  np.testing.assert_allclose(terms['g_l1'], np.mean(np.abs(outputs - targets)))
  np.testing.assert_allclose(total, 3.0 * terms['g_l1'] + 0.5 * terms['g_features'])


class ScaleG(nn.Module):
  """(z, source [B, 4, 4, 1]) -> w * source; z is ignored."""

  @nn.compact
  def __call__(self, z, train=True, source=None):
    return self.param('w', lambda _: jnp.asarray(0.3)) * source


A, B, C = (np.linspace(-1.0, 1.0, int(np.prod(SHAPE))), np.linspace(0.5, -0.5, int(np.prod(SHAPE))),
           np.cos(np.arange(int(np.prod(SHAPE)))))


class PairD(nn.Module):
  """(image, source) -> a . image + b . source + c . (image * source) per example, [B, 1] (one 'patch')."""

  @nn.compact
  def __call__(self, x, train=True, source=None, features=False):
    a, b, c = (self.param(name, lambda _, v=v: jnp.asarray(v)) for name, v in zip('abc', (A, B, C)))
    x, source = x.reshape(x.shape[0], -1), source.reshape(source.shape[0], -1)
    return (x @ a + source @ b + (x * source) @ c)[:, None]


def _wiring_setup(adversarial=1.0, l1=0.0, l2=0.0, d_lr=0.0, g_lr=1.0):
  g, d = ScaleG(), PairD()
  g_opt, d_opt = optax.sgd(g_lr), optax.sgd(d_lr)
  state = state_lib.init(g, d, g_opt, d_opt, 2, SHAPE, jax.random.key(0), ema=False, source_shape=SHAPE)
  state = jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, state)
  options = steps.StepOptions(z_dim=2, translation=True, adversarial_weight=adversarial, l1_weight=l1, l2_weight=l2)
  step = jax.jit(steps.make_train_step(g, d, g_opt, d_opt, losses.get('wasserstein'), options))
  rng = np.random.default_rng(2)
  source = rng.normal(size=(D_STEPS, BATCH, *SHAPE))
  target = rng.normal(size=(D_STEPS, BATCH, *SHAPE))
  batch = {'image': jnp.asarray(target), 'source': jnp.asarray(source), 'label': jnp.zeros((D_STEPS, BATCH), jnp.int32)}
  return state, step, batch, source, target


def test_g_reconstruction_is_taken_against_the_g_updates_own_pairs(x64):
  """The non-adversarial G update is SGD on 100 * mean |w s - t| over the last pairs: dw = -100 * mean(sign(w s - t) s)."""
  state, step, batch, source, target = _wiring_setup(adversarial=0.0, l1=100.0)
  new, metrics = step(state, batch, jax.random.key(3))
  w = 0.3
  s, t = source[-1], target[-1]
  np.testing.assert_allclose(metrics['g_l1'], np.mean(np.abs(w * s - t)), rtol=1e-12)
  np.testing.assert_allclose(new.g.params['w'], w - 100.0 * np.mean(np.sign(w * s - t) * s), rtol=1e-10)
  shuffled = np.mean(np.abs(w * s - t[::-1]))  # A term fed another example's target would read this.
  assert abs(float(metrics['g_l1']) - shuffled) > 1e-3


def test_adversarial_and_reconstruction_gradients_add_with_their_weights(x64):
  """G's update is -(adversarial * d(-mean D(w s, s))/dw + l2 * d mean (w s - t)^2 / dw) for the WGAN loss."""
  state, step, batch, source, target = _wiring_setup(adversarial=0.5, l2=2.0)
  new, metrics = step(state, batch, jax.random.key(3))
  s, t, w = source[-1].reshape(BATCH, -1), target[-1].reshape(BATCH, -1), 0.3
  adversarial_grad = -np.mean(s @ A + (s * s) @ C)  # d/dw of -mean_i D(w s_i, s_i)
  l2_grad = np.mean(2 * (w * s - t) * s)
  np.testing.assert_allclose(new.g.params['w'], w - (0.5 * adversarial_grad + 2.0 * l2_grad), rtol=1e-10)
  np.testing.assert_allclose(metrics['g_l2'], np.mean((w * s - t) ** 2), rtol=1e-12)


def test_d_judges_each_image_with_its_own_input(x64):
  """d_real / d_fake (D frozen: learning rate 0) are the means over the D steps of D(target_k, source_k)
  and D(w source_k, source_k): D sees each pair's own input beside the real and the generated image."""
  state, step, batch, source, target = _wiring_setup(adversarial=1.0)
  _, metrics = step(state, batch, jax.random.key(3))
  flat = lambda x: x.reshape(D_STEPS, BATCH, -1)
  d = lambda x, s: flat(x) @ A + flat(s) @ B + (flat(x) * flat(s)) @ C
  np.testing.assert_allclose(metrics['d_real'], np.mean(d(target, source)), rtol=1e-10)
  np.testing.assert_allclose(metrics['d_fake'], np.mean(d(0.3 * source, source)), rtol=1e-10)


def test_unet_keeps_the_known_pixels_of_an_inpainting_input():
  images = np.asarray(data_lib.load_images('mnist', 'test')[0][:4])
  inputs = jnp.asarray(paired.make_inputs('inpaint_square', images, split='test'), jnp.float32) / 127.5 - 1.0
  g = translation.UNet((28, 28, 1), channels=4, composite=True)
  z = jnp.zeros((4, 3))
  variables = g.init(jax.random.key(0), z, train=False, source=inputs)
  out = np.asarray(g.apply(variables, z, train=False, source=inputs))
  known = np.asarray(inputs[..., -1:] < 0)
  assert out.shape == (4, 28, 28, 1) and 0 < known.mean() < 1
  np.testing.assert_array_equal(out[known[..., 0]], np.asarray(inputs[..., :1])[known[..., 0]])


def test_patch_discriminator_gives_one_logit_per_patch_and_reads_the_input():
  d = translation.PatchDiscriminator(channels=4, norm='none')
  x, source = jnp.zeros((2, 28, 28, 1)), jnp.zeros((2, 7, 7, 1))
  variables = d.init(jax.random.key(0), x, train=False, source=source)
  logits = d.apply(variables, x, train=False, source=source)
  assert logits.shape == (2, 49)
  other = d.apply(variables, x, train=False, source=source.at[0].set(1.0))
  assert not np.allclose(other[0], logits[0]) and np.allclose(other[1], logits[1])


def _task_config(task, **eval_overrides):
  c = config_lib.base()
  c.data.task, c.model.name = task, 'unet'
  c.eval.update(eval_overrides)
  return c


def test_a_task_source_draws_each_target_with_its_own_input():
  c = _task_config('sr4')
  source = data_lib.make_source(c.data)
  batch = source.draw_host(np.random.default_rng(0), 16)
  assert source.source_shape == (7, 7, 1) and batch['source'].shape == (16, 7, 7, 1)
  targets = np.rint((batch['image'] + 1.0) * 127.5).astype(np.uint8)
  np.testing.assert_array_equal(np.rint((batch['source'] + 1.0) * 127.5).astype(np.uint8),
                                paired.area_downsample(targets, 4))
  drawn = source.draw(jax.tree.map(jnp.asarray, source.arrays), jax.random.key(0), 8)
  block_means = np.asarray(drawn['image']).reshape(8, 7, 4, 7, 4, 1).mean(axis=(2, 4))  # Up to uint8 rounding.
  np.testing.assert_allclose(drawn['source'], block_means, atol=0.51 / 127.5)


class Replay:
  """generate(z, inputs) -> the evaluated pairs' targets in order, plus `offset` (a known error); each
  pass of the evaluator over the pairs starts again from the first."""

  def __init__(self, targets: np.ndarray, offset: float):
    self.targets, self.offset, self.start = targets.astype(np.float32) / 127.5 - 1.0, offset, 0

  def __call__(self, z, inputs):
    if self.start >= len(self.targets):  # A new pass over the pairs.
      self.start = 0
    out = self.targets[self.start:self.start + len(inputs)]
    out = np.concatenate([out, np.repeat(out[-1:], len(inputs) - len(out), 0)]) if len(out) < len(inputs) else out
    self.start += len(inputs)
    return jnp.asarray(out + self.offset)


def test_evaluation_scores_outputs_against_their_own_targets():
  """Outputs equal to the targets + 0.2 have PSNR 10 log10(1 / 0.1^2) = 20 dB; outputs equal to the
  targets keep their labels as often as the classifier reads the test images right."""
  c = _task_config('edges', metrics=('reconstruction', 'class_accuracy'), num_samples=1200, batch_size=500)
  source = data_lib.make_source(c.data)
  evaluator = evaluator_lib.Evaluator(c, source)
  pairs = evaluator.pairs
  assert len(pairs.inputs) == 1200
  results = evaluator(Replay(pairs.targets, 0.2), jax.random.key(0))
  np.testing.assert_allclose(results['psnr'], 20.0, rtol=1e-5)
  exact = evaluator(Replay(pairs.targets, 0.0), jax.random.key(0))
  assert exact['ssim'] == pytest.approx(1.0, abs=1e-6)
  clf = classifier_lib.load('mnist', 'models')
  assert exact['class_accuracy'] == pytest.approx(classifier_lib.accuracy(clf, pairs.targets, pairs.labels), abs=1e-9)
  assert exact['class_accuracy'] > 0.95


def test_bicubic_baseline_needs_a_super_resolution_task():
  c = _task_config('edges', metrics=('bicubic',))
  with pytest.raises(Exception, match='super-resolution'):
    evaluator_lib.Evaluator(c, data_lib.make_source(c.data))


def test_translation_grid_puts_input_output_target_side_by_side():
  inputs = np.full((2, 7, 7, 2), -1.0, np.float32)
  outputs, targets = np.zeros((2, 28, 28, 1), np.float32), np.ones((2, 28, 28, 1), np.float32)
  grid = sample_grids.translation_grid(inputs, outputs, targets)
  assert grid.shape == (6, 28, 28, 1)
  np.testing.assert_array_equal(grid[[0, 3]], -1.0)
  np.testing.assert_array_equal(grid[[1, 4]], 0.0)
  np.testing.assert_array_equal(grid[[2, 5]], 1.0)


# exp -> (the fraction of its first logged value the L1 term must fall below, (metric, floor) at the end).
# Inpainting's L1 is a loss on the hole alone (a quarter of the image at most), and a masked digit keeps
# much of its class, so its floor is on PSNR: an untrained G fills the hole with grey, MSE ~0.25 on
# a quarter of the pixels, ~12 dB.
LEARNING = {'pix2pix:smoke': (0.5, ('class_accuracy', 0.8)), 'srgan:smoke': (0.5, ('class_accuracy', 0.7)),
            'inpainting:smoke': (0.7, ('psnr', 13.5))}


@pytest.mark.slow  # ~50 s each.
@pytest.mark.parametrize('exp', list(LEARNING))
def test_short_runs_learn_their_task(exp, tmp_path, data_dir):
  """200 iterations of each smoke experiment (tiny U-Net, batch 16): the L1 term falls by a clear margin and
  the evaluation on 1000 test pairs clears a floor an untrained G does not reach."""
  from gan_jax import experiments
  from gan_jax.train import loop
  overrides = [('train.steps', '200'), ('train.log_every', '10'), ('eval.eval_every', '200'),
               ('eval.metrics', 'reconstruction,class_accuracy'), ('eval.num_samples', '1000'),
               ('log.wandb', 'disabled'), ('data.dir', str(data_dir))]
  result = loop.train_and_evaluate(experiments.load_config(exp, overrides), tmp_path)
  assert result['status'] == 'finished'
  rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  first, last = rows[0]['g_l1'], np.mean([row['g_l1'] for row in rows[-3:]])
  fraction, (metric, floor) = LEARNING[exp]
  assert last < fraction * first
  assert result['eval'][metric] > floor
  assert (tmp_path / 'samples' / 'step_200.png').exists()


@pytest.mark.parametrize('exp, overrides, message', [
    ('pix2pix:smoke', [('model.name', 'dcgan')], 'model unet and an image-to-image task'),
    ('vanilla:smoke', [('model.name', 'unet')], 'model unet and an image-to-image task'),
    ('pix2pix:smoke', [('translate.l1', '-1')], r'translate.l1 must be >= 0'),
    ('pix2pix:smoke', [('translate.adversarial', '0'), ('translate.l1', '0')], "every term of G's loss is off"),
    ('vanilla:smoke', [('translate.l1', '3')], r'translate.\* weights apply to image-to-image runs'),
    ('pix2pix:smoke', [('data.task', 'colorize')], "unknown image-to-image task 'colorize'"),
    ('pix2pix:smoke', [('data.split', 'validation')], "split 'validation'"),
])
def test_bad_translation_configs_are_clear_errors(exp, overrides, message, data_dir):
  from gan_jax import experiments
  from gan_jax.errors import UserError
  from gan_jax.train import run as run_lib
  with pytest.raises(UserError, match=message):
    run_lib.build_run(experiments.load_config(exp, overrides))


# CycleGAN: (a, b) channel pairs; translate((a, b)) = (G_BA(b), G_AB(a)).
def _swap(x):
  return jnp.concatenate([x[..., 1:], x[..., :1]], -1)


def test_cycle_and_identity_terms_vanish_for_identity_generators():
  """G_AB(a) = a and G_BA(b) = b make translate the channel swap: both cycles and identities are exact."""
  pairs = jnp.asarray(np.random.default_rng(4).uniform(-1, 1, (3, 4, 4, 2)))
  total, terms = losses.cycle_consistency(_swap, pairs, _swap(pairs), cycle=10.0, identity=5.0)
  assert float(total) == 0.0 and set(terms) == {'g_cycle', 'g_identity'}
  _, shifted = losses.cycle_consistency(lambda x: _swap(x) + 0.25, pairs, _swap(pairs) + 0.25, cycle=1.0, identity=1.0)
  # Two shifted applications in the cycle, one in the identity.
  np.testing.assert_allclose([shifted['g_cycle'], shifted['g_identity']], [0.5, 0.25], rtol=1e-6)


def test_cycle_consistency_gradient_matches_finite_differences(x64):
  """Through both applications of G: d/dw of L1(T_w(T_w(x)), x) + L1(T_w(swap x), x) with T_w(x) = tanh(w * swap x)."""
  pairs = jnp.asarray(np.random.default_rng(5).uniform(-1, 1, (2, 3, 3, 2)))

  def objective(w):
    translate = lambda x: jnp.tanh(w * _swap(x))
    return losses.cycle_consistency(translate, pairs, translate(pairs), cycle=2.0, identity=0.5)[0]

  w = np.array([[0.7, -1.3]])
  grad = np.asarray(jax.grad(objective)(jnp.asarray(w)))
  np.testing.assert_allclose(grad, _central_gradient(lambda v: float(objective(jnp.asarray(v))), w), rtol=1e-6)


def test_a_cyclegan_step_trains_both_generators_and_both_discriminators(data_dir):
  from gan_jax import experiments
  from gan_jax.train import run as run_lib
  run = run_lib.build_run(experiments.load_config('cyclegan:smoke', [('data.dir', str(data_dir))]))
  state = run.init_state(jax.random.key(0))
  batch = run.source.draw_host(np.random.default_rng(0), 16)
  assert batch['image'].shape == (16, 28, 28, 2) and 'source' not in batch
  new, metrics = jax.jit(run.train_step)(state, jax.tree.map(lambda a: a[None], batch), jax.random.key(1))
  assert {'g_cycle', 'g_identity'} <= set(metrics)
  for player, networks in (('g', ('a_to_b', 'b_to_a')), ('d', ('d_a', 'd_b'))):
    for network in networks:
      before, after = getattr(state, player).params[network], getattr(new, player).params[network]
      changed = jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.any(x != y)), before, after))
      assert all(changed), f'{player}.{network} was not updated'


def test_cycle_discriminators_judge_each_domain_by_its_own_channel():
  d = translation.CycleDiscriminators(channels=4, norm='none')
  x = jnp.zeros((2, 28, 28, 2))
  variables = d.init(jax.random.key(0), x, train=False)
  base = d.apply(variables, x, train=False)
  changed_a = d.apply(variables, x.at[..., 0].set(0.5), train=False)
  assert base.shape == (2, 98)
  assert not np.allclose(changed_a[:, :49], base[:, :49]) and np.allclose(changed_a[:, 49:], base[:, 49:])


def test_unpaired_edges_train_on_disjoint_halves_and_test_on_true_pairs(data_dir):
  from gan_jax.data import unpaired
  images, _ = data_lib.load_images('mnist', 'train')
  train, _ = unpaired.load('cycle_edges', 'mnist', 'train')
  half = len(images) // 2
  assert train.shape == (half, 28, 28, 2)
  np.testing.assert_array_equal(train[:50, ..., :1], paired.make_inputs('edges', images[:50]))  # A: first half.
  np.testing.assert_array_equal(train[:50, ..., 1:], images[half:half + 50])  # B: second half.
  test, labels = unpaired.load('cycle_edges', 'mnist', 'test')
  np.testing.assert_array_equal(test[..., :1], paired.make_inputs('edges', test[..., 1:], split='test'))
  np.testing.assert_array_equal(labels, data_lib.load_images('mnist', 'test')[1])


def test_cycle_metric_of_a_perfect_translator(data_dir):
  """On true test pairs, G returning the pair itself ((G_BA(b), G_AB(a)) = (a, b)) has zero cycle error,
  zero FD in both directions, and keeps the labels as often as the classifier reads test digits right."""
  c = config_lib.base()
  c.data.task, c.model.name = 'cycle_edges', 'unet'
  c.eval.update(dict(metrics=('cycle',), num_samples=1500, batch_size=500))
  evaluator = evaluator_lib.Evaluator(c, data_lib.make_source(c.data))
  results = evaluator(lambda z, x: x, jax.random.key(0))
  assert results['cycle_l1_a'] == 0.0 and results['cycle_l1_b'] == 0.0
  assert abs(results['fd_ab']) < 1e-6 and abs(results['fd_ba']) < 1e-6
  test_images, test_labels = data_lib.load_images('mnist', 'test')
  clf = classifier_lib.load('mnist', 'models')
  assert results['accuracy_ab'] == pytest.approx(classifier_lib.accuracy(clf, test_images[:1500], test_labels[:1500]))


@pytest.mark.slow  # ~60 s.
def test_a_short_cyclegan_run_learns_its_cycles(tmp_path, data_dir):
  """200 iterations of cyclegan:smoke: the cycle term falls by half and both cycles are closer than an
  untrained pair of U-Nets leaves them (their outputs start near grey, ~1 from most pixels)."""
  from gan_jax import experiments
  from gan_jax.train import loop
  overrides = [('train.steps', '200'), ('train.log_every', '10'), ('eval.eval_every', '200'), ('eval.metrics', 'cycle'),
               ('eval.num_samples', '1000'), ('log.wandb', 'disabled'), ('data.dir', str(data_dir))]
  result = loop.train_and_evaluate(experiments.load_config('cyclegan:smoke', overrides), tmp_path)
  rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert np.mean([row['g_cycle'] for row in rows[-3:]]) < 0.5 * rows[0]['g_cycle']
  assert result['eval']['cycle_l1_a'] < 0.3 and result['eval']['cycle_l1_b'] < 0.3
  assert (tmp_path / 'samples' / 'step_200.png').exists()
