"""Pictures of a run: sample grids of images and scatter plots of 2D samples, as PNG files."""
import math
import pathlib

import numpy as np
from PIL import Image

from gan_jax import data as data_lib


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
  """Tiles images [N, H, W, C] in [-1, 1] into one uint8 picture [rows*(H+pad)+pad, ..., C or 3]."""
  images = np.asarray(images, np.float32)
  n, h, w, c = images.shape
  columns = columns or int(math.ceil(math.sqrt(n)))
  rows = int(math.ceil(n / columns))
  pixels = data_lib.pixels(images)
  grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, col = divmod(i, columns)
    grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = pixels[i]
  return grid


def save_image_grid(images: np.ndarray, path: pathlib.Path, columns: int | None = None) -> None:
  grid = image_grid(images, columns)
  if grid.shape[-1] == 1:
    grid = grid[..., 0]
  Image.fromarray(grid).save(path)


def save_scatter(fake: np.ndarray, path: pathlib.Path, real: np.ndarray | None = None,
                 modes: np.ndarray | None = None, title: str = '') -> None:
  """Scatter plot of generated 2D points [N, 2] over real points and mode centres."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
  if real is not None:
    ax.scatter(real[:, 0], real[:, 1], s=2, c='tab:gray', alpha=0.4, label='real')
  ax.scatter(fake[:, 0], fake[:, 1], s=2, c='tab:blue', alpha=0.6, label='generated')
  if modes is not None:
    ax.scatter(modes[:, 0], modes[:, 1], s=30, marker='x', c='tab:red', label='modes')
  ax.set_aspect('equal')
  ax.legend(loc='upper right', fontsize=7, markerscale=3)
  if title:
    ax.set_title(title, fontsize=9)
  fig.subplots_adjust(left=0.12, right=0.97, bottom=0.07, top=0.93)  # Fixed margins: tight_layout doubles the cost.
  fig.savefig(path)
  plt.close(fig)


def save_mode_figure(fake: np.ndarray, real: np.ndarray, mixture, found: dict, path: pathlib.Path,
                     title: str = '') -> None:
  """Two panels: generated 2D points [N, 2] over real points [M, 2], the mixture's centres and
  their 3-std high-quality discs; and the high-quality samples per mode (`found`, the result of
  gan_jax.metrics.modes.mixture_modes) against the count a perfect generator expects."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  histogram = found['histogram']
  fig, (ax, bars) = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
  ax.scatter(real[:, 0], real[:, 1], s=2, c='tab:gray', alpha=0.4, label='real')
  ax.scatter(fake[:, 0], fake[:, 1], s=2, c='tab:blue', alpha=0.6, label='generated')
  for x, y in mixture.centers:
    ax.add_patch(plt.Circle((x, y), 3 * mixture.std, fill=False, color='tab:red', lw=0.8))
  ax.set_aspect('equal')
  ax.legend(loc='upper right', fontsize=7, markerscale=3)
  ax.set_title(f'{title} modes {found["modes"]}/{len(histogram)}, high quality {found["high_quality"]:.1%}',
               fontsize=9)
  bars.bar(np.arange(len(histogram)), histogram, color='tab:blue')
  bars.axhline(len(fake) / len(histogram), color='tab:red', lw=0.8, ls='--', label='uniform, all high quality')
  bars.set_xlabel('mode')
  bars.set_ylabel('high-quality samples')
  bars.legend(fontsize=7)
  bars.set_title(f'reverse KL {found["reverse_kl"]:.3g} nats', fontsize=9)
  fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.25)
  fig.savefig(path)
  plt.close(fig)
