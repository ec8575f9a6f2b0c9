"""Wall-clock to a classifier FD: this project's MNIST DCGAN against the PyTorch reference, one after the other.

  python bench/time_to_quality.py [--budget_s=900] [--every_s=60] [--thresholds=50,25,15] [--seed=0]
  python bench/time_to_quality.py --seeds=4 --budget_s=300 --thresholds=150   # the seeds-per-hour view
  python bench/time_to_quality.py --batch=512 --budget_s=120 --every_s=15       # a GPU (PyTorch on cuda too)

Both train the vanilla experiment's GAN (MNIST, DCGAN G and D with 64 channels, non-saturating loss,
Adam 2e-4 / 0.5, batch 64) for the same wall-clock budget on this machine: JAX through the project's
own program (gan_jax/train/program.py, compilation inside the budget), PyTorch eager through
bench/torch_dcgan.py with the same networks, the same initialisation (flax's: truncated-normal
kernels of variance 1 / fan_in, zero biases, BatchNorm scale 1) and the same real batches in the same
order (both draw iteration t's batch on the host from numpy's generator seeded by (seed, t), as the
project's host-drawn batches are). Every --every_s seconds of training, each generates 10,000
samples from the same fixed latents (excluded from the budget); afterwards every snapshot is scored
by the project's classifier FD against the 10,000 MNIST test images. Prints, per implementation,
the FD at each snapshot and the wall-clock to each threshold, and the ratio JAX / PyTorch (below 1:
JAX reaches it sooner). Run it on a quiet machine: the implementations run one after the other, so
load from other processes is not shared alike.

With --seeds=N (the seeds-per-hour view) JAX trains seeds seed .. seed + N - 1 as ONE vectorized
program (the project's `--runner=vectorized`; on CPU one copy of the iteration per run, see
program.lane_mapping) for N x budget_s, and PyTorch trains the same N seeds one after the other for
budget_s each, so both get the same total wall-clock. A threshold counts as reached when EVERY
seed's snapshot is at or below it: for JAX the first snapshot where all lanes are; for PyTorch the
sum over seeds of each run's time to it (the sequential runs would stop there). Seeds per hour = N x 3600 / that time.
"""
import math
import os
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from absl import app
from absl import flags
import jax
import numpy as np

from gan_jax import data as data_lib
from gan_jax import experiments
from gan_jax.metrics import classifier as classifier_lib
from gan_jax.train import program as program_lib
from gan_jax.train import run as run_lib

flags.DEFINE_float('budget_s', 900.0, 'Training wall-clock per implementation, seconds (compilation included).')
flags.DEFINE_float('every_s', 60.0, 'Training seconds between two FD snapshots.')
flags.DEFINE_list('thresholds', ['50', '25', '15'], 'Classifier FD thresholds to report the time to.')
flags.DEFINE_integer('seed', 0, 'Seed of the real-batch order, the latents and the initialisations.')
flags.DEFINE_integer('num_samples', 10_000, 'Samples per snapshot.')
flags.DEFINE_integer('seeds', 1, 'Seeds to train (>1: the seeds-per-hour view, JAX vectorized, PyTorch sequential).')
flags.DEFINE_integer('batch', 0, "Batch size of both implementations (0: the vanilla experiment's, 64); larger on a GPU.")
flags.DEFINE_integer('threads', 0, "PyTorch intra-op threads (0: torch's default, the machine's cores).")
FLAGS = flags.FLAGS
SAMPLE_BATCH = 500


def config():
  c = experiments.load_config('vanilla', [('data.on_device', 'false'), ('log.wandb', 'disabled')])
  c.train.seed = FLAGS.seed
  if FLAGS.batch:
    c.data.batch_size = FLAGS.batch
  return c


def fixed_latents(z_dim: int) -> np.ndarray:
  return np.random.default_rng([FLAGS.seed, 1]).standard_normal((FLAGS.num_samples, z_dim)).astype(np.float32)


def real_batch(source, seed: int, step: int, batch_size: int) -> np.ndarray:
  """Run `seed`'s iteration-`step` real images, float32 [B, 28, 28, 1]: the project's host draw for one device."""
  return source.draw_host(np.random.default_rng([seed, step]), batch_size)['image']


def train_jax(run, snapshots: list[float], seeds: list[int]) -> list[tuple[float, int, list[np.ndarray]]]:
  """Trains the runs of `seeds` as one program (vectorized when several) through the project's
  program; returns (training seconds, iterations, each run's samples) per snapshot."""
  phase = run.phases[0]
  layout = program_lib.Layout(len(seeds))
  program = program_lib.Program(run, phase, layout, on_device=False)
  sample = run.sampler(phase)
  z = fixed_latents(run.config.model.z_dim)
  labels = np.zeros(SAMPLE_BATCH, np.int32)
  out, trained, step = [], 0.0, 0
  started = time.perf_counter()
  init_keys = [jax.random.key(seed) for seed in seeds]
  if len(seeds) == 1:
    state, keys = jax.jit(run.init_state)(init_keys[0]), init_keys[0]
  else:
    state = jax.jit(jax.vmap(run.init_state))(program_lib.stack(init_keys))
    keys = program_lib.stack(init_keys)
  state, keys = layout.put_runs(state), layout.put_runs(keys)
  sums, fade = program.zero_sums(), layout.put_shared(phase.fade)
  for target in snapshots:
    while trained + time.perf_counter() - started < target:
      state, sums = program(state, sums, layout.host_batch(run.train_source, seeds, step, phase.batch), fade, keys)
      step += 1
      if step % 10 == 0:
        jax.block_until_ready(sums)
    jax.block_until_ready(state)
    trained += time.perf_counter() - started
    images = []
    for lane in range(len(seeds)):
      own = layout.local(layout.lane(state, lane))
      images.append(np.concatenate([np.asarray(sample(own, z[i:i + SAMPLE_BATCH], labels, phase.alpha(step)))
                                    for i in range(0, len(z), SAMPLE_BATCH)]))
    out.append((trained, step, images))
    print(f'  jax, {len(seeds)} run(s): {trained:.0f} s, {step} iterations', flush=True)
    started = time.perf_counter()
  return out


def init_like_flax(module) -> None:
  """Flax's default initialisation on a torch module: kernels ~ truncated normal of variance
  1 / fan_in (fan_in over the input channels and the kernel window), zero biases."""
  import torch
  from torch import nn
  for layer in module.modules():
    if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
      weight = layer.weight
      if isinstance(layer, nn.Linear):
        fan_in = weight.shape[1]
      elif isinstance(layer, nn.ConvTranspose2d):  # (in, out, kh, kw)
        fan_in = weight.shape[0] * weight.shape[2] * weight.shape[3]
      else:  # (out, in, kh, kw)
        fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
      std = math.sqrt(1.0 / fan_in) / 0.87962566103423978  # flax's truncation correction.
      with torch.no_grad():
        nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
        if layer.bias is not None:
          layer.bias.zero_()


def train_torch(run, snapshots: list[float], seed: int) -> list[tuple[float, int, np.ndarray]]:
  """Trains the PyTorch reference with `seed`; returns (training seconds, iterations, samples) per snapshot."""
  import torch
  import torch.nn.functional as F
  import torch_dcgan
  if FLAGS.threads:
    torch.set_num_threads(FLAGS.threads)
  torch.manual_seed(seed)
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  c = run.config
  g = torch_dcgan.Generator(28, 1, c.model.z_dim, c.model.g_channels)
  d = torch_dcgan.Discriminator(28, 1, c.model.d_channels, batch_norm=True)
  init_like_flax(g)
  init_like_flax(d)
  g, d = g.to(device), d.to(device)
  g_opt = torch.optim.Adam(g.parameters(), c.optim.g.lr, (c.optim.g.b1, c.optim.g.b2))
  d_opt = torch.optim.Adam(d.parameters(), c.optim.d.lr, (c.optim.d.b1, c.optim.d.b2))
  z_fixed = torch.from_numpy(fixed_latents(c.model.z_dim)).to(device)
  batch = c.data.batch_size
  out, trained, step = [], 0.0, 0
  started = time.perf_counter()
  for target in snapshots:
    while trained + time.perf_counter() - started < target:
      real = torch.from_numpy(real_batch(run.train_source, seed, step, batch)).permute(0, 3, 1, 2).to(device)
      with torch.no_grad():
        fake = g(torch.randn(batch, c.model.z_dim, device=device))
      d_real, d_fake = d(real), d(fake)
      d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
      d_opt.zero_grad(set_to_none=True)
      d_loss.backward()
      d_opt.step()
      d.requires_grad_(False)
      d_gen = d(g(torch.randn(batch, c.model.z_dim, device=device)))
      g_loss = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
      g_opt.zero_grad(set_to_none=True)
      g_loss.backward()
      g_opt.step()
      d.requires_grad_(True)
      step += 1
    if device == 'cuda':
      torch.cuda.synchronize()
    trained += time.perf_counter() - started
    g.eval()  # Sampling as the project samples: BatchNorm with its running statistics.
    with torch.no_grad():
      images = np.concatenate([g(z_fixed[i:i + SAMPLE_BATCH]).permute(0, 2, 3, 1).cpu().numpy()
                               for i in range(0, len(z_fixed), SAMPLE_BATCH)])
    g.train()
    out.append((trained, step, images))
    print(f'  torch, seed {seed}: {trained:.0f} s, {step} iterations', flush=True)
    started = time.perf_counter()
  return out


def time_to(fds: list[tuple[float, float]], threshold: float) -> float | None:
  """The first snapshot time whose FD is at or below `threshold` (None: never within the budget)."""
  return next((t for t, fd in fds if fd <= threshold), None)


def fd_scorer(run):
  """`score(images) -> classifier FD` against the 10,000 MNIST test images."""
  from gan_jax.metrics import fid
  classifier = classifier_lib.load('mnist', str(pathlib.Path(__file__).resolve().parents[1] / 'models'))
  test_images, _ = data_lib.load_images('mnist', 'test', run.config.data.dir, run.config.data.download)
  reference = classifier_lib.feature_stats(classifier, test_images)
  return lambda images: fid.frechet_distance_from_stats(classifier_lib.feature_stats(classifier, images), reference)


def snapshot_times(budget_s: float) -> list[float]:
  return [FLAGS.every_s * (i + 1) for i in range(int(budget_s // FLAGS.every_s))]


def one_seed(run) -> None:
  """JAX and PyTorch, one run each: FD per snapshot and the time to each threshold."""
  snapshots = snapshot_times(FLAGS.budget_s)
  results = {'jax': [(t, step, images[0]) for t, step, images in train_jax(run, snapshots, [FLAGS.seed])],
             'torch (eager)': train_torch(run, snapshots, FLAGS.seed)}
  score = fd_scorer(run)
  fds = {name: [(t, score(images)) for t, _, images in snaps] for name, snaps in results.items()}
  print('\n| training s | ' + ' | '.join(f'{n} iterations | {n} classifier FD' for n in results) + ' |')
  print('|---' * (1 + 2 * len(results)) + '|')
  for i, target in enumerate(snapshots):
    cells = [f'{results[n][i][1]} | {fds[n][i][1]:.1f}' for n in results]
    print(f'| {target:.0f} | ' + ' | '.join(cells) + ' |')
  print('\n| classifier FD <= | ' + ' | '.join(f'{n} s' for n in results) + ' | ratio jax / torch |')
  print('|---' * (2 + len(results)) + '|')
  names = list(results)
  for threshold in map(float, FLAGS.thresholds):
    times = [time_to(fds[n], threshold) for n in names]
    ratio = f'{times[0] / times[1]:.2f}' if all(times) else '-'
    print(f'| {threshold:g} | ' + ' | '.join(f'{t:.0f}' if t else f'not within {FLAGS.budget_s:.0f}'
                                             for t in times) + f' | {ratio} |')


def seeds_per_hour(run) -> None:
  """N seeds: JAX as one vectorized program for N x budget_s, PyTorch one seed after the other for
  budget_s each; the time until every seed is at or below each threshold, and seeds per hour."""
  seeds = list(range(FLAGS.seed, FLAGS.seed + FLAGS.seeds))
  jax_snaps = train_jax(run, snapshot_times(FLAGS.seeds * FLAGS.budget_s), seeds)
  torch_runs = [train_torch(run, snapshot_times(FLAGS.budget_s), seed) for seed in seeds]
  score = fd_scorer(run)
  jax_fds = [(t, step, [score(images) for images in lanes]) for t, step, lanes in jax_snaps]
  torch_fds = [[(t, step, score(images)) for t, step, images in snaps] for snaps in torch_runs]
  print(f'\nJAX, seeds {seeds} as one vectorized program:')
  print('| training s | iterations | ' + ' | '.join(f'seed {s} FD' for s in seeds) + ' |')
  print('|---' * (2 + len(seeds)) + '|')
  for t, step, fds in jax_fds:
    print(f'| {t:.0f} | {step} | ' + ' | '.join(f'{fd:.1f}' for fd in fds) + ' |')
  print('\nPyTorch eager, the seeds one after the other (each its own training seconds):')
  print('| training s | ' + ' | '.join(f'seed {s} iterations | seed {s} FD' for s in seeds) + ' |')
  print('|---' * (1 + 2 * len(seeds)) + '|')
  for i, target in enumerate(snapshot_times(FLAGS.budget_s)):
    print(f'| {target:.0f} | ' + ' | '.join(f'{run_fds[i][1]} | {run_fds[i][2]:.1f}' for run_fds in torch_fds) + ' |')
  n = len(seeds)
  print(f'\n| classifier FD <= (every seed) | JAX, {n} runs vectorized: s | PyTorch, {n} runs sequential: s '
        f'| ratio jax / torch | JAX seeds / hour | PyTorch seeds / hour |')
  print('|---' * 6 + '|')
  for threshold in map(float, FLAGS.thresholds):
    jax_time = time_to([(t, max(fds)) for t, _, fds in jax_fds], threshold)
    per_seed = [time_to([(t, fd) for t, _, fd in run_fds], threshold) for run_fds in torch_fds]
    torch_time = sum(per_seed) if all(per_seed) else None
    cells = [f'{x:.0f}' if x else 'not within budget' for x in (jax_time, torch_time)]
    ratio = f'{jax_time / torch_time:.2f}' if jax_time and torch_time else '-'
    rates = [f'{n * 3600 / x:.1f}' if x else '-' for x in (jax_time, torch_time)]
    print(f'| {threshold:g} | ' + ' | '.join(cells + [ratio] + rates) + ' |')


def main(argv):
  del argv
  run = run_lib.build_run(config())
  import torch
  print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average '
        f'{", ".join(f"{x:.2f}" for x in os.getloadavg())}; jax {jax.__version__} ({jax.default_backend()}), '
        f'torch {torch.__version__} ({"cuda" if torch.cuda.is_available() else f"{torch.get_num_threads()} threads"}); budget {FLAGS.budget_s:.0f} s per seed, '
        f'a snapshot every {FLAGS.every_s:.0f} s; {FLAGS.seeds} seed(s), batch {run.config.data.batch_size}', flush=True)
  if FLAGS.seeds > 1:
    seeds_per_hour(run)
  else:
    one_seed(run)


if __name__ == '__main__':
  app.run(main)
