"""The pure train step: `make_train_step(...)` returns `train_step(state, batch, rng) -> (state, metrics)`:
  batch['image']: float32 [d_steps, B, *example_shape], one real batch per D update;
  batch['label']: int32 [d_steps, B], their classes (read by class-conditional models only);
  d_steps D updates, then one G update, all inside one program.
Gradients only reach the player being trained: in the D update G's output is a constant, and
in the G update D's params are constants. BatchNorm running statistics of a network are
committed only when that network is trained; forward passes of the other network use batch
statistics (train mode) and discard their updates.

Every variant of GAN training here is an option of this one step (`StepOptions`): D
regularizers (gradient penalties, weight clipping and decay, instance noise, drift), feature
matching for G, and the unrolled G update of Metz et al. 2017 (G's loss is taken against a
copy of D advanced `unroll_steps` steps by D's own optimizer in a `lax.scan`, differentiating
through them).

Class-conditional models (`num_classes` > 0) get `labels=`: D the real batch's labels for real
examples, and both players labels drawn uniformly for the fakes they generate. Image-to-image
models (`translation`) get `source=` instead: batch['source'] holds each real image's task input
[d_steps, B, *source_shape]; G translates the batch's inputs, and D judges (target, input) and
(G's output, input) pairs. G's loss is then `adversarial_weight` * its adversarial loss plus the
weighted reconstruction terms against the paired targets: L1, L2 and the squared distance of a
frozen feature network's features (`feature_fn`, the domain classifier's: a perceptual loss).
Unpaired (CycleGAN) models translate the batch's own (a, b) examples and their D ignores `source=`;
the reconstruction terms are then the cycle-consistency and identity terms (losses.cycle_consistency). With
`acgan_weight` > 0, D's auxiliary classifier adds `acgan_weight` * the cross-entropy of its class
logits on real and (with `acgan_d_fake`) fake examples to D's loss, and on fake examples to G's
(Odena et al. 2017).

With `axis_name` set, the step runs on one device's part of the batch inside a mapping of that
axis (gan_jax.train.program): gradients, BatchNorm statistics and metrics are averaged over it.
Every per-example draw (latents, fake labels, penalty interpolates, instance noise) is the
device's slice of one draw for the global batch (gan_jax.draws), so a data-parallel step computes
what a single-device step computes from the same key.
"""
import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import draws
from gan_jax import losses as losses_lib
from gan_jax import penalties
from gan_jax.losses import Loss
from gan_jax.train.state import GANState, Player

Metrics = dict[str, jax.Array]


def apply_model(model: nn.Module, params, batch_stats, x: jax.Array, train: bool, **kwargs):
  """Runs a network; returns (output, new batch_stats) (batch_stats unchanged when not training BN)."""
  variables = {'params': params}
  if batch_stats:
    variables['batch_stats'] = batch_stats
    if train:
      out, updates = model.apply(variables, x, train=True, mutable=['batch_stats'], **kwargs)
      return out, updates['batch_stats']
  return model.apply(variables, x, train=train, **kwargs), batch_stats


def _mean_over(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def draw_latents(rng: jax.Array, n: int, z_dim: int, axis_name: str | None) -> jax.Array:
  """z ~ N(0, I), float32 [n, z_dim]; under `axis_name`, this device's n rows of one draw for all devices."""
  return draws.rows(lambda k, shape: jax.random.normal(k, shape, jnp.float32), rng, (n, z_dim), axis_name)


G_LOSSES = ('', 'feature_matching', 'value')  # StepOptions.g_loss (config.g_loss).


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """The static structure of a train step (what is computed, not with which weights).

  Attributes:
    z_dim: latent size.
    ema_decay: EMA of G's params (0 = off).
    penalties: enabled D regularizers, names of GANState.loss_weights; their weights are read
      from the state at run time.
    gp_one_sided: the gradient penalty punishes only norms above 1.
    clip: clip D's weights to [-clip, clip] after every D update (0 = off).
    instance_noise_steps: the instance-noise std decays linearly to 0 over these steps (0 =
      constant).
    g_loss: G's objective: '' (the loss's own G loss, `loss.g`), 'feature_matching' (the
      distance between mean D features of real and fake) or 'value' (the value function
      -loss.d(D(x), D(G(z))), both data terms: Metz et al.'s unrolled surrogate, in which the real
      term depends on G through the unrolled D; without unrolling it is the loss's minimax G loss).
    unroll_steps: k of the unrolled G update (0 = the ordinary G update).
    unroll_stop_gradient: do not differentiate through the unrolled D updates.
    num_classes: classes of a class-conditional G and D (0 = unconditional: no labels passed).
    acgan_weight: weight of the AC-GAN classification terms (0 = off; D must have cond='acgan').
    acgan_d_fake: D's class loss includes fakes with their requested labels (else real data only).
    unroll_rolled: run the k unrolled D updates as a rolled `lax.scan` loop (False: the same scan
      fully unrolled into the program).
    translation: image-to-image models conditioned on batch['source'] (see the module docstring).
    adversarial_weight: the weight of G's adversarial loss (translation; 0: the non-adversarial
      baseline, G trained on its reconstruction terms alone).
    l1_weight, l2_weight, feature_weight: the weights of G's reconstruction terms (translation).
    unpaired: CycleGAN: G's input is the batch's images, (a, b) pairs as channels.
    cycle_weight, identity_weight: the weights of its cycle-consistency and identity terms.
    text: caption-conditioned models: their `labels=` are the batch's caption tokens
      (batch['text'] [d_steps, B, T]), and the fakes are generated for the batch's own captions.
    axis_name: the data-parallel axis to average over, or None.
  """
  z_dim: int
  ema_decay: float = 0.0
  penalties: tuple[str, ...] = ()
  gp_one_sided: bool = False
  clip: float = 0.0
  instance_noise_steps: int = 0
  g_loss: str = ''
  unroll_steps: int = 0
  unroll_stop_gradient: bool = False
  num_classes: int = 0
  acgan_weight: float = 0.0
  acgan_d_fake: bool = True
  unroll_rolled: bool = True
  translation: bool = False
  adversarial_weight: float = 1.0
  l1_weight: float = 0.0
  l2_weight: float = 0.0
  feature_weight: float = 0.0
  unpaired: bool = False
  cycle_weight: float = 0.0
  identity_weight: float = 0.0
  text: bool = False
  axis_name: str | None = None

  @classmethod
  def from_config(cls, config, axis_name: str | None = None, num_classes: int = 0) -> 'StepOptions':
    """`num_classes`: the data's classes (used only when config.model.g_cond is set)."""
    p = config.penalty
    conditional = bool(config.model.g_cond)
    return cls(z_dim=config.model.z_dim, ema_decay=config.train.ema_decay,
               penalties=tuple(name for name in PENALTY_SCALE if p[name] > 0), gp_one_sided=p.gp_one_sided,
               clip=p.clip, instance_noise_steps=p.instance_noise_steps,
               g_loss=config.g_loss, unroll_steps=config.unroll.steps,
               unroll_stop_gradient=config.unroll.stop_gradient, unroll_rolled=config.unroll.rolled,
               num_classes=num_classes if conditional else 0,
               acgan_weight=config.acgan.weight if config.model.d_cond == 'acgan' else 0.0,
               acgan_d_fake=config.acgan.d_fake, translation=bool(config.data.task),
               adversarial_weight=config.translate.adversarial, l1_weight=config.translate.l1,
               l2_weight=config.translate.l2, feature_weight=config.translate.features,
               unpaired=config.data.task.startswith('cycle_'), cycle_weight=config.translate.cycle,
               identity_weight=config.translate.identity, text=config.model.g_cond == 'text', axis_name=axis_name)


# Each penalty's term is weight * PENALTY_SCALE[name] * value (R1/R2 are gamma/2-weighted).
# Instance noise is not a loss term: its weight is the noise std.
PENALTY_SCALE = {'gp': 1.0, 'r1': 0.5, 'r2': 0.5, 'dragan': 1.0, 'd_weight_decay': 1.0, 'drift': 1.0,
                 'instance_noise': 0.0, 'historical': 1.0}


def make_train_step(g_model: nn.Module, d_model: nn.Module, g_opt: optax.GradientTransformation,
                    d_opt: optax.GradientTransformation, loss: Loss, options: StepOptions,
                    feature_fn: Callable[[jax.Array], jax.Array] | None = None,
                    ) -> Callable[[GANState, dict, jax.Array], tuple[GANState, Metrics]]:
  """Builds the pure `(state, batch, rng) -> (state, metrics)` step (not yet jitted).

  feature_fn: images [B, H, W, C] -> features [B, F], a frozen network (options.feature_weight > 0).

  Metrics (float32 scalars): d_loss (the adversarial D loss), d_penalty (the weighted sum of
  regularizer terms), one raw value per enabled penalty, g_loss, d_real / d_fake (mean D output
  on real / fake examples), d_grad_norm, g_grad_norm; with AC-GAN also d_acgan and g_acgan
  (the unweighted class cross-entropies; d_acgan sums the real and, with acgan_d_fake, fake
  terms); with reconstruction terms g_l1, g_l2, g_features, g_cycle, g_identity (unweighted). D metrics are means over
  the iteration's D updates.
  """
  o = options

  def cond(condition) -> dict:
    """The conditioning keyword of a model call: a translation model's `source=` (task inputs), a
    class-conditional model's `labels=`, or none."""
    if o.translation:
      return {'source': condition}
    return {'labels': condition} if o.num_classes else {}

  def fake_condition(rng, real_condition):
    """What the fakes are generated from: a translation's real inputs or the real captions, else drawn labels."""
    return real_condition if o.translation or o.text else draw_labels(rng, real_condition.shape[0])

  def draw_labels(rng, n):
    """Uniform class labels int32 [n] for generated examples (zeros when unconditional); under
    `axis_name`, this device's n of one draw for all devices (as draw_latents)."""
    return draws.rows(lambda k, shape: jax.random.randint(k, shape, 0, max(o.num_classes, 1), jnp.int32),
                      jax.random.fold_in(rng, 1), (n,), o.axis_name)

  def d_apply(params, stats, x, train, **kwargs):
    return apply_model(d_model, params, stats, x, train, **kwargs)

  def d_train(params, stats, x, labels):
    """D in train mode: ((logits [B], class logits [B, K] or None), new stats)."""
    if o.acgan_weight:
      return d_apply(params, stats, x, True, classes=True, **cond(labels))
    logits, stats = d_apply(params, stats, x, True, **cond(labels))
    return (logits, None), stats

  def noisy(x, weights, step, rng):
    if 'instance_noise' not in o.penalties:
      return x
    std = weights['instance_noise']
    if o.instance_noise_steps:
      std = penalties.instance_noise_std(step, std, o.instance_noise_steps)
    return penalties.instance_noise(x, rng, std.astype(x.dtype), o.axis_name)

  def penalty_terms(params, stats, history, real, real_labels, fake, fake_labels, d_real, rng) -> dict[str, jax.Array]:
    """Raw (unweighted) values of the enabled loss-term penalties.

    A conditional critic reads the real labels, except on fakes alone (R2): there the fakes' own.
    """
    critic = lambda x: d_apply(params, stats, x, False, **cond(real_labels))[0]
    fake_critic = lambda x: d_apply(params, stats, x, False, **cond(fake_labels))[0]
    gp_rng, dragan_rng = jax.random.split(rng)
    terms = {}
    if 'gp' in o.penalties:
      terms['gp'] = penalties.gradient_penalty(critic, real, fake, gp_rng, one_sided=o.gp_one_sided,
                                              axis_name=o.axis_name)
    if 'r1' in o.penalties:
      terms['r1'] = penalties.r1_penalty(critic, real)
    if 'r2' in o.penalties:
      terms['r2'] = penalties.r2_penalty(fake_critic, fake)
    if 'dragan' in o.penalties:
      terms['dragan'] = penalties.dragan_penalty(critic, real, dragan_rng, axis_name=o.axis_name)
    if 'd_weight_decay' in o.penalties:
      terms['d_weight_decay'] = penalties.weight_penalty(params)
    if 'drift' in o.penalties:
      terms['drift'] = jnp.mean(jnp.square(d_real))
    if 'historical' in o.penalties:
      terms['historical'] = penalties.squared_distance(params, history['d'])
    return terms

  def d_loss_fn(params, stats, weights, history, step, real, real_labels, fake, fake_labels, rng):
    """D's total loss and (new stats, metrics) on one real and one (constant) fake batch."""
    noise_rng, penalty_rng = jax.random.split(rng)
    real_noise_rng, fake_noise_rng = jax.random.split(noise_rng)
    (d_real, class_real), stats = d_train(params, stats, noisy(real, weights, step, real_noise_rng), real_labels)
    (d_fake, class_fake), stats = d_train(params, stats, noisy(fake, weights, step, fake_noise_rng), fake_labels)
    adversarial = loss.d(d_real, d_fake)
    terms = penalty_terms(params, stats, history, real, real_labels, fake, fake_labels, d_real, penalty_rng)
    penalty = sum((weights[k] * PENALTY_SCALE[k] * v for k, v in terms.items()), jnp.zeros((), jnp.float32))
    metrics = {'d_loss': adversarial, 'd_penalty': penalty, 'd_real': jnp.mean(d_real),
               'd_fake': jnp.mean(d_fake), **terms}
    total = adversarial + penalty
    if o.acgan_weight:
      metrics['d_acgan'] = losses_lib.class_cross_entropy(class_real, real_labels)
      if o.acgan_d_fake:
        metrics['d_acgan'] = metrics['d_acgan'] + losses_lib.class_cross_entropy(class_fake, fake_labels)
      total = total + o.acgan_weight * metrics['d_acgan']
    return total, (stats, metrics)

  def d_opt_step(params, stats, opt_state, grads):
    updates, opt_state = d_opt.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    if o.clip:
      params = penalties.clip_weights(params, o.clip)
    return params, stats, opt_state

  def d_update(state: GANState, real: jax.Array, real_labels: jax.Array, rng: jax.Array) -> tuple[GANState, Metrics]:
    z_rng, loss_rng = jax.random.split(rng)
    z = draw_latents(z_rng, real.shape[0], o.z_dim, o.axis_name)
    labels = fake_condition(rng, real_labels)
    fake = jax.lax.stop_gradient(
        apply_model(g_model, state.g.params, state.g.batch_stats, z, train=True, **cond(labels))[0])
    grads, (stats, metrics) = jax.grad(d_loss_fn, has_aux=True)(
        state.d.params, state.d.batch_stats, state.loss_weights, state.history, state.step, real, real_labels, fake,
        labels, loss_rng)
    grads, stats = _mean_over((grads, stats), o.axis_name)
    params, stats, opt_state = d_opt_step(state.d.params, stats, state.d.opt_state, grads)
    metrics['d_grad_norm'] = optax.tree.norm(grads)
    return state.replace(d=Player(params, stats, opt_state)), metrics

  def unrolled_d(state: GANState, real: jax.Array, real_labels: jax.Array, fake: jax.Array, labels: jax.Array,
                 rng: jax.Array):
    """D's (params, stats) after `unroll_steps` functional updates against `fake` (not stopped)."""

    def d_step(carry, rng_k):
      params, stats, opt_state = carry
      grads, (new_stats, _) = jax.grad(d_loss_fn, has_aux=True)(
          params, stats, state.loss_weights, state.history, state.step, real, real_labels, fake, labels, rng_k)
      grads, new_stats = _mean_over((grads, new_stats), o.axis_name)
      return d_opt_step(params, new_stats, opt_state, grads), None

    carry = (state.d.params, state.d.batch_stats, state.d.opt_state)
    # A rolled loop compiles once whatever k (MLPs: as fast as unrolled code); unrolled into the
    # program for convolutional D on CPU, where conv gradients inside loop bodies run ~13x slower.
    (params, stats, _), _ = jax.lax.scan(d_step, carry, jax.random.split(rng, o.unroll_steps),
                                         unroll=1 if o.unroll_rolled else o.unroll_steps)
    if o.unroll_stop_gradient:
      params = jax.lax.stop_gradient(params)
    return params, stats

  def g_loss_fn(g_params, state: GANState, real: jax.Array, real_labels: jax.Array, z: jax.Array,
                labels: jax.Array, rng: jax.Array):
    """G's total loss and (new stats, metrics) for latents z and requested labels."""
    fake, g_stats = apply_model(g_model, g_params, state.g.batch_stats, z, train=True, **cond(labels))
    d_params, d_stats = state.d.params, state.d.batch_stats
    unroll_rng, noise_rng = jax.random.split(rng)
    if o.unroll_steps:
      d_params, d_stats = unrolled_d(state, real, real_labels, fake, labels, unroll_rng)
    fake_in = noisy(fake, state.loss_weights, state.step, noise_rng)
    total, metrics = g_adversarial(d_params, d_stats, real, real_labels, fake_in, labels)
    if o.unpaired:  # `real` holds the (a, b) pairs G translated.
      translate = lambda pairs: apply_model(g_model, g_params, state.g.batch_stats, z, train=True,
                                            source=pairs)[0]
      reconstruction, terms = losses_lib.cycle_consistency(translate, real, fake, o.cycle_weight, o.identity_weight)
    elif o.translation:  # `real` holds the targets of the inputs G translated.
      reconstruction, terms = losses_lib.reconstruction(fake, real, o.l1_weight, o.l2_weight, o.feature_weight,
                                                        feature_fn)
    if o.translation:
      total = o.adversarial_weight * total + reconstruction
      metrics.update(terms)
    return total, (g_stats, metrics)

  def g_adversarial(d_params, d_stats, real, real_labels, fake_in, labels):
    """G's adversarial objective against D (d_params, d_stats) and its metrics."""
    if o.g_loss == 'feature_matching':
      (_, fake_features), _ = d_apply(d_params, d_stats, fake_in, True, features=True, **cond(labels))
      (_, real_features), _ = d_apply(d_params, d_stats, real, True, features=True, **cond(real_labels))
      g_loss = losses_lib.feature_matching_g(jax.lax.stop_gradient(real_features), fake_features)
      return g_loss, {'g_loss': g_loss}
    (d_fake, class_fake), _ = d_train(d_params, d_stats, fake_in, labels)
    if o.g_loss == 'value':
      (d_real, _), _ = d_train(d_params, d_stats, real, real_labels)
      g_loss = -loss.d(d_real, d_fake)
    else:
      g_loss = loss.g(d_fake)
    if not o.acgan_weight:
      return g_loss, {'g_loss': g_loss}
    g_acgan = losses_lib.class_cross_entropy(class_fake, labels)
    return g_loss + o.acgan_weight * g_acgan, {'g_loss': g_loss, 'g_acgan': g_acgan}

  def g_update(state: GANState, real: jax.Array, real_labels: jax.Array, rng: jax.Array) -> tuple[GANState, Metrics]:
    z_rng, loss_rng = jax.random.split(rng)
    z = draw_latents(z_rng, real.shape[0], o.z_dim, o.axis_name)
    labels = fake_condition(rng, real_labels)
    def objective(g_params):
      total, (stats, metrics) = g_loss_fn(g_params, state, real, real_labels, z, labels, loss_rng)
      if 'historical' in o.penalties:
        metrics['g_historical'] = penalties.squared_distance(g_params, state.history['g'])
        total = total + state.loss_weights['historical'] * PENALTY_SCALE['historical'] * metrics['g_historical']
      return total, (stats, metrics)

    (_, (stats, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(state.g.params)
    grads, stats = _mean_over((grads, stats), o.axis_name)
    updates, opt_state = g_opt.update(grads, state.g.opt_state, state.g.params)
    g = Player(params=optax.apply_updates(state.g.params, updates), batch_stats=stats, opt_state=opt_state)
    ema_params = state.ema_params
    if o.ema_decay:
      ema_params = jax.tree.map(lambda e, p: o.ema_decay * e + (1.0 - o.ema_decay) * p, ema_params, g.params)
    metrics['g_grad_norm'] = optax.tree.norm(grads)
    return state.replace(g=g, ema_params=ema_params), metrics

  def train_step(state: GANState, batch: dict[str, jax.Array], rng: jax.Array) -> tuple[GANState, Metrics]:
    real = batch['image']
    if o.translation:  # The conditions of the real examples: task inputs (an unpaired task's own), captions or classes.
      real_labels = real if o.unpaired else batch['source']
    elif o.text:
      real_labels = batch['text']
    else:
      real_labels = batch['label'] if o.num_classes else jnp.zeros(real.shape[:2], jnp.int32)
    d_rng, g_rng = jax.random.split(rng)
    # A Python loop, unrolled into the one program: XLA:CPU runs convolution gradients inside a
    # lax.scan/while body ~13x slower than at the top level (bench/train_step.py measured 780 vs
    # 59 ms per DCGAN iteration), and d_steps is small.
    d_metrics = []
    for k, rng_k in enumerate(jax.random.split(d_rng, real.shape[0])):
      state, metrics_k = d_update(state, real[k], real_labels[k], rng_k)
      d_metrics.append(metrics_k)
    d_metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *d_metrics)
    state, g_metrics = g_update(state, real[-1], real_labels[-1], g_rng)
    if 'historical' in o.penalties:  # The mean over the initial parameters and those after each iteration.
      count = (state.step + 2).astype(jnp.float32)
      state = state.replace(history=jax.tree.map(lambda h, p: h + (p - h) / count, state.history,
                                                 {'g': state.g.params, 'd': state.d.params}))
    metrics = {**d_metrics, **g_metrics}
    return state.replace(step=state.step + 1), _mean_over(metrics, o.axis_name)

  return train_step
