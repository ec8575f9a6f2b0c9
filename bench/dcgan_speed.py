"""DCGAN iteration time, JAX (this project's train step) vs a PyTorch reference, side by side; prints a table.

  python bench/dcgan_speed.py --preset=mnist      # CPU: MNIST DCGAN (28x28x1), NS loss, batch 64, fp32
  python bench/dcgan_speed.py --preset=dcgan64    # GPU: DCGAN-64 (64x64x3, nz 100, 64 base channels):
                                                  #   NS at batch 128 and 1024, WGAN-GP (5 critic steps) at
                                                  #   batch 128; float32 and bfloat16; torch eager and compile
  python bench/dcgan_speed.py --preset=dcgan64 --only=ns128 --dtypes=float32 --torch=eager --iters=3 --repeats=3

One iteration = d_steps D updates + one G update with Adam, real batches drawn on the device from a
synthetic uint8 set (speed does not depend on pixel values). JAX: gan_jax's own train step in the
program of gan_jax/train/program.py, G's upsampling as configured by default. PyTorch:
bench/torch_dcgan.py, the same networks with nn.ConvTranspose2d, eager (and torch.compile of both networks where it works);
bf16 is torch.autocast there. The implementations' timed blocks are interleaved, so load from other
processes on a shared machine affects both alike; medians of --repeats blocks of --iters iterations.
FLOP/s: XLA's cost analysis of the compiled JAX iteration / its time, against the device's dense peak
(PEAK_TFLOPS; float32 rows against TF32, which XLA uses for float32 convolutions on these GPUs).
With several devices (e.g. XLA_FLAGS=--xla_force_host_platform_device_count=2 on a CPU) the JAX
iteration runs data parallel over them, as the trainer would (the same values as on one device).
"""
import os
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from absl import app
from absl import flags
import flax
import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax.train import program as program_lib
from gan_jax.train import run as run_lib
from gan_jax.train import schedule

# id: (description, image shape, batch size, loss, D steps per iteration)
PRESETS = {
    'mnist': {'ns64': ('MNIST DCGAN NS', (28, 28, 1), 64, 'non_saturating', 1)},
    'dcgan64': {'ns128': ('DCGAN-64 NS', (64, 64, 3), 128, 'non_saturating', 1),
                'ns1024': ('DCGAN-64 NS', (64, 64, 3), 1024, 'non_saturating', 1),
                'gp128': ('DCGAN-64 WGAN-GP', (64, 64, 3), 128, 'wgan_gp', 5)},
}
# Dense peak TFLOP/s (bfloat16, TF32) by device kind substring; the first match wins.
PEAK_TFLOPS = (('H100 PCIe', 756.0, 378.0), ('H100', 989.0, 495.0), ('H200', 989.0, 495.0),
               ('A100', 312.0, 156.0), ('L4', 121.0, 60.0))
# The targets on one H100 (ms per iteration, or fraction of the bf16 peak).
H100_TARGETS = {'ns128': '<= 2.0 ms', 'ns1024': '>= 40% of bf16 peak (bf16)', 'gp128': '<= 8 ms'}

flags.DEFINE_enum('preset', 'mnist', list(PRESETS), 'Workload set.')
flags.DEFINE_list('only', None, 'Workload ids of the preset to run (default all): ' +
                  '; '.join(f'{p}: {",".join(w)}' for p, w in PRESETS.items()))
flags.DEFINE_list('dtypes', None, 'Compute dtypes (default float32 for mnist, float32,bfloat16 for dcgan64).')
flags.DEFINE_list('upsample', None, "gan_jax's G upsampling: transpose, subpixel (default transpose for mnist, "
                  'both for dcgan64: sub-pixel convs count 9/4 of the transposed conv FLOPs in G).')
flags.DEFINE_list('torch', None, "PyTorch variants: eager, compile, or none (default eager for mnist, "
                  "eager,compile for dcgan64).")
flags.DEFINE_integer('iters', 10, 'Iterations per timed block.')
flags.DEFINE_integer('repeats', 5, 'Timed blocks per implementation; the median is reported.')
FLAGS = flags.FLAGS


class JaxIteration:
  """gan_jax's jitted iteration on synthetic data; `step()` dispatches one, `sync()` waits."""

  def __init__(self, shape, batch_size: int, loss: str, d_steps: int, dtype: str, upsample: str):
    config = config_lib.base()
    config.model.upsample = upsample
    config.data.batch_size = batch_size
    config.train.d_steps = d_steps
    config.train.dtype = dtype
    if loss == 'wgan_gp':
      config.loss, config.penalty.gp, config.model.d_norm = 'wasserstein', 10.0, 'none'
      for player in (config.optim.g, config.optim.d):
        player.lr, player.b1, player.b2 = 1e-4, 0.0, 0.9
    else:
      config.loss = loss
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2048, *shape), dtype=np.uint8)
    source = data_lib.Source('synthetic', tuple(shape), 0, {'image': images, 'label': np.zeros(2048, np.int32)})
    g_opt, d_opt = run_lib.make_optimizers(config)
    run = run_lib.Run(config, source, source, schedule.phases(config), g_opt, d_opt)
    phase = run.phases[0]
    layout = program_lib.Layout.make(1, [batch_size])  # Data parallel when there are several devices.
    program = program_lib.Program(run, phase, layout, on_device=True)
    self.state = layout.put_runs(jax.jit(run.init_state)(jax.random.key(0)))
    self.key, self.fade = layout.put_runs(jax.random.key(1)), layout.put_shared(phase.fade)
    self.data = layout.put_shared(source.arrays)
    self.sums = program.zero_sums()
    started = time.perf_counter()
    self.iterate = program.compile(self.state, self.sums, self.data, self.fade, self.key)
    self.compile_s = time.perf_counter() - started
    cost = self.iterate.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    self.flops = float(cost.get('flops', 0.0)) * layout.devices if cost else 0.0  # Cost analysis is per device.

  def step(self):
    self.state, self.sums = self.iterate(self.state, self.sums, self.data, self.fade, self.key)

  def sync(self):
    jax.block_until_ready(self.sums)


def peak_tflops(dtype: str) -> float | None:
  kind = jax.devices()[0].device_kind
  for name, bf16, tf32 in PEAK_TFLOPS:
    if name in kind:
      return bf16 if dtype == 'bfloat16' else tf32
  return None


def median_times(impls: dict, iters: int, repeats: int) -> dict[str, float]:
  """Seconds per iteration of each implementation: medians of interleaved timed blocks."""
  for impl in impls.values():
    for _ in range(2):
      impl.step()
    impl.sync()
  times = {name: [] for name in impls}
  for _ in range(repeats):
    for name, impl in impls.items():
      started = time.perf_counter()
      for _ in range(iters):
        impl.step()
      impl.sync()
      times[name].append((time.perf_counter() - started) / iters)
  return {name: statistics.median(t) for name, t in times.items()}


def torch_iterations(shape, batch_size, loss, d_steps, dtype, variants) -> tuple[dict, dict]:
  """{variant: torch_dcgan.Iteration} for the variants that build and run, and {variant: why not}."""
  import torch
  import torch_dcgan
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  built, failed = {}, {}
  for variant in variants:
    try:
      impl = torch_dcgan.Iteration(shape, batch_size, loss=loss, d_steps=d_steps, dtype=dtype, device=device,
                                   compile_models=variant == 'compile')
      impl.step()  # torch.compile compiles here; a failure is reported, not fatal.
      impl.sync()
      built[variant] = impl
    except Exception as e:
      failed[variant] = f'{type(e).__name__}: {str(e).strip().splitlines()[0][:80] if str(e).strip() else ""}'
  return built, failed


def versions() -> str:
  parts = [f'jax {jax.__version__}', f'flax {flax.__version__}']
  try:
    import torch
    parts.append(f'torch {torch.__version__}' + (f' (CUDA {torch.version.cuda})' if torch.version.cuda else ''))
  except ImportError:
    parts.append('torch not installed')
  return ', '.join(parts)


def main(argv):
  del argv
  preset = PRESETS[FLAGS.preset]
  ids = FLAGS.only or list(preset)
  unknown = [i for i in ids if i not in preset]
  if unknown:
    raise app.UsageError(f'unknown --only ids {unknown}; preset {FLAGS.preset} has {list(preset)}')
  gpu_preset = FLAGS.preset == 'dcgan64'
  dtypes = FLAGS.dtypes or (['float32', 'bfloat16'] if gpu_preset else ['float32'])
  upsamples = FLAGS.upsample or (['transpose', 'subpixel'] if gpu_preset else ['transpose'])
  variants = [v for v in (FLAGS.torch or (['eager', 'compile'] if gpu_preset else ['eager'])) if v != 'none']
  device = jax.devices()[0]
  print(f'device: {device.device_kind} ({device.platform}) x{jax.device_count()}, host {platform.node()} '
        f'({platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average '
        f'{os.getloadavg()[0]:.1f}); {versions()}; XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}')
  header = ['workload', 'batch', 'dtype', 'JAX G upsample', 'JAX ms/iter', 'JAX compile s', 'GFLOP/iter', 'JAX TFLOP/s', '% of peak']
  header += [f'torch {v} ms/iter' for v in variants] + [f'torch {v} / JAX' for v in variants]
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  notes = []
  for workload_id in ids:
    name, shape, batch_size, loss, d_steps = preset[workload_id]
    for dtype in dtypes:
      torch_impls, failed = torch_iterations(shape, batch_size, loss, d_steps, dtype, variants)
      notes += [f'torch {v} failed for {workload_id} {dtype}: {why}' for v, why in failed.items()]
      for upsample in upsamples:
        jax_impl = JaxIteration(shape, batch_size, loss, d_steps, dtype, upsample)
        seconds = median_times({'jax': jax_impl, **torch_impls}, FLAGS.iters, FLAGS.repeats)
        tflops = jax_impl.flops / seconds['jax'] / 1e12
        peak = peak_tflops(dtype)
        row = [name, str(batch_size), dtype, upsample, f'{1e3 * seconds["jax"]:.2f}', f'{jax_impl.compile_s:.1f}',
               f'{jax_impl.flops / 1e9:.1f}', f'{tflops:.3f}', f'{100 * tflops / peak:.0f}%' if peak else '-']
        row += [f'{1e3 * seconds[v]:.2f}' if v in seconds else 'failed' for v in variants]
        row += [f'{seconds[v] / seconds["jax"]:.2f}' if v in seconds else '-' for v in variants]
        print('| ' + ' | '.join(row) + ' |', flush=True)
        del jax_impl
      del torch_impls
  if gpu_preset:
    notes.append('targets on one H100: ' + ', '.join(f'{i} {H100_TARGETS[i]}' for i in ids))
  for note in notes:
    print(note)


if __name__ == '__main__':
  app.run(main)
