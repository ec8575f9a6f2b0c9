"""Domain classifiers as feature extractors: classifier Frechet distance and classifier score.

As TF-GAN's MNIST metrics, a small CNN trained on the data set replaces Inception-v3:
  * classifier FD: the Frechet distance between Gaussians fitted to the classifier's
    penultimate features (128-d, after ReLU) of two image sets;
  * classifier score: exp(E_x KL(p(y|x) || p(y))) over the classifier's softmax, i.e. the
    Inception Score with this classifier (1 to 10; 10 = confident and all classes used).
Both are only comparable between runs that use the same classifier file.

The network is conv-conv-maxpool blocks, a 128-unit dense feature layer and 10 logits; no
batch norm or dropout, so features are a deterministic function of the image. It is trained
on the train split only (Adam, cosine-decayed learning rate, fixed seed and shuffling) with
  python -m gan_jax.metrics.classifier --dataset=mnist [--data_dir=...] [--models_dir=models]
which prints the test-split accuracy and writes `<models_dir>/<dataset>_classifier.msgpack`
(the parameters, `flax.serialization.to_bytes`) and `<dataset>_classifier.json` (metadata).

Images everywhere are NHWC, float in [-1, 1], or uint8 in [0, 255] (converted as x/127.5 - 1).
"""
import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.errors import UserError
from gan_jax.metrics import fid
from gan_jax.metrics import inception_score

# Bump when the network or the meaning of its features changes: old files are then refused.
ARCH_VERSION = 1
NUM_CLASSES = 10
FEATURE_DIM = 128
IMAGE_SHAPES = {'mnist': (28, 28, 1), 'fashion_mnist': (28, 28, 1), 'cifar10': (32, 32, 3),
                'spoken_digits': (32, 32, 1)}
# Output channels of the conv-conv-pool blocks.
WIDTHS = {'mnist': (16, 32), 'fashion_mnist': (16, 32), 'cifar10': (32, 64, 128), 'spoken_digits': (16, 32)}
DEFAULT_EPOCHS = {'mnist': 4, 'fashion_mnist': 6, 'cifar10': 30, 'spoken_digits': 20}
# Random flips and translations; the grey-scale sets reach their targets without them.
AUGMENT = {'mnist': False, 'fashion_mnist': False, 'cifar10': True, 'spoken_digits': False}
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
EVAL_BATCH_SIZE = 500


class CNN(nn.Module):
  """Conv-conv-maxpool blocks, a ReLU dense feature layer, then logits."""
  widths: tuple[int, ...]

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Maps float32 [B, H, W, C] in [-1, 1] to (features [B, 128], logits [B, 10]), float32."""
    x = images
    for width in self.widths:
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    features = nn.relu(nn.Dense(FEATURE_DIM)(x.reshape(x.shape[0], -1)))
    return features, nn.Dense(NUM_CLASSES)(features)


def _check_dataset(dataset: str) -> None:
  if dataset not in IMAGE_SHAPES:
    raise UserError(f'no classifier for dataset {dataset!r}; choose one of {sorted(IMAGE_SHAPES)}')


def _to_float(images: np.ndarray | jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]; float input is cast to float32 unchanged."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 127.5 - 1.0
  return images.astype(jnp.float32)


def _augment(key: jax.Array, images: jax.Array) -> jax.Array:
  """Random horizontal flips and translations by up to 4 pixels (zero-padded), [B, H, W, C]."""
  flip_key, shift_key = jax.random.split(key)
  b, h, w, c = images.shape
  flip = jax.random.bernoulli(flip_key, 0.5, (b, 1, 1, 1))
  images = jnp.where(flip, images[:, :, ::-1], images)
  padded = jnp.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
  offsets = jax.random.randint(shift_key, (b, 2), 0, 9)
  crop = lambda image, offset: jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, offsets)


def fit(images: np.ndarray, labels: np.ndarray, widths: tuple[int, ...], epochs: int, seed: int = 0,
        augment: bool = False) -> dict:
  """Trains a `CNN` with softmax cross-entropy; deterministic given its arguments (on one platform).

  Args:
    images: uint8 [N, H, W, C].
    labels: int32 [N] in 0..9.
    widths: `CNN.widths`.
    epochs: passes over the data; each uses a fresh permutation from `seed` and drops the last
      partial batch of `BATCH_SIZE`.
    seed: seeds the initialisation, the shuffling and the augmentation.
    augment: apply `_augment` to every batch.

  Returns:
    The trained flax parameters.
  """
  model = CNN(widths)
  steps_per_epoch = len(images) // BATCH_SIZE
  if steps_per_epoch == 0 or epochs < 1:
    raise UserError(f'need at least one epoch ({epochs}) and {BATCH_SIZE} training images ({len(images)})')
  init_key, augment_key = jax.random.split(jax.random.key(seed))
  params = model.init(init_key, jnp.zeros((1,) + images.shape[1:], jnp.float32))
  optimizer = optax.adam(optax.cosine_decay_schedule(LEARNING_RATE, epochs * steps_per_epoch))
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, x, y, step_key):
    x = _to_float(x)
    if augment:
      x = _augment(step_key, x)

    def loss_fn(p):
      return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x)[1], y).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  order_rng = np.random.default_rng(seed)
  for epoch in range(epochs):
    start = time.perf_counter()
    order = order_rng.permutation(len(images))
    losses = []
    for i in range(steps_per_epoch):
      batch = order[i * BATCH_SIZE:(i + 1) * BATCH_SIZE]
      step_key = jax.random.fold_in(augment_key, epoch * steps_per_epoch + i)
      params, opt_state, loss = step(params, opt_state, images[batch], labels[batch], step_key)
      losses.append(loss)
    logging.info('epoch %d/%d: mean train loss %.4f (%.1f s)', epoch + 1, epochs,
                 float(jnp.mean(jnp.stack(losses))), time.perf_counter() - start)
  return params


class Classifier:
  """A trained domain classifier. Calls run in fixed-size jitted batches (one compilation)."""

  def __init__(self, dataset: str, params: dict):
    _check_dataset(dataset)
    self.dataset = dataset
    self.image_shape = IMAGE_SHAPES[dataset]
    self.params = params
    self._model = CNN(WIDTHS[dataset])
    self._apply = jax.jit(lambda p, x: self._model.apply(p, _to_float(x)))

  def feature_fn(self, images: jax.Array) -> jax.Array:
    """Pure and differentiable: images float32 [B, H, W, C] in [-1, 1] -> features [B, 128] (for use
    inside a traced program, e.g. a perceptual loss; the parameters become its constants)."""
    return self._model.apply(self.params, images)[0]

  def features_and_logits(self, images: np.ndarray | jax.Array,
                          batch_size: int = EVAL_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Images [B, H, W, C] -> (features float32 [B, 128], logits float32 [B, 10]).

    `images` may be a numpy or a jax array (e.g. generator samples already on the accelerator);
    they go through in chunks of `batch_size`, the last one padded to the compiled shape.
    """
    if images.ndim != 4 or images.shape[1:] != self.image_shape:
      raise UserError(f'the {self.dataset} classifier takes images [B, {", ".join(map(str, self.image_shape))}], '
                      f'got shape {images.shape}')
    features, logits = [np.zeros((0, FEATURE_DIM), np.float32)], [np.zeros((0, NUM_CLASSES), np.float32)]
    for start in range(0, len(images), batch_size):
      chunk = images[start:start + batch_size]
      n = len(chunk)
      if n < batch_size:
        chunk = jnp.pad(chunk, ((0, batch_size - n), (0, 0), (0, 0), (0, 0)))
      chunk_features, chunk_logits = self._apply(self.params, chunk)
      features.append(np.asarray(chunk_features)[:n])
      logits.append(np.asarray(chunk_logits)[:n])
    return np.concatenate(features), np.concatenate(logits)

  def features(self, images: np.ndarray | jax.Array, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Penultimate activations: images [B, H, W, C] -> float32 [B, 128]."""
    return self.features_and_logits(images, batch_size)[0]

  def logits(self, images: np.ndarray | jax.Array, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Class logits: images [B, H, W, C] -> float32 [B, 10]."""
    return self.features_and_logits(images, batch_size)[1]


def model_paths(dataset: str, models_dir: str = 'models') -> tuple[str, str]:
  """(parameters .msgpack, metadata .json) paths of the classifier for `dataset`."""
  stem = os.path.join(models_dir, f'{dataset}_classifier')
  return stem + '.msgpack', stem + '.json'


def _train_command(dataset: str, models_dir: str) -> str:
  return f'python -m gan_jax.metrics.classifier --dataset={dataset} --models_dir={models_dir}'


def load(dataset: str, models_dir: str = 'models') -> Classifier:
  """Loads the classifier trained by `train`.

  Raises:
    UserError if the files are missing, corrupt or from another architecture version; the
    message gives the command that trains a new one.
  """
  _check_dataset(dataset)
  params_path, meta_path = model_paths(dataset, models_dir)
  retrain = f'train one with: {_train_command(dataset, models_dir)}'
  if not (os.path.exists(params_path) and os.path.exists(meta_path)):
    raise UserError(f'no {dataset} classifier in {models_dir} ({params_path} and {meta_path}); {retrain}')
  try:
    with open(meta_path) as f:
      version = json.load(f)['architecture_version']
  except (ValueError, KeyError) as e:
    raise UserError(f'{meta_path} is not classifier metadata ({e}); {retrain}') from None
  if version != ARCH_VERSION:
    raise UserError(f'{params_path} is architecture version {version}, this code needs {ARCH_VERSION}; {retrain}')
  # Shapes only: initializing the network eagerly would compile each layer's initializer (seconds).
  template = jax.eval_shape(CNN(WIDTHS[dataset]).init, jax.random.key(0), jnp.zeros((1,) + IMAGE_SHAPES[dataset], jnp.float32))
  with open(params_path, 'rb') as f:
    raw = f.read()
  try:
    params = flax.serialization.from_bytes(template, raw)
  except Exception as e:  # msgpack and flax raise assorted types for corrupt or mismatched files.
    raise UserError(f'{params_path} is corrupt or does not match the network ({e}); {retrain}') from None
  return Classifier(dataset, params)


def _load_split(dataset: str, split: str, data_dir: str) -> tuple[np.ndarray, np.ndarray]:
  from gan_jax import data
  return data.load_images(dataset, split, data_dir)


def accuracy(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of `images` whose arg-max logit equals `labels` (int [N])."""
  return float(np.mean(classifier.logits(images).argmax(axis=1) == labels))


def train(dataset: str, data_dir: str = '', models_dir: str = 'models', seed: int = 0, epochs: int = 0) -> float:
  """Trains the classifier for `dataset` on its train split and saves it to `models_dir`.

  Args:
    dataset: one of IMAGE_SHAPES ('spoken_digits': scored on the held-out speakers' clips).
    data_dir: see `gan_jax.data.files.search_path`.
    models_dir: output folder (created if needed).
    seed: see `fit`.
    epochs: 0 means `DEFAULT_EPOCHS[dataset]`.

  Returns:
    Accuracy on the test split, in [0, 1].
  """
  _check_dataset(dataset)
  epochs = epochs or DEFAULT_EPOCHS[dataset]
  train_images, train_labels = _load_split(dataset, 'train', data_dir)
  test_images, test_labels = _load_split(dataset, 'test', data_dir)
  start = time.perf_counter()
  params = fit(train_images, train_labels, WIDTHS[dataset], epochs, seed, AUGMENT[dataset])
  train_seconds = time.perf_counter() - start
  test_accuracy = accuracy(Classifier(dataset, params), test_images, test_labels)
  os.makedirs(models_dir, exist_ok=True)
  params_path, meta_path = model_paths(dataset, models_dir)
  with open(params_path, 'wb') as f:
    f.write(flax.serialization.to_bytes(params))
  meta = {
      'dataset': dataset,
      'architecture_version': ARCH_VERSION,
      'widths': list(WIDTHS[dataset]),
      'feature_dim': FEATURE_DIM,
      'test_accuracy': test_accuracy,
      'epochs': epochs,
      'seed': seed,
      'batch_size': BATCH_SIZE,
      'learning_rate': LEARNING_RATE,
      'augment': AUGMENT[dataset],
      'train_seconds': round(train_seconds, 1),
      'platform': jax.default_backend(),
      'jax_version': jax.__version__,
  }
  with open(meta_path, 'w') as f:
    json.dump(meta, f, indent=2)
    f.write('\n')
  return test_accuracy


def feature_stats(classifier: Classifier, images: np.ndarray, batch_size: int = EVAL_BATCH_SIZE) -> fid.FeatureStats:
  """Mean and covariance of the classifier features of `images` [N, H, W, C], batch by batch."""
  stats = fid.FeatureStats()
  for start in range(0, len(images), batch_size):
    stats.update(classifier.features(images[start:start + batch_size], batch_size))
  return stats


def classifier_frechet_distance(classifier: Classifier, images_a: np.ndarray, images_b: np.ndarray,
                                batch_size: int = EVAL_BATCH_SIZE) -> float:
  """Frechet distance between the classifier features of two image sets (squared feature units)."""
  return fid.frechet_distance_from_stats(feature_stats(classifier, images_a, batch_size),
                                         feature_stats(classifier, images_b, batch_size))


def classifier_score(classifier: Classifier, images: np.ndarray, num_splits: int = 10,
                     batch_size: int = EVAL_BATCH_SIZE) -> tuple[float, float]:
  """Inception Score with the classifier in place of Inception: (mean, std) over `num_splits` parts."""
  return inception_score.inception_score(classifier.logits(images, batch_size), num_splits)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  try:
    test_accuracy = train(f.dataset, f.data_dir, f.models_dir, f.seed, f.epochs)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(f'{f.dataset} classifier: test accuracy {test_accuracy:.4f}; saved {model_paths(f.dataset, f.models_dir)[0]}')


if __name__ == '__main__':
  # Defined here, not at import, so that importing this module adds no global flags.
  flags.DEFINE_enum('dataset', None, sorted(IMAGE_SHAPES), 'Data set to train the classifier for.')
  flags.DEFINE_string('data_dir', '', 'Folder with the data set files (default: the search path).')
  flags.DEFINE_string('models_dir', 'models', 'Where to write <dataset>_classifier.{msgpack,json}.')
  flags.DEFINE_integer('epochs', 0, 'Training epochs; 0 = the data set default.')
  flags.DEFINE_integer('seed', 0, 'Seed of initialisation, shuffling and augmentation.')
  flags.mark_flag_as_required('dataset')
  app.run(main)
