"""Spoken digits from text: a miniature text-to-speech GAN (SpecGAN-style, Donahue et al. 2019).

Data (gan_jax.data.spoken_digits): the ten words "zero" ... "nine" synthesized by eSpeak NG for 84
synthetic speakers (7 accents x 12 voice variants) at 3 speeds and 3 pitches, 8 kHz, one second;
the 14 speakers of two variants are held out as the test split. A clip is trained on as its log-mel
spectrogram, a 32 x 32 grey image (32 mel bands up to 4 kHz x 32 frames of 32 ms; 0.31 dB per grey
level: gan_jax.data.spectrogram), and a generated spectrogram becomes audio by a fixed inversion
(non-negative least squares from mel to linear magnitudes, then 64 Griffin-Lim iterations).
The made set is written once into the data folder (first use, or `python -m gan_jax.data.spoken_digits`).

The text is the digit's word. A one-word caption from a ten-word vocabulary is a class label, and
its learned embedding is the label embedding, so the conditioning is the cGAN's: G concatenates a
learned embedding of the word to z, D adds the projection term <W e(word), phi(x)>. DCGAN G and D
(32 x 32: 4 -> 8 -> 16 -> 32), non-saturating loss, Adam 2e-4 / 0.5, batch 64.

Launch:
  python -m gan_jax.data.spoken_digits                 # make the set (about a minute; needs espeak-ng)
  python -m gan_jax.metrics.classifier --dataset=spoken_digits   # retrain the spoken-digit classifier
  python launch.py --exp=speech                        # 5000 iterations, evaluated every 1000
  python launch.py --exp=speech --sweep --runner=sequential      # 3 seeds
  python launch.py --exp=speech:smoke
  python launch.py --mode=sample --workdir=DIR --labels=7 --num_samples=16   # sixteen spoken sevens (.npz)

Evaluation (10,000 samples with uniform words, every 1000 iterations, in eval.jsonl and W&B): class_accuracy
(the project's spoken-digit classifier, trained on the 70 training speakers, on the generated
spectrograms against the requested word), intra_fd, classifier FD and classifier score against the
held-out speakers' clips. Samples: samples/step_N.png (a spectrogram grid, one word per row, the
same latent down each column, high frequencies at the top) and samples/step_N.wav (the first
column's ten words, zero to nine, one second each; logged to W&B as audio).

Target (issue #21): classifier accuracy on generated clips >= 0.8. Measured (3 seeds, 5000
iterations, ~10 min each on a loaded 2-core CPU): 0.997 ± 0.001 on the spectrograms and 0.998 ± 0.002
heard through the audio (samples inverted, re-analysed, classified; real held-out clips: 0.998 and
0.994), classifier FD 115.8 ± 33.0 against the held-out speakers (real training speakers against
them: 65.1). Table, machine and commands: docs/results/speech.md (`python bench/speech_audio.py`).
"""
from gan_jax import config as config_lib
from gan_jax import experiments

OPTIONS = ('smoke',)


def get_config(arg: str | None = None):
  options = experiments.parse_options('speech', arg, OPTIONS)
  c = config_lib.base()
  c.data.name = 'spoken_digits'
  c.model.g_cond = 'concat'
  c.model.d_cond = 'projection'
  c.model.g_channels = c.model.d_channels = 32
  c.model.z_dim = 64
  c.train.update(dict(steps=5000, sample_every=1000, checkpoint_every=1000))
  c.eval.metrics = ('class_accuracy', 'intra_fd', 'classifier_fd', 'classifier_score')
  c.eval.eval_every = 1000
  if 'smoke' in options:
    config_lib.shrink_to_smoke(c)
  return c


def get_sweep():
  """3 seeds of the shipped configuration."""
  return {'product': {'train.seed': [0, 1, 2]}}
