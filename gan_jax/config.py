"""The config schema shared by every experiment, command-line overrides, and workdir compatibility.

Every experiment's `get_config()` starts from `base()` so all experiments read alike:

  data   name, dir, split, batch_size, on_device, download, task (image-to-image, gan_jax.data.paired),
         captions (text-to-image, gan_jax.data.captions)
  model  name, z_dim, g_channels, d_channels, d_norm, g_norm, vbn_reference, d_minibatch, hidden, layers, d_hidden,
         d_layers, d_input_scale (MLP D), upsample,
         g_cond, d_cond, label_dim (class conditioning, gan_jax.models.conditioning),
         text_encoder, text_dim, text_frozen (caption conditioning, gan_jax.models.text)
  loss   one of gan_jax.losses.LOSSES
  acgan  weight, d_fake: the AC-GAN classification terms (model.d_cond='acgan')
  g_loss '' (the loss's own G loss), 'feature_matching' or 'value' (the value function, both data terms)
  label_smoothing  one-sided label smoothing of D's real target (minimax / non-saturating losses)
  penalty  D regularizer weights (0 = off): gp (+ gp_one_sided), r1, r2, dragan, clip,
         d_weight_decay, instance_noise (+ instance_noise_steps), drift, historical
  unroll steps, stop_gradient, rolled (unrolled G update, Metz et al. 2017)
  translate  adversarial, l1, l2, features, cycle, identity: G's loss weights of image-to-image runs (data.task)
  optim  g.{lr,b1,b2}, d.{lr,b1,b2}  (Adam per player), decay, decay_to (schedule)
  train  steps, d_steps, seed, log_every, sample_every, checkpoint_every, keep_checkpoints,
         dtype, ema_decay, collapse_patience, collapse_d_loss, restarts, restart_lr_factor
  eval   eval_every, metrics, num_samples, batch_size, split, num_real, features, classifier,
         inception_weights, models_dir, mixture_samples, stacked_samples
  log    wandb ('auto' | 'online' | 'offline' | 'disabled'), project, group, name
"""
import ast
import json
from typing import Any, Iterable

import ml_collections

from gan_jax.errors import UserError

ConfigDict = ml_collections.ConfigDict

# Fields that change array shapes or the computation's structure: a workdir saved with other
# values cannot be resumed with these changed.
SHAPE_KEYS = ('data.name', 'data.task', 'data.captions', 'data.batch_size', 'model', 'train.d_steps', 'train.ema_decay')


def base() -> ConfigDict:
  """Defaults shared by every experiment; experiments override what differs."""
  c = ConfigDict()
  c.data = ConfigDict(dict(name='mnist', dir='', split='train', batch_size=64, on_device=True,
                           download=True,  # Fetch missing MNIST / Fashion-MNIST files (data/download.py).
                           task='',  # Image-to-image: a task of gan_jax.data.paired, or '' (generation).
                           captions=False))  # Each image's caption as 'text' tokens (gan_jax.data.captions).
  c.model = ConfigDict(dict(
      name='dcgan',
      z_dim=100,
      g_channels=64,      # DCGAN: channels of G's last hidden layer (doubles towards the input).
      d_channels=64,      # DCGAN: channels of D's first layer (doubles with depth).
      d_norm='batch',     # D's hidden-layer normalization: 'batch', 'layer', 'spectral' or 'none'.
      g_norm='batch',     # DCGAN G: 'batch' or 'virtual' (virtual batch norm, Salimans et al. 2016).
      vbn_reference=64,   # g_norm='virtual': size of the fixed reference batch of latents.
      d_minibatch='',     # before D's last layer: '', 'stddev' (ProGAN) or 'discrimination' (Salimans).
      hidden=128,         # MLP: hidden width (G's, and D's unless d_hidden is set).
      layers=3,           # MLP: hidden layers (G's, and D's unless d_layers is set).
      d_hidden=0,         # MLP: D's hidden width (0: model.hidden).
      d_layers=0,         # MLP: D's hidden layers (0: model.layers).
      d_input_scale=1.0,  # MLP: D multiplies its input points by this first (Metz et al.'s 2D D: 1/4).
      upsample='transpose',  # G's stride-2 4x4 transposed convs: 'transpose' or 'subpixel' (same math; models/upsample.py).
      g_cond='',          # class conditioning of G: '' (none), 'concat' (label embedding + z) or 'cbn'.
      d_cond='',          # of D: '' (none), 'concat' (label maps), 'projection' or 'acgan'.
      label_dim=10,       # g_cond='concat': size of the label embedding.
      text_encoder='gru',  # g_cond='text' (captions): 'gru' or 'mean' (gan_jax.models.text).
      text_dim=64,        # g_cond='text': size of the token embeddings and the sentence vector.
      text_frozen=False,  # g_cond='text': keep the encoders at their initial values.
      text_pretrained=False,  # g_cond='text': start both encoders from one pretrained to read the
                              # captions (gan_jax.models.text_pretraining); else random.
  ))
  c.loss = 'non_saturating'
  c.acgan = ConfigDict(dict(  # model.d_cond='acgan' (Odena et al. 2017).
      weight=1.0,   # weight of the class cross-entropy in the D and G losses.
      d_fake=True,  # D's class loss also on fakes (with their requested labels); False: on real data only.
  ))
  c.g_loss = ''
  c.label_smoothing = 0.0  # One-sided: D's target for real data is 1 - this (Salimans et al. 2016).
  c.penalty = ConfigDict(dict(
      gp=0.0,               # WGAN-GP lambda on random interpolates (Gulrajani et al. 2017).
      gp_one_sided=False,   # penalise only gradient norms above 1.
      r1=0.0,               # gamma of gamma/2 * E_real |grad D|^2 (Mescheder et al. 2018).
      r2=0.0,               # gamma of gamma/2 * E_fake |grad D|^2.
      dragan=0.0,           # lambda of the DRAGAN penalty around real data (Kodali et al. 2017).
      clip=0.0,             # original WGAN: clip every D weight to [-clip, clip] after each update.
      d_weight_decay=0.0,   # coefficient of the sum of squared D kernels added to the D loss.
      instance_noise=0.0,   # initial std of Gaussian noise added to D's real and fake inputs.
      instance_noise_steps=0,  # steps over which that std decays linearly to 0 (0: constant).
      drift=0.0,            # epsilon of ProGAN's drift term eps * E[D(x)^2].
      historical=0.0,       # lambda of historical averaging, lambda |theta - mean of past thetas|^2,
                            # for both players (Salimans et al. 2016).
  ))
  c.unroll = ConfigDict(dict(
      steps=0,              # k: G's loss is taken against D advanced k steps of D's optimizer (0 = off).
      stop_gradient=False,  # do not differentiate through those k steps (the cheap approximation).
      rolled=True,          # k steps as a rolled lax.scan loop; False unrolls it (faster for conv D on CPU).
  ))
  c.translate = ConfigDict(dict(  # G's loss when data.task is set: adversarial * the loss's G loss +
      adversarial=1.0,  # 0: the non-adversarial baseline (G trained on the terms below alone).
      l1=0.0,           # weight of mean |G(x) - y| (pix2pix: 100).
      l2=0.0,           # weight of mean (G(x) - y)^2.
      features=0.0,     # weight of the squared distance of the domain classifier's features.
      cycle=0.0,        # unpaired tasks (CycleGAN): weight of the cycle-consistency L1 (the paper: 10).
      identity=0.0,     # unpaired tasks: weight of the identity L1 (the paper: 0.5 * cycle).
  ))
  c.optim = ConfigDict(dict(
      g=ConfigDict(dict(lr=2e-4, b1=0.5, b2=0.999)),
      d=ConfigDict(dict(lr=2e-4, b1=0.5, b2=0.999)),
      decay='constant',     # learning-rate schedule over each player's updates: 'constant', 'linear' or 'cosine'
      decay_to=0.0,         # the final learning rate as a fraction of lr ('linear' and 'cosine').
  ))
  c.train = ConfigDict(dict(
      steps=10_000,
      d_steps=1,
      seed=0,
      log_every=100,
      sample_every=1000,
      checkpoint_every=1000,
      keep_checkpoints=3,
      dtype='float32',    # compute dtype: 'float32' or 'bfloat16' (params stay float32).
      ema_decay=0.0,      # EMA of G's params for sampling; 0 disables.
      collapse_patience=0,    # stop as diverged after this many consecutive logs (0: never) with
      collapse_d_loss=1e-3,   # d_loss at or below this value (D winning outright).
      restarts=0,             # on divergence, restart from the last good checkpoint this many times,
      restart_lr_factor=0.5,  # multiplying both learning rates by this factor each time.
  ))
  c.eval = ConfigDict(dict(  # See gan_jax.metrics.evaluator.
      eval_every=0,
      metrics=(),             # names from gan_jax.metrics.evaluator.METRICS.
      num_samples=10_000,     # generated samples for the image metrics.
      batch_size=500,         # generator and feature-extractor batch.
      split='test',           # real split the image metrics compare against.
      num_real=10_000,        # real images in that comparison (all of the split if fewer).
      features='auto',        # kid/precision_recall features: 'classifier', 'inception' or 'auto'.
      classifier='',          # domain classifier's data set; '' = data.name.
      inception_weights='',   # FID Inception weights (.npz or .pth); see BUILD.md.
      models_dir='',          # classifiers and cached real statistics; '' = <repo>/models.
      mixture_samples=2_500,  # 'modes' (PacGAN/VEEGAN protocol).
      stacked_samples=26_000,  # 'stacked_modes'.
  ))
  c.log = ConfigDict(dict(wandb='auto', project='gan_jax', group='', name=''))
  return c


def set_default_eval(c: ConfigDict, eval_every: int) -> ConfigDict:
  """Sets the metrics a data set is evaluated on by default, every `eval_every` steps.

  MNIST and Fashion-MNIST: classifier FD and classifier score (the project's classifiers);
  2D mixtures: mode coverage; Stacked MNIST: modes of 1000; other sets: none (FID needs the
  user's Inception weights file, see BUILD.md).
  """
  defaults = {'mnist': ('classifier_fd', 'classifier_score'), 'fashion_mnist': ('classifier_fd', 'classifier_score'),
              'ring': ('modes',), 'grid': ('modes',), 'stacked_mnist': ('stacked_modes',)}
  c.eval.metrics = defaults.get(c.data.name, ())
  c.eval.eval_every = eval_every
  return c


def shrink_to_smoke(c: ConfigDict) -> ConfigDict:
  """The `:smoke` variant every experiment has: tiny networks, batch 16, 20 steps, no evaluation
  (tests add the metrics they check). Experiments shrink their own extra costs (critic or unroll
  steps) besides."""
  c.model.g_channels = c.model.d_channels = 8
  c.model.z_dim = min(c.model.z_dim, 16)
  c.model.hidden = 32
  c.data.batch_size = 16
  c.train.update(dict(steps=20, log_every=5, sample_every=10, checkpoint_every=10))
  c.eval.metrics = ()
  return c


def _parse_value(text: str, current: Any, key: str) -> Any:
  """Parses `text` into the type of the field's current value."""
  def bad(expected: str) -> UserError:
    return UserError(f'--config.{key}={text}: expected {expected} (current value {current!r})')

  if isinstance(current, bool):
    low = text.lower()
    if low in ('true', '1', 'yes'):
      return True
    if low in ('false', '0', 'no'):
      return False
    raise bad('true or false')
  if isinstance(current, int):
    try:
      return int(text.replace('_', ''))
    except ValueError:
      try:
        as_float = float(text)
      except ValueError:
        raise bad('an integer') from None
      if as_float.is_integer():
        return int(as_float)
      raise bad('an integer') from None
  if isinstance(current, float):
    try:
      return float(text)
    except ValueError:
      raise bad('a number') from None
  if isinstance(current, str):
    return text
  if isinstance(current, (tuple, list)):
    if text == '':
      return type(current)()
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = tuple(part.strip() for part in text.split(','))
    if not isinstance(value, (tuple, list)):
      value = (value,)
    return type(current)(value)
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _lookup_parent(config: ConfigDict, key: str) -> tuple[ConfigDict, str]:
  parts = key.split('.')
  node = config
  for depth, part in enumerate(parts):
    prefix = '.'.join(parts[:depth])
    if not isinstance(node, ConfigDict):
      raise UserError(f'unknown config key {key!r}: {prefix!r} is a value, not a group')
    if part not in node:
      where = f'config.{prefix}' if prefix else 'config'
      raise UserError(f'unknown config key {key!r}; valid keys of {where}: {", ".join(sorted(node.keys()))}')
    if depth < len(parts) - 1:
      node = node[part]
  return node, parts[-1]


def apply_overrides(config: ConfigDict, overrides: Iterable[tuple[str, str]]) -> ConfigDict:
  """Applies `(dotted.key, text)` overrides in place, parsing text to the field's type.

  Raises:
    UserError for an unknown key (listing the valid keys at that level), an override of a
    whole group, or a value that does not parse as the field's type.
  """
  for key, text in overrides:
    parent, leaf = _lookup_parent(config, key)
    current = parent[leaf]
    if isinstance(current, ConfigDict):
      raise UserError(f'--config.{key} is a group; set one of its keys: '
                      f'{", ".join(f"{key}.{k}" for k in sorted(current.keys()))}')
    parent[leaf] = _parse_value(text, current, key)
  return config


def split_override_args(argv: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
  """Separates `--config.KEY=VALUE` (or `--config.KEY VALUE`) arguments from the rest of argv.

  Returns:
    ([(KEY, VALUE text), ...], the remaining argv in order, argv[0] included).
  """
  overrides, rest = [], [argv[0]]
  args = iter(argv[1:])
  for arg in args:
    if arg.startswith('--config.'):
      key, sep, value = arg[len('--config.'):].partition('=')
      if not sep:
        value = next(args, None)
        if value is None:
          raise UserError(f'--config.{key} needs a value (--config.{key}=VALUE)')
      overrides.append((key, value))
    else:
      rest.append(arg)
  return overrides, rest


def to_dict(config: ConfigDict) -> dict:
  """A JSON-safe nested dict of the config (tuples become lists)."""
  return json.loads(config.to_json())


def flatten(tree: dict, prefix: str = '') -> dict[str, Any]:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  flat = {}
  for key, value in tree.items():
    name = f'{prefix}{key}'
    if isinstance(value, dict):
      flat.update(flatten(value, name + '.'))
    else:
      flat[name] = value
  return flat


def with_defaults(saved: dict) -> dict:
  """A config dict saved by an earlier version, with the keys base() gained since filled with their defaults."""
  def fill(defaults: dict, tree: dict) -> dict:
    filled = dict(tree)
    for key, value in defaults.items():
      if key not in filled:
        filled[key] = value
      elif isinstance(value, dict) and isinstance(filled[key], dict):
        filled[key] = fill(value, filled[key])
    return filled

  return fill(to_dict(base()), saved)


def shape_differences(saved: dict, current: dict) -> list[str]:
  """Keys under SHAPE_KEYS whose values differ between two config dicts, as 'key: old -> new'.

  Keys the saved config lacks (added to base() after it was written) count as their defaults.
  """
  old, new = flatten(with_defaults(saved)), flatten(current)
  diffs = []
  for key in sorted(set(old) | set(new)):
    if not any(key == k or key.startswith(k + '.') for k in SHAPE_KEYS):
      continue
    if old.get(key) != new.get(key):
      diffs.append(f'{key}: {old.get(key)!r} -> {new.get(key)!r}')
  return diffs
