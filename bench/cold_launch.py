"""Seconds from `python launch.py` to the end of a 2-iteration run with an empty compilation cache.

  python bench/cold_launch.py                         # vanilla and wgan_gp
  python bench/cold_launch.py --exp=vanilla,cgan --repeats=3

What a researcher waits for on a first launch: imports, data, the state's initialization, the
train iteration's compilation, a checkpoint and a sample grid (evaluation and W&B off). Each launch
is a fresh process with a fresh cache folder ($GAN_JAX_CACHE) and workdir. Prints a table (median
of --repeats launches) with the train iteration's own compile seconds from the run's log, and the
machine line. To compare two versions, run it in each checkout one after the other.
"""
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

REPO = pathlib.Path(__file__).resolve().parents[1]
flags.DEFINE_list('exp', ['vanilla', 'wgan_gp'], 'Experiments to launch.')
flags.DEFINE_integer('repeats', 1, 'Launches per experiment; the median is reported.')
FLAGS = flags.FLAGS
COMPILED = re.compile(r'compiled the train iteration .* in ([0-9.]+) s')


def launch_once(exp: str) -> tuple[float, float]:
  """(wall seconds of the whole launch, the train iteration's compile seconds from its log)."""
  with tempfile.TemporaryDirectory() as tmp:
    env = {**os.environ, 'GAN_JAX_CACHE': os.path.join(tmp, 'cache')}
    command = [sys.executable, str(REPO / 'launch.py'), f'--exp={exp}', '--config.train.steps=2',
               '--config.eval.metrics=', '--config.log.wandb=disabled', f'--workdir={os.path.join(tmp, "run")}']
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
  if done.returncode != 0:
    raise SystemExit(f'launch of {exp} failed:\n{done.stderr[-2000:]}')
  return wall, float(COMPILED.findall(done.stderr)[-1])


def main(argv):
  del argv
  head = subprocess.run(['git', 'log', '-1', '--format=%h'], cwd=REPO, capture_output=True, text=True).stdout.strip()
  print(f'machine: {platform.machine()}, {os.cpu_count()} cores, load average '
        f'{", ".join(f"{x:.2f}" for x in os.getloadavg())}; checkout {head or "?"}')
  print('| experiment | launch s | train iteration compile s | launches |')
  print('|---|---|---|---|')
  for exp in FLAGS.exp:
    walls, compiles = zip(*(launch_once(exp) for _ in range(FLAGS.repeats)))
    print(f'| {exp} | {statistics.median(walls):.1f} | {statistics.median(compiles):.1f} | {FLAGS.repeats} |', flush=True)


if __name__ == '__main__':
  app.run(main)
