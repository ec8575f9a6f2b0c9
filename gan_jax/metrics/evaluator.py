"""Evaluates a generator on the metrics a run's `config.eval.metrics` names.

    evaluator = Evaluator(config, source)      # validates, loads networks and real statistics
    results = evaluator(generate, rng)         # {'classifier_fd': 1.23, 'precision': 0.81, ...}
    results = evaluator.at(generate, seed, step)   # with the draws of a run's evaluation at `step`

`generate(z, labels)` maps latents float32 [n, config.model.z_dim] ~ N(0, I) and labels int32
[n] (uniform over the source's classes, 0 when it has none; unconditional models ignore them)
to samples float32 [n, *source.shape] in the data range: [-1, 1] for images, the mixture's
coordinates for 2D points. It is called on batches of exactly `config.eval.batch_size`, so it
compiles once; surplus samples of the last batch are dropped.

Image-to-image runs (`data.task`) are evaluated on the task's pairs of `eval.split`, in order (the
first min(eval.num_samples, split size)): `generate(z, inputs)` gets the inputs float32
[n, *source_shape] in place of labels, the image metrics compare the outputs with the split's
real images, and the generated side's labels are the true classes of the inputs' images.
Text-conditioned runs (`data.captions`) likewise get the captions of `eval.split`'s images, in
order, as tokens int32 [n, T]; the generated side's labels are the captions' classes.

Metrics: the registry `METRICS` maps each name to a `Metric` that declares the result keys it adds
(all values floats), the data it applies to, the feature network it reads, what of the generated
and real sides it needs, and the function computing it. Adding a metric is one entry there.
  classifier_fd     Frechet distance of domain-classifier features (gan_jax.metrics.classifier),
                    generated vs real, in squared feature units.
  classifier_score  Inception Score computed with the domain classifier (1 to 10), and its std
                    over 10 splits.
  fid, is           the same with the FID Inception-v3 (gan_jax.metrics.inception; needs
                    `eval.inception_weights`); IS over its 1008 logits.
  kid               Kernel Inception Distance (mean, std over 100 subsets of 1000).
  precision_recall  k-NN precision, recall, density and coverage (k = 3), on equally many real
                    and generated samples (a fixed random subset of the larger set).
  modes             2D mixtures, on `eval.mixture_samples` samples (PacGAN/VEEGAN: 2500):
                    modes captured, high-quality fraction, reverse KL (nats).
  stacked_modes     Stacked MNIST, on `eval.stacked_samples` samples (26000): the MNIST
                    classifier reads each channel's digit; modes covered of 1000 and KL of the
                    mode histogram to uniform (nats). Same keys as 'modes'.
  class_accuracy    class-conditional models: the fraction of samples the domain classifier
                    assigns to the label they were generated for (0.1 for a G that ignores its
                    label on 10 balanced classes); image-to-image models: the fraction of outputs
                    it assigns to the class of their input's image (label preservation).
  reconstruction    image-to-image models: mean PSNR (dB) and SSIM of the outputs against their
                    targets (gan_jax.metrics.image_quality), keys psnr and ssim.
  cycle             unpaired (CycleGAN) models, on the (a, b) test examples: cycle_l1_a and
                    cycle_l1_b (mean |G_BA(G_AB(a)) - a|, |G_AB(G_BA(b)) - b|, data range [-1, 1]),
                    fd_ab and fd_ba (classifier FD of the translations into B and into A against
                    that domain's real test images, each with its domain's classifier), and for
                    tasks whose test examples are true pairs (cycle_edges) psnr_ab, psnr_ba and
                    accuracy_ab (label preservation of a -> b).
  attributes        text-conditioned models: each caption's attributes (gan_jax.data.captions)
                    re-measured on the image generated for it and binned; attr_<name> is the
                    fraction agreeing with the caption (chance 1/3 by construction of the bins),
                    attribute_accuracy their mean.
  caption_swap      text-conditioned models: for the first SWAP_SAMPLES test captions, each
                    attribute's word is swapped for another bin's (thin <-> thick; medium -> one of
                    them), everything else and the latent kept; swap_<name> is the fraction of
                    pairs whose re-measured attribute moves the way the word did (chance 0.5),
                    caption_swap their mean.
  bicubic           the same task solved by bicubic resizing of the input (the super-resolution
                    baseline): bicubic_psnr, bicubic_ssim, bicubic_fd (classifier FD) and
                    bicubic_accuracy (label preservation), on the same pairs.
  intra_fd          class-conditional models: classifier FD between the samples generated for
                    class c and the real images of class c, averaged over the classes.
The image metrics share one set of `eval.num_samples` generated samples. kid and
precision_recall use the features `eval.features` names: 'classifier', 'inception', or 'auto'
(the classifier where the data set has one, else Inception).

Real side: `eval.num_real` images (all if the split is smaller; else a fixed random subset) of
the data set's `eval.split`. Their features and feature statistics are computed once and cached
in `<models_dir>/stats/<data set>-<split>-<count>-<extractor>-<weights hash>.npz`, so they are
recomputed when the classifier or Inception weights change, and never otherwise.
"""
import dataclasses
import hashlib
import os
import pathlib
import re
from typing import Callable, Iterator

from absl import logging
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data as data_lib
from gan_jax import plots
from gan_jax.data import files
from gan_jax.data import mixtures
from gan_jax.errors import UserError
from gan_jax.metrics import classifier as classifier_lib
from gan_jax.metrics import fid
from gan_jax.metrics import inception
from gan_jax.metrics import inception_score
from gan_jax.metrics import kid
from gan_jax.metrics import image_quality
from gan_jax.metrics import modes
from gan_jax.metrics import prd
from gan_jax.models import translation

FEATURES = ('auto', 'classifier', 'inception')
SCORE_SPLITS = 10
PRD_NEIGHBOURS = 3
REAL_SUBSET_SEED = 0
SWAP_SAMPLES = 1000  # Caption pairs per attribute of the 'caption_swap' metric.
EVAL_KEY_SALT = 0x45564C  # A run's evaluation draws come from fold_in(key(seed), salt), apart from training's.

Generate = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class _Extractor:
  """A feature network. `fn`: images float32 [B, H, W, C] in [-1, 1] -> (features [B, D], logits [B, K])."""
  name: str  # 'classifier' or 'inception'
  fingerprint: str  # Hash of the weights; part of the cache key of real statistics.
  fn: Callable[[jax.Array], tuple[np.ndarray, np.ndarray]]


def _hash(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()[:12]


def eval_key(seed: int, step: int) -> jax.Array:
  """The key of the evaluation at `step` of a run with `seed`: its draws depend only on (seed, step)."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), EVAL_KEY_SALT), step)


def padded_rows(start: int, size: int, end: int) -> np.ndarray:
  """Row indices int [size] from `start`, those at or past `end` replaced by end - 1: a last, short
  batch of inputs repeats its last row so that every `generate` call has the compiled shape."""
  return np.minimum(np.arange(start, start + size), end - 1)


def sample_batches(generate: Generate, z_dim: int, num_classes: int, num_samples: int, batch_size: int,
                   rng: jax.Array, pairs: 'Pairs | None' = None) -> Iterator[tuple[jax.Array, jax.Array]]:
  """Yields (samples [b, ...], labels int32 [b]) batches, num_samples in all; deterministic in rng.

  Batch i uses `fold_in(rng, i)`; every `generate` call gets exactly batch_size latents. With
  `pairs` (image-to-image), batch i translates pairs' inputs [i * batch_size, ...) and its labels
  are theirs (the last batch padded by repeating its last input).
  """
  for i, start in enumerate(range(0, num_samples, batch_size)):
    z_key, label_key = jax.random.split(jax.random.fold_in(rng, i))
    z = jax.random.normal(z_key, (batch_size, z_dim), jnp.float32)
    n = min(batch_size, num_samples - start)
    if pairs is not None:
      inputs = pairs.inputs[padded_rows(start, batch_size, start + n)]  # Images (uint8) or caption tokens (int32).
      yield generate(z, data_lib.unit_range(jnp.asarray(inputs)))[:n], pairs.labels[start:start + n]
      continue
    labels = jax.random.randint(label_key, (batch_size,), 0, max(num_classes, 1), jnp.int32)
    yield generate(z, labels)[:n], labels[:n]


@dataclasses.dataclass(frozen=True)
class Pairs:
  """The evaluated pairs of an image-to-image task: inputs uint8 [N, *source_shape], targets uint8
  [N, H, W, C], and the targets' classes int32 [N]; of a captioned set: the captions' tokens int32
  [N, T] as inputs, the images they describe as targets."""
  inputs: np.ndarray
  targets: np.ndarray
  labels: np.ndarray

  @classmethod
  def load(cls, config) -> 'Pairs':
    """The first eval.num_samples pairs of eval.split (all of them if fewer)."""
    load = data_lib.load_captioned if config.data.captions else data_lib.load_pairs
    inputs, targets, labels = load(config.data, config.eval.split)
    n = config.eval.num_samples
    return cls(inputs[:n], targets[:n], labels[:n])


def _validate(config, source: data_lib.Source) -> tuple[str, ...]:
  """Checks `config.eval` against the source up front; returns the metric names."""
  e = config.eval
  names = tuple(e.metrics)
  unknown = [m for m in names if m not in METRICS]
  if unknown:
    raise UserError(f'unknown eval metric(s) {", ".join(map(repr, unknown))}; valid: {", ".join(METRICS)} '
                    '(--config.eval.metrics=NAME,NAME)')
  if e.features not in FEATURES:
    raise UserError(f'eval.features={e.features!r}; choose one of {", ".join(FEATURES)}')
  for key in ('num_samples', 'batch_size', 'num_real', 'mixture_samples', 'stacked_samples'):
    if e[key] < 1:
      raise UserError(f'eval.{key} must be >= 1 (got {e[key]})')
  for name in names:
    metric = METRICS[name]
    if metric.data == 'mixture' and source.mixture is None:
      raise UserError(f"eval metric {name!r} needs a 2D mixture data set ({', '.join(mixtures.MIXTURES)}); "
                      f"data.name is {source.name!r}")
    if metric.data == 'stacked_mnist' and source.name != 'stacked_mnist':
      raise UserError(f"eval metric {name!r} needs data.name='stacked_mnist', not {source.name!r}")
    if metric.data == 'image' and not source.is_image:
      raise UserError(f'eval metric {name!r} needs an image data set; data.name is {source.name!r}')
    if metric.data == 'captions' and 'text' not in source.arrays:
      raise UserError(f'eval metric {name!r} needs a text-conditioned run (data.captions, --exp=text2image)')
    if metric.data == 'paired' and not source.task:
      raise UserError(f'eval metric {name!r} needs an image-to-image task (data.task, e.g. --exp=pix2pix)')
    if source.unpaired != (name == 'cycle'):
      raise UserError(f"eval metric {name!r} does not apply to {'unpaired' if source.unpaired else 'these'} runs; "
                      + ("evaluate an unpaired task with 'cycle'" if source.unpaired else
                         "'cycle' is for unpaired tasks (--exp=cyclegan)"))
    if name == 'bicubic' and source.task not in ('sr2', 'sr4'):
      raise UserError(f"eval metric 'bicubic' is the super-resolution baseline (data.task sr2 or sr4), not for "
                      f'{source.task!r}')
    if metric.conditional:
      if not (config.model.g_cond or source.task):
        raise UserError(f"eval metric {name!r} needs a class-conditional model (model.g_cond, e.g. --exp=cgan) or an "
                        'image-to-image one (data.task, e.g. --exp=pix2pix)')
      if e.classifier not in ('', source.name):
        raise UserError(f'eval metric {name!r} compares samples with their labels, so it needs the classifier of '
                        f"the training data ({source.name!r}); set --config.eval.classifier=''")
  if any(METRICS[m].data == 'image' for m in names) and e.num_samples < SCORE_SPLITS:
    raise UserError(f'eval.num_samples must be >= {SCORE_SPLITS} for the image metrics (got {e.num_samples})')
  return names


def models_dir(config) -> str:
  """Where the domain classifiers, pretrained caption encoders and cached real statistics are kept."""
  return config.eval.models_dir or str(files.REPO_ROOT / 'models')


def _load_classifier(name: str, config, image_shape: tuple[int, ...], metric: str) -> classifier_lib.Classifier:
  """The domain classifier `name`, checked to take images of `image_shape` (H, W, C)."""
  if name not in classifier_lib.IMAGE_SHAPES:
    raise UserError(f'eval metric {metric!r} needs a domain classifier and there is none for {name!r} (there are '
                    f'for {", ".join(classifier_lib.IMAGE_SHAPES)}); set --config.eval.classifier=NAME, or use '
                    "Inception ('fid', 'is', --config.eval.features=inception)")
  if classifier_lib.IMAGE_SHAPES[name] != tuple(image_shape):
    raise UserError(f'eval metric {metric!r}: the {name} classifier takes images {classifier_lib.IMAGE_SHAPES[name]}, '
                    f'not {tuple(image_shape)}; set --config.eval.classifier to a matching data set')
  return classifier_lib.load(name, models_dir(config))


def domain_classifier(config, source: data_lib.Source, use: str) -> classifier_lib.Classifier:
  """The domain classifier of `config.eval.classifier` (default: the data set's) for images of `source`;
  `use` names what needs it, for the error message."""
  return _load_classifier(config.eval.classifier or source.name, config, source.shape, use)


def _classifier_extractor(clf: classifier_lib.Classifier, batch_size: int) -> _Extractor:
  fingerprint = _hash(flax.serialization.to_bytes(clf.params))
  return _Extractor('classifier', f'{clf.dataset}-{fingerprint}', lambda x: clf.features_and_logits(x, batch_size))


def _inception_extractor(config, metric: str) -> _Extractor:
  path = config.eval.inception_weights
  if not path:
    raise UserError(f'eval metric {metric!r} needs the FID Inception weights: set '
                    f'--config.eval.inception_weights=PATH to {inception.WEIGHTS_FILE} or its .npz conversion '
                    '(BUILD.md says where to get it)')
  variables = inception.load_weights(path)
  fingerprint = _hash(pathlib.Path(path).expanduser().read_bytes())
  features = inception.make_feature_fn(variables, batch_size=config.eval.batch_size)

  def fn(images: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    pool, logits = features(images)
    return np.asarray(pool), np.asarray(logits)

  return _Extractor('inception', fingerprint, fn)


def _real_subset(config, source: data_lib.Source) -> tuple[np.ndarray, np.ndarray]:
  """The real reference set: uint8 images [N, H, W, C] and int32 labels [N] of eval.split (eval.num_real of them)."""
  e = config.eval
  images, labels = data_lib.load_images(source.name, e.split, config.data.dir, config.data.download)
  if e.num_real < len(images):
    chosen = np.sort(np.random.default_rng(REAL_SUBSET_SEED).choice(len(images), e.num_real, replace=False))
    images, labels = images[chosen], labels[chosen]
  return images, labels


def _real_features(extractor: _Extractor, config, source: data_lib.Source) -> tuple[np.ndarray, fid.FeatureStats]:
  """Features float32 [N, D] and their statistics for the real reference images, via the cache."""
  e = config.eval
  images, _ = _real_subset(config, source)
  stem = f'{source.name}-{e.split}-{len(images)}-{extractor.name}-{extractor.fingerprint}'
  stem = re.sub(r'[^A-Za-z0-9_.-]', '_', stem)  # 'tfds:name' -> 'tfds_name'
  path = os.path.join(models_dir(config), 'stats', stem + '.npz')
  if os.path.exists(path):
    with np.load(path) as cached:
      features = cached['features']
    return features, fid.FeatureStats.load(path)
  features = np.concatenate([
      extractor.fn(data_lib.unit_range(jnp.asarray(images[i:i + e.batch_size])))[0]
      for i in range(0, len(images), e.batch_size)])
  stats = fid.FeatureStats()
  stats.update(features)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp_path = f'{path}.{os.getpid()}.tmp'
  with open(tmp_path, 'wb') as f:
    np.savez(f, features=features, count=np.int64(stats.count), mu=stats.mean, sigma=stats.cov)
  os.replace(tmp_path, path)
  return features, stats


def class_stats(features: np.ndarray, labels: np.ndarray, num_classes: int) -> list[fid.FeatureStats]:
  """Per-class statistics of features [N, D] with labels [N]: element c holds class c's."""
  stats = [fid.FeatureStats() for _ in range(num_classes)]
  for c in range(num_classes):
    stats[c].update(features[labels == c])
  return stats


def intra_class_fd(fake: list[fid.FeatureStats], real: list[fid.FeatureStats]) -> float:
  """Mean over classes of the Frechet distance between class c's generated and real statistics."""
  for c, (f, r) in enumerate(zip(fake, real)):
    if f.count < 2 or r.count < 2:
      raise UserError(f'intra_fd: class {c} has {f.count} generated and {r.count} real samples (need >= 2 of each); '
                      'raise eval.num_samples or eval.num_real')
  return float(np.mean([fid.frechet_distance_from_stats(f, r) for f, r in zip(fake, real)]))


def _stacked_digits(clf: classifier_lib.Classifier, samples: jax.Array, batch_size: int) -> np.ndarray:
  """Digit the MNIST classifier reads in each channel: samples [B, 28, 28, 3] -> int [B, 3]."""
  b, h, w, c = samples.shape
  channels = jnp.moveaxis(samples, 3, 1).reshape(b * c, h, w, 1)
  return clf.logits(channels, c * batch_size).argmax(axis=1).reshape(b, c)


@dataclasses.dataclass
class Side:
  """What an image metric reads of one feature network, for the generated (and real) samples.

  Attributes:
    stats: feature statistics of the generated samples.
    features: their features float32 [N, D] (kept only when a metric asks for them).
    logits: their logits float32 [N, K] (ditto).
    labels: the labels int32 [N] they were generated for.
    real_stats, real_features, real_class_stats: the real reference set's statistics, features
      [M, D] and per-class statistics (each loaded only when a metric asks for it).
    num_classes: the data set's classes.
  """
  stats: fid.FeatureStats
  features: np.ndarray | None = None
  logits: np.ndarray | None = None
  labels: np.ndarray | None = None
  real_stats: fid.FeatureStats | None = None
  real_features: np.ndarray | None = None
  real_class_stats: list | None = None
  num_classes: int = 0


@dataclasses.dataclass(frozen=True)
class Metric:
  """An entry of the registry.

  Attributes:
    keys: the result keys it adds.
    data: what it applies to: 'image' (any image set; computed on the shared pass over
      eval.num_samples samples), 'mixture' (2D mixtures), 'stacked_mnist', 'paired' (image-to-image
      tasks) or 'captions' (text-conditioned runs).
    network: image metrics: the feature network it reads, 'classifier', 'inception' or
      'features' (the one eval.features names).
    keeps: of the generated side, beyond feature statistics: any of 'features', 'logits'.
    real: of the real side: any of 'stats', 'features', 'class_stats'.
    conditional: needs a class-conditional model (and the training data's classifier).
    compute: image metrics: (Side) -> {key: value}; others: (Evaluator, generate, rng) -> {key: value}.
  """
  keys: tuple[str, ...]
  data: str
  compute: Callable
  network: str = ''
  keeps: tuple[str, ...] = ()
  real: tuple[str, ...] = ()
  conditional: bool = False


def _precision_recall(side: Side) -> dict[str, float]:
  """On equally many real and generated samples, as the metrics assume."""
  n = min(len(side.real_features), len(side.features))
  real = side.real_features[np.sort(np.random.default_rng(REAL_SUBSET_SEED).permutation(len(side.real_features))[:n])]
  return prd.precision_recall_density_coverage(real, side.features[:n], PRD_NEIGHBOURS)


def _score(key: str) -> Callable[[Side], dict[str, float]]:
  def compute(side: Side) -> dict[str, float]:
    mean, std = inception_score.inception_score(side.logits, SCORE_SPLITS)
    return {key: mean, f'{key}_std': std}
  return compute


def _kid(side: Side) -> dict[str, float]:
  mean, std = kid.kernel_inception_distance(side.real_features, side.features)
  return {'kid': mean, 'kid_std': std}


def _intra_fd(side: Side) -> dict[str, float]:
  return {'intra_fd': intra_class_fd(class_stats(side.features, side.labels, side.num_classes), side.real_class_stats)}


def _reconstruction(evaluator: 'Evaluator', generate: Generate, rng: jax.Array) -> dict[str, float]:
  psnr, ssim, start = [], [], 0
  for outputs, _ in evaluator.batches(generate, evaluator.config.eval.num_samples, rng):
    targets = data_lib.unit_range(jnp.asarray(evaluator.pairs.targets[start:start + len(outputs)]))
    psnr.append(np.asarray(image_quality.psnr(outputs, targets)))
    ssim.append(np.asarray(image_quality.ssim(outputs, targets)))
    start += len(outputs)
  return {'psnr': float(np.mean(np.concatenate(psnr))), 'ssim': float(np.mean(np.concatenate(ssim)))}


def _bicubic(evaluator: 'Evaluator', generate: Generate, rng: jax.Array) -> dict[str, float]:
  """The metrics of bicubic upsampling on the evaluated pairs (computed once per evaluator: they do not
  depend on G)."""
  if evaluator.bicubic_results is None:
    side, channels = evaluator.source.shape[0], evaluator.source.shape[2]
    upsample = jax.jit(lambda z, inputs: jnp.clip(translation.fit_to(inputs[..., :channels], side), -1.0, 1.0))
    quality = _reconstruction(evaluator, upsample, rng)
    classifier = evaluator.image_sides(upsample, rng)['classifier']
    evaluator.bicubic_results = {
        'bicubic_psnr': quality['psnr'], 'bicubic_ssim': quality['ssim'],
        'bicubic_fd': fid.frechet_distance_from_stats(classifier.stats, classifier.real_stats),
        'bicubic_accuracy': float(np.mean(np.argmax(classifier.logits, 1) == classifier.labels))}
  return evaluator.bicubic_results


def _cycle(evaluator: 'Evaluator', generate: Generate, rng: jax.Array) -> dict[str, float]:
  """See the module docstring; batches as sample_batches draws them, G applied twice per batch."""
  pairs, batch_size, z_dim = evaluator.pairs, evaluator.config.eval.batch_size, evaluator.config.model.z_dim
  half = evaluator.source.shape[-1] // 2
  n = min(evaluator.config.eval.num_samples, len(pairs.inputs))
  cycle_sums, translated = np.zeros(2), []
  for i, start in enumerate(range(0, n, batch_size)):
    z = jax.random.normal(jax.random.split(jax.random.fold_in(rng, i))[0], (batch_size, z_dim), jnp.float32)
    x = data_lib.unit_range(jnp.asarray(pairs.inputs[padded_rows(start, batch_size, n)]))
    out = generate(z, x)
    count = min(batch_size, n - start)
    error = np.abs(np.asarray(generate(z, out) - x))[:count]
    cycle_sums += [error[..., :half].mean(axis=(1, 2, 3)).sum(), error[..., half:].mean(axis=(1, 2, 3)).sum()]
    translated.append(np.asarray(out)[:count])
  translated = np.concatenate(translated)
  real = data_lib.unit_range(pairs.inputs[:n])
  results = {'cycle_l1_a': float(cycle_sums[0] / n), 'cycle_l1_b': float(cycle_sums[1] / n)}
  into_b, into_a = translated[..., half:], translated[..., :half]  # G_AB(a), G_BA(b).
  classifier_a, classifier_b = evaluator.cycle_classifiers()
  for key, images, reals, clf in (('fd_ab', into_b, real[..., half:], classifier_b),
                                  ('fd_ba', into_a, real[..., :half], classifier_a)):
    stats = [fid.FeatureStats(), fid.FeatureStats()]
    stats[0].update(clf.features(images))
    stats[1].update(clf.features(reals))
    results[key] = fid.frechet_distance_from_stats(*stats)
  if evaluator.source.task == 'cycle_edges':  # The test examples are true pairs (edges(x), x).
    results['psnr_ab'] = float(np.mean(image_quality.psnr(into_b, real[..., half:])))
    results['psnr_ba'] = float(np.mean(image_quality.psnr(into_a, real[..., :half])))
    results['accuracy_ab'] = float(np.mean(np.argmax(classifier_b.logits(into_b), 1) == pairs.labels[:n]))
  return results


def _attributes(evaluator: 'Evaluator', generate: Generate, rng: jax.Array) -> dict[str, float]:
  from gan_jax.data import captions
  generated = np.concatenate([np.asarray(batch) for batch, _ in evaluator.batches(
      generate, evaluator.config.eval.num_samples, rng)])
  as_uint8 = data_lib.pixels(generated)
  name = evaluator.source.name
  got = captions.bins(captions.measure(as_uint8), name)
  want = captions.bins(captions.measure(evaluator.pairs.targets[:len(generated)]), name)
  results = {f'attr_{a}': float(np.mean(got[a] == want[a])) for a in got}
  results['attribute_accuracy'] = float(np.mean(list(results.values())))
  return results


def _caption_swap(evaluator: 'Evaluator', generate: Generate, rng: jax.Array) -> dict[str, float]:
  from gan_jax.data import captions
  name, pairs = evaluator.source.name, evaluator.pairs
  n = min(SWAP_SAMPLES, len(pairs.inputs))
  binned = {a: b[:n] for a, b in captions.bins(captions.measure(pairs.targets[:n]), name).items()}
  labels = pairs.labels[:n]

  def measured(tokens: np.ndarray) -> dict[str, np.ndarray]:  # The same latents for every caption set.
    generated = np.concatenate([np.asarray(batch) for batch, _ in sample_batches(
        generate, evaluator.config.model.z_dim, 0, n, evaluator.config.eval.batch_size, rng,
        Pairs(tokens, pairs.targets[:n], labels))])
    return captions.measure(data_lib.pixels(generated))

  original = measured(pairs.inputs[:n])
  results = {}
  for attribute in captions.ATTRIBUTES[name]:
    swapped_bins = captions.swap_bins(binned[attribute])
    texts = captions.compose(name, labels, {**binned, attribute: swapped_bins}, data_lib.CAPTION_SEED)
    moved = measured(captions.tokenize(name, texts)[0])[attribute] - original[attribute]
    results[f'swap_{attribute}'] = float(np.mean(np.sign(moved) == np.sign(swapped_bins - binned[attribute])))
  results['caption_swap'] = float(np.mean(list(results.values())))
  return results


def _modes(evaluator: 'Evaluator', generate: Generate, rng: jax.Array) -> dict[str, float]:
  found = modes.mixture_modes(evaluator.mixture_points(generate, rng), evaluator.source.mixture)
  return {key: float(found[key]) for key in METRICS['modes'].keys}


def _stacked_modes(evaluator: 'Evaluator', generate: Generate, rng: jax.Array) -> dict[str, float]:
  batch_size = evaluator.config.eval.batch_size
  digits = np.concatenate([_stacked_digits(evaluator.mnist, batch, batch_size) for batch, _ in evaluator.batches(
      generate, evaluator.config.eval.stacked_samples, rng)])
  found = modes.stacked_mnist_modes(digits)
  return {key: float(found[key]) for key in METRICS['stacked_modes'].keys}


METRICS: dict[str, Metric] = {
    'classifier_fd': Metric(('classifier_fd',), 'image', network='classifier', real=('stats',),
                            compute=lambda s: {'classifier_fd': fid.frechet_distance_from_stats(s.stats, s.real_stats)}),
    'classifier_score': Metric(('classifier_score', 'classifier_score_std'), 'image', network='classifier',
                               keeps=('logits',), compute=_score('classifier_score')),
    'fid': Metric(('fid',), 'image', network='inception', real=('stats',),
                  compute=lambda s: {'fid': fid.frechet_distance_from_stats(s.stats, s.real_stats)}),
    'is': Metric(('is', 'is_std'), 'image', network='inception', keeps=('logits',), compute=_score('is')),
    'kid': Metric(('kid', 'kid_std'), 'image', network='features', keeps=('features',), real=('features',),
                  compute=_kid),
    'precision_recall': Metric(('precision', 'recall', 'density', 'coverage'), 'image', network='features',
                               keeps=('features',), real=('features',), compute=_precision_recall),
    'modes': Metric(('modes', 'high_quality', 'reverse_kl'), 'mixture', compute=_modes),
    'stacked_modes': Metric(('modes', 'reverse_kl'), 'stacked_mnist', compute=_stacked_modes),
    'class_accuracy': Metric(('class_accuracy',), 'image', network='classifier', keeps=('logits',), conditional=True,
                             compute=lambda s: {'class_accuracy': float(np.mean(np.argmax(s.logits, 1) == s.labels))}),
    'intra_fd': Metric(('intra_fd',), 'image', network='classifier', keeps=('features',), real=('class_stats',),
                       conditional=True, compute=_intra_fd),
    'reconstruction': Metric(('psnr', 'ssim'), 'paired', compute=_reconstruction),
    'cycle': Metric(('cycle_l1_a', 'cycle_l1_b', 'fd_ab', 'fd_ba', 'psnr_ab', 'psnr_ba', 'accuracy_ab'), 'paired',
                    compute=_cycle),
    'attributes': Metric(('attribute_accuracy', 'attr_thickness', 'attr_slant', 'attr_width', 'attr_size',
                          'attr_brightness'), 'captions', compute=_attributes),
    'caption_swap': Metric(('caption_swap', 'swap_thickness', 'swap_slant', 'swap_width', 'swap_size',
                            'swap_brightness'), 'captions', compute=_caption_swap),
    'bicubic': Metric(('bicubic_psnr', 'bicubic_ssim', 'bicubic_fd', 'bicubic_accuracy'), 'paired', compute=_bicubic,
                      network='classifier', keeps=('logits',), real=('stats',)),
}


class Evaluator:
  """Computes `config.eval.metrics` for generators of `source`; see the module docstring.

  Construction validates the config, loads the feature networks and computes (or reads cached)
  real statistics, so that mistakes surface before training. Raises UserError for unknown
  metrics, metrics that do not fit the data set, and missing classifier or Inception weights files.
  """

  def __init__(self, config, source: data_lib.Source):
    self._metrics = _validate(config, source)
    self.config, self.source = config, source
    e = config.eval
    classifier_name = e.classifier or source.name
    features = e.features
    if features == 'auto':
      features = 'classifier' if classifier_name in classifier_lib.IMAGE_SHAPES else 'inception'
    self.pairs = Pairs.load(config) if source.task or config.data.captions else None
    self.bicubic_results = None  # Cached by the 'bicubic' metric.
    self._image = {}  # metric name -> the network it reads, for the image metrics (and 'bicubic').
    for name in self._metrics:
      if METRICS[name].data == 'image' or name == 'bicubic':
        self._image[name] = features if METRICS[name].network == 'features' else METRICS[name].network
    self._extractors = {}  # network name -> _Extractor.
    for name, network in self._image.items():
      if network in self._extractors:
        continue
      if network == 'classifier':
        self._extractors[network] = _classifier_extractor(
            _load_classifier(classifier_name, config, source.shape, name), e.batch_size)
      else:
        self._extractors[network] = _inception_extractor(config, name)
    self._real = {}  # network name -> {'stats', 'features', 'class_stats'} of the real reference set.
    for name, network in self._image.items():
      needs = METRICS[name].real
      if needs and network not in self._real:
        real_features, real_stats = _real_features(self._extractors[network], config, source)
        self._real[network] = {'features': real_features, 'stats': real_stats}
      if 'class_stats' in needs and 'class_stats' not in self._real[network]:
        self._real[network]['class_stats'] = class_stats(
            self._real[network]['features'], _real_subset(config, source)[1], source.num_classes)
    self.mnist = None  # Reads the digits of Stacked MNIST channels.
    if 'stacked_modes' in self._metrics:
      self.mnist = _load_classifier('mnist', config, source.shape[:2] + (1,), 'stacked_modes')

  def cycle_classifiers(self) -> tuple[classifier_lib.Classifier, classifier_lib.Classifier]:
    """The domain classifiers of an unpaired task's domains A and B (gan_jax.data.unpaired.domains)."""
    from gan_jax.data import unpaired
    shape = self.source.shape[:2] + (self.source.shape[2] // 2,)
    return tuple(_load_classifier(name, self.config, shape, 'cycle')
                 for name in unpaired.domains(self.source.task, self.source.name))

  @property
  def metrics(self) -> tuple[str, ...]:
    """The metric names being computed, in config order."""
    return self._metrics

  def __call__(self, generate: Generate, rng: jax.Array) -> dict[str, float]:
    """Draws samples from `generate` and returns {result key: value}; deterministic in rng."""
    image_rng, modes_rng, stacked_rng = jax.random.split(rng, 3)
    results = {}
    sides = self.image_sides(generate, image_rng)
    rngs = {'mixture': modes_rng, 'stacked_mnist': stacked_rng, 'paired': image_rng, 'captions': image_rng}
    for name in self._metrics:
      metric = METRICS[name]
      if metric.data == 'image':
        results.update(metric.compute(sides[self._image[name]]))
      else:
        results.update(metric.compute(self, generate, rngs[metric.data]))
    return results

  def at(self, generate: Generate, seed: int, step: int, logger=None) -> dict[str, float]:
    """The results with the draws of (seed, step) (`eval_key`), so an evaluation repeated from a
    checkpoint, or made for one run of a group, gives the same numbers as the one made during
    training. With a gan_jax.logging.RunLogger, runs evaluated on 'modes' also get
    figures/modes_<step>.png (the evaluated points and their mode histogram), logged to W&B."""
    key = eval_key(seed, step)
    results = self(generate, key)
    if logger is not None and logger.enabled and 'modes' in self.metrics:
      path = logger.workdir / 'figures' / f'modes_{step}.png'
      try:
        path.parent.mkdir(exist_ok=True)
        self.mode_figure(generate, key, path, title=f'step {step}')
        logger.media(step, 'eval/modes_figure', path)
      except OSError as e:
        logging.warning('mode figure of step %d not written (%s); training continues', step, e)
    return results

  def mode_figure(self, generate: Generate, rng: jax.Array, path: pathlib.Path, title: str = '') -> None:
    """Writes `path` (PNG): the points the 'modes' metric evaluates for `rng` over the real mixture,
    and their histogram of high-quality samples per mode (gan_jax.plots.save_mode_figure)."""
    points = self.mixture_points(generate, jax.random.split(rng, 3)[1])  # __call__'s modes rng.
    mixture = self.source.mixture
    real = np.asarray(mixture.sample(jax.random.key(0), points.shape[0]))
    plots.save_mode_figure(points, real, mixture, modes.mixture_modes(points, mixture), path, title)

  def mixture_points(self, generate: Generate, rng: jax.Array) -> np.ndarray:
    """eval.mixture_samples generated 2D points [N, 2]."""
    return np.concatenate([np.asarray(batch) for batch, _ in self.batches(generate, self.config.eval.mixture_samples,
                                                                         rng)])

  def batches(self, generate: Generate, num_samples: int, rng: jax.Array) -> Iterator[tuple[jax.Array, jax.Array]]:
    if self.pairs is not None:
      num_samples = min(num_samples, len(self.pairs.inputs))
    return sample_batches(generate, self.config.model.z_dim, self.source.num_classes, num_samples,
                          self.config.eval.batch_size, rng, self.pairs)

  def image_sides(self, generate: Generate, rng: jax.Array) -> dict[str, Side]:
    """One pass over eval.num_samples samples through every network the image metrics read: the
    generated Side of each ({} without image metrics)."""
    if not self._image:
      return {}
    keeps = {network: set() for network in self._extractors}
    for name, network in self._image.items():
      keeps[network].update(METRICS[name].keeps)
    stats = {network: fid.FeatureStats() for network in self._extractors}
    kept = {network: {'features': [], 'logits': []} for network in self._extractors}
    labels = []
    for samples, batch_labels in self.batches(generate, self.config.eval.num_samples, rng):
      labels.append(np.asarray(batch_labels))
      for network, extractor in self._extractors.items():
        batch_features, batch_logits = extractor.fn(samples)
        stats[network].update(batch_features)
        for what, values in (('features', batch_features), ('logits', batch_logits)):
          if what in keeps[network]:
            kept[network][what].append(np.asarray(values))
    sides = {}
    for network in self._extractors:
      real = self._real.get(network, {})
      sides[network] = Side(stats[network], *(np.concatenate(kept[network][w]) if kept[network][w] else None
                                              for w in ('features', 'logits')),
                            labels=np.concatenate(labels), real_stats=real.get('stats'),
                            real_features=real.get('features'), real_class_stats=real.get('class_stats'),
                            num_classes=self.source.num_classes)
    return sides
