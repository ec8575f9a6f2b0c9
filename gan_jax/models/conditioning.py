"""Class conditioning for G and D: which class an example is of (int32 labels [B] in [0, num_classes)).

Generator (`model.g_cond`):
  'concat'  a learned label embedding [B, label_dim] concatenated to z (Mirza & Osindero 2014).
  'cbn'     conditional batch norm: every BatchNorm of G normalizes without its own scale and
            offset, then applies a per-class scale 1 + gamma[y] and offset beta[y] (de Vries et
            al. 2017; Miyato & Koyama 2018), both initialised to 0.
Discriminator (`model.d_cond`):
  'concat'      one-hot label maps [B, H, W, num_classes] concatenated to the input channels.
  'projection'  logit = psi(phi(x)) + <embed(y), phi(x)> over D's last features phi(x)
                (Miyato & Koyama 2018, eq. 3).
  'acgan'       an auxiliary head classifies phi(x) into num_classes; the adversarial logit does
                not see y (Odena et al. 2017). Its cross-entropy terms are added to both losses.
Text ('text' for both players, gan_jax.models.text): the labels are caption tokens int32 [B, T]; G
concatenates a sentence vector to z, D adds a projection term of it.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError

G_CONDITIONING = ('', 'concat', 'cbn', 'text')
D_CONDITIONING = ('', 'concat', 'projection', 'acgan', 'text')


def check_config(model_config, num_classes: int) -> None:
  """Raises UserError unless model.g_cond / d_cond are known, set together, and the data has labels."""
  g_cond, d_cond = model_config.g_cond, model_config.d_cond
  if g_cond not in G_CONDITIONING:
    raise UserError(f'unknown model.g_cond {g_cond!r}; choose one of {", ".join(map(repr, G_CONDITIONING))}')
  if d_cond not in D_CONDITIONING:
    raise UserError(f'unknown model.d_cond {d_cond!r}; choose one of {", ".join(map(repr, D_CONDITIONING))}')
  if (g_cond == 'text') != (d_cond == 'text'):
    raise UserError(f"text conditioning is model.g_cond='text' with model.d_cond='text' (got {g_cond!r}, {d_cond!r})")
  if bool(g_cond) != bool(d_cond):
    raise UserError(f'a conditional GAN conditions both players; got model.g_cond={g_cond!r} and '
                    f'model.d_cond={d_cond!r} (set both, or neither)')
  if g_cond and num_classes < 2:
    raise UserError(f'model.g_cond={g_cond!r} needs a labelled data set with >= 2 classes; the data has '
                    f'{num_classes} (use mnist, fashion_mnist or cifar10)')
  if g_cond and model_config.label_dim < 1:
    raise UserError(f'model.label_dim must be >= 1 (got {model_config.label_dim})')


def check_labels(labels, num_samples: int, num_classes: int) -> np.ndarray:
  """`labels` as int32 [num_samples]; UserError for a wrong count or a label outside [0, num_classes)."""
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.shape[0] != num_samples:
    raise UserError(f'expected one label per sample ({num_samples}); got labels of shape {labels.shape}')
  if labels.size and not np.issubdtype(labels.dtype, np.integer):
    raise UserError(f'labels must be integers; got dtype {labels.dtype}')
  bad = labels[(labels < 0) | (labels >= num_classes)]
  if bad.size:
    raise UserError(f'label {int(bad[0])} is out of range: this model has classes 0..{num_classes - 1}')
  return labels.astype(np.int32)


def parse_labels(text: str, num_samples: int, num_classes: int) -> np.ndarray:
  """The `--labels` flag: 'balanced' (0, 1, ..., K-1 repeated), one label for every sample, or
  one comma-separated label per sample. Returns int32 [num_samples]; UserError otherwise."""
  if text == 'balanced':
    return np.arange(num_samples, dtype=np.int32) % num_classes
  try:
    values = [int(part) for part in text.split(',')]
  except ValueError:
    raise UserError(f"--labels={text}: expected 'balanced' or comma-separated integers such as 0,1,2") from None
  if len(values) == 1:
    values = values * num_samples
  elif len(values) != num_samples:
    raise UserError(f'--labels gives {len(values)} labels for --num_samples={num_samples}; give one label per '
                    "sample, a single label for all, or 'balanced'")
  return check_labels(np.asarray(values), num_samples, num_classes)


def _require(labels, who: str) -> jax.Array:
  if labels is None:
    raise ValueError(f'{who} is class-conditional: call it with labels=int32 [B]')
  return labels


class ConcatLabel(nn.Module):
  """z [B, Z], labels [B] -> [B, Z + label_dim]: z followed by a learned label embedding."""
  num_classes: int
  label_dim: int

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array) -> jax.Array:
    embedding = nn.Embed(self.num_classes, self.label_dim, name='label_embedding')(_require(labels, 'G'))
    return jnp.concatenate([z, embedding.astype(z.dtype)], axis=-1)


class ClassAffine(nn.Module):
  """The conditional part of conditional batch norm: x [B, ..., C] * (1 + gamma[y]) + beta[y].

  Apply it to the output of a BatchNorm with use_scale=False and use_bias=False.
  """
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    labels = _require(labels, 'G')
    gamma = nn.Embed(self.num_classes, channels, embedding_init=nn.initializers.zeros, name='gamma')(labels)
    beta = nn.Embed(self.num_classes, channels, embedding_init=nn.initializers.zeros, name='beta')(labels)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)
    return x * (1.0 + gamma.reshape(shape).astype(x.dtype)) + beta.reshape(shape).astype(x.dtype)


def label_maps(x: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
  """x [B, H, W, C], labels [B] -> [B, H, W, C + num_classes]: one-hot label planes appended."""
  planes = jax.nn.one_hot(_require(labels, 'D'), num_classes, dtype=x.dtype)
  planes = jnp.broadcast_to(planes[:, None, None, :], (*x.shape[:3], num_classes))
  return jnp.concatenate([x, planes], axis=-1)


class Projection(nn.Module):
  """<embed(y), features> [B]: the class term of the projection discriminator."""
  num_classes: int

  @nn.compact
  def __call__(self, features: jax.Array, labels: jax.Array) -> jax.Array:
    # Scaled as a Dense kernel over the features (std 1/sqrt(D)), so the class term starts as
    # large as the unconditional logit rather than sqrt(D) times larger.
    init = nn.initializers.normal(features.shape[-1] ** -0.5)
    embedding = nn.Embed(self.num_classes, features.shape[-1], embedding_init=init,
                         name='class_embedding')(_require(labels, 'D'))
    return jnp.sum(embedding.astype(features.dtype) * features, axis=-1)
