"""Captions for MNIST and Fashion-MNIST images, from the class and shape attributes measured on the pixels.

In the style of Morpho-MNIST (Castro et al. 2019), each image's attributes are measured on its mask
(pixels > 127), then binned into three words each by the training set's tertiles (so every word of
an attribute is about equally frequent, and chance is 1/3):
  thickness   (MNIST) mean stroke width, px: mask area / skeleton length   thin | medium | thick
  slant       (MNIST) degrees to the right of vertical, from the mask's second moments: atan(-cov(x, y)
              / var(y)), x to the right and y down                         left | upright | right
  width       (MNIST) columns the mask spans, px                           narrow | medium | wide
  size        (Fashion-MNIST) mask area, px                                small | medium | large
  brightness  (Fashion-MNIST) mean intensity inside the mask, 0..255       dark | medium | bright
A caption says the class and every attribute of its data set, in one of several templates with
synonyms per word ("this thick, medium-width seven, leaning right"; "the 7, bold, wide, upright"), drawn
per image from (seed, index), so captions are deterministic. `parse` reads a caption's class and
attribute bins back, which is how tests check that a caption says what was measured.
"""
import re

import numpy as np
from skimage.morphology import skeletonize

from gan_jax.errors import UserError

THRESHOLD = 127  # Mask: pixels above this.
# Tertiles of each attribute over the training split (tests/test_captions.py recomputes them).
BINS = {'thickness': (2.54, 3.22), 'slant': (-0.6, 12.6), 'width': (14, 17), 'size': (170, 322),
        'brightness': (176.8, 202.3)}
ATTRIBUTES = {'mnist': ('thickness', 'slant', 'width'), 'fashion_mnist': ('size', 'brightness')}
CLASS_WORDS = {
    'mnist': (('zero', '0'), ('one', '1'), ('two', '2'), ('three', '3'), ('four', '4'), ('five', '5'),
              ('six', '6'), ('seven', '7'), ('eight', '8'), ('nine', '9')),
    'fashion_mnist': (('t-shirt', 'top'), ('trouser', 'pair of trousers'), ('pullover', 'sweater'), ('dress', 'gown'),
                      ('coat', 'jacket'), ('sandal', 'summer shoe'), ('shirt', 'blouse'), ('sneaker', 'trainer'),
                      ('bag', 'handbag'), ('ankle boot', 'boot')),
}
# Per attribute and bin, the synonyms a caption may use; as words before the noun, or as a phrase after it.
ADJECTIVES = {
    'thickness': (('thin', 'fine', 'light'), ('medium-weight', 'regular', 'medium-stroke'), ('thick', 'bold', 'heavy')),
    'width': (('narrow', 'slim', 'compact'), ('medium-width', 'average-width', 'moderately wide'),
              ('wide', 'broad', 'spread-out')),
    'size': (('small', 'little', 'tiny'), ('medium-sized', 'mid-sized', 'average-sized'), ('large', 'big', 'huge')),
    'brightness': (('dark', 'dim', 'shadowy'), ('grey', 'muted', 'mid-toned'), ('bright', 'light-toned', 'pale')),
}
PHRASES = {'slant': (('leaning left', 'slanted left', 'tilted to the left'), ('upright', 'standing straight', 'vertical'),
                     ('leaning right', 'slanted right', 'tilted to the right'))}
TEMPLATES = ('this {adjectives} {noun}{phrases}', 'the {noun}, {adjectives}{phrases}', '{adjectives} {noun}{phrases}')
MAX_TOKENS = 16
PAD = 0


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
  """Attributes of uint8 images [N, H, W, 1]: float64 [N] each of thickness, slant, width, size, brightness."""
  if images.ndim != 4 or images.shape[-1] != 1:
    raise UserError(f'captions are measured on single-channel images [N, H, W, 1], got {images.shape}')
  masks = images[..., 0] > THRESHOLD
  weights = masks.astype(np.float64)
  area = weights.sum(axis=(1, 2))
  skeleton = np.array([skeletonize(mask).sum() for mask in masks], np.float64)
  rows, cols = np.mgrid[:masks.shape[1], :masks.shape[2]]
  safe_area = np.maximum(area, 1.0)
  cx = (weights * cols).sum(axis=(1, 2)) / safe_area
  cy = (weights * rows).sum(axis=(1, 2)) / safe_area
  dx, dy = cols[None] - cx[:, None, None], rows[None] - cy[:, None, None]
  cov = (weights * dx * dy).sum(axis=(1, 2)) / safe_area
  var_y = np.maximum((weights * dy * dy).sum(axis=(1, 2)) / safe_area, 1e-9)
  spanned = masks.any(axis=1)
  first, last = spanned.argmax(axis=1), spanned.shape[1] - 1 - spanned[:, ::-1].argmax(axis=1)
  return {'thickness': area / np.maximum(skeleton, 1.0), 'slant': np.degrees(np.arctan(-cov / var_y)),
          'width': np.where(spanned.any(axis=1), last - first + 1, 0).astype(np.float64), 'size': area,
          'brightness': (images[..., 0] * masks).sum(axis=(1, 2)) / safe_area}


def bins(measures: dict[str, np.ndarray], dataset: str) -> dict[str, np.ndarray]:
  """Each of the data set's attributes binned by BINS: int [N] in {0, 1, 2}."""
  return {name: np.digitize(measures[name], BINS[name]) for name in ATTRIBUTES[_check(dataset)]}


def _check(dataset: str) -> str:
  if dataset not in ATTRIBUTES:
    raise UserError(f'captions exist for {", ".join(ATTRIBUTES)}, not {dataset!r}')
  return dataset


def make(dataset: str, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[str]:
  """One caption per image (class and binned attributes; template and synonyms drawn from (seed, index))."""
  return compose(dataset, labels, bins(measure(images), dataset), seed)


def swap_bins(binned: np.ndarray) -> np.ndarray:
  """int [N]: another bin for each of `binned` (0 <-> 2; 1 -> 2 at even indices, 0 at odd), for
  caption pairs that differ in one attribute word."""
  middle = np.where(np.arange(len(binned)) % 2 == 0, 2, 0)
  return np.where(binned == 1, middle, 2 - binned)


def compose(dataset: str, labels: np.ndarray, binned: dict[str, np.ndarray], seed: int = 0) -> list[str]:
  """One caption per (label, attribute bins): the words of `make`, drawn from (seed, index), so two
  calls whose bins differ in one attribute give captions that differ in that attribute's words alone."""
  rng = np.random.default_rng(seed)
  choices = rng.integers(0, 1 << 30, (len(labels), 8))
  out = []
  for i, label in enumerate(labels):
    pick = lambda options, k: options[choices[i, k] % len(options)]
    adjectives = [pick(ADJECTIVES[name][binned[name][i]], k) for k, name in enumerate(ATTRIBUTES[dataset])
                  if name in ADJECTIVES]
    phrases = ''.join(', ' + pick(PHRASES[name][binned[name][i]], 5) for name in ATTRIBUTES[dataset] if name in PHRASES)
    template = pick(TEMPLATES, 6)
    out.append(template.format(adjectives=', '.join(adjectives), noun=pick(CLASS_WORDS[dataset][label], 7),
                               phrases=phrases))
  return out


def _lookup(dataset: str) -> list[tuple[str, str, int]]:
  """(phrase, attribute or 'class', bin or class) for every phrase of the data set, longest first."""
  entries = [(word, 'class', c) for c, words in enumerate(CLASS_WORDS[dataset]) for word in words]
  for name in ATTRIBUTES[dataset]:
    for b, words in enumerate({**ADJECTIVES, **PHRASES}[name]):
      entries += [(word, name, b) for word in words]
  return sorted(entries, key=lambda e: -len(e[0]))


def parse(dataset: str, caption: str) -> dict[str, int]:
  """The class and attribute bins a caption states: {'class': c, attribute: bin, ...}."""
  text, found = f' {caption} ', {}
  for phrase, key, value in _lookup(_check(dataset)):
    pattern = r'(?<=[\s,])' + re.escape(phrase) + r'(?=[\s,])'
    if key not in found and re.search(pattern, text):
      found[key] = value
      text = re.sub(pattern, ' ', text)
  return found


def vocabulary(dataset: str) -> tuple[str, ...]:
  """Every token a caption of `dataset` can hold (sorted); token id = index + 1 (0 pads)."""
  words = {w for phrase, _, _ in _lookup(_check(dataset)) for w in tokens(phrase)}
  words |= {w for template in TEMPLATES for w in tokens(re.sub(r'\{\w+\}', ' ', template))}
  return tuple(sorted(words))


def tokens(caption: str) -> list[str]:
  """Lower-case words and commas of a caption."""
  return re.findall(r"[a-z0-9'-]+|,", caption.lower())


def tokenize(dataset: str, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """(token ids int32 [N, MAX_TOKENS], 0-padded; mask bool [N, MAX_TOKENS], True on real tokens)."""
  ids = {word: i + 1 for i, word in enumerate(vocabulary(dataset))}
  out = np.full((len(captions), MAX_TOKENS), PAD, np.int32)
  for row, caption in enumerate(captions):
    words = tokens(caption)
    if len(words) > MAX_TOKENS:
      raise UserError(f'caption {caption!r} has {len(words)} tokens, more than MAX_TOKENS={MAX_TOKENS}')
    try:
      out[row, :len(words)] = [ids[w] for w in words]
    except KeyError as e:
      raise UserError(f'caption {caption!r} has a word outside the {dataset} vocabulary: {e}') from None
  return out, out != PAD
