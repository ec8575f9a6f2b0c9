"""gan_jax: a JAX/Flax research codebase for generative adversarial networks."""
