"""Text-conditioned generation: the sentence encoder, caption routing through G and D, the step's wiring
of captions (fakes are made for the real batch's own captions), the attribute metric, and a short run."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import experiments
from gan_jax import losses
from gan_jax import models
from gan_jax.errors import UserError
from gan_jax.metrics import classifier as classifier_lib
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.models import text
from gan_jax.train import run as run_lib
from gan_jax.train import state as state_lib
from gan_jax.train import steps

VOCAB = 12


@pytest.mark.parametrize('kind', text.ENCODERS)
def test_encoder_ignores_padding_and_reads_every_token(kind):
  encoder = text.TextEncoder(VOCAB, 8, kind)
  tokens = jnp.array([[3, 5, 7, 0, 0, 0], [4, 4, 0, 0, 0, 0]], jnp.int32)
  variables = encoder.init(jax.random.key(0), tokens)
  base = encoder.apply(variables, tokens)
  assert base.shape == (2, 8)
  shorter = encoder.apply(variables, tokens[:, :4])  # Less padding: the same sentences.
  np.testing.assert_allclose(shorter, base, atol=1e-6)
  changed = encoder.apply(variables, tokens.at[0, 1].set(6))  # Only sentence 0's second word changes.
  assert not np.allclose(changed[0], base[0]) and np.allclose(changed[1], base[1])


def test_frozen_encoder_gets_no_gradient():
  tokens = jnp.array([[3, 5, 0]], jnp.int32)
  for frozen, expect_zero in ((True, True), (False, False)):
    encoder = text.TextEncoder(VOCAB, 4, 'mean', frozen)
    params = encoder.init(jax.random.key(0), tokens)
    grads = jax.grad(lambda p: jnp.sum(encoder.apply(p, tokens) ** 2))(params)
    total = sum(float(jnp.sum(jnp.abs(g))) for g in jax.tree.leaves(grads))
    assert (total == 0.0) == expect_zero


def _text_model_config():
  c = config_lib.base()
  c.model.g_channels = c.model.d_channels = 4
  c.model.z_dim, c.model.text_dim = 8, 6
  c.model.g_cond = c.model.d_cond = 'text'
  return c.model


def test_caption_routing_through_g_and_d():
  g, d = models.build(_text_model_config(), (28, 28, 1), num_classes=10, vocab_size=VOCAB)
  z = jax.random.normal(jax.random.key(0), (3, 8))
  tokens = jnp.array([[1, 2, 0], [3, 4, 5], [6, 0, 0]], jnp.int32)
  g_vars = g.init(jax.random.key(1), z, train=False, labels=tokens)
  images = g.apply(g_vars, z, train=False, labels=tokens)
  other = g.apply(g_vars, z, train=False, labels=tokens.at[1, 0].set(7))
  assert not np.allclose(other[1], images[1]) and np.allclose(other[0], images[0]) and np.allclose(other[2], images[2])
  d_vars = d.init(jax.random.key(2), images, train=False, labels=tokens)
  logits = d.apply(d_vars, images, train=False, labels=tokens)
  moved = d.apply(d_vars, images, train=False, labels=tokens.at[2, 0].set(9))
  assert logits.shape == (3,) and not np.isclose(moved[2], logits[2]) and np.allclose(moved[:2], logits[:2])


SHAPE = (2,)


class TokenG(nn.Module):
  """(z, tokens [B, T]) -> w * (sum of tokens, 1) per example: G's output records which caption it got."""

  @nn.compact
  def __call__(self, z, train=True, labels=None):
    total = jnp.sum(labels, axis=1).astype(jnp.float32)
    return self.param('w', lambda _: jnp.asarray(0.5)) * jnp.stack([total, jnp.ones_like(total)], -1)


class TokenD(nn.Module):
  """(x [B, 2], tokens) -> x0 * s + x1 with s the sum of the tokens: a mismatched caption changes the score."""

  @nn.compact
  def __call__(self, x, train=True, labels=None):
    del train
    s = jnp.sum(labels, axis=1).astype(jnp.float32)
    return x[:, 0] * s * self.param('a', lambda _: jnp.asarray(1.0)) + x[:, 1]


def test_fakes_are_made_and_judged_for_the_real_batchs_captions():
  """d_fake = mean_k mean_i D(G(t_ki), t_ki) = mean(0.5 s^2 + 0.5) and d_real = mean(x0 s + x1) with D
  frozen: drawing other captions for the fakes, or judging them with the wrong ones, changes the values."""
  g, d = TokenG(), TokenD()
  opt = optax.sgd(0.0)
  state = state_lib.init(g, d, opt, opt, 2, SHAPE, jax.random.key(0), ema=False, conditional=True, text_length=3)
  options = steps.StepOptions(z_dim=2, num_classes=10, text=True)
  step = jax.jit(steps.make_train_step(g, d, opt, opt, losses.get('wasserstein'), options))
  rng = np.random.default_rng(0)
  tokens = rng.integers(1, VOCAB, (2, 5, 3)).astype(np.int32)  # [d_steps, B, T]
  real = rng.normal(size=(2, 5, 2))
  batch = {'image': jnp.asarray(real, jnp.float32), 'label': jnp.zeros((2, 5), jnp.int32), 'text': jnp.asarray(tokens)}
  _, metrics = step(state, batch, jax.random.key(1))
  s = tokens.sum(-1).astype(np.float64)
  np.testing.assert_allclose(metrics['d_fake'], np.mean(0.5 * s * s + 0.5), rtol=1e-5)
  np.testing.assert_allclose(metrics['d_real'], np.mean(real[..., 0] * s + real[..., 1]), rtol=1e-5)


def test_attribute_metric_of_the_captioned_images_themselves(data_dir):
  """A generator that returns, for each test caption, the image it describes agrees with every attribute
  and keeps the classes as often as the classifier reads test digits right."""
  c = experiments.load_config('text2image', [('eval.num_samples', '1000'), ('eval.metrics', 'attributes,class_accuracy')])
  evaluator = evaluator_lib.Evaluator(c, data_lib.make_source(c.data))
  targets = evaluator.pairs.targets.astype(np.float32) / 127.5 - 1.0
  calls = iter(range(100))

  def replay(z, tokens):  # Batches in order, the last padded: the evaluator's passes each start at 0.
    start = (next(calls) % 2) * 500
    return jnp.asarray(targets[start:start + 500])

  results = evaluator(replay, jax.random.key(0))
  assert results['attribute_accuracy'] == 1.0 and results['attr_slant'] == 1.0
  clf = classifier_lib.load('mnist', 'models')
  expected = classifier_lib.accuracy(clf, evaluator.pairs.targets, evaluator.pairs.labels)
  assert results['class_accuracy'] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize('overrides, message', [
    ([('data.captions', 'false')], "needs captions"),
    ([('model.g_cond', 'concat'), ('model.d_cond', 'projection')], 'data.captions needs a text-conditioned model'),
    ([('model.d_cond', 'projection')], "text conditioning is model.g_cond='text' with model.d_cond='text'"),
    ([('model.text_encoder', 'lstm')], "unknown model.text_encoder 'lstm'"),
    ([('data.name', 'cifar10')], 'captions exist for mnist, fashion_mnist'),
    ([('data.captions', 'false'), ('model.g_cond', 'concat'), ('model.d_cond', 'projection'),
      ('model.text_pretrained', 'true')], 'model.text_pretrained needs a text-conditioned model'),
])
def test_bad_text_configs_are_clear_errors(overrides, message, data_dir):
  with pytest.raises(UserError, match=message):
    run_lib.build_run(experiments.load_config('text2image:smoke', overrides))


@pytest.mark.slow  # ~60 s.
def test_a_short_text2image_run_learns(tmp_path, data_dir):
  """600 iterations of the shipped config (the committed pretrained reader): the samples approach the
  data (an untrained G scores a classifier FD above 1000) and already follow the caption's class
  more often than chance (0.1), and the grid's captions are written."""
  overrides = [('train.steps', '600'), ('train.sample_every', '600'), ('eval.eval_every', '600'),
               ('eval.num_samples', '2000'), ('eval.metrics', 'class_accuracy,classifier_fd'), ('log.wandb', 'disabled')]
  from gan_jax.train import loop
  result = loop.train_and_evaluate(experiments.load_config('text2image', overrides), tmp_path)
  assert result['eval']['classifier_fd'] < 500
  assert result['eval']['class_accuracy'] > 0.2, result['eval']
  assert (tmp_path / 'samples' / 'captions.txt').read_text().count('\n') == 10


def test_with_encoder_replaces_the_text_encoders_alone():
  from gan_jax.models import text_pretraining
  params = {'ConcatText_0': {'encoder': {'w': 1}}, 'Dense_0': {'kernel': 2},
            'TextProjection_0': {'encoder': {'w': 3}, 'project': {'kernel': 4}}}
  out = text_pretraining.with_encoder(params, {'w': jnp.array(9.0)})
  assert jax.tree.map(float, out) == {'ConcatText_0': {'encoder': {'w': 9}}, 'Dense_0': {'kernel': 2},
                                      'TextProjection_0': {'encoder': {'w': 9}, 'project': {'kernel': 4}}}
  assert out['ConcatText_0']['encoder']['w'] is not out['TextProjection_0']['encoder']['w']


@pytest.mark.slow  # ~20 s (mean), ~45 s (gru).
@pytest.mark.parametrize('kind, epochs', [('mean', 30), ('gru', 80)])
def test_pretrained_reader_states_what_held_out_captions_say(kind, epochs, data_dir):
  """Trained on 3000 training captions (700 and 1870 Adam steps; the shipped reader takes 1870 on
  60,000), the reader states the class and every attribute bin of 1000 test captions (chance: 0.1
  and 1/3); untrained, it is near chance."""
  from gan_jax.data import captions
  from gan_jax.models import text_pretraining
  c = experiments.load_config('text2image', [])
  vocab = len(captions.vocabulary('mnist')) + 1
  splits = {}
  for split, n in (('train', 3000), ('test', 1000)):
    tokens, images, labels = data_lib.load_captioned(c.data, split)
    splits[split] = (tokens[:n], captions.make('mnist', images[:n], labels[:n], data_lib.CAPTION_SEED))
  trained = text_pretraining.fit('mnist', *splits['train'], vocab, 32, kind, epochs=epochs)
  accuracy = text_pretraining.read_accuracy('mnist', trained, *splits['test'], vocab, 32, kind)
  assert set(accuracy) == {'class', 'thickness', 'slant', 'width'}
  assert min(accuracy.values()) > 0.95, accuracy
  untrained = text_pretraining.fit('mnist', *splits['train'], vocab, 32, kind, epochs=0)
  assert text_pretraining.read_accuracy('mnist', untrained, *splits['test'], vocab, 32, kind)['class'] < 0.3


@pytest.mark.slow  # ~70 s: the reader is trained on the 60,000 training captions.
def test_a_pretrained_run_starts_both_encoders_from_the_saved_reader(tmp_path, data_dir):
  """text2image:smoke with model.text_pretrained: the reader is trained once into eval.models_dir, and
  G's and D's encoders start from it (frozen: they are still it after training steps)."""
  import flax.serialization
  from gan_jax.train import loop
  models_dir = tmp_path / 'models'
  overrides = [('model.text_pretrained', 'true'), ('model.text_frozen', 'true'), ('eval.models_dir', str(models_dir)),
               ('model.text_dim', '32'),  # The smoke config's 8 is too narrow to read the class.
               ('log.wandb', 'disabled'), ('train.steps', '4'), ('train.checkpoint_every', '4')]
  c = experiments.load_config('text2image:smoke', overrides)
  assert loop.train_and_evaluate(c, tmp_path / 'run')['status'] == 'finished'
  saved = models_dir / 'mnist_text_gru_32.msgpack'
  assert saved.exists() and json.loads(saved.with_suffix('.json').read_text())['test_read_accuracy']['class'] > 0.9
  from gan_jax import from_checkpoint
  state = from_checkpoint.load_latest(c, tmp_path / 'run').state
  reader = flax.serialization.msgpack_restore(saved.read_bytes())['encoder']
  for params in (state.g.params['ConcatText_0'], state.d.params['TextProjection_0']):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params['encoder'], reader)


def test_caption_swap_credits_a_generator_that_follows_the_words_and_not_one_that_ignores_them(data_dir):
  """An oracle that draws, for each caption, a test digit with exactly the caption's attribute bins
  moves every attribute the way a swapped word asks (1.0); one that ignores the text moves none (0.0)."""
  from gan_jax.data import captions
  c = experiments.load_config('text2image', [('eval.num_samples', '200'), ('eval.metrics', 'caption_swap')])
  evaluator = evaluator_lib.Evaluator(c, data_lib.make_source(c.data))
  images, _ = data_lib.load_images('mnist', 'test')
  binned = captions.bins(captions.measure(images), 'mnist')
  names = captions.ATTRIBUTES['mnist']
  by_bins = {}
  for i, key in enumerate(zip(*(binned[a] for a in names))):
    by_bins.setdefault(key, i)
  words = ('',) + captions.vocabulary('mnist')

  def oracle(z, tokens):
    said = [captions.parse('mnist', ' '.join(words[t] for t in row if t)) for row in np.asarray(tokens)]
    chosen = images[[by_bins[tuple(s[a] for a in names)] for s in said]]
    return jnp.asarray(chosen, jnp.float32) / 127.5 - 1.0

  results = evaluator(oracle, jax.random.key(0))
  assert results['caption_swap'] == 1.0 and results['swap_slant'] == 1.0
  ignoring = evaluator(lambda z, tokens: oracle(z, jnp.asarray(evaluator.pairs.inputs[:len(tokens)])),
                       jax.random.key(0))
  assert ignoring['caption_swap'] == 0.0
