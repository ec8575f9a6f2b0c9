"""Adversarial losses, and the reconstruction terms of image-to-image generators.

Each D loss maps (d_real, d_fake) -> scalar; each G loss maps d_fake -> scalar.
`d_real`, `d_fake`: discriminator outputs of shape [B] (or [B, P], one per patch of a PatchGAN
D): logits for the probabilistic losses, unbounded critic values for Wasserstein, hinge and
least-squares.
All reductions are means over the batch, computed in float32 (or float64 if given).
Both losses of a pair are minimised by their player.
"""
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gan_jax.errors import UserError

Array = jax.Array


def _f32(x: Array) -> Array:
  return x if x.dtype == jnp.float64 else x.astype(jnp.float32)


# Probabilistic losses, D(x) = sigmoid(logit).
def minimax_d(d_real: Array, d_fake: Array, real_target: float = 1.0) -> Array:
  """-E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014).

  `real_target` t < 1: one-sided label smoothing (Salimans et al. 2016), the real term becomes
  the cross-entropy to target t, -E[t log D(x) + (1 - t) log(1 - D(x))]; fakes keep target 0.
  """
  real = _f32(d_real)
  real_term = real_target * jax.nn.softplus(-real) + (1.0 - real_target) * jax.nn.softplus(real)
  return jnp.mean(real_term) + jnp.mean(jax.nn.softplus(_f32(d_fake)))


def minimax_g(d_fake: Array) -> Array:
  """E[log(1 - D(G(z)))]: the saturating G loss; its gradient vanishes when D rejects fakes."""
  return -jnp.mean(jax.nn.softplus(_f32(d_fake)))


def non_saturating_g(d_fake: Array) -> Array:
  """-E[log D(G(z))]: the non-saturating G loss (same fixed points, strong early gradients)."""
  return jnp.mean(jax.nn.softplus(-_f32(d_fake)))


# Critic losses.
def wasserstein_d(d_real: Array, d_fake: Array) -> Array:
  """E[D(G(z))] - E[D(x)] (Arjovsky et al. 2017); needs a Lipschitz constraint on D."""
  return jnp.mean(_f32(d_fake)) - jnp.mean(_f32(d_real))


def wasserstein_g(d_fake: Array) -> Array:
  return -jnp.mean(_f32(d_fake))


def hinge_d(d_real: Array, d_fake: Array) -> Array:
  """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
  return jnp.mean(jax.nn.relu(1.0 - _f32(d_real))) + jnp.mean(jax.nn.relu(1.0 + _f32(d_fake)))


def hinge_g(d_fake: Array) -> Array:
  return -jnp.mean(_f32(d_fake))


def least_squares_d(d_real: Array, d_fake: Array) -> Array:
  """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] (Mao et al. 2017, a=0, b=c=1)."""
  return 0.5 * jnp.mean((_f32(d_real) - 1.0) ** 2) + 0.5 * jnp.mean(_f32(d_fake) ** 2)


def least_squares_g(d_fake: Array) -> Array:
  return 0.5 * jnp.mean((_f32(d_fake) - 1.0) ** 2)


def feature_matching_g(real_features: Array, fake_features: Array) -> Array:
  """|E[f(x)] - E[f(G(z))]|^2 over an intermediate D feature f (Salimans et al. 2016).

  Args:
    real_features, fake_features: [B, ...] features of the same D layer.
  """
  diff = jnp.mean(_f32(real_features), axis=0) - jnp.mean(_f32(fake_features), axis=0)
  return jnp.sum(diff ** 2)


def class_cross_entropy(class_logits: Array, labels: Array) -> Array:
  """-E[log softmax(class_logits)[y]]: the AC-GAN classification loss (Odena et al. 2017), in nats.

  Args:
    class_logits: [B, K] logits of an auxiliary classifier.
    labels: int [B] classes in [0, K).
  """
  log_p = jax.nn.log_softmax(_f32(class_logits), axis=-1)
  return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None].astype(jnp.int32), axis=-1))


# Reconstruction terms of image-to-image generators: outputs against their paired targets.
def l1_distance(outputs: Array, targets: Array) -> Array:
  """mean |outputs - targets| over every pixel and channel (pix2pix's L1 term, Isola et al. 2017)."""
  return jnp.mean(jnp.abs(_f32(outputs) - _f32(targets)))


def l2_distance(outputs: Array, targets: Array) -> Array:
  """mean (outputs - targets)^2 over every pixel and channel (the MSE content loss)."""
  return jnp.mean(jnp.square(_f32(outputs) - _f32(targets)))


def feature_distance(feature_fn: Callable[[Array], Array], outputs: Array, targets: Array) -> Array:
  """mean (f(outputs) - f(targets))^2 over the batch and features of a frozen network f: [B, ...] ->
  [B, F] (SRGAN's "perceptual" content loss, Ledig et al. 2017, with VGG replaced by f). The
  targets' features are constants."""
  return jnp.mean(jnp.square(_f32(feature_fn(outputs)) - jax.lax.stop_gradient(_f32(feature_fn(targets)))))


def reconstruction(outputs: Array, targets: Array, l1: float = 0.0, l2: float = 0.0, features: float = 0.0,
                   feature_fn: Callable[[Array], Array] | None = None) -> tuple[Array, dict[str, Array]]:
  """(l1 * L1 + l2 * L2 + features * feature distance, {'g_l1', 'g_l2', 'g_features': unweighted
  value of each enabled term}); a term with weight 0 is neither computed nor reported."""
  terms = {}
  if l1:
    terms['g_l1'] = l1_distance(outputs, targets)
  if l2:
    terms['g_l2'] = l2_distance(outputs, targets)
  if features:
    if feature_fn is None:
      raise ValueError('a feature term needs feature_fn')
    terms['g_features'] = feature_distance(feature_fn, outputs, targets)
  weights = {'g_l1': l1, 'g_l2': l2, 'g_features': features}
  return sum((weights[k] * v for k, v in terms.items()), jnp.zeros((), jnp.float32)), terms


def cycle_consistency(translate: Callable[[Array], Array], pairs: Array, translated: Array, cycle: float = 0.0,
                      identity: float = 0.0) -> tuple[Array, dict[str, Array]]:
  """CycleGAN's terms (Zhu et al. 2017) for `translate`, which maps (a, b) channel halves to
  (G_BA(b), G_AB(a)): `translated` = translate(pairs).

  g_cycle = L1(translate(translated), pairs): the mean over both directions of |G_BA(G_AB(a)) - a|
  and |G_AB(G_BA(b)) - b|; g_identity = L1(translate((b, a)), pairs): of |G_BA(a) - a| and
  |G_AB(b) - b|. Returns (cycle * g_cycle + identity * g_identity, {name: unweighted value}) over the
  enabled terms. Means over both directions, like the averaged adversarial terms, keep the paper's
  ratios: its lambda = 10 on the sum of the directions is `cycle` = 10 here.
  """
  terms = {}
  if cycle:
    terms['g_cycle'] = l1_distance(translate(translated), pairs)
  if identity:
    half = pairs.shape[-1] // 2
    terms['g_identity'] = l1_distance(translate(jnp.concatenate([pairs[..., half:], pairs[..., :half]], -1)), pairs)
  weights = {'g_cycle': cycle, 'g_identity': identity}
  return sum((weights[k] * v for k, v in terms.items()), jnp.zeros((), jnp.float32)), terms


class Loss(NamedTuple):
  """A D loss and a G loss that belong together."""
  d: Callable[[Array, Array], Array]
  g: Callable[[Array], Array]


LOSSES = {
    'minimax': Loss(minimax_d, minimax_g),
    'non_saturating': Loss(minimax_d, non_saturating_g),
    'wasserstein': Loss(wasserstein_d, wasserstein_g),
    'hinge': Loss(hinge_d, hinge_g),
    'least_squares': Loss(least_squares_d, least_squares_g),
}


SMOOTHABLE = ('minimax', 'non_saturating')  # Losses with a probability target to smooth.


def get(name: str, label_smoothing: float = 0.0) -> Loss:
  """The loss `name`; `label_smoothing` s > 0 sets D's target for real data to 1 - s (one-sided)."""
  if name not in LOSSES:
    raise UserError(f'unknown loss {name!r}; choose one of {", ".join(sorted(LOSSES))} (--config.loss=NAME)')
  if not label_smoothing:
    return LOSSES[name]
  if name not in SMOOTHABLE or not 0.0 < label_smoothing < 1.0:
    raise UserError(f'label_smoothing={label_smoothing} needs a loss of {", ".join(SMOOTHABLE)} (got {name!r}) '
                    'and a value in (0, 1), e.g. 0.1 for a real target of 0.9')
  return Loss(functools.partial(minimax_d, real_target=1.0 - label_smoothing), LOSSES[name].g)
