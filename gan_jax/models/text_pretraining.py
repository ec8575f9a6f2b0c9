"""A sentence encoder pretrained to read captions, the text-to-image GANs' fixed text embedding.

StackGAN and AttnGAN condition on text embeddings trained before the GAN (a char-CNN-RNN, DAMSM)
and kept fixed. The same here at this scale: a `TextEncoder` (gan_jax.models.text) with linear heads
is trained to state what a caption of the training split says, the class and each attribute bin
(gan_jax.data.captions.parse: softmax cross-entropy summed over the heads; Adam 1e-3, 4 epochs of
batch 128, fixed seed). With `model.text_pretrained`, G's and D's encoders start from it
(`model.text_frozen` keeps them there), so the sentence vector the GAN sees already separates
classes and bins.

The encoder is trained on first use (seconds on a CPU) and kept in
`<models_dir>/<dataset>_text_<kind>_<dim>.msgpack`, next to the domain classifiers, with a .json
holding how well it reads held-out captions (the test split's).
"""
import json
import os
import pathlib

from absl import logging
import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.data import captions
from gan_jax.models import text

EPOCHS = 4
BATCH_SIZE = 128
LEARNING_RATE = 1e-3


class CaptionReader(nn.Module):
  """tokens [B, T] -> {'class': logits [B, num_classes], attribute: logits [B, 3], ...}."""
  vocab_size: int
  dim: int
  kind: str
  heads: tuple[tuple[str, int], ...]

  @nn.compact
  def __call__(self, tokens: jax.Array) -> dict[str, jax.Array]:
    sentence = text.TextEncoder(self.vocab_size, self.dim, self.kind, name='encoder')(tokens)
    return {name: nn.Dense(size, name=f'head_{name}')(sentence) for name, size in self.heads}


def _targets(dataset: str, texts: list[str]) -> dict[str, np.ndarray]:
  """int32 [N] per head: each caption's class and attribute bins, parsed from its words."""
  parsed = [captions.parse(dataset, t) for t in texts]
  return {key: np.array([p[key] for p in parsed], np.int32) for key in ('class',) + captions.ATTRIBUTES[dataset]}


def _heads(dataset: str, num_classes: int) -> tuple[tuple[str, int], ...]:
  return (('class', num_classes),) + tuple((name, 3) for name in captions.ATTRIBUTES[dataset])


def fit(dataset: str, tokens: np.ndarray, texts: list[str], vocab_size: int, dim: int, kind: str,
        num_classes: int = 10, seed: int = 0, epochs: int = EPOCHS) -> dict:
  """Trains a CaptionReader on (tokens int32 [N, T], their caption strings) for `epochs`; returns its
  params (the encoder's under 'encoder', and the heads')."""
  reader = CaptionReader(vocab_size, dim, kind, _heads(dataset, num_classes))
  targets = _targets(dataset, texts)
  params = reader.init(jax.random.key(seed), jnp.asarray(tokens[:1]))['params']
  opt = optax.adam(LEARNING_RATE)
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      logits = reader.apply({'params': p}, x)
      return sum(optax.softmax_cross_entropy_with_integer_labels(logits[k], y[k]).mean() for k in logits)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  order_rng = np.random.default_rng(seed)
  for _ in range(epochs):
    order = order_rng.permutation(len(tokens))
    for start in range(0, len(order) - BATCH_SIZE + 1, BATCH_SIZE):
      idx = order[start:start + BATCH_SIZE]
      params, opt_state, _ = step(params, opt_state, jnp.asarray(tokens[idx]),
                                  {k: jnp.asarray(v[idx]) for k, v in targets.items()})
  return params


def read_accuracy(dataset: str, params: dict, tokens: np.ndarray, texts: list[str], vocab_size: int, dim: int,
                  kind: str, num_classes: int = 10) -> dict[str, float]:
  """Per head, the fraction of captions whose class / bin the trained reader states correctly."""
  reader = CaptionReader(vocab_size, dim, kind, _heads(dataset, num_classes))
  logits = jax.jit(lambda x: reader.apply({'params': params}, x))(jnp.asarray(tokens))
  return {k: float(np.mean(np.asarray(logits[k]).argmax(-1) == t)) for k, t in _targets(dataset, texts).items()}


def load_or_train(data_config, models_dir: pathlib.Path, vocab_size: int, dim: int, kind: str) -> dict:
  """The pretrained encoder's params for `data_config`'s captions (a TextEncoder's variables
  'params'), read from `models_dir` or trained and saved there first."""
  from gan_jax import data as data_lib
  name = f'{data_config.name}_text_{kind}_{dim}'
  path = pathlib.Path(models_dir) / f'{name}.msgpack'
  reader = CaptionReader(vocab_size, dim, kind, _heads(data_config.name, 10))
  template = reader.init(jax.random.key(0), jnp.zeros((1, captions.MAX_TOKENS), jnp.int32))['params']
  if path.exists():
    return flax.serialization.from_bytes(template, path.read_bytes())['encoder']
  logging.info('pretraining the %s caption encoder (%s, dim %d); saved to %s', data_config.name, kind, dim, path)
  splits = {}
  for split in ('train', 'test'):
    tokens, images, labels = data_lib.load_captioned(data_config, split)
    splits[split] = (tokens, captions.make(data_config.name, images, labels, data_lib.CAPTION_SEED))
  params = fit(data_config.name, *splits['train'], vocab_size, dim, kind)
  accuracy = read_accuracy(data_config.name, params, *splits['test'], vocab_size, dim, kind)
  path.parent.mkdir(parents=True, exist_ok=True)
  part = path.with_name(f'.{path.name}.{os.getpid()}.part')  # Renamed into place: never read half-written.
  part.write_bytes(flax.serialization.to_bytes(params))
  part.rename(path)
  path.with_suffix('.json').write_text(json.dumps(
      {'dataset': data_config.name, 'kind': kind, 'dim': dim, 'epochs': EPOCHS, 'test_read_accuracy': accuracy},
      indent=2) + '\n')
  return params['encoder']


def with_encoder(params: dict, encoder: dict) -> dict:
  """`params` (a G's or D's) with every text module's 'encoder' subtree replaced by a copy of `encoder`
  (copies: G's and D's parameters never share a buffer, which the jitted step donates)."""
  if not isinstance(params, dict):
    return params
  return {k: jax.tree.map(jnp.copy, encoder) if k == 'encoder' else with_encoder(v, encoder)
          for k, v in params.items()}
