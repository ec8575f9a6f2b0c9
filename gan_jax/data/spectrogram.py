"""Log-mel spectrograms as 32x32 grey images, and back to audio (Griffin-Lim).

A clip is float audio in [-1, 1] at SAMPLE_RATE (8 kHz), CLIP_SAMPLES (1 s) long. Its image:
  STFT (Hann window N_FFT = 512 samples, hop HOP = 256, centred frames, so 32 frames of 32 ms
  stride) -> power |X|^2 -> MEL_BINS = 32 triangular mel filters (HTK mel scale, 0 to 4 kHz,
  each filter's peak 1) -> dB (10 log10) clipped to [DB_MIN, DB_MAX] -> uint8 0..255 linearly.
  Image rows are mel bins, highest frequency at the top (row 0); columns are frames (time).
So a spectrogram image is uint8 [32, 32, 1], one dB step is (DB_MAX - DB_MIN) / 255 = 0.31 dB.

The way back (`to_audio`): dB -> mel power -> linear magnitude by non-negative least squares per
frame (scipy.optimize.nnls against the filterbank) -> Griffin-Lim phase retrieval (scipy.signal's
STFT/ISTFT with the same window and hop), a fixed number of iterations from a fixed phase.
"""
import io
import wave

import numpy as np
import scipy.optimize
import scipy.signal

SAMPLE_RATE = 8000  # Hz.
CLIP_SAMPLES = 8000  # One second.
N_FFT = 512
HOP = 256
MEL_BINS = 32
FRAMES = 1 + CLIP_SAMPLES // HOP  # Centred frames over 8000 samples: 32.
DB_MIN, DB_MAX = -70.0, 30.0
GRIFFIN_LIM_ITERATIONS = 64
IMAGE_SHAPE = (MEL_BINS, FRAMES, 1)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
  """HTK mel scale: 2595 log10(1 + f / 700)."""
  return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
  return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank() -> np.ndarray:
  """float64 [MEL_BINS, N_FFT // 2 + 1]: triangular filters equally spaced in mel from 0 Hz to
  SAMPLE_RATE / 2; filter m rises from edge m to its peak 1 at edge m + 1 and falls to edge m + 2."""
  edges = mel_to_hz(np.linspace(0.0, hz_to_mel(SAMPLE_RATE / 2), MEL_BINS + 2))
  freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
  lower, peak, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  rising = (freqs - lower) / (peak - lower)
  falling = (upper - freqs) / (upper - peak)
  return np.clip(np.minimum(rising, falling), 0.0, None)


def _stft(audio: np.ndarray) -> np.ndarray:
  """Complex [N_FFT // 2 + 1, FRAMES] spectrum of float audio [CLIP_SAMPLES]."""
  _, _, spec = scipy.signal.stft(audio, nperseg=N_FFT, noverlap=N_FFT - HOP, window='hann',
                                 boundary='even', padded=False, scaling='spectrum')
  return spec * N_FFT / 2  # scipy scales by 1/sum(window); undo it (a Hann sum is N/2).


def _istft(spec: np.ndarray) -> np.ndarray:
  _, audio = scipy.signal.istft(spec / (N_FFT / 2), nperseg=N_FFT, noverlap=N_FFT - HOP, window='hann',
                                boundary=True, scaling='spectrum')
  return np.pad(audio, (0, max(0, CLIP_SAMPLES - len(audio))))[:CLIP_SAMPLES]


def mel_db(audio: np.ndarray) -> np.ndarray:
  """float64 [MEL_BINS, FRAMES] mel power in dB of float audio [CLIP_SAMPLES] in [-1, 1]
  (row 0 = lowest band), floored at 1e-10 before the log."""
  power = np.abs(_stft(np.asarray(audio, np.float64))) ** 2
  return 10.0 * np.log10(np.maximum(mel_filterbank() @ power, 1e-10))


def to_image(audio: np.ndarray) -> np.ndarray:
  """uint8 IMAGE_SHAPE spectrogram image of float audio [CLIP_SAMPLES] in [-1, 1]."""
  scaled = (np.clip(mel_db(audio), DB_MIN, DB_MAX) - DB_MIN) / (DB_MAX - DB_MIN)
  return np.round(scaled[::-1] * 255.0).astype(np.uint8)[..., None]


def image_to_db(image: np.ndarray) -> np.ndarray:
  """[MEL_BINS, FRAMES] dB of a spectrogram image [32, 32, 1]: uint8 grey levels, or any float
  dtype in [-1, 1] as the models produce (x -> (x + 1) * 127.5)."""
  image = np.asarray(image)
  grey = image.astype(np.float64) if image.dtype == np.uint8 else (np.clip(image, -1.0, 1.0) + 1.0) * 127.5
  image = grey[..., 0]
  return DB_MIN + image[::-1] / 255.0 * (DB_MAX - DB_MIN)


def to_audio(image: np.ndarray, iterations: int = GRIFFIN_LIM_ITERATIONS) -> np.ndarray:
  """float32 [CLIP_SAMPLES] audio in [-1, 1] whose spectrogram approximates `image` (see
  image_to_db for the accepted forms): magnitudes by NNLS per frame, phases by Griffin-Lim. Pixels
  at the floor (0, DB_MIN) are taken as silent bands."""
  db = image_to_db(image)
  mel_power = np.where(db <= DB_MIN + 1e-6, 0.0, 10.0 ** (db / 10.0))  # The floor means 'at most DB_MIN': silence.
  bank = mel_filterbank()
  power = np.stack([scipy.optimize.nnls(bank, frame)[0] for frame in mel_power.T], axis=1)
  magnitude = np.sqrt(power)
  phase = np.ones_like(magnitude, np.complex128)  # A fixed start: the result is deterministic.
  for _ in range(iterations):
    audio = _istft(magnitude * phase)
    spec = _stft(audio)
    phase = np.exp(1j * np.angle(spec))
  audio = _istft(magnitude * phase)
  return np.clip(audio, -1.0, 1.0).astype(np.float32)


def wav_bytes(audio: np.ndarray) -> bytes:
  """A 16-bit mono WAV file at SAMPLE_RATE of float audio in [-1, 1]."""
  pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype('<i2')
  out = io.BytesIO()
  with wave.open(out, 'wb') as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(SAMPLE_RATE)
    w.writeframes(pcm.tobytes())
  return out.getvalue()
