"""Prints the metric figures a results table rests on, measured on this machine.

  python bench/metrics.py                          # MNIST and Fashion-MNIST, Inception timed on 200 images
  python bench/metrics.py --inception_images=0     # skip the Inception-v3 timing

Table 1, per data set: the domain classifier's test accuracy (from its metadata file) and the
real-vs-real classifier FD, 10k test images against the 60k training images: the floor that no
generator's classifier FD can be expected to go below.
Table 2: seconds to evaluate 10k generated samples on this CPU, from the generator's latents to
the number: a vanilla DCGAN generator (untrained: speed does not depend on its weights) through the
project's Evaluator with classifier FD + classifier score; and the FID Inception-v3 feature pass
(random weights, same cost as the real ones) on `--inception_images` images, with the rate
extrapolated to 10k.
"""
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.

from absl import app
from absl import flags
import jax
import numpy as np

from gan_jax import data as data_lib
from gan_jax import experiments
from gan_jax.metrics import classifier as classifier_lib
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.metrics import inception
from gan_jax.train import run as run_lib

flags.DEFINE_integer('inception_images', 200, 'Images for the Inception-v3 timing (0 skips it).')
flags.DEFINE_string('models_dir', str(pathlib.Path(__file__).resolve().parents[1] / 'models'),
                    'Where the classifiers are.')
FLAGS = flags.FLAGS
NUM_SAMPLES = 10_000


def real_vs_real(dataset: str) -> tuple[float, float]:
  """(test accuracy, classifier FD of the test split against the train split)."""
  clf = classifier_lib.load(dataset, FLAGS.models_dir)
  meta = json.loads(pathlib.Path(classifier_lib.model_paths(dataset, FLAGS.models_dir)[1]).read_text())
  test, _ = data_lib.load_images(dataset, 'test')
  train, _ = data_lib.load_images(dataset, 'train')
  return meta['test_accuracy'], classifier_lib.classifier_frechet_distance(clf, test, train)


def evaluator_seconds() -> float:
  """Seconds for one 10k-sample classifier FD + score evaluation of a DCGAN generator (after a warm-up)."""
  overrides = [('log.wandb', 'disabled'), ('eval.metrics', 'classifier_fd,classifier_score'),
               ('eval.num_samples', str(NUM_SAMPLES)), ('eval.models_dir', FLAGS.models_dir)]
  config = experiments.load_config('vanilla', overrides)
  run = run_lib.build_run(config)
  evaluator = evaluator_lib.Evaluator(config, run.source)  # Real statistics cached here.
  state = run.init_state(jax.random.key(0))
  sampler = run.sampler(run.phases[0])
  generate = lambda z, labels: sampler(state, z, labels, 1.0)
  evaluator.at(generate, 0, 0)  # Compiles the generator and the classifier.
  started = time.perf_counter()
  evaluator.at(generate, 0, 1)
  return time.perf_counter() - started


def inception_images_per_second(count: int) -> float:
  variables = inception.InceptionV3().init(jax.random.key(0), np.zeros((1, 299, 299, 3), np.float32))
  features = inception.make_feature_fn(variables)
  images = np.random.default_rng(0).uniform(-1, 1, (count, 28, 28, 1)).astype(np.float32)
  batch = min(count, 100)
  jax.block_until_ready(features(images[:batch]))  # Compiles.
  started = time.perf_counter()
  for i in range(0, count, batch):
    jax.block_until_ready(features(images[i:i + batch]))
  return count / (time.perf_counter() - started)


def main(argv):
  del argv
  device = f'{jax.devices()[0].platform} x{jax.device_count()}, jax {jax.__version__}'
  print(f'| data set | classifier test accuracy | classifier FD, test (10k) vs train (60k) |   ({device})')
  print('|---|---|---|')
  for dataset in ('mnist', 'fashion_mnist'):
    accuracy, fd = real_vs_real(dataset)
    print(f'| {dataset} | {100 * accuracy:.2f}% | {fd:.4f} |')
  print()
  print('| evaluation of 10k generated MNIST samples | seconds |')
  print('|---|---|')
  print(f'| DCGAN generator -> classifier FD + classifier score | {evaluator_seconds():.1f} |')
  if FLAGS.inception_images:
    rate = inception_images_per_second(FLAGS.inception_images)
    print(f'| FID Inception-v3 features ({FLAGS.inception_images} images timed, {rate:.1f} images/s), '
          f'extrapolated to 10k | {NUM_SAMPLES / rate:.0f} |')


if __name__ == '__main__':
  app.run(main)
