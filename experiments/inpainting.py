"""Inpainting (context-encoder style, Pathak et al. 2016): fill a hidden region of a digit.

The input is the image with a 14x14 square hole at a position drawn per example (task
'inpaint_square'; fixed per split, gan_jax.data.paired) or with its bottom half hidden
('inpaint_half'), the hole's mask as a second channel. G (the shared U-Net) outputs the known
pixels unchanged and its own only inside the hole, so its 100 * L1 reconstruction term is a loss on
the hole alone; D (PatchGAN) judges (completed image, masked input) pairs. The non-adversarial
baseline is the same G on L1 alone. Pathak et al. weight an L2 term 0.999 and the adversarial
0.001; this experiment keeps pix2pix's L1 weighting so the image-to-image family shares one recipe.

Launch:
  python launch.py --exp=inpainting                     # MNIST, square holes
  python launch.py --exp=inpainting:half                # bottom half hidden
  python launch.py --exp=inpainting:fashion_mnist
  python launch.py --exp=inpainting --sweep --runner=vectorized      # GAN and baseline x 3 seeds
  python launch.py --exp=inpainting:smoke

Evaluation (every 500 steps): PSNR and SSIM of the completed image against the original (the known
pixels are exact, so these are dominated by the hole), label preservation (class_accuracy) and
classifier FD of the completed images.

Measured (square holes, `--sweep --runner=sequential`; seeds 0-2, 1000 iterations of batch 64, 2-core
CPU, ~3.5 min of training per run; mean ± std; docs/results/image_to_image.md):
  | MNIST, 14x14 holes          | PSNR         | SSIM          | label preservation | classifier FD |
  | GAN (adversarial + 100 L1)  | 16.72 ± 0.04 | 0.737 ± 0.004 | 0.821 ± 0.017      | 45.7 ± 13.0   |
  | baseline (100 L1 alone)     | 16.68 ± 0.29 | 0.732 ± 0.013 | 0.815 ± 0.024      | 59.4 ± 23.6   |
  | the masked image            | inf (exact where the hole is background) | 0.537 | 0.638 | 260 |
"""
from gan_jax import experiments

MASKS = ('square', 'half')
OPTIONS = experiments.TRANSLATION_SETS + MASKS + ('smoke',)


def get_config(arg: str | None = None):
  options = experiments.parse_options('inpainting', arg, OPTIONS, exclusive=(experiments.TRANSLATION_SETS, MASKS))
  task = 'inpaint_' + experiments.chosen(options, MASKS, 'square')
  return experiments.translation_config(task, experiments.chosen(options, experiments.TRANSLATION_SETS, 'mnist'),
                                        'smoke' in options)


def get_sweep():
  """The GAN (adversarial + 100 * L1) and the L1-only baseline, 3 seeds each."""
  return experiments.translation_sweep([{'translate.adversarial': 1.0}, {'translate.adversarial': 0.0}])
