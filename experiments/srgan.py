"""Super-resolution GAN (after SRGAN, Ledig et al. 2017): 7x7 -> 28x28 (x4) or 14x14 -> 28x28 (x2).

Inputs are area-downsampled digits (gan_jax.data.paired, tasks 'sr4' / 'sr2'); G resizes them to
28x28 (bicubic) and refines them with the U-Net of gan_jax.models.translation; D is the PatchGAN
judging (image, low-resolution input) pairs. Content losses: pixel L1 (translate.l1) and L2
(translate.l2), and a feature ("perceptual") loss: the squared distance of the project's MNIST
domain classifier's 128 penultimate features (translate.features), the stand-in for SRGAN's VGG
features at this scale. SRGAN's residual generator with sub-pixel upsampling is replaced by the
U-Net the other image-to-image experiments share (gan_jax.experiments.translation_config).

Launch:
  python launch.py --exp=srgan                          # x4 on MNIST: adversarial + 100 * L1
  python launch.py --exp=srgan:x2                       # x2
  python launch.py --exp=srgan:fashion_mnist
  python launch.py --exp=srgan --config.translate.features=10    # + the classifier-feature loss
  python launch.py --exp=srgan --sweep --runner=vectorized       # L1 baseline, GAN, GAN + features x 3 seeds
  python launch.py --exp=srgan:smoke

Evaluation (every 500 steps, eval.jsonl): PSNR, SSIM, label preservation (class_accuracy) and
classifier FD on the first 10,000 test pairs, and the same four numbers for bicubic upsampling of
the same inputs (bicubic_psnr, bicubic_ssim, bicubic_fd, bicubic_accuracy).

Measured (x4, `--sweep --runner=sequential`; seeds 0-2, 1000 iterations of batch 64, 2-core CPU,
3-5 min of training per run; mean ± std; docs/results/image_to_image.md has the machine and figures):
  | MNIST x4                           | PSNR         | SSIM          | label preservation | classifier FD |
  | baseline (100 L1 alone)            | 20.07 ± 0.12 | 0.869 ± 0.004 | 0.954 ± 0.002      | 6.4 ± 1.0     |
  | GAN (adversarial + 100 L1)         | 19.96 ± 0.13 | 0.867 ± 0.005 | 0.954 ± 0.001      | 5.1 ± 1.0     |
  | GAN + classifier features x10      | 19.63 ± 0.10 | 0.861 ± 0.003 | 0.966 ± 0.001      | 2.75 ± 0.82   |
  | bicubic upsampling                 | 14.63        | 0.437         | 0.762              | 966           |
Target (issue #20) x4 with label preservation >= 0.95 and classifier FD below bicubic's: met.
"""
from gan_jax import experiments

SCALES = ('x4', 'x2')
OPTIONS = experiments.TRANSLATION_SETS + SCALES + ('smoke',)


def get_config(arg: str | None = None):
  options = experiments.parse_options('srgan', arg, OPTIONS, exclusive=(experiments.TRANSLATION_SETS, SCALES))
  task = 'sr' + experiments.chosen(options, SCALES, 'x4')[1:]
  c = experiments.translation_config(task, experiments.chosen(options, experiments.TRANSLATION_SETS, 'mnist'),
                                     'smoke' in options)
  if 'smoke' not in options:
    c.eval.metrics = c.eval.metrics + ('bicubic',)
  return c


def get_sweep():
  """The L1-only baseline, the GAN (adversarial + 100 * L1), and the GAN with the classifier-feature
  loss (weight 10, not tuned), 3 seeds each."""
  return experiments.translation_sweep([{'translate.adversarial': 0.0}, {'translate.adversarial': 1.0},
                                        {'translate.adversarial': 1.0, 'translate.features': 10.0}])
