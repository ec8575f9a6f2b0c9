"""A run's sample grids: the fixed inputs each grid is drawn from, and how the images are laid out.

  unconditional   NUM_GRID_SAMPLES fixed latents (a scatter plot of NUM_SCATTER_SAMPLES points for 2D data)
  class labels    one row per class, the same latent down each column
  captions        one row per caption of the first NUM_GRID_CAPTIONS test images (samples/captions.txt)
  image-to-image  input | output | target triples of the first test pairs (CycleGAN: a | G_AB(a) | b | G_BA(b))
Spectrogram sets (spoken_digits) also get the grid's first column as audio, one clip per row (write_audio).
"""
import pathlib
from typing import NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data as data_lib
from gan_jax import plots

NUM_GRID_SAMPLES = 64
NUM_SCATTER_SAMPLES = 2500
CLASS_GRID_COLUMNS = 10  # Class-conditional grids: samples per class row.
NUM_GRID_CAPTIONS = 10  # Text-conditioned grids: rows (captions).
TRANSLATION_GRID = (8, 4)  # Image-to-image grids: rows, and input | output | target triples per row.
NUM_AUDIO_CLIPS = 10  # Unconditional spectrogram grids: samples turned into audio.


class SampleInputs(NamedTuple):
  """The fixed inputs of a run's sample grids.

  Attributes:
    z: float32 [N, z_dim] latents.
    labels: int32 [N] class labels, float32 [N, *source_shape] task inputs, or None.
    columns: grid columns (None: square).
    targets: image-to-image: the inputs' targets float32 [N, H, W, C], shown beside the outputs.
    captions: text-conditioned: the caption of each grid row (written to samples/captions.txt).
  """
  z: jax.Array
  labels: jax.Array | None
  columns: int | None
  targets: np.ndarray | None = None
  captions: tuple[str, ...] = ()


def fixed_sample_inputs(source: data_lib.Source, z_dim: int, conditional: bool, key: jax.Array,
                        data_config=None) -> SampleInputs:
  """The fixed inputs of a run's sample grids.

  Unconditional: NUM_GRID_SAMPLES latents (NUM_SCATTER_SAMPLES for 2D data). Conditional: one row
  per class, column j holding the same latent in every row. Image-to-image (source.task): the
  first rows x triples test pairs of `data_config`'s task. Text-conditioned (captions): one row per
  caption of the first NUM_GRID_CAPTIONS test images, column j the same latent in every row.
  """
  if source.task:
    rows, triples = TRANSLATION_GRID
    inputs, targets, _ = data_lib.load_pairs(data_config, 'test')
    n = rows * triples
    return SampleInputs(jax.random.normal(key, (n, z_dim), jnp.float32), jnp.asarray(data_lib.unit_range(inputs[:n])),
                        (4 if source.unpaired else 3) * triples, data_lib.unit_range(targets[:n]))
  if 'text' in source.arrays:
    from gan_jax.data import captions
    tokens, images, labels = data_lib.load_captioned(data_config, 'test')
    rows = NUM_GRID_CAPTIONS
    column_z = jax.random.normal(key, (CLASS_GRID_COLUMNS, z_dim), jnp.float32)
    texts = captions.make(source.name, images[:rows], labels[:rows], data_lib.CAPTION_SEED)
    return SampleInputs(jnp.tile(column_z, (rows, 1)), jnp.asarray(np.repeat(tokens[:rows], CLASS_GRID_COLUMNS, 0)),
                        CLASS_GRID_COLUMNS, captions=tuple(texts))
  if not conditional:
    num = NUM_GRID_SAMPLES if source.is_image else NUM_SCATTER_SAMPLES
    return SampleInputs(jax.random.normal(key, (num, z_dim), jnp.float32), None, None)
  labels = jnp.repeat(jnp.arange(source.num_classes, dtype=jnp.int32), CLASS_GRID_COLUMNS)
  column_z = jax.random.normal(key, (CLASS_GRID_COLUMNS, z_dim), jnp.float32)
  return SampleInputs(jnp.tile(column_z, (source.num_classes, 1)), labels, CLASS_GRID_COLUMNS)


def grid_images(inputs: SampleInputs, samples: np.ndarray, unpaired: bool = False) -> np.ndarray:
  """The images a grid shows for G's `samples` of `inputs`: image-to-image samples beside their inputs
  and targets (translation_grid), other samples as they are."""
  if inputs.targets is None:
    return samples
  return translation_grid(inputs.labels, samples, inputs.targets, unpaired)


def write_row_captions(inputs: SampleInputs, samples_dir: pathlib.Path) -> None:
  """Writes samples_dir/captions.txt, one grid row's caption per line (text-conditioned runs; else nothing)."""
  if inputs.captions:
    (samples_dir / 'captions.txt').write_text(''.join(f'{c}\n' for c in inputs.captions))


def translation_grid(inputs: np.ndarray, outputs: np.ndarray, targets: np.ndarray, unpaired: bool = False) -> np.ndarray:
  """[3N, H, W, C]: input_0, output_0, target_0, input_1, ... for N pairs; each input is shown by its
  first C channels (an inpainting input's masked image), enlarged to H x W by pixel repetition.
  Unpaired (CycleGAN) examples (a, b) -> outputs (G_BA(b), G_AB(a)): [4N, H, W, C/2] of a, G_AB(a),
  b, G_BA(b)."""
  if unpaired:
    half = outputs.shape[-1] // 2
    outputs = np.asarray(outputs)
    return np.stack([targets[..., :half], outputs[..., half:], targets[..., half:], outputs[..., :half]],
                    axis=1).reshape(-1, *outputs.shape[1:3], half)
  _, height, width, channels = outputs.shape
  shown = np.asarray(inputs)[..., :channels]
  shown = np.repeat(np.repeat(shown, height // shown.shape[1], axis=1), width // shown.shape[2], axis=2)
  return np.stack([shown, np.asarray(outputs), targets], axis=1).reshape(-1, height, width, channels)


def write_audio(source: data_lib.Source, samples: np.ndarray, path: pathlib.Path, columns: int | None) -> bool:
  """For spectrogram sets (spoken_digits; else does nothing and returns False): writes `path` (WAV),
  the first sample of each grid row (`columns` wide; None: the first NUM_AUDIO_CLIPS samples) turned
  into audio one after another: for a class grid, the words zero to nine. Returns whether it wrote."""
  if source.name != 'spoken_digits':
    return False
  from gan_jax.data import spectrogram
  clips = np.asarray(samples)[::columns] if columns else np.asarray(samples)[:NUM_AUDIO_CLIPS]
  try:
    path.write_bytes(spectrogram.wav_bytes(np.concatenate([spectrogram.to_audio(c) for c in clips])))
  except OSError as e:
    logging.warning('audio samples %s not written (%s); training continues', path, e)
    return False
  return True


def write_samples(source: data_lib.Source, samples: np.ndarray, path: pathlib.Path, step: int,
                  columns: int | None = None) -> bool:
  """Writes G's samples [N, *source.shape] to `path` (PNG): an image grid (`columns` wide, None:
  square), or for 2D data a scatter plot over real points and the mixture's modes. Returns False
  (with a warning) if the disk failed: a full disk loses the picture, not the run."""
  try:
    if source.is_image:
      plots.save_image_grid(samples, path, columns)
    else:
      real = np.asarray(source.mixture.sample(jax.random.key(0), NUM_SCATTER_SAMPLES))
      plots.save_scatter(samples, path, real=real, modes=source.mixture.centers, title=f'step {step}')
  except OSError as e:
    logging.warning('sample grid of step %d not written (%s); training continues', step, e)
    return False
  return True
