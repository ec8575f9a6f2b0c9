"""Spoken digits ("zero" ... "nine"), synthesized with eSpeak NG: an SC09-like set made on any machine.

Each clip is one word spoken by one synthetic speaker (an eSpeak NG accent and voice variant) at
one speed (words per minute) and pitch (0-99), resampled to 8 kHz, its voiced part centred in one
second (gan_jax/data/spectrogram.py: SAMPLE_RATE, CLIP_SAMPLES). Speakers whose variant is in
TEST_VARIANTS are held out: the test split holds only their clips, the train split never does,
so the spoken-digit classifier is scored on voices it never heard.

Sizes: 'full' = 7 accents x 12 variants x 3 speeds x 3 pitches x 10 words (6,300 train clips of
70 speakers, 1,260 test clips of 14); 'small' (for tests) = 2 accents x 12 variants x 1 speed x 1
pitch (200 train clips, 40 test). The set is a deterministic function of its size and of
eSpeak NG's version (recorded in the files).

Made once, into `<data folder>/spoken_digits/{train,test}.npz`, by
  python -m gan_jax.data.spoken_digits [--size=full] [--data_dir=DIR]
or on first use by a run (`config.data.download`, the folder download.py fetches into). Each
file holds 'audio' int16 [N, 8000], 'image' uint8 [N, 32, 32, 1] (the log-mel spectrogram image),
'label' int32 [N] (the digit), 'speaker' int32 [N] and 'settings' (json). Written to a temporary
name and renamed, so an interrupted run leaves nothing that is read as data.
"""
import concurrent.futures
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import wave

from absl import app
from absl import flags
import numpy as np
import scipy.signal

from gan_jax.data import download as download_lib
from gan_jax.data import files
from gan_jax.data import spectrogram
from gan_jax.errors import UserError

NAME = 'spoken_digits'
WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
ACCENTS = ('en-us', 'en-gb', 'en-gb-scotland', 'en-gb-x-rp', 'en-gb-x-gbclan', 'en-gb-x-gbcwmd', 'en-029')
VARIANTS = ('m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'f1', 'f2', 'f3', 'f4', 'klatt')
TEST_VARIANTS = ('m7', 'f4')
SIZES = {
    'full': {'accents': ACCENTS, 'speeds': (130, 160, 190), 'pitches': (35, 50, 65)},
    'small': {'accents': ACCENTS[:2], 'speeds': (160,), 'pitches': (50,)},
}
ESPEAK_RATE = 22050  # Hz, what espeak-ng writes.
SILENCE = 0.01  # |amplitude| below which leading and trailing samples count as silence.
HOW_TO_INSTALL = ('install eSpeak NG (Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install '
                  'espeak-ng) and retry')

def espeak_version() -> str:
  """eSpeak NG's version line; UserError saying how to install it when it is missing."""
  exe = shutil.which('espeak-ng')
  if exe is None:
    raise UserError(f'the spoken-digit set is synthesized with espeak-ng, which is not installed: {HOW_TO_INSTALL}')
  return subprocess.run([exe, '--version'], capture_output=True, text=True, check=True).stdout.strip()


def speakers(size: str) -> list[str]:
  """eSpeak voice names 'accent+variant' of a size, in speaker-id order."""
  return [f'{accent}+{variant}' for accent in SIZES[size]['accents'] for variant in VARIANTS]


def clip_settings(size: str, split: str) -> list[tuple[int, str, int, int, int]]:
  """(speaker id, voice, speed, pitch, label) of each clip of a split, in file order."""
  test = split == 'test'
  return [(speaker, voice, speed, pitch, label)
          for speaker, voice in enumerate(speakers(size)) if (voice.split('+')[1] in TEST_VARIANTS) == test
          for speed in SIZES[size]['speeds'] for pitch in SIZES[size]['pitches']
          for label in range(len(WORDS))]


def centre(audio: np.ndarray) -> np.ndarray:
  """float [CLIP_SAMPLES]: the voiced part of `audio` (first to last sample above SILENCE)
  centred in one clip, zero-padded, or its middle CLIP_SAMPLES if longer."""
  loud = np.flatnonzero(np.abs(audio) > SILENCE)
  voiced = audio[loud[0]:loud[-1] + 1] if loud.size else audio[:0]
  n = spectrogram.CLIP_SAMPLES
  if len(voiced) >= n:
    start = (len(voiced) - n) // 2
    return voiced[start:start + n]
  before = (n - len(voiced)) // 2
  return np.pad(voiced, (before, n - len(voiced) - before))


def synthesize(voice: str, speed: int, pitch: int, word: str) -> np.ndarray:
  """int16 [CLIP_SAMPLES] at SAMPLE_RATE: `word` spoken by espeak-ng, resampled and centred."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'clip.wav')
    subprocess.run(['espeak-ng', '-v', voice, '-s', str(speed), '-p', str(pitch), '-w', path, word],
                   check=True, capture_output=True)
    with wave.open(path, 'rb') as w:
      if w.getframerate() != ESPEAK_RATE or w.getsampwidth() != 2:
        raise RuntimeError(f'espeak-ng wrote {w.getframerate()} Hz, {8 * w.getsampwidth()} bit; expected '
                           f'{ESPEAK_RATE} Hz, 16 bit')
      raw = np.frombuffer(w.readframes(w.getnframes()), '<i2').astype(np.float64) / 32768.0
  up, down = spectrogram.SAMPLE_RATE // 50, ESPEAK_RATE // 50  # 160 / 441.
  audio = centre(scipy.signal.resample_poly(raw, up, down))
  return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def make_split(size: str, split: str, workers: int | None = None) -> dict[str, np.ndarray]:
  """The arrays of one split (see the module docstring), synthesized with `workers` threads."""
  settings = clip_settings(size, split)
  with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
    audio = list(pool.map(lambda s: synthesize(s[1], s[2], s[3], WORDS[s[4]]), settings))
  audio = np.stack(audio)
  images = np.stack([spectrogram.to_image(a.astype(np.float64) / 32768.0) for a in audio])
  return {'audio': audio, 'image': images, 'label': np.array([s[4] for s in settings], np.int32),
          'speaker': np.array([s[0] for s in settings], np.int32)}


def make(size: str = 'full', data_dir: str = '') -> pathlib.Path:
  """Synthesizes both splits into `<data folder>/spoken_digits/`; returns that folder."""
  version = espeak_version()
  folder = download_lib.download_dir(data_dir) / NAME
  folder.mkdir(parents=True, exist_ok=True)
  for split in ('train', 'test'):
    arrays = make_split(size, split)
    settings = json.dumps({'size': size, 'split': split, 'espeak': version, 'speakers': speakers(size),
                           'sample_rate': spectrogram.SAMPLE_RATE, **SIZES[size]})
    part = folder / f'.{split}.{os.getpid()}.part.npz'
    np.savez(part, settings=np.array(settings), **arrays)
    part.rename(folder / f'{split}.npz')
    print(f'{split}: {len(arrays["label"])} clips of {len(set(arrays["speaker"].tolist()))} speakers -> '
          f'{folder / f"{split}.npz"}', file=sys.stderr)
  return folder


def load_arrays(split: str, data_dir: str = '', make_missing: bool = True) -> dict[str, np.ndarray]:
  """A split's arrays (module docstring). Missing files are synthesized (full size) into the
  download folder when `make_missing`, else a UserError says how to make them."""
  if split not in ('train', 'test'):
    raise UserError(f'spoken_digits has the splits train and test, not {split!r}')
  how = 'Make them with: python -m gan_jax.data.spoken_digits (needs espeak-ng).'
  try:
    folder = files.find_dataset_dir(NAME, data_dir, (f'{split}.npz',), how)
  except UserError:
    if not make_missing:
      raise
    print('spoken_digits: not found; synthesizing it with espeak-ng (about two minutes) ...', file=sys.stderr)
    folder = make('full', data_dir)
  with np.load(folder / f'{split}.npz') as f:
    return {k: f[k] for k in ('audio', 'image', 'label', 'speaker')}


def load(split: str, data_dir: str = '', make_missing: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Spectrogram images uint8 [N, 32, 32, 1] and digit labels int32 [N] of a split."""
  arrays = load_arrays(split, data_dir, make_missing)
  return arrays['image'], arrays['label']


def main(argv: list[str]) -> None:
  del argv
  try:
    make(flags.FLAGS.size, flags.FLAGS.data_dir)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  flags.DEFINE_enum('size', 'full', list(SIZES), 'Which set to make: full, or small (for tests).')
  flags.DEFINE_string('data_dir', '', 'Data folder (default $GAN_JAX_DATA, else ~/.gan_jax/data).')
  app.run(main)
