"""Tests of the Evaluator: real data scores near the real-vs-real floor, errors are clear.

Generators here are stand-ins: `_lookup_generator` returns real images (chosen by the
latent, so it is a sampler of the empirical distribution), `_mixture_generator` samples
the true 2D mixture. The classifier tests use the trained files in `<repo>/models`, copied
to a temporary models_dir so the cached real statistics land there.
"""
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax.data import mixtures
from gan_jax.errors import UserError
from gan_jax.metrics import classifier
from gan_jax.metrics import evaluator
from gan_jax.metrics import fid
from gan_jax.metrics import inception

MODELS_DIR = pathlib.Path(__file__).resolve().parents[1] / 'models'
MNIST_SHAPE = (28, 28, 1)


def _config(models_dir='', z_dim: int = 4, **eval_values) -> config_lib.ConfigDict:
  config = config_lib.base()
  config.model.z_dim = z_dim
  config.eval.models_dir = str(models_dir)
  config.eval.update(eval_values)
  return config


def _lookup_generator(images: np.ndarray) -> evaluator.Generate:
  """Maps z [n, z_dim] to the real image number floor(Phi(z_0) N) of uint8 images [N, ...]."""
  table = jnp.asarray(images)

  @jax.jit
  def generate(z, labels):
    del labels
    index = (jax.scipy.special.ndtr(z[:, 0]) * table.shape[0]).astype(jnp.int32)
    return table[jnp.minimum(index, table.shape[0] - 1)].astype(jnp.float32) / 127.5 - 1.0

  return generate


@jax.jit
def _noise_generator(z, labels):
  del labels
  key = jax.random.key_data(jax.random.key(0)).sum() + jnp.int32(z[0, 0] * 1e6)
  return jnp.clip(jax.random.normal(jax.random.key(key), (z.shape[0],) + MNIST_SHAPE), -1.0, 1.0)


def _mixture_generator(mixture: mixtures.Mixture, collapsed: bool = False) -> evaluator.Generate:
  """Samples the mixture from z [n, 3]: mode floor(Phi(z_0) K) (always 0 if collapsed), offset z_1:3."""
  centers = jnp.asarray(mixture.centers)
  k = centers.shape[0]

  @jax.jit
  def generate(z, labels):
    del labels
    mode = jnp.minimum((jax.scipy.special.ndtr(z[:, 0]) * k).astype(jnp.int32), k - 1)
    return centers[0 if collapsed else mode] + mixture.std * z[:, 1:3]

  return generate


def _image_source(name: str, shape=MNIST_SHAPE) -> data_lib.Source:
  """An image Source without data, enough for validation."""
  return data_lib.Source(name=name, shape=shape, num_classes=10, arrays={})


@pytest.fixture(scope='module')
def models_dir(tmp_path_factory) -> pathlib.Path:
  """A models_dir holding copies of the trained classifiers (skips when absent)."""
  directory = tmp_path_factory.mktemp('models')
  for dataset in ('mnist', 'fashion_mnist'):
    for path in classifier.model_paths(dataset, str(MODELS_DIR)):
      if not pathlib.Path(path).exists():
        pytest.skip(f'{path} is absent; make it with: python -m gan_jax.metrics.classifier --dataset={dataset}')
      shutil.copy(path, directory)
  return directory


def _make_source(name: str) -> data_lib.Source:
  config = config_lib.base()
  config.data.name = name
  try:
    return data_lib.make_source(config.data)
  except UserError as e:
    pytest.skip(f'{name} data not found: {e}')


@pytest.fixture(scope='module')
def mnist() -> data_lib.Source:
  return _make_source('mnist')


# Validation.
def test_unknown_metric_lists_valid_names():
  with pytest.raises(UserError, match=r"unknown eval metric\(s\) 'fdi'; valid: classifier_fd, .*stacked_modes"):
    evaluator.Evaluator(_config(metrics=('fid', 'fdi')), _image_source('mnist'))


@pytest.mark.parametrize('metric, source, message', [
    ('modes', _image_source('mnist'), 'needs a 2D mixture'),
    ('stacked_modes', _image_source('mnist'), "needs data.name='stacked_mnist'"),
    ('classifier_fd', data_lib.Source('ring', (2,), 0, {}, mixtures.ring()), 'needs an image data set'),
    ('classifier_fd', _image_source('stacked_mnist', (28, 28, 3)), 'there is none for .*eval.classifier'),
    ('classifier_fd', _image_source('tfds:svhn', (32, 32, 3)), 'there is none for .*eval.classifier'),
    ('fid', _image_source('mnist'), 'inception_weights.*BUILD.md'),
    ('kid', _image_source('tfds:svhn', (32, 32, 3)), 'inception_weights'),  # 'auto' features: Inception.
])
def test_metric_must_fit_the_data_set(metric, source, message):
  with pytest.raises(UserError, match=message):
    evaluator.Evaluator(_config(metrics=(metric,)), source)


def test_bad_eval_values():
  with pytest.raises(UserError, match='eval.features'):
    evaluator.Evaluator(_config(metrics=('kid',), features='vgg'), _image_source('mnist'))
  with pytest.raises(UserError, match='eval.batch_size must be >= 1'):
    evaluator.Evaluator(_config(metrics=('classifier_fd',), batch_size=0), _image_source('mnist'))
  with pytest.raises(UserError, match='eval.classifier'):
    evaluator.Evaluator(_config(metrics=('classifier_fd',), classifier='cifar10'), _image_source('mnist'))


def test_missing_classifier_names_the_training_command(tmp_path):
  with pytest.raises(UserError, match=f'python -m gan_jax.metrics.classifier --dataset=mnist --models_dir={tmp_path}'):
    evaluator.Evaluator(_config(tmp_path, metrics=('classifier_score',)), _image_source('mnist'))


def test_missing_inception_file(tmp_path):
  with pytest.raises(UserError, match='not found'):
    evaluator.Evaluator(_config(metrics=('fid',), inception_weights=str(tmp_path / 'w.npz')), _image_source('mnist'))


# Samples.
def test_sample_batches_pass_labels_and_are_deterministic():
  echo_labels = jax.jit(lambda z, labels: jnp.broadcast_to(labels[:, None, None, None] + 0.0 * z[:, :1, None, None],
                                                           (z.shape[0],) + MNIST_SHAPE))

  def draw(seed):
    batches = list(evaluator.sample_batches(echo_labels, 16, 10, 1000, 64, jax.random.key(seed)))
    assert [len(labels) for _, labels in batches] == [64] * 15 + [40]
    return (np.concatenate([np.asarray(b) for b, _ in batches]), np.concatenate([np.asarray(l) for _, l in batches]))

  samples, labels = draw(0)
  assert samples.shape == (1000,) + MNIST_SHAPE and labels.shape == (1000,)
  np.testing.assert_array_equal(samples[:, 0, 0, 0], labels)
  assert set(labels) == set(range(10)) and np.bincount(labels).min() > 60  # ~100 each
  np.testing.assert_array_equal(draw(0)[1], labels)
  assert not np.array_equal(draw(1)[1], labels)


# Classifier metrics on MNIST.
NUM_SAMPLES = 2000
NUM_REAL = 5000


@pytest.fixture(scope='module')
def mnist_results(models_dir, mnist):
  """Evaluator results for real train images and for noise, and the real-vs-real floor.

  At 2,000 samples the classifier FD of real images varies by about +-25% between draws, so
  the floor is the median over 5 disjoint sets of 2,000 train images, computed without the
  Evaluator against the same test images.
  """
  config = _config(models_dir, metrics=('classifier_fd', 'classifier_score', 'kid', 'precision_recall'),
                   num_samples=NUM_SAMPLES, num_real=NUM_REAL)
  ev = evaluator.Evaluator(config, mnist)
  real = ev(_lookup_generator(mnist.arrays['image']), jax.random.key(0))
  noise = ev(_noise_generator, jax.random.key(0))
  clf = classifier.load('mnist', str(models_dir))
  test_images, _ = data_lib.load_images('mnist', 'test')
  reference = classifier.feature_stats(clf, test_images[np.sort(np.random.default_rng(
      evaluator.REAL_SUBSET_SEED).choice(len(test_images), NUM_REAL, replace=False))])
  train_features = clf.features(mnist.arrays['image'][np.random.default_rng(7).permutation(60_000)[:5 * NUM_SAMPLES]])
  floors = []
  for part in np.split(train_features, 5):
    stats = fid.FeatureStats()
    stats.update(part)
    floors.append(fid.frechet_distance_from_stats(stats, reference))
  return real, noise, float(np.median(floors))


def test_real_data_scores_near_the_floor_and_far_from_noise(mnist_results):
  real, noise, floor = mnist_results
  assert set(real) == {key for m in ('classifier_fd', 'classifier_score', 'kid', 'precision_recall')
                       for key in evaluator.METRICS[m].keys}
  assert all(isinstance(value, float) for value in real.values())
  assert 0.6 * floor < real['classifier_fd'] < 1.6 * floor, (real['classifier_fd'], floor)
  assert noise['classifier_fd'] > 100 * floor, (noise['classifier_fd'], floor)
  assert 9.5 < real['classifier_score'] < 10 and noise['classifier_score'] < 3
  assert abs(real['kid']) < 1.5 and noise['kid'] > 100, (real['kid'], noise['kid'])
  for key in ('precision', 'recall', 'coverage'):
    assert 0.75 < real[key] < 0.95 and noise[key] < 0.1, (key, real[key], noise[key])
  assert 0.8 < real['density'] < 1.2 and noise['density'] < 0.1


def test_real_statistics_are_cached(models_dir, mnist, mnist_results, monkeypatch):
  del mnist_results  # Made the cache.
  cached = sorted(p.name for p in (models_dir / 'stats').iterdir())
  assert len(cached) == 1 and cached[0].startswith(f'mnist-test-{NUM_REAL}-classifier-mnist-'), cached

  def fail(*args, **kwargs):
    raise AssertionError('the real features were recomputed')

  monkeypatch.setattr(classifier.Classifier, 'features_and_logits', fail)
  evaluator.Evaluator(_config(models_dir, metrics=('classifier_fd',), num_real=NUM_REAL), mnist)


def test_deterministic_in_rng(models_dir, mnist):
  ev = evaluator.Evaluator(_config(models_dir, metrics=('classifier_fd',), num_samples=500, num_real=NUM_REAL),
                           mnist)
  generate = _lookup_generator(mnist.arrays['image'])
  first, second, other = (ev(generate, jax.random.key(seed))['classifier_fd'] for seed in (3, 3, 4))
  assert first == second != other


# Mode metrics.
@pytest.mark.parametrize('name', ['ring', 'grid'])
def test_modes_of_the_true_mixture(name):
  source = data_lib.Source(name, (2,), 0, {}, mixtures.get(name))
  num_modes = len(source.mixture.centers)
  ev = evaluator.Evaluator(_config(z_dim=3, metrics=('modes',)), source)
  true = ev(_mixture_generator(source.mixture), jax.random.key(0))
  assert set(true) == {'modes', 'high_quality', 'reverse_kl'}
  # P(|N(0, I_2)| <= 3) = 1 - exp(-4.5) = 0.989; reverse KL of 2,500 uniform draws ~ (K - 1) / 5000.
  assert true['modes'] == num_modes and 0.98 < true['high_quality'] < 0.996
  assert 0 < true['reverse_kl'] < 0.02
  collapsed = ev(_mixture_generator(source.mixture, collapsed=True), jax.random.key(0))
  assert collapsed['modes'] == 1 and collapsed['reverse_kl'] == pytest.approx(np.log(num_modes))


def test_stacked_modes(models_dir):
  source = _make_source('stacked_mnist')
  ev = evaluator.Evaluator(_config(models_dir, metrics=('stacked_modes',), stacked_samples=3000), source)
  real = ev(_lookup_generator(source.arrays['image']), jax.random.key(0))
  assert set(real) == {'modes', 'reverse_kl'}
  # 3,000 uniform draws over 1,000 modes miss about 1000 exp(-3) = 50 of them (measured: 942 to 947
  # modes and reverse KL 0.19 to 0.20 over 4 seeds).
  assert 925 <= real['modes'] <= 970 and 0.15 < real['reverse_kl'] < 0.25, real
  one_image = _lookup_generator(source.arrays['image'][:1])
  collapsed = ev(one_image, jax.random.key(0))
  assert collapsed['modes'] == 1 and collapsed['reverse_kl'] == pytest.approx(np.log(1000))


# Inception metrics, with random weights (the real ones are not in the repository), on a few
# images: the 2048-d Frechet distance alone takes seconds (two 2048 x 2048 eigendecompositions).
def _random_inception_weights(path: pathlib.Path) -> None:
  """He-initialised kernels, identity BatchNorm: activations stay O(1) through the network."""
  shapes = jax.eval_shape(inception.InceptionV3().init, jax.random.key(0), jnp.zeros((1, 299, 299, 3)))
  rng = np.random.default_rng(0)

  def fill(path, leaf):
    name = path[-1].key
    if name == 'kernel':
      return rng.normal(0, np.sqrt(2 / np.prod(leaf.shape[:-1])), leaf.shape).astype(np.float32)
    return np.full(leaf.shape, 1.0 if name in ('scale', 'var') else 0.0, np.float32)

  inception.save_npz(jax.tree.map_with_path(fill, shapes), path)


def test_inception_metrics(tmp_path, mnist):
  weights = tmp_path / 'inception.npz'
  _random_inception_weights(weights)
  config = _config(tmp_path, metrics=('fid', 'is', 'kid', 'precision_recall'), features='inception',
                   inception_weights=str(weights), num_real=10, num_samples=10, batch_size=10)
  ev = evaluator.Evaluator(config, mnist)
  real = ev(_lookup_generator(mnist.arrays['image']), jax.random.key(0))
  noise = ev(_noise_generator, jax.random.key(0))
  assert set(real) == {'fid', 'is', 'is_std', 'kid', 'kid_std', 'precision', 'recall', 'density', 'coverage'}
  assert 0 < real['fid'] < noise['fid'] and 1 <= real['is'] <= inception.NUM_LOGITS
  assert [p.name.split('-')[:4] for p in (tmp_path / 'stats').iterdir()] == [['mnist', 'test', '10', 'inception']]
