"""Training: state, pure train step, the loop that drives it."""
