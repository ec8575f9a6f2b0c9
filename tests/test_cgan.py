"""Class-conditional GANs: label routing, the projection and AC-GAN gradients, bad labels, the class
metrics against reference formulas, and a short conditional run end to end."""
import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from PIL import Image

from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import experiments
from gan_jax import losses
from gan_jax import models
from gan_jax.errors import UserError
from gan_jax.metrics import classifier
from gan_jax.metrics import evaluator
from gan_jax.models import conditioning
from gan_jax import from_checkpoint
from gan_jax import sample_grids
from gan_jax.train import loop
from gan_jax.train import run as run_lib

SHAPE = (28, 28, 1)
NUM_CLASSES = 10
MODELS_DIR = pathlib.Path(__file__).resolve().parents[1] / 'models'


def _model_config(g_cond='cbn', d_cond='projection'):
  c = config_lib.base()
  c.model.g_channels = c.model.d_channels = 4
  c.model.z_dim = 8
  c.model.g_cond, c.model.d_cond = g_cond, d_cond
  return c.model


@jax.jit
def _perturbed(variables, key):
  """Every param moved by N(0, 0.3^2): the zero-initialised CBN tables then depend on the label."""
  leaves, tree = jax.tree.flatten(variables['params'])
  keys = jax.random.split(key, len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  return {**variables, 'params': params}


@pytest.mark.parametrize('g_cond', ['concat', 'cbn'])
def test_generator_label_routing(g_cond):
  g, _ = models.build(_model_config(g_cond, 'projection'), SHAPE, num_classes=NUM_CLASSES)
  z = jax.random.normal(jax.random.key(0), (4, 8))
  labels = jnp.array([0, 3, 3, 9], jnp.int32)
  init = jax.jit(lambda key, z, labels: g.init(key, z, train=False, labels=labels))
  variables = _perturbed(init(jax.random.key(1), z, labels), jax.random.key(2))
  generate = jax.jit(lambda z, y: g.apply(variables, z, train=False, labels=y))
  base = generate(z, labels)
  np.testing.assert_array_equal(base, generate(z, labels))  # Same z and label: the same image.
  other = generate(z, labels.at[1].set(5))  # Only example 1's label changes: only its image does.
  assert float(jnp.max(jnp.abs(other[1] - base[1]))) > 1e-3
  np.testing.assert_array_equal(np.delete(other, 1, axis=0), np.delete(base, 1, axis=0))
  # The same z with the same label gives the same image wherever it sits in the batch.
  swapped = generate(z[jnp.array([0, 2, 1, 3])], labels)
  np.testing.assert_allclose(swapped[1], base[2], atol=1e-5)


@pytest.mark.parametrize('d_cond', ['concat', 'projection', 'acgan'])
def test_discriminator_label_routing(d_cond):
  _, d = models.build(_model_config('concat', d_cond), SHAPE, num_classes=NUM_CLASSES)
  x = jax.random.uniform(jax.random.key(0), (3, *SHAPE), minval=-1, maxval=1)
  labels = jnp.array([1, 2, 7], jnp.int32)
  init = jax.jit(lambda key, x, labels: d.init(key, x, train=False, labels=labels))
  variables = _perturbed(init(jax.random.key(1), x, labels), jax.random.key(2))
  critic = jax.jit(lambda y: d.apply(variables, x, train=False, labels=y))
  changed = critic(labels.at[0].set(4)) - critic(labels)
  if d_cond == 'acgan':  # The adversarial logit does not read the label; the class head does.
    np.testing.assert_array_equal(changed, 0.0)
    logits, class_logits = d.apply(variables, x, train=False, labels=labels, classes=True)
    assert logits.shape == (3,) and class_logits.shape == (3, NUM_CLASSES)
  else:
    assert abs(float(changed[0])) > 1e-4
    np.testing.assert_array_equal(changed[1:], 0.0)


def test_projection_gradient_is_the_feature_row_of_the_label():
  """d/dE sum_i <E[y_i], phi_i> = sum_{i: y_i = c} phi_i for row c; d/dphi_i = E[y_i] (float64)."""
  with jax.enable_x64(True):
    module = conditioning.Projection(NUM_CLASSES)
    features = jax.random.normal(jax.random.key(0), (5, 7), jnp.float64)
    labels = jnp.array([2, 0, 2, 9, 4], jnp.int32)
    variables = jax.tree.map(lambda a: a.astype(jnp.float64), module.init(jax.random.key(1), features, labels))
    table = np.asarray(variables['params']['class_embedding']['embedding'])
    total = lambda params, phi: jnp.sum(module.apply({'params': params}, phi, labels))
    grad_params, grad_features = jax.grad(total, argnums=(0, 1))(variables['params'], features)
    expected = np.zeros_like(table)
    np.add.at(expected, np.asarray(labels), np.asarray(features))
    np.testing.assert_allclose(grad_params['class_embedding']['embedding'], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_features, table[np.asarray(labels)], rtol=1e-12, atol=1e-12)
    # And the value: the row of each label dotted with that example's features.
    np.testing.assert_allclose(module.apply(variables, features, labels),
                               np.sum(table[np.asarray(labels)] * np.asarray(features), axis=1), rtol=1e-12)


def test_projection_discriminator_gradient_matches_finite_differences():
  """Through the whole D: d sum(logits) / d embedding = the label's row holds the summed features.

  D returns float32 logits, so the central differences use a large step: the logit is linear in
  the embedding table, which makes them exact up to float32 rounding of the output.
  """
  _, d = models.build(_model_config('concat', 'projection'), SHAPE, num_classes=NUM_CLASSES)
  x = jax.random.uniform(jax.random.key(0), (2, *SHAPE), jnp.float32, -1, 1)
  labels = jnp.array([3, 3], jnp.int32)
  variables = d.init(jax.random.key(1), x, train=False, labels=labels)

  @jax.jit
  def total(table):
    params = {**variables['params'], 'Projection_0': {'class_embedding': {'embedding': table}}}
    return jnp.sum(d.apply({**variables, 'params': params}, x, train=False, labels=labels))

  table = variables['params']['Projection_0']['class_embedding']['embedding']
  grad = np.asarray(jax.jit(jax.grad(total))(table))
  _, features = d.apply(variables, x, train=False, labels=labels, features=True)
  np.testing.assert_allclose(grad[3], np.asarray(features).sum(axis=0), rtol=1e-6, atol=1e-7)
  assert not np.any(np.delete(grad, 3, axis=0))
  eps = 0.5
  for j in (0, 17, table.shape[1] - 1):
    e = jnp.zeros_like(table).at[3, j].set(eps)
    numeric = (total(table + e) - total(table - e)) / (2 * eps)
    assert abs(float(numeric) - grad[3, j]) < 1e-4 * max(1.0, abs(grad[3, j]))


def test_acgan_loss_gradient_matches_analytic_and_finite_differences():
  """d CE / d logits = (softmax(logits) - onehot(y)) / B, in float64."""
  with jax.enable_x64(True):
    logits = jax.random.normal(jax.random.key(0), (6, NUM_CLASSES), jnp.float64) * 2.0
    labels = jnp.array([0, 1, 9, 9, 4, 2], jnp.int32)
    value = losses.class_cross_entropy(logits, labels)
    assert value.dtype == jnp.float64
    log_p = np.asarray(jax.nn.log_softmax(logits))
    np.testing.assert_allclose(value, -np.mean(log_p[np.arange(6), np.asarray(labels)]), rtol=1e-12)
    grad = np.asarray(jax.grad(losses.class_cross_entropy)(logits, labels))
    expected = (np.exp(log_p) - np.eye(NUM_CLASSES)[np.asarray(labels)]) / 6
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-12)
    eps = 1e-6
    for i, k in ((0, 0), (2, 9), (5, 3)):
      e = jnp.zeros_like(logits).at[i, k].set(eps)
      numeric = (losses.class_cross_entropy(logits + e, labels) - losses.class_cross_entropy(logits - e, labels)) / (2 * eps)
      assert abs(float(numeric) - grad[i, k]) < 1e-8


def _run_config(exp='cgan:smoke', **overrides):
  items = [('log.wandb', 'disabled')] + [(k.replace('__', '.'), str(v)) for k, v in overrides.items()]
  return experiments.load_config(exp, items)


@pytest.mark.slow  # Compiles full train steps / classifies 4000 images.
def test_acgan_step_gradients_include_the_weighted_class_terms(data_dir):
  """One D update with acgan.weight w: D's gradient is that of (adversarial + w * CE); the class head's
  gradient scales with w, and G's loss reports the class term."""
  grads = {}
  for weight in (1.0, 3.0):
    run = run_lib.build_run(_run_config('cgan:smoke,acgan', acgan__weight=weight))
    state = run.init_state(jax.random.key(0))
    batch = run.source.draw(run.source.arrays, jax.random.key(1), 16)
    batch = jax.tree.map(lambda a: a[None], batch)
    new_state, metrics = jax.jit(run.train_step)(state, batch, jax.random.key(2))
    assert {'d_acgan', 'g_acgan'} <= set(metrics) and np.isfinite(float(metrics['d_acgan']))
    # Adam's first update is -lr * sign(grad) for any scale: compare the raw first moments instead.
    mu = new_state.d.opt_state.inner_state[0].mu
    grads[weight] = np.asarray(mu['class_head']['kernel'])
  # The class head gets gradient only from the class terms: its first moment scales with the weight.
  np.testing.assert_allclose(grads[3.0], 3.0 * grads[1.0], rtol=1e-4, atol=1e-6)


def test_bad_labels_are_clear_errors():
  with pytest.raises(UserError, match='label 10 is out of range.*0..9'):
    conditioning.check_labels(np.array([0, 10]), 2, NUM_CLASSES)
  with pytest.raises(UserError, match='label -1 is out of range'):
    conditioning.parse_labels('-1', 3, NUM_CLASSES)
  with pytest.raises(UserError, match='one label per sample \\(3\\)'):
    conditioning.check_labels(np.array([0, 1]), 3, NUM_CLASSES)
  with pytest.raises(UserError, match='--labels gives 2 labels for --num_samples=3'):
    conditioning.parse_labels('0,1', 3, NUM_CLASSES)
  with pytest.raises(UserError, match="expected 'balanced' or comma-separated integers"):
    conditioning.parse_labels('zero', 3, NUM_CLASSES)
  np.testing.assert_array_equal(conditioning.parse_labels('balanced', 12, NUM_CLASSES), np.arange(12) % 10)
  np.testing.assert_array_equal(conditioning.parse_labels('7', 3, NUM_CLASSES), [7, 7, 7])
  np.testing.assert_array_equal(conditioning.parse_labels('0,1,2', 3, NUM_CLASSES), [0, 1, 2])


@pytest.mark.parametrize('change, message', [
    (dict(g_cond='cbn', d_cond=''), 'conditions both players'),
    (dict(g_cond='film', d_cond='projection'), "unknown model.g_cond 'film'"),
    (dict(g_cond='cbn', d_cond='aux'), "unknown model.d_cond 'aux'"),
])
def test_bad_conditioning_config(change, message):
  c = _model_config(**change)
  with pytest.raises(UserError, match=message):
    models.build(c, SHAPE, num_classes=NUM_CLASSES)


def test_conditioning_needs_labels_and_dcgan():
  with pytest.raises(UserError, match='needs a labelled data set'):
    models.build(_model_config(), SHAPE, num_classes=0)
  c = _model_config()
  c.name = 'mlp'
  c.d_norm = 'none'
  with pytest.raises(UserError, match='model mlp is unconditional'):
    models.build(c, (2,), num_classes=NUM_CLASSES)


def test_class_metrics_need_a_conditional_model():
  c = config_lib.base()
  c.eval.metrics = ('class_accuracy',)
  source = data_lib.Source(name='mnist', shape=SHAPE, num_classes=10, arrays={})
  with pytest.raises(UserError, match="'class_accuracy' needs a class-conditional model"):
    evaluator.Evaluator(c, source)
  c.model.g_cond, c.model.d_cond = 'cbn', 'projection'
  c.eval.classifier = 'fashion_mnist'
  with pytest.raises(UserError, match='needs the classifier of the training data'):
    evaluator.Evaluator(c, source)


def test_intra_class_fd_matches_the_scipy_formula():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, 600)
  real = rng.normal(size=(600, 4)) + labels[:, None]
  fake = rng.normal(size=(600, 4)) * 1.3 + 0.5 * labels[:, None]

  def reference(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)

  expected = np.mean([reference(fake[labels == c], real[labels == c]) for c in range(3)])
  got = evaluator.intra_class_fd(evaluator.class_stats(fake, labels, 3), evaluator.class_stats(real, labels, 3))
  assert abs(got - expected) < 1e-8 * expected
  with pytest.raises(UserError, match='intra_fd: class 0 has 0 generated'):
    evaluator.intra_class_fd(evaluator.class_stats(fake[:1], np.array([2]), 3), evaluator.class_stats(real, labels, 3))


@pytest.fixture(scope='module')
def models_dir(tmp_path_factory) -> pathlib.Path:
  directory = tmp_path_factory.mktemp('models')
  for path in classifier.model_paths('mnist', str(MODELS_DIR)):
    if not pathlib.Path(path).exists():
      pytest.skip(f'{path} is absent; make it with: python -m gan_jax.metrics.classifier --dataset=mnist')
    shutil.copy(path, directory)
  return directory


@pytest.mark.slow  # Classifies 4000 images and the real test subset.
def test_class_metrics_of_real_images_by_label_and_of_a_label_blind_generator(models_dir, data_dir):
  """Real test images of the requested class score the classifier's accuracy and a small intra-class FD;
  a generator that ignores its labels scores ~10% and a large intra-class FD."""
  c = _run_config(eval__metrics='class_accuracy,intra_fd', eval__num_samples=2000, eval__num_real=2000,
                  eval__models_dir=str(models_dir))
  source = data_lib.make_source(c.data)
  ev = evaluator.Evaluator(c, source)
  images, labels = data_lib.load_images('mnist', 'train')
  by_class = [jnp.asarray(images[labels == k][:1000]) for k in range(NUM_CLASSES)]
  table = jnp.stack(by_class)  # [10, 1000, 28, 28, 1]

  @jax.jit
  def real_of_label(z, y):
    index = (jax.scipy.special.ndtr(z[:, 0]) * 1000).astype(jnp.int32).clip(0, 999)
    return table[y, index].astype(jnp.float32) / 127.5 - 1.0

  blind = jax.jit(lambda z, y: real_of_label(z, jnp.zeros_like(y) + 3))
  good = ev(real_of_label, jax.random.key(0))
  bad = ev(blind, jax.random.key(0))
  assert good['class_accuracy'] > 0.97 and 0.07 < bad['class_accuracy'] < 0.14, (good, bad)
  assert bad['intra_fd'] > 20 * good['intra_fd'], (good, bad)


@pytest.mark.slow
def test_cgan_smoke_end_to_end(tmp_path, data_dir, models_dir):
  """cgan:smoke with AC-GAN: class-by-row grid, labelled samples, class metrics, and the label learnt:
  D's auxiliary classifier (trained on fakes too, which is quicker to respond) reads the requested
  class in G's samples better than chance."""
  config = _run_config('cgan:smoke,acgan', acgan__d_fake='true', train__steps=300, train__log_every=100, train__sample_every=300,
                       train__checkpoint_every=300, data__batch_size=32, eval__models_dir=str(models_dir),
                       eval__metrics='class_accuracy,intra_fd', eval__num_samples=500, eval__num_real=500)
  result = loop.train_and_evaluate(config, tmp_path)
  assert result['status'] == 'finished'
  grid = np.asarray(Image.open(tmp_path / 'samples' / 'step_300.png'))
  assert grid.shape == (NUM_CLASSES * 29 + 1, sample_grids.CLASS_GRID_COLUMNS * 29 + 1)
  records = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert records[-1]['d_acgan'] < 0.8 * records[0]['d_acgan'], records
  assert records[-1]['g_acgan'] < 0.85 * np.log(NUM_CLASSES), records  # Chance: log(10) nats.
  assert 0.0 <= result['eval']['class_accuracy'] <= 1.0 and np.isfinite(result['eval']['intra_fd'])
  out = from_checkpoint.sample(config, tmp_path, 7, tmp_path / 's.npz', '0,1,2,3,4,5,6')
  with np.load(out) as f:
    assert f['samples'].shape == (7, *SHAPE) and f['labels'].dtype == np.int32
    np.testing.assert_array_equal(f['labels'], np.arange(7))
  with pytest.raises(UserError, match='out of range'):
    from_checkpoint.sample(config, tmp_path, 2, tmp_path / 't.npz', '3,11')
