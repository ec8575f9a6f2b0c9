"""FID Inception-v3 feature throughput, this project's Flax network against PyTorch, side by side; prints a table.

  python bench/inception_speed.py                                   # GPU: batch 200, float32, tf32, bfloat16
  python bench/inception_speed.py --batch=16 --iters=1 --repeats=3 --precisions=float32   # CPU

Both sides run the FID network (the 2015 Inception-v3 topology pytorch-fid uses: 94 conv + BatchNorm
layers, 299 x 299 inputs, pool features [B, 2048] and logits [B, 1008]) with random weights (speed
does not depend on them) on the same [-1, 1] images, resize to 299 x 299 included. JAX:
gan_jax.metrics.inception.make_feature_fn, as the evaluator calls it. PyTorch: the independent
reference network of tests/inception_torch_reference.py in eval mode under torch.no_grad, NCHW.

Precisions (--precisions), each row the same arithmetic on both sides where both offer it:
  float32   JAX: float32 with Precision.HIGHEST (the project's FID default); PyTorch: float32 with
            TF32 off for convolutions and matrix products.
  tf32      PyTorch only: float32 tensors with TF32 convolutions and matrix products (what
            pytorch-fid gets by default on NVIDIA GPUs). The project's network offers no TF32 mode
            (its float32 features are full precision), so the row has no JAX figure.
  bfloat16  JAX: the network's bfloat16 compute dtype; PyTorch: torch.autocast(bfloat16).
Timed blocks of --iters batches alternate between the two sides, so outside load affects both
alike; the median over --repeats blocks is reported, in images per second.
"""
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.metrics import inception

flags.DEFINE_integer('batch', 200, 'Images per batch (both sides).')
flags.DEFINE_integer('image_size', 64, 'Side of the square RGB input images, resized to 299 inside the timed call.')
flags.DEFINE_list('precisions', ['float32', 'tf32', 'bfloat16'], 'Rows: float32, tf32, bfloat16.')
flags.DEFINE_integer('iters', 5, 'Batches per timed block.')
flags.DEFINE_integer('repeats', 5, 'Timed blocks per side; the median is reported.')
flags.DEFINE_bool('torch', True, 'Time the PyTorch reference too.')
FLAGS = flags.FLAGS
JAX_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}  # tf32: none (see the docstring).


def jax_block(precision: str, images: np.ndarray):
  """A function timing --iters batches of the Flax network at `precision`, compiled first; None without that precision."""
  if precision not in JAX_DTYPES:
    return None
  variables = jax.jit(inception.InceptionV3().init)(jax.random.key(0), jnp.zeros((1, 299, 299, 3)))
  features = inception.make_feature_fn(variables, dtype=JAX_DTYPES[precision])
  batch = jax.device_put(images)
  jax.block_until_ready(features(batch))

  def block() -> float:
    started = time.perf_counter()
    for _ in range(FLAGS.iters):
      out = features(batch)
    jax.block_until_ready(out)
    return time.perf_counter() - started
  return block


def torch_block(precision: str, images: np.ndarray):
  """A function timing --iters batches of the PyTorch reference at `precision`, warmed up first."""
  import torch
  from tests import inception_torch_reference  # pylint: disable=import-outside-toplevel
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  model = inception_torch_reference.FIDInceptionReference().eval().to(device)
  batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
  tf32 = precision == 'tf32'

  def forward():
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=precision == 'bfloat16'):
      return model(batch)

  def sync():
    if device == 'cuda':
      torch.cuda.synchronize()

  forward()
  sync()

  def block() -> float:
    started = time.perf_counter()
    for _ in range(FLAGS.iters):
      forward()
    sync()
    return time.perf_counter() - started
  return block


def main(argv):
  del argv
  images = np.random.default_rng(0).uniform(-1, 1, (FLAGS.batch, FLAGS.image_size, FLAGS.image_size, 3))
  images = images.astype(np.float32)
  device = jax.devices()[0]
  versions = f'jax {jax.__version__}'
  if FLAGS.torch:
    import torch
    versions += f', torch {torch.__version__}'
  print(f'FID Inception-v3 features, batch {FLAGS.batch} ({FLAGS.image_size}x{FLAGS.image_size} RGB resized to 299), '
        f'{device.platform} ({device.device_kind}), {platform.machine()}, {versions}; '
        f'median of {FLAGS.repeats} blocks of {FLAGS.iters} batches')
  print('| precision | JAX images/s | PyTorch images/s | JAX / PyTorch |')
  print('|---|---|---|---|')
  for precision in FLAGS.precisions:
    if precision not in ('float32', 'tf32', 'bfloat16'):
      raise SystemExit(f'--precisions: {precision} is not one of float32, tf32, bfloat16')
    blocks = {'jax': jax_block(precision, images), 'torch': torch_block(precision, images) if FLAGS.torch else None}
    times = {name: [] for name, block in blocks.items() if block}
    for _ in range(FLAGS.repeats):
      for name in times:
        times[name].append(blocks[name]())
    rate = {name: FLAGS.batch * FLAGS.iters / statistics.median(t) for name, t in times.items()}
    cells = [f'{rate[name]:.1f}' if name in rate else '-' for name in ('jax', 'torch')]
    ratio = f'{rate["jax"] / rate["torch"]:.2f}' if len(rate) == 2 else '-'
    print(f'| {precision} | {cells[0]} | {cells[1]} | {ratio} |', flush=True)


if __name__ == '__main__':
  app.run(main)
