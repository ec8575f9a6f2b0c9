"""Conditional GAN: G and D see the class, so the user chooses which digit (or garment) to generate.

Models P(X|Y) with a DCGAN architecture. Conditioning (gan_jax.models.conditioning): G gets a
label embedding concatenated to z ('concat', Mirza & Osindero 2014) or conditional batch norm
('cbn'); D gets one-hot label maps on its input ('concat'), the projection term <embed(y), phi(x)>
(Miyato & Koyama 2018) or an auxiliary classifier (AC-GAN, Odena et al. 2017).

Launch:
  python launch.py --exp=cgan                                  # MNIST, projection D, non-saturating
  python launch.py --exp=cgan:acgan                            # AC-GAN D
  python launch.py --exp=cgan --config.model.g_cond=cbn        # conditional batch norm in G
  python launch.py --exp=cgan:concat                           # label maps on D's input
  python launch.py --exp=cgan:fashion_mnist,hinge              # Fashion-MNIST, hinge loss
  python launch.py --exp=cgan:cifar10                          # CIFAR-10 (needs its files; no classifier metrics)
  python launch.py --exp=cgan:smoke                            # seconds: tiny model, 20 steps
  python launch.py --exp=cgan --sweep                          # conditioning x loss x seed
  python launch.py --mode=sample --workdir=DIR --labels=3 --num_samples=16     # sixteen 3s
  python launch.py --mode=sample --workdir=DIR --labels=balanced               # 0..9 in turn; .npz has 'labels'
Options after the colon combine with commas: one of projection (default), acgan, concat (D's
conditioning; G gets the label embedding concatenated to z in all three); one of mnist (default),
fashion_mnist, cifar10; hinge; smoke.

Evaluation (MNIST / Fashion-MNIST, 10k samples with uniform labels, every 2000 steps in
eval.jsonl): class_accuracy (the project's domain classifier's accuracy on generated samples
against their requested labels: 0.1 for a G that ignores its label), intra_fd (classifier FD per
class against that class's test images, averaged over the classes), classifier FD and score.
Sample grids put one class per row, the same latent down each column.

Expected result: on MNIST the AC-GAN variant reaches class accuracy >= 0.95 within 2500 steps of
batch 64 with half-width models and the projection variant ~0.9 (0.98 by 5000), both with a
classifier FD well below the unconditional vanilla GAN's on the same budget; intra-class FD is
larger than the overall FD (each class's statistics come from ~1000 samples, and within-class
variety is what a conditional G can still drop).

Measured on MNIST (2-core CPU shared with other jobs, jax 0.10.2, flax 0.12.8; 2500 steps of batch
64, g/d channels 32, ~6-7 min each; evaluation on 10k samples against the 10k test images):
  COMMON="--config.model.g_channels=32 --config.model.d_channels=32 --config.train.steps=2500"
  python launch.py --exp=cgan:acgan $COMMON --workdir=runs/acgan
  python launch.py --exp=cgan:projection $COMMON --workdir=runs/projection
  python launch.py --exp=vanilla $COMMON --workdir=runs/vanilla
  python launch.py --mode=eval --workdir=runs/acgan     # class_accuracy, intra_fd, classifier_fd/score
  python launch.py --mode=eval --workdir=runs/vanilla --config.eval.metrics=classifier_fd,classifier_score

  variant                                              class acc  intra FD  classifier FD  score
  vanilla (unconditional)                                      -         -          168.3   5.26
  acgan: concat G, D's class loss on real data only        0.956     168.2           76.0   9.02
  acgan, D's class loss also on fakes (acgan.d_fake=true) 0.603     424.1          144.2   6.35
  projection: concat G, BatchNorm D                        0.884     109.8           48.9   8.95
  projection, resumed to 5000 steps (--config.train.steps=5000)
                                                           0.981      60.9           26.8   9.61
  vanilla, 5000 steps (quiet machine, 101 s with evaluations)  -         -          123.2   6.02
  projection, CBN G (model.g_cond=cbn)                     0.161     659.2          173.2   4.97
  projection, CBN G, spectral-norm D, hinge                0.227     591.5          283.4   4.02
Fashion-MNIST with the same $COMMON (the project's Fashion-MNIST classifier), mean +- std over
seeds S = 0, 1, 2 at 2500 steps (~1 min each on the quiet 2-core machine), then seed 0 resumed
to 5000 steps (--config.train.steps=5000 on the same workdir):
  python launch.py --exp=cgan:acgan,fashion_mnist $COMMON --config.train.seed=S --workdir=runs/f_acgan_S
  python launch.py --exp=cgan:projection,fashion_mnist $COMMON --config.train.seed=S --workdir=runs/f_projection_S
  python launch.py --exp=vanilla:fashion_mnist $COMMON --config.train.seed=S --workdir=runs/f_vanilla_S

  variant                                class acc      intra FD       classifier FD   score
  vanilla (unconditional)                        -              -      84.2 +- 6.8   4.37 +- 0.11
  acgan (D's class loss on real data)    0.902 +- 0.015  83.1 +- 4.9   39.4 +- 4.4   7.20 +- 0.13
  projection                             0.769 +- 0.011  60.8 +- 0.3   29.5 +- 2.5   6.71 +- 0.22
  vanilla, seed 0 at 5000 steps                  -              -             58.0   5.05
  projection, seed 0 at 5000 steps               0.864           36.7          16.3   7.35
As on MNIST, conditioning on the class lowers the classifier FD by half or more on the same budget,
AC-GAN's D makes G's samples easiest to classify and the projection D gives the best FDs; class
accuracy has a lower ceiling than on MNIST: the Fashion-MNIST classifier scores 0.918 on real test
images (MNIST's: 0.992).

With conditional batch norm in G (zero-initialised per-class scales and offsets) G ignored the
label on this budget: its samples are the same down each column of the class-by-row grid; with
the label embedding concatenated to z, each row is its digit. The D of acgan.d_fake=true learns to
assign G's malformed digits to their requested class, so G keeps them (0.60 against 0.96).
"""
from gan_jax import config as config_lib
from gan_jax import experiments

CONDITIONING = ('projection', 'acgan', 'concat')  # The options that choose model.d_cond.
OPTIONS = experiments.IMAGE_SETS + CONDITIONING + ('hinge', 'smoke')


def get_config(arg: str | None = None):
  options = experiments.parse_options('cgan', arg, OPTIONS, exclusive=(experiments.IMAGE_SETS, CONDITIONING))
  c = config_lib.base()
  c.loss = 'hinge' if 'hinge' in options else 'non_saturating'
  c.model.g_cond = 'concat'
  c.model.d_cond = experiments.chosen(options, CONDITIONING, 'projection')
  # D's class loss on real data only: trained on fakes too (Odena et al.), D's classifier learns to
  # label G's mistakes with their requested class, and G keeps them (see the measurements above).
  c.acgan.d_fake = False
  c.data.name = experiments.chosen(options, experiments.IMAGE_SETS, c.data.name)
  if c.data.name in ('mnist', 'fashion_mnist'):  # The project's domain classifiers exist for these.
    c.eval.metrics = ('class_accuracy', 'intra_fd', 'classifier_fd', 'classifier_score')
    c.eval.eval_every = 2000
  if 'smoke' in options:
    config_lib.shrink_to_smoke(c)
  return c


def get_sweep():
  """D's conditioning (projection, AC-GAN, label maps) x loss (non-saturating, hinge) x 3 seeds."""
  return {'product': {'model.d_cond': list(CONDITIONING), 'loss': ['non_saturating', 'hinge'],
                      'train.seed': [0, 1, 2]}}
