"""Spoken digits: the log-mel spectrogram images and their inversion, the eSpeak NG data generator
(deterministic, 8 kHz one-second clips, held-out speakers), its clear error when espeak-ng is missing,
and runs of the speech experiment that write audio."""
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest

from gan_jax.data import spectrogram
from gan_jax.data import spoken_digits
from gan_jax.errors import UserError
from tests.conftest import REPO_ROOT

# Skipped without espeak-ng, unless GAN_JAX_REQUIRE_ESPEAK is set (.ci/run installs it and sets it): then they fail.
ESPEAK_MISSING = shutil.which('espeak-ng') is None and not os.environ.get('GAN_JAX_REQUIRE_ESPEAK')
needs_espeak = pytest.mark.skipif(ESPEAK_MISSING, reason='espeak-ng is not installed (.ci/run installs it)')


def _tone(hz: float, amplitude: float = 0.5) -> np.ndarray:
  t = np.arange(spectrogram.CLIP_SAMPLES) / spectrogram.SAMPLE_RATE
  return amplitude * np.sin(2 * np.pi * hz * t)


def test_mel_filterbank_is_triangles_peaking_at_their_centres():
  bank = spectrogram.mel_filterbank()
  assert bank.shape == (spectrogram.MEL_BINS, spectrogram.N_FFT // 2 + 1)
  centres = spectrogram.mel_to_hz(np.linspace(0, spectrogram.hz_to_mel(4000), spectrogram.MEL_BINS + 2))[1:-1]
  freqs = np.linspace(0, 4000, spectrogram.N_FFT // 2 + 1)
  for m in (0, 10, 31):
    nearest = np.argmin(np.abs(freqs - centres[m]))
    assert bank[m].argmax() in (nearest - 1, nearest, nearest + 1)
    assert 0.5 < bank[m].max() <= 1.0
  np.testing.assert_allclose(spectrogram.mel_to_hz(spectrogram.hz_to_mel(1234.5)), 1234.5)
  np.testing.assert_allclose(spectrogram.hz_to_mel(700.0), 2595 * np.log10(2))


@pytest.mark.parametrize('hz', [300.0, 1000.0, 3000.0])
def test_a_tone_lights_the_band_whose_centre_is_nearest(hz):
  centres = spectrogram.mel_to_hz(np.linspace(0, spectrogram.hz_to_mel(4000), spectrogram.MEL_BINS + 2))[1:-1]
  db = spectrogram.mel_db(_tone(hz))
  assert db.shape == (spectrogram.MEL_BINS, spectrogram.FRAMES)
  assert np.argmax(db[:, 16]) == np.argmin(np.abs(centres - hz))
  # Parseval: a sine of amplitude A has power A^2 N^2 / 16 in its (Hann-windowed) peak bin pair;
  # the band's dB level is within a few dB of it, and the image row of the band is the brightest.
  peak_db = 10 * np.log10(0.25 * spectrogram.N_FFT ** 2 / 16)
  assert abs(db[:, 16].max() - peak_db) < 6.0
  image = spectrogram.to_image(_tone(hz, 0.1))  # 14 dB below the half-scale tone: under DB_MAX.
  assert image.shape == spectrogram.IMAGE_SHAPE and image.dtype == np.uint8
  assert np.argmax(image[:, 16, 0]) == spectrogram.MEL_BINS - 1 - np.argmin(np.abs(centres - hz))  # High at the top.


def test_image_db_round_trip_within_half_a_grey_level():
  db = np.linspace(spectrogram.DB_MIN, spectrogram.DB_MAX, spectrogram.MEL_BINS * spectrogram.FRAMES)
  db = db.reshape(spectrogram.MEL_BINS, spectrogram.FRAMES)
  scaled = np.round((db - spectrogram.DB_MIN) / (spectrogram.DB_MAX - spectrogram.DB_MIN) * 255)
  image = scaled[::-1, :, None].astype(np.uint8)
  step = (spectrogram.DB_MAX - spectrogram.DB_MIN) / 255
  np.testing.assert_allclose(spectrogram.image_to_db(image), db, atol=step / 2 + 1e-9)
  as_float = image.astype(np.float32) / 127.5 - 1.0  # What the models produce.
  np.testing.assert_allclose(spectrogram.image_to_db(as_float), spectrogram.image_to_db(image), atol=1e-4)


def test_inversion_reproduces_the_spectrogram_of_a_chirp():
  t = np.arange(spectrogram.CLIP_SAMPLES) / spectrogram.SAMPLE_RATE
  chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 800 * t ** 2)) * np.hanning(len(t))
  image = spectrogram.to_image(chirp)
  audio = spectrogram.to_audio(image)
  assert audio.shape == (spectrogram.CLIP_SAMPLES,) and audio.dtype == np.float32
  loud = image[..., 0] > 128  # Where the chirp is (the quiet floor is where phase errors dominate).
  def error_db(audio):  # Mean |dB difference| of the re-analysed spectrogram where the chirp is.
    again = spectrogram.to_image(audio).astype(float)[..., 0]
    return np.abs(again[loud] - image[..., 0][loud]).mean() * (spectrogram.DB_MAX - spectrogram.DB_MIN) / 255
  # Measured: 4.8 dB after 64 Griffin-Lim iterations, 5.8 dB with the fixed start phase alone.
  assert error_db(audio) < 5.5 and error_db(audio) < 0.9 * error_db(spectrogram.to_audio(image, iterations=0))
  assert np.abs(spectrogram.to_audio(np.zeros(spectrogram.IMAGE_SHAPE, np.uint8))).max() < 1e-3  # Silence.


def test_wav_bytes_is_16_bit_mono_8khz():
  data = spectrogram.wav_bytes(np.concatenate([_tone(440.0), -np.ones(10) * 2]))
  with wave.open(io.BytesIO(data)) as w:
    assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, 8010)
    pcm = np.frombuffer(w.readframes(8010), '<i2')
  assert pcm[-1] == -32767 and abs(pcm[:8000].max() - 16384) < 10  # Clipped; 0.5 -> half scale.


@needs_espeak
def test_generator_is_deterministic_with_one_second_clips_and_held_out_speakers():
  test = spoken_digits.make_split('small', 'test', workers=2)
  again = spoken_digits.make_split('small', 'test', workers=1)
  for key in test:
    np.testing.assert_array_equal(test[key], again[key])
  assert test['audio'].shape == (40, spectrogram.CLIP_SAMPLES) and test['audio'].dtype == np.int16
  assert test['image'].shape == (40, *spectrogram.IMAGE_SHAPE)
  np.testing.assert_array_equal(test['label'], np.tile(np.arange(10), 4))
  voices = spoken_digits.speakers('small')
  assert {voices[s].split('+')[1] for s in test['speaker']} == set(spoken_digits.TEST_VARIANTS)
  train_settings = spoken_digits.clip_settings('small', 'train')
  assert len(train_settings) == 200 and not {s[0] for s in train_settings} & set(test['speaker'].tolist())
  # The voiced part is centred: its energy's centre of mass lies near the middle of the second.
  energy = test['audio'].astype(float) ** 2
  centre = (energy * np.arange(spectrogram.CLIP_SAMPLES)).sum(1) / energy.sum(1)
  assert np.all(np.abs(centre - spectrogram.CLIP_SAMPLES / 2) < 1200)
  # Each clip's image is its audio's spectrogram.
  np.testing.assert_array_equal(test['image'][3], spectrogram.to_image(test['audio'][3] / 32768.0))


def test_centre_pads_and_crops_to_one_second():
  short = np.concatenate([np.zeros(100), np.ones(300) * 0.5, np.zeros(50)])
  out = spoken_digits.centre(short)
  assert out.shape == (8000,) and np.flatnonzero(out).tolist() == list(range(3850, 4150))
  long = np.linspace(0.1, 0.9, 9000)
  np.testing.assert_array_equal(spoken_digits.centre(long), long[500:8500])


def test_missing_espeak_is_a_clear_error(monkeypatch, tmp_path):
  monkeypatch.setenv('PATH', str(tmp_path))
  with pytest.raises(UserError, match='espeak-ng, which is not installed.*apt-get install espeak-ng'):
    spoken_digits.espeak_version()


def test_missing_set_without_espeak_fails_cleanly_from_the_command_line(tmp_path):
  empty = tmp_path / 'data'
  empty.mkdir()
  workdir = tmp_path / 'run'
  env = {**os.environ, 'PATH': str(tmp_path), 'GAN_JAX_DATA': str(empty)}
  result = subprocess.run([sys.executable, str(REPO_ROOT / 'launch.py'), '--exp=speech:smoke', f'--workdir={workdir}',
                           '--config.log.wandb=disabled'], capture_output=True, text=True, env=env, cwd=tmp_path)
  assert result.returncode != 0
  assert 'espeak-ng, which is not installed' in result.stderr and 'Traceback' not in result.stderr
  assert not (empty / 'spoken_digits').exists() or not any((empty / 'spoken_digits').glob('*.npz'))
  assert not workdir.exists() or not (workdir / 'checkpoints').exists()


@pytest.fixture(scope='module')
def small_set(tmp_path_factory) -> pathlib.Path:
  if ESPEAK_MISSING:
    pytest.skip('espeak-ng is not installed (.ci/run installs it)')
  folder = tmp_path_factory.mktemp('speech_data')
  spoken_digits.make('small', str(folder))
  return folder


@needs_espeak
def test_made_set_loads_as_images_and_labels(small_set):
  from gan_jax import data
  images, labels = data.load_images('spoken_digits', 'train', str(small_set))
  assert images.shape == (200, 32, 32, 1) and images.dtype == np.uint8 and labels.shape == (200,)
  with np.load(small_set / 'spoken_digits' / 'test.npz') as f:
    settings = json.loads(str(f['settings']))
  assert settings['size'] == 'small' and settings['sample_rate'] == 8000 and 'eSpeak NG' in settings['espeak']
  assert not list((small_set / 'spoken_digits').glob('.*part*'))


@needs_espeak
def test_smoke_run_writes_spectrogram_grids_and_audio(small_set, tmp_path):
  from gan_jax import experiments
  from gan_jax.train import loop
  overrides = [('data.dir', str(small_set)), ('log.wandb', 'offline')]
  result = loop.train_and_evaluate(experiments.load_config('speech:smoke', overrides), tmp_path)
  assert result['status'] == 'finished'
  assert (tmp_path / 'samples' / 'step_20.png').exists()
  with wave.open(str(tmp_path / 'samples' / 'step_20.wav')) as w:  # The ten words, one second each.
    assert (w.getframerate(), w.getnframes()) == (8000, 10 * spectrogram.CLIP_SAMPLES)
  logged = list((tmp_path / 'wandb').rglob('*.wav'))
  assert logged, 'the audio was not logged to W&B'
