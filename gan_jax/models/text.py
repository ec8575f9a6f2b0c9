"""Text conditioning: a sentence encoder over caption tokens, and the G and D terms that read it.

Tokens are int32 [B, T], 0 padding the end (gan_jax.data.captions.tokenize). The encoder embeds
them (learned embedding table of `dim`) and pools them into one sentence vector [B, dim]:
  'mean'  the mean of the real tokens' embeddings (a bag of words), then Dense + ReLU;
  'gru'   a GRU over the real tokens (padding excluded via sequence lengths), its last state.
`frozen`: the encoder's output is a constant for the optimizer (jax.lax.stop_gradient), so its
parameters keep their random initial values: a fixed random sentence embedding, the baseline a
learned encoder must beat. G and D each own an encoder, trained by their own losses (jointly with
the GAN, as the text encoders of end-to-end text-to-image GANs are).

G ('text'): z concatenated with the sentence vector, as class 'concat' does with a label
embedding. D ('text'): the projection term <W e(text), phi(x)> added to the logit, as class
'projection' does with a class embedding (Miyato & Koyama 2018), W a learned linear map.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

ENCODERS = ('mean', 'gru')


class TextEncoder(nn.Module):
  """tokens int32 [B, T] (0 = padding, at the end) -> sentence vectors float32 [B, dim]."""
  vocab_size: int
  dim: int = 64
  kind: str = 'gru'
  frozen: bool = False

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    mask = tokens > 0
    embedded = nn.Embed(self.vocab_size, self.dim, name='token_embedding')(tokens)
    if self.kind == 'mean':
      pooled = jnp.sum(embedded * mask[..., None], axis=1) / jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1)
      sentence = nn.relu(nn.Dense(self.dim, name='pool_dense')(pooled))
    else:
      lengths = jnp.sum(mask, axis=1).astype(jnp.int32)
      sentence, _ = nn.RNN(nn.GRUCell(self.dim), return_carry=True, name='gru')(embedded, seq_lengths=lengths)
    return jax.lax.stop_gradient(sentence) if self.frozen else sentence


class ConcatText(nn.Module):
  """z [B, Z], tokens [B, T] -> [B, Z + dim]: z followed by the sentence vector."""
  vocab_size: int
  dim: int
  kind: str
  frozen: bool

  @nn.compact
  def __call__(self, z: jax.Array, tokens: jax.Array) -> jax.Array:
    sentence = TextEncoder(self.vocab_size, self.dim, self.kind, self.frozen, name='encoder')(tokens)
    return jnp.concatenate([z, sentence.astype(z.dtype)], axis=-1)


class TextProjection(nn.Module):
  """<W e(tokens), features> [B]: the text term of a projection discriminator."""
  vocab_size: int
  dim: int
  kind: str
  frozen: bool

  @nn.compact
  def __call__(self, features: jax.Array, tokens: jax.Array) -> jax.Array:
    sentence = TextEncoder(self.vocab_size, self.dim, self.kind, self.frozen, name='encoder')(tokens)
    # Scaled as a Dense kernel over the features, as the class projection is.
    projected = nn.Dense(features.shape[-1], kernel_init=nn.initializers.normal(
        (self.dim * features.shape[-1]) ** -0.5), use_bias=False, name='project')(sentence)
    return jnp.sum(projected.astype(features.dtype) * features, axis=-1)
