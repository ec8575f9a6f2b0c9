"""The image-to-image family's results table: GAN rows next to their non-adversarial baselines.

  python bench/image_to_image_table.py --sweeps=runs/pix2pix,runs/srgan,runs/inpainting,runs/cyclegan
      [--figures=docs/results/figures]

Reads each sweep directory (as `launch.py --report` does: gan_jax/report.py), groups its runs by the
fields that differ (translate.adversarial, translate.features), and prints one markdown table per
sweep: the final evaluation's metrics as mean +- sample std over the seeds, the training wall time per
run, and a reference row: for super-resolution the bicubic baseline the runs evaluated, for the other
paired tasks their input taken as the output (the edge map; the masked image), scored the same way. With --figures, copies each
sweep's first GAN run's and baseline's last sample grids there (input | output | target).
"""
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.

from absl import app
from absl import flags

import jax
import jax.numpy as jnp

from gan_jax import data as data_lib
from gan_jax import report
from gan_jax.metrics import evaluator as evaluator_lib
from gan_jax.models import translation
from gan_jax import from_checkpoint

flags.DEFINE_list('sweeps', [], 'Sweep directories of pix2pix / srgan / inpainting / cyclegan.')
flags.DEFINE_string('figures', '', 'Copy the last sample grid of one run per configuration here (empty: none).')
FLAGS = flags.FLAGS

PAIRED = ('psnr', 'ssim', 'class_accuracy', 'classifier_fd')
CYCLE = ('accuracy_ab', 'psnr_ab', 'psnr_ba', 'fd_ab', 'fd_ba', 'cycle_l1_a', 'cycle_l1_b')
BICUBIC = {'psnr': 'bicubic_psnr', 'ssim': 'bicubic_ssim', 'class_accuracy': 'bicubic_accuracy',
           'classifier_fd': 'bicubic_fd'}


def _cell(stats) -> str:
  mean, std, _ = stats
  return report._cell(mean, std)  # The report's own formatting, so both read alike.


def _label(values: dict) -> str:
  """A configuration's name from its differing fields: 'GAN', 'baseline (L1 only)', '+ features 10'."""
  adversarial = values.get('translate.adversarial', 1.0)
  parts = ['GAN' if adversarial else 'baseline (no adversarial term)']
  if values.get('translate.features'):
    parts.append(f'+ classifier features x{values["translate.features"]:g}')
  return ' '.join(parts)


def input_as_output(run: report.Run) -> dict[str, float]:
  """The PAIRED metrics of the run's task solved by returning its input (first C channels, resized)."""
  config = from_checkpoint.saved_config(run.path)
  config.eval.metrics = ('reconstruction', 'class_accuracy', 'classifier_fd')
  source = data_lib.make_source(config.data)
  side, channels = source.shape[0], source.shape[2]
  identity = jax.jit(lambda z, inputs: jnp.clip(translation.fit_to(inputs[..., :channels], side), -1.0, 1.0))
  return evaluator_lib.Evaluator(config, source)(identity, jax.random.key(0))


def table(directory: pathlib.Path) -> str:
  runs = report.find_runs(directory)
  summary = report.summarize(runs)
  metrics = [m for m in (CYCLE if 'cycle_l1_a' in summary['eval_metrics'] else PAIRED) if m in summary['eval_metrics']]
  header = ['configuration', 'seeds', 'steps'] + metrics + ['train s / run']
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for row in summary['rows']:
    members = row['runs']
    seeds = ' '.join(str(run.config.get('train.seed')) for run in members)
    steps = ', '.join(sorted({str(run.step) for run in members}))
    cells = [_cell(row['stats'][(m, 'final')]) for m in metrics]
    wall = _cell(row['stats'].get((report.TIME_KEY, 'final'), (float('nan'),) * 3))
    lines.append('| ' + ' | '.join([_label(row['values']), seeds, steps, *cells, wall]) + ' |')
  if 'bicubic_psnr' in summary['eval_metrics']:  # The same for every run: one row.
    row = summary['rows'][0]
    cells = [_cell(row['stats'][(BICUBIC[m], 'final')]) for m in metrics]
    lines.append('| ' + ' | '.join(['bicubic upsampling', '-', '-', *cells, '-']) + ' |')
  elif metrics == [m for m in PAIRED if m in metrics]:
    reference = input_as_output(runs[0])
    cells = [report._fmt(reference[m]) for m in metrics]
    lines.append('| ' + ' | '.join(['the input as the output', '-', '-', *cells, '-']) + ' |')
  if FLAGS.figures:
    out = pathlib.Path(FLAGS.figures)
    out.mkdir(parents=True, exist_ok=True)
    for row in summary['rows']:
      run = row['runs'][0]
      grids = sorted((run.path / 'samples').glob('step_*.png'), key=lambda p: int(p.stem.split('_')[1]))
      if grids:
        name = f'{directory.name}_{run.path.name}.png'.replace(',', '_').replace('=', '')
        shutil.copy(grids[-1], out / name)
        lines.append(f'\n![{directory.name}: {_label(row["values"])}](figures/{name})')
  return f'### {directory.name}\n\n' + '\n'.join(lines) + '\n'


def main(argv):
  del argv
  for directory in FLAGS.sweeps:
    print(table(pathlib.Path(directory)))


if __name__ == '__main__':
  app.run(main)
