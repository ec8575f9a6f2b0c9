"""CycleGAN (Zhu et al. 2017): unpaired translation, edges <-> digits and MNIST <-> Fashion-MNIST.

Two generators (G_AB, G_BA: the U-Net of gan_jax.models.translation) and two PatchGAN
discriminators (D_A, D_B), the least-squares adversarial loss, the cycle-consistency L1 (weight 10)
and the identity L1 (weight 5 = 0.5 x 10), as in the paper; Adam 2e-4 / 0.5. Examples hold one
domain-A and one domain-B image as channels (gan_jax.data.unpaired):
  cycle_edges    A = edge maps, B = digits; trained on disjoint halves of the training split (no
                 edge map is ever seen with its digit), tested on the true test pairs.
  cycle_fashion  A = MNIST digits, B = Fashion-MNIST garments, no correspondence.
Left out of the paper's recipe: the pool of 50 past fakes D also trains on, and the linear
learning-rate decay over the second half (optim.decay=linear approximates the latter).

Launch:
  python launch.py --exp=cyclegan                       # edges <-> digits (MNIST)
  python launch.py --exp=cyclegan:fashion               # MNIST <-> Fashion-MNIST
  python launch.py --exp=cyclegan --sweep --runner=sequential    # 3 seeds
  python launch.py --exp=cyclegan:smoke

Evaluation (every 500 steps; the 'cycle' metric on the first 10,000 test examples): cycle L1 in
both directions, classifier FD of the translations into each domain (that domain's classifier:
for edges, the MNIST classifier's features of edge maps against real test edge maps), and for
edges <-> digits PSNR in both directions and label preservation of edges -> digits (accuracy_ab).
Sample grids: a | G_AB(a) | b | G_BA(b).

Measured (edges <-> digits, `--sweep --runner=sequential`; seeds 0-2, 1000 iterations of batch 64,
2-core CPU, ~8.5 min of training per run; mean ± std; docs/results/image_to_image.md):
  label preservation edges -> digits 0.960 ± 0.004 (the edge maps themselves: 0.923); PSNR 20.79 ±
  0.20 (edges -> digits) and 17.22 ± 0.40 (digits -> edges); classifier FD 6.2 ± 1.4 (into digits)
  and 10.3 ± 0.4 (into edge maps); cycle L1 0.0059 (a) and 0.031 (b) in the [-1, 1] range.
Target (issue #20) label preservation >= 0.9 for edges -> digits on unpaired training: met.
MNIST <-> Fashion-MNIST (:fashion, same budget, 3 seeds): classifier FD 244 ± 22 into garments and
801 ± 58 into digits (copying the input: 308 and 573), cycle L1 0.062 and 0.19: at this budget both
generators stay near the identity (no correspondence to learn; see the results page).
"""
from gan_jax import experiments

TASKS = ('edges', 'fashion')
OPTIONS = TASKS + ('smoke',)


def get_config(arg: str | None = None):
  options = experiments.parse_options('cyclegan', arg, OPTIONS, exclusive=(TASKS,))
  c = experiments.translation_config('cycle_' + experiments.chosen(options, TASKS, 'edges'), 'mnist',
                                     'smoke' in options)
  c.loss = 'least_squares'
  c.translate.update(dict(l1=0.0, cycle=10.0, identity=5.0))
  c.eval.metrics = () if 'smoke' in options else ('cycle',)
  return c


def get_sweep():
  """3 seeds of the shipped recipe."""
  return experiments.translation_sweep([{}])
