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

Measured results: docs/results/cgan.md (seeds, budgets, wall times, machine and commands).
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
  # label G's mistakes with their requested class, and G keeps them (docs/results/cgan.md).
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
