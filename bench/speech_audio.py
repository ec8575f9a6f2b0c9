"""The speech experiment's results table, with its words heard through the audio, not read off the spectrogram.

  python bench/speech_audio.py --sweep=runs/speech [--num_samples=1000]

For each finished run of the sweep directory: its final evaluation (class accuracy, classifier FD and
score on 10,000 spectrograms, from eval.jsonl), then `--num_samples` new samples with balanced words
turned into audio (gan_jax/data/spectrogram.py: NNLS + 64 Griffin-Lim iterations), re-analysed
into spectrograms and classified: the accuracy a listener-proxy gets from the generated clips
themselves. Reference rows: the held-out speakers' real clips classified as they are, and after the
same spectrogram -> audio -> spectrogram round trip (what the inversion alone costs); and the
classifier FD between the 70 training speakers' clips and the 14 held-out speakers' (the FD of real
speech of other voices: the floor a generator of the training voices can reach). Mean +- sample
std over the runs.
"""
import json
import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.

from absl import app
from absl import flags
import numpy as np

from gan_jax.data import spectrogram
from gan_jax.data import spoken_digits
from gan_jax.metrics import classifier as classifier_lib
from gan_jax import from_checkpoint

flags.DEFINE_string('sweep', None, 'The speech sweep directory (launch.py --exp=speech --sweep --workdir=...).')
flags.DEFINE_integer('num_samples', 1000, 'Generated clips per run heard through the audio.')
FLAGS = flags.FLAGS


def heard(images: np.ndarray) -> np.ndarray:
  """Spectrogram images (uint8, or float in [-1, 1]) -> the uint8 spectrograms of their audio."""
  return np.stack([spectrogram.to_image(spectrogram.to_audio(image)) for image in images])


def mean_std(values: list[float]) -> str:
  if len(values) == 1:
    return f'{values[0]:.3f}'
  return f'{statistics.mean(values):.3f} +- {statistics.stdev(values):.3f}'


def main(argv):
  del argv
  classifier = classifier_lib.load('spoken_digits')
  rows = []
  for workdir in sorted(p.parent for p in pathlib.Path(FLAGS.sweep).glob('*/eval.jsonl')):
    final = json.loads((workdir / 'eval.jsonl').read_text().splitlines()[-1])
    config = from_checkpoint.saved_config(workdir)
    with tempfile.TemporaryDirectory() as tmp:
      out = from_checkpoint.sample(config, workdir, FLAGS.num_samples, pathlib.Path(tmp) / 's.npz')
      with np.load(out) as f:
        samples, labels = f['samples'], f['labels']
    rows.append({'run': workdir.name, 'step': final['step'], 'train_seconds': final.get('train_seconds', 0.0),
                 'accuracy': final['class_accuracy'], 'fd': final['classifier_fd'],
                 'score': final['classifier_score'],
                 'heard': classifier_lib.accuracy(classifier, heard(samples), labels)})
    print(f'{workdir.name}: {rows[-1]}', file=sys.stderr)
  test = spoken_digits.load_arrays('test', make_missing=False)
  train_images, _ = spoken_digits.load('train', make_missing=False)
  real = classifier_lib.accuracy(classifier, test['image'], test['label'])
  pick = np.random.default_rng(0).choice(len(test['image']), FLAGS.num_samples, replace=False)
  real_heard = classifier_lib.accuracy(classifier, heard(test['image'][pick]), test['label'][pick])
  floor = classifier_lib.classifier_frechet_distance(classifier, train_images, test['image'])
  print('| rows | runs | iterations | class accuracy (spectrograms) | class accuracy (heard through the audio) '
        '| classifier FD | classifier score | training s per run |')
  print('|---|---|---|---|---|---|---|---|')
  print(f'| speech GAN | {len(rows)} | {rows[0]["step"]} | {mean_std([r["accuracy"] for r in rows])} | '
        f'{mean_std([r["heard"] for r in rows])} | {mean_std([r["fd"] for r in rows])} | '
        f'{mean_std([r["score"] for r in rows])} | {statistics.mean(r["train_seconds"] for r in rows):.0f} |')
  print(f'| real clips of the held-out speakers | - | - | {real:.3f} | {real_heard:.3f} | '
        f'{floor:.1f} (training speakers against held-out) | - | - |')


if __name__ == '__main__':
  flags.mark_flag_as_required('sweep')
  app.run(main)
