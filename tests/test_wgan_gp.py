"""The WGAN-GP experiment: the critic's distance estimate, an end-to-end MNIST run, and mode
coverage on the 2D ring against the standard GAN."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import config_checks
from gan_jax import experiments
from gan_jax import losses
from gan_jax import models
from gan_jax import penalties
from gan_jax import sweep
from gan_jax.errors import UserError
from gan_jax.metrics import modes
from gan_jax.train import loop
from gan_jax.train import run as run_lib
from gan_jax.train import program as program_lib
from tests import bench_scripts


def _config(exp, **overrides):
  items = [('log.wandb', 'disabled')] + [(k.replace('__', '.'), str(v)) for k, v in overrides.items()]
  return experiments.load_config(exp, items)


def test_options_and_sweep():
  c = _config('wgan_gp')
  assert (c.loss, c.penalty.gp, c.train.d_steps, c.model.d_norm) == ('wasserstein', 10.0, 5, 'none')
  assert (c.optim.d.lr, c.optim.d.b1, c.optim.d.b2) == (1e-4, 0.0, 0.9) == (c.optim.g.lr, c.optim.g.b1, c.optim.g.b2)
  clip = _config('wgan_gp:fashion_mnist,clip')
  assert (clip.data.name, clip.penalty.gp, clip.penalty.clip, clip.optim.d.lr) == ('fashion_mnist', 0.0, 0.01, 5e-5)
  assert _config('wgan_gp:ring,clip').model.d_norm == 'none'  # The MLP critic has no BatchNorm.
  config_checks.validate(clip)
  with pytest.raises(UserError, match='unknown option'):
    _config('wgan_gp:nope')
  module = experiments.load_module('wgan_gp')
  members = sweep.make_members(module.get_sweep(), c)
  assert len(members) == 27
  assert {(m.values['penalty.gp'], m.values['train.d_steps']) for m in members} == {
      (gp, k) for gp in (1.0, 10.0, 100.0) for k in (1, 5, 10)}
  assert all(m.values['optim.g.lr'] == m.values['optim.d.lr'] for m in members)


@pytest.mark.slow
def test_wasserstein_critic_estimates_the_distance_between_shifted_gaussians():
  """W1(N(0,1), N(m,1)) = m, reached by the 1-Lipschitz critic D(x) = x.

  With the soft penalty lambda (|D'| - 1)^2 the optimal critic is linear with slope s maximizing
  s m - lambda (s - 1)^2, i.e. s = 1 + m / (2 lambda): the estimate is m (1 + m / (2 lambda)).
  """
  m, lam = 3.0, 10.0
  critic = models.mlp.Discriminator(hidden=32, layers=2, norm='none')
  params = critic.init(jax.random.key(0), jnp.zeros((1, 1)))['params']
  opt = optax.adam(1e-3, b1=0.5, b2=0.9)

  def loss_fn(params, rng):
    r_rng, f_rng, gp_rng = jax.random.split(rng, 3)
    real = m + jax.random.normal(r_rng, (256, 1))
    fake = jax.random.normal(f_rng, (256, 1))
    f = lambda x: critic.apply({'params': params}, x)
    return losses.wasserstein_d(f(real), f(fake)) + lam * penalties.gradient_penalty(f, real, fake, gp_rng)

  @jax.jit
  def train(params, opt_state, rng):
    def body(carry, rng):
      params, opt_state = carry
      grads = jax.grad(loss_fn)(params, rng)
      updates, opt_state = opt.update(grads, opt_state)
      return (optax.apply_updates(params, updates), opt_state), None
    return jax.lax.scan(body, (params, opt_state), jax.random.split(rng, 3000))[0]

  params, _ = train(params, opt.init(params), jax.random.key(1))
  real = m + jax.random.normal(jax.random.key(9), (20000, 1))
  fake = jax.random.normal(jax.random.key(10), (20000, 1))
  f = lambda x: critic.apply({'params': params}, x)
  estimate = float(jnp.mean(f(real)) - jnp.mean(f(fake)))
  np.testing.assert_allclose(estimate, m * (1 + m / (2 * lam)), rtol=0.03)


@pytest.mark.slow
def test_smoke_trains_on_mnist_and_writes_metrics(tmp_path, data_dir):
  result = loop.train_and_evaluate(_config('wgan_gp:smoke'), tmp_path)
  assert result['status'] == 'finished' and result['step'] == 20 and result['restarts'] == 0
  records = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records] == [5, 10, 15, 20]
  for r in records:
    assert {'d_loss', 'g_loss', 'gp', 'd_penalty', 'd_real', 'd_fake'} <= set(r)
    assert all(np.isfinite(v) for v in r.values())
    np.testing.assert_allclose(r['d_penalty'], 10.0 * r['gp'], rtol=1e-4)
  # The critic learned to separate real from fake: its Wasserstein estimate -d_loss is positive.
  assert records[-1]['d_real'] - records[-1]['d_fake'] > 0.1, records[-1]
  assert records[-1]['d_loss'] < records[0]['d_loss'], records


RING_SEEDS = (0, 1, 2)
RING_ITERATIONS = 900


def _ring_modes(config) -> list[dict]:
  """mixture_modes of 2,500 samples of each seed's G after RING_ITERATIONS iterations."""
  run = run_lib.build_run(config)
  phase = run.phases[0]
  iterate = program_lib.Program(run, phase, program_lib.Layout(1), on_device=True)
  found = []
  for seed in RING_SEEDS:
    init_key, sample_key, train_key = jax.random.split(jax.random.key(seed), 3)
    state = run.init_state(init_key)
    sums = iterate.zero_sums()
    for _ in range(RING_ITERATIONS):
      state, sums = iterate(state, sums, {}, phase.fade, train_key)
    samples = np.asarray(run.generate(state, jax.random.normal(sample_key, (2500, config.model.z_dim))))
    found.append(modes.mixture_modes(samples, run.source.mixture))
  return found


@pytest.mark.slow
def test_wgan_gp_covers_more_ring_modes_than_the_standard_gan():
  """Same MLPs, optimizer, batch, 5 D steps per G step, iterations and seeds; only the loss differs.

  The baseline is the minimax game with the non-saturating G loss (the GAN as trained in
  practice): it collapses onto a few sharp modes. The saturating minimax G loss does not learn
  at all with 5 D steps (no high-quality samples), which would make the comparison empty.
  """
  wgan = _ring_modes(_config('wgan_gp:ring'))
  gan = _ring_modes(_config('wgan_gp:ring', loss='non_saturating', penalty__gp=0.0))
  wgan_modes, gan_modes = [r['modes'] for r in wgan], [r['modes'] for r in gan]
  summary = {'wgan_gp': [(r['modes'], r['high_quality']) for r in wgan],
             'gan': [(r['modes'], r['high_quality']) for r in gan]}
  print(summary)
  assert all(w > g for w, g in zip(wgan_modes, gan_modes)), summary
  assert min(wgan_modes) >= 7, summary
  # Not an empty comparison: the GAN did learn, putting samples on the modes it covers.
  assert all(r['modes'] >= 1 and r['high_quality'] > 0.01 for r in gan), summary


def test_critic_estimate_table_pairs_each_evaluation_with_the_estimate_before_it(tmp_path):
  table = bench_scripts.load('critic_estimate')

  def write(name, loss, gp, clip, d_steps, estimates, fds):
    run = tmp_path / name
    run.mkdir()
    c = _config('wgan_gp', loss=loss, penalty__gp=gp, penalty__clip=clip, train__d_steps=d_steps)
    (run / 'config.json').write_text(c.to_json())
    (run / 'status.json').write_text(json.dumps({'status': 'finished', 'step': 400}))
    # The estimate is d_real - d_fake; d_fake = 1 throughout, so d_real = estimate + 1.
    logged = [{'step': 50 * (i + 1), 'd_real': w + 1.0, 'd_fake': 1.0, 'd_loss': 0.0} for i, w in enumerate(estimates)]
    (run / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in logged))
    (run / 'eval.jsonl').write_text(''.join(json.dumps({'step': 100 * (i + 1), 'classifier_fd': fd}) + '\n'
                                            for i, fd in enumerate(fds)))

  # Estimates logged every 50 iterations, FD every 100: with window 100 the evaluation at step s
  # averages the logs at s - 50 and s.
  write('falls', 'wasserstein', 10.0, 0.0, 5, [9, 7, 6, 4, 3, 3, 2, 0], [300, 200, 150, 100])
  write('rises', 'wasserstein', 0.0, 0.01, 1, [1, 1, 2, 2, 4, 4, 5, 5], [300, 200, 150, 100])
  write('one_swap', 'wasserstein', 10.0, 0.0, 4, [9, 7, 6, 4, 3, 3, 2, 0], [300, 150, 200, 100])  # rho 0.8.
  write('other_loss', 'non_saturating', 0.0, 0.0, 1, [1] * 8, [300, 200, 150, 100])
  rows = table.collect([str(tmp_path)], window=100)
  assert [(r['penalty'], r['critic_steps']) for r in rows] == [
      ('gradient penalty', 5), ('gradient penalty', 4), ('weight clipping', 1)]
  falls, one_swap, rises = rows
  assert [p[:2] for p in falls['points']] == [(100, 8.0), (200, 5.0), (300, 3.0), (400, 1.0)]
  assert [p[2] for p in falls['points']] == [300, 200, 150, 100]
  assert falls['rho'] == pytest.approx(1.0) and rises['rho'] == pytest.approx(-1.0)
  assert one_swap['rho'] == pytest.approx(0.8)  # Counted as agreeing, however it rounds.
  # A tie between two estimates: Spearman's average ranks.
  assert table.rank_correlation([(1, 2.0, 10.0), (2, 2.0, 20.0), (3, 1.0, 5.0)]) == pytest.approx(0.866, abs=1e-3)
  summary = table.summary_table(rows)
  assert '| mnist | gradient penalty | 2-5 critic steps | 2 | 2 of 2 | 0.90 |' in summary
  assert '| mnist | weight clipping | 1 critic step | 1 | 0 of 1 | -1.00 |' in summary
  page = tmp_path / 'page.md'
  page.write_text('intro\n<!-- critic begin -->\nold\n<!-- critic end -->\nrest\n')
  text = table.main(['--sweeps', str(tmp_path), '--window', '100', '--page', str(page), '--section', 'critic',
                     '--figure', str(tmp_path / 'critic.png')])
  assert page.read_text() == f'intro\n<!-- critic begin -->\n{text.strip()}\n<!-- critic end -->\nrest\n'
  assert '| 8 / 5 / 3 / 1 | 300 / 200 / 150 / 100 | 1.00 |' in text
  assert (tmp_path / 'critic.png').stat().st_size > 10_000
