"""The unrolled G update (Metz et al. 2017) against a hand-derived unrolled gradient, k = 0 as the
ordinary step, the rolled and unrolled loops, and the unrolled experiment end to end.

The quadratic game: D(x) = d x on scalar points, G(z) = g for every z, least-squares losses.
On a real batch r with moments m1 = mean(r), m2 = mean(r^2), D's loss and its derivative are

  L_D(d) = 1/2 mean((d r - 1)^2) + 1/2 (d g)^2,      dL_D/dd = d (m2 + g^2) - m1,

so an SGD step of rate eta is affine in d: d' = a d + eta m1 with a = 1 - eta (m2 + g^2). After k
steps from d0:

  d_k = a^k d0 + eta m1 sum_{j<k} a^j,
  dd_k/dg = -2 eta g (k a^(k-1) d0 + eta m1 sum_{1<=j<k} j a^(j-1))      (through a),

and G's loss L_G = 1/2 (d_k g - 1)^2 has the unrolled gradient (d_k g - 1)(d_k + g dd_k/dg), or,
with gradients stopped at d_k, (d_k g - 1) d_k. G's surrogate of the paper (g_loss='value'),
f = -L_D(d_k, g), keeps the real term, which depends on g through d_k:

  df/dg = -[(d_k (m2 + g^2) - m1) dd_k/dg + d_k^2 g],      stopped at d_k: -d_k^2 g.
"""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax import losses
from gan_jax import sweep
from gan_jax.errors import UserError
from gan_jax.train import loop
from gan_jax.train import run as run_lib
from gan_jax.train import state as state_lib
from gan_jax.train import steps
from tests import bench_scripts

D0, G0 = 0.7, 0.4      # D's slope and G's point before the step.
ETA_D, ETA_G = 0.3, 0.1  # SGD rates of D (the real and the unrolled updates) and G.
REAL = np.array([0.9, 1.3, 0.6, 1.1, 1.6, 0.8])


class LinearD(nn.Module):
  """x [B, 1] -> logits d * x [B]."""

  @nn.compact
  def __call__(self, x, train=True):
    del train
    return self.param('d', lambda _: jnp.asarray(D0, jnp.float64)) * x[:, 0]


class PointG(nn.Module):
  """z [B, z_dim] -> the point g for every example, [B, 1]."""

  @nn.compact
  def __call__(self, z, train=True):
    del train
    return jnp.broadcast_to(self.param('g', lambda _: jnp.asarray(G0, jnp.float64)), (z.shape[0], 1))


def _hand_g_gradient(d0: float, g: float, k: int, stop_gradient: bool, g_loss: str = '') -> float:
  m1, m2 = REAL.mean(), np.mean(REAL ** 2)
  a = 1 - ETA_D * (m2 + g ** 2)
  d_k = a ** k * d0 + ETA_D * m1 * sum(a ** j for j in range(k))
  dd_dg = 0.0 if stop_gradient else -2 * ETA_D * g * (
      k * a ** (k - 1) * d0 + ETA_D * m1 * sum(j * a ** (j - 1) for j in range(1, k)))
  if g_loss == 'value':
    return -((d_k * (m2 + g ** 2) - m1) * dd_dg + d_k ** 2 * g)
  return (d_k * g - 1) * (d_k + g * dd_dg)


def _quadratic_step(k: int, stop_gradient: bool = False, rolled: bool = True, g_loss: str = ''):
  """One train step of the quadratic game from (D0, G0); returns (new state, d after D's own update)."""
  g_opt, d_opt = optax.sgd(ETA_G), optax.sgd(ETA_D)
  options = steps.StepOptions(z_dim=2, unroll_steps=k, unroll_stop_gradient=stop_gradient, unroll_rolled=rolled,
                              g_loss=g_loss)
  step = jax.jit(steps.make_train_step(PointG(), LinearD(), g_opt, d_opt, losses.get('least_squares'), options))
  state = state_lib.init(PointG(), LinearD(), g_opt, d_opt, 2, (1,), jax.random.key(0), ema=False)
  batch = {'image': jnp.asarray(REAL, jnp.float64)[None, :, None]}  # [d_steps=1, B, 1]
  new, _ = step(state, batch, jax.random.key(1))
  # D's own update comes first and uses the same real batch: its slope is d0 of the unroll.
  d0 = D0 - ETA_D * (D0 * (np.mean(REAL ** 2) + G0 ** 2) - REAL.mean())
  return new, d0


@pytest.mark.parametrize('k', [0, 1, 4])
@pytest.mark.parametrize('stop_gradient', [False, True])
@pytest.mark.parametrize('g_loss', ['', 'value'])
def test_unrolled_gradient_of_the_quadratic_game_matches_the_hand_derivation(k, stop_gradient, g_loss):
  with jax.enable_x64(True):
    new, d0 = _quadratic_step(k, stop_gradient, g_loss=g_loss)
    np.testing.assert_allclose(float(new.d.params['d']), d0, rtol=1e-12)  # D's real update is unchanged.
    g_gradient = (G0 - float(new.g.params['g'])) / ETA_G
    expected = _hand_g_gradient(d0, G0, k, stop_gradient, g_loss)
    np.testing.assert_allclose(g_gradient, expected, rtol=1e-10)
    if k >= 1 and not stop_gradient:  # Differentiating through the unroll matters here.
      assert abs(expected - _hand_g_gradient(d0, G0, k, True, g_loss)) > 1e-3
    if g_loss == 'value' and k >= 1 and not stop_gradient:  # So does the real term of the surrogate.
      m1, m2 = REAL.mean(), np.mean(REAL ** 2)
      a = 1 - ETA_D * (m2 + G0 ** 2)
      d_k = a ** k * d0 + ETA_D * m1 * sum(a ** j for j in range(k))
      fake_term_only = -(d_k * G0 ** 2 * (-2 * ETA_D * G0 * (k * a ** (k - 1) * d0 + ETA_D * m1 * sum(
          j * a ** (j - 1) for j in range(1, k)))) + d_k ** 2 * G0)
      assert abs(expected - fake_term_only) > 1e-3


def test_rolled_and_unrolled_loops_agree():
  with jax.enable_x64(True):
    rolled, _ = _quadratic_step(4, rolled=True)
    unrolled, _ = _quadratic_step(4, rolled=False)
    np.testing.assert_allclose(float(rolled.g.params['g']), float(unrolled.g.params['g']), rtol=1e-13)


@pytest.mark.slow
def test_zero_unroll_steps_is_the_ordinary_step_bit_for_bit():
  """k = 0 with every other unroll option set compiles to the ordinary step (an MLP game, Adam)."""
  config = experiments.load_config('unrolled:ring,smoke', [('log.wandb', 'disabled')])
  run = run_lib.build_run(config)
  state = run.init_state(jax.random.key(0))
  batch = {'image': jax.random.normal(jax.random.key(1), (1, 16, 2))}
  g_model, d_model = run.models()
  ordinary = steps.make_train_step(g_model, d_model, run.g_opt, run.d_opt, losses.get(config.loss),
                                   steps.StepOptions(z_dim=config.model.z_dim))
  zero = steps.make_train_step(g_model, d_model, run.g_opt, run.d_opt, losses.get(config.loss),
                               steps.StepOptions(z_dim=config.model.z_dim, unroll_steps=0, unroll_stop_gradient=True,
                                                 unroll_rolled=False))
  expected = jax.jit(ordinary)(state, batch, jax.random.key(2))
  actual = jax.jit(zero)(state, batch, jax.random.key(2))
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), expected, actual)


@pytest.mark.slow
def test_unrolled_adam_stays_finite_with_dead_units():
  """A D unit whose gradient has always been 0 leaves Adam's nu at 0, where d sqrt(nu) is infinite:
  the unrolled G gradient must stay finite (gan_jax.optimizers.ADAM_EPS_ROOT)."""
  config = experiments.load_config('unrolled:ring,smoke', [('log.wandb', 'disabled')])
  run = run_lib.build_run(config)
  state = run.init_state(jax.random.key(0))
  d_params = state.d.params
  dead = {**d_params, 'Dense_0': {**d_params['Dense_0'],
                                  'bias': d_params['Dense_0']['bias'].at[:4].set(-100.0)}}  # 4 dead ReLUs.
  state = state.replace(d=state.d.replace(params=dead))
  batch = {'image': jax.random.normal(jax.random.key(1), (1, 16, 2))}
  step = jax.jit(run.train_step)
  ordinary = jax.jit(steps.make_train_step(*run.models(), run.g_opt, run.d_opt, losses.get(config.loss),
                                           steps.StepOptions(z_dim=config.model.z_dim)))
  for i in range(3):
    new, metrics = step(state, batch, jax.random.key(i))
    plain, _ = ordinary(state, batch, jax.random.key(i))
    state = new
  assert np.isfinite(float(metrics['g_grad_norm'])) and float(metrics['g_grad_norm']) > 0
  # D's real update is the ordinary one; G's gradient (Adam's first moment) is not.
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), new.d, plain.d)
  first_moment = lambda state: optax.tree_utils.tree_get(state.g.opt_state, 'mu')['Dense_0']['kernel']
  assert not np.allclose(first_moment(new), first_moment(plain), rtol=1e-3)


def test_options_and_sweeps():
  ring = experiments.load_config('unrolled:ring')
  grid = experiments.load_config('unrolled:grid')
  assert (ring.data.name, grid.data.name, ring.model.name, ring.unroll.steps) == ('ring', 'grid', 'mlp', 5)
  assert ring.eval.metrics == ('modes',) and ring.eval.mixture_samples == 2500
  assert (ring.optim.decay, grid.optim.decay, ring.train.steps, grid.train.steps) == ('cosine', 'cosine', 60_000, 60_000)
  assert ring.g_loss == 'value' and ring.train.d_steps == 1  # Metz et al.'s surrogate G objective.
  # The grid's sharpest measured setting: non-saturating, k = 1, two D steps (the `small` one: the paper's).
  assert (grid.g_loss, grid.unroll.steps, grid.train.d_steps) == ('', 1, 2)
  small_grid = experiments.load_config('unrolled:grid,small')
  assert (small_grid.g_loss, small_grid.unroll.steps, small_grid.train.d_steps) == ('value', 5, 1)
  m = ring.model  # Metz et al.'s 2D networks; `small` the earlier width-64 ones for both players.
  assert (m.hidden, m.layers, m.d_hidden, m.d_layers, m.d_input_scale, m.z_dim) == (128, 2, 128, 1, 0.25, 256)
  small = experiments.load_config('unrolled:ring,small').model
  assert (small.hidden, small.layers, small.d_hidden, small.d_layers, small.d_input_scale) == (64, 2, 0, 0, 1.0)
  quarter = experiments.load_config('unrolled:stacked_mnist')
  half = experiments.load_config('unrolled:stacked_mnist,d_half')
  assert (quarter.model.g_channels, quarter.model.d_channels, half.model.d_channels) == (64, 16, 32)
  assert quarter.eval.metrics == ('stacked_modes',)
  for bad in ('unrolled:nope', 'unrolled:ring,grid', 'unrolled:ring,d_half', 'unrolled:stacked_mnist,small'):
    with pytest.raises(UserError, match='unrolled'):
      experiments.load_config(bad)
  module = experiments.load_module('unrolled')
  members = sweep.make_members(module.get_sweep(), ring)
  assert len(members) == 40
  assert {(m.values['unroll.steps'], m.values['train.seed']) for m in members} == {
      (k, s) for k in (0, 1, 5, 10) for s in range(10)}
  compare = sweep.make_members(module.get_sweep('ring,compare'), ring)
  assert len(compare) == 50
  methods = {(m.values.get('loss', 'non_saturating'), m.values['g_loss'], m.values['unroll.steps'],
              m.values['train.d_steps']) for m in compare}
  assert methods == {('non_saturating', '', 0, 1), ('non_saturating', '', 5, 1), ('non_saturating', '', 10, 1),
                     ('non_saturating', 'value', 5, 1), ('wasserstein', '', 0, 5)}
  # On the grid too the compared methods keep one D step, whatever the grid's own setting.
  grid_compare = sweep.make_members(module.get_sweep('grid,compare'), grid)
  assert {m.values['train.d_steps'] for m in grid_compare if m.values.get('loss') != 'wasserstein'} == {1}


@pytest.mark.slow
def test_smoke_run_evaluates_modes_and_draws_the_mode_figure(tmp_path):
  config = experiments.load_config('unrolled:ring,smoke', [
      ('log.wandb', 'disabled'), ('eval.metrics', 'modes'), ('eval.eval_every', '10'), ('eval.batch_size', '500')])
  result = loop.train_and_evaluate(config, tmp_path)
  assert result['status'] == 'finished' and result['step'] == 20
  records = [json.loads(line) for line in (tmp_path / 'eval.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records] == [10, 20]
  for r in records:
    assert 0 <= r['modes'] <= 8 and 0 <= r['high_quality'] <= 1 and r['reverse_kl'] >= 0
  for step in (10, 20):
    assert (tmp_path / 'figures' / f'modes_{step}.png').stat().st_size > 10_000


def test_mode_collapse_table_reports_the_last_evaluation_as_mean_and_standard_error(tmp_path):
  table = bench_scripts.load('mode_collapse_table')
  ring = experiments.load_config('unrolled:ring')
  final = {'GAN': [(1, 0.99, 2.0), (2, 0.95, 1.5), (4, 0.90, 0.9)], 'Unrolled k=5': [(8, 0.5, 0.1), (7, 0.7, 0.2)]}
  for method, runs in final.items():
    for seed, (modes, hq, kl) in enumerate(runs):
      run = tmp_path / f'{method}-{seed}'
      run.mkdir()
      ring.unroll.steps = 0 if method == 'GAN' else 5
      ring.g_loss = ''  # The non-saturating G loss.
      ring.train.seed = seed
      (run / 'config.json').write_text(ring.to_json())
      (run / 'status.json').write_text(json.dumps({'status': 'finished', 'step': 2000}))
      records = [{'step': 1000, 'modes': 0, 'high_quality': 0.0, 'reverse_kl': 9.0},
                 {'step': 2000, 'modes': modes, 'high_quality': hq, 'reverse_kl': kl}]
      (run / 'eval.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
      trained = [{'step': 1000, 'd_loss': 1.0, 'train_seconds': 50.0 + seed},  # The last row counts.
                 {'step': 2000, 'd_loss': 1.0, 'train_seconds': 100.0 + 30 * seed}]
      (run / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in trained))
  running = tmp_path / 'GAN-running'  # Not ended: counted, its values not used.
  running.mkdir()
  (running / 'config.json').write_text((tmp_path / 'GAN-0' / 'config.json').read_text())
  (running / 'status.json').write_text(json.dumps({'status': 'running', 'step': 1000}))
  (running / 'eval.jsonl').write_text(json.dumps({'step': 1000, 'modes': 0, 'high_quality': 0.0, 'reverse_kl': 9.0}))
  (running / 'metrics.jsonl').write_text(json.dumps({'step': 1000, 'train_seconds': 5000.0}))
  started = tmp_path / 'k10-running'  # A method with no run ended yet: a row of dashes.
  started.mkdir()
  ring.unroll.steps = 10
  (started / 'config.json').write_text(ring.to_json())
  (started / 'status.json').write_text(json.dumps({'status': 'running', 'step': 1000}))
  collected = table.collect(str(tmp_path))
  assert collected['GAN']['modes'] == [1, 2, 4] and collected['Unrolled k=5']['runs'] == 2
  assert collected['GAN']['runs'] == 4 and collected['GAN']['finished'] == 3
  rows = {line.split(' | ')[0][2:]: line.split(' | ') for line in table.table_2d(collected, {}).splitlines()}
  se = np.std([1, 2, 4], ddof=1) / np.sqrt(3)
  assert rows['GAN'][1] == f'{7 / 3:.1f} ± {se:.1f}'
  assert rows['GAN'][2] == f'{100 * (0.99 + 0.95 + 0.90) / 3:.1f} ± {100 * np.std([0.99, 0.95, 0.9], ddof=1) / np.sqrt(3):.1f}'
  assert rows['Unrolled k=5'][1] == '7.5 ± 0.5'
  assert rows['GAN'][7] == '0 of 3 / -' and rows['Unrolled k=5'][7] == '1 of 2 / -'  # Runs with all 8 modes.
  assert rows['GAN'][-1] == '130 / - |' and rows['Unrolled k=5'][-1] == '115 / - |'  # Each run's training s, mean.
  assert rows['Unrolled k=10'][1:] == ['-'] * 6 + ['- / -', '0/1 / 0/0', '-', '- / - |']
  series = table.curves(str(tmp_path))
  assert series['GAN']['modes'] == {1000: [0.0, 0.0, 0.0], 2000: [1.0, 2.0, 4.0]}
  table.plot_curves({'ring': str(tmp_path), 'grid': str(tmp_path), 'stacked': str(tmp_path)}, str(tmp_path / 'curves.png'))
  assert (tmp_path / 'curves.png').stat().st_size > 10_000
  stacked = {line.split(' | ')[0][2:]: line.split(' | ') for line in table.table_stacked(collected).splitlines()}
  assert stacked['GAN'][4:7] == ['2000', '1,024,000', '130 |']  # Iterations, images (x batch 512), training s.
  assert stacked['Unrolled k=10'][4:7] == ['-', '-', '- |']
  assert '*published:* Unrolled GAN (VEEGAN Table 1)' in rows
  page = tmp_path / 'unrolled.md'
  page.write_text('intro\n<!-- table begin -->\nold\n<!-- table end -->\nrest\n')
  text = table.main(['--ring', str(tmp_path), '--grid', str(tmp_path), '--page', str(page), '--section', 'table'])
  assert page.read_text() == f'intro\n<!-- table begin -->\n{text.strip()}\n<!-- table end -->\nrest\n'
  # Each data set can have its own section: Stacked MNIST alone, or the 2D table alone.
  alone = table.main(['--stacked', str(tmp_path)])
  assert alone.startswith('Stacked MNIST') and '2D mixtures' not in alone
  assert 'Stacked MNIST' not in table.main(['--ring', str(tmp_path)])
  with pytest.raises(SystemExit):
    table.main([])


def test_seed_outcomes_counts_covering_runs_per_set_and_tests_the_difference(tmp_path, capsys, monkeypatch):
  outcomes = bench_scripts.load('seed_outcomes')
  ring = experiments.load_config('unrolled:ring')

  def write(folder, seed, modes, hq, status='finished', **changes):
    run = tmp_path / folder / f'seed={seed}'
    run.mkdir(parents=True)
    config = config_lib.ConfigDict(ring.to_dict())
    config.train.seed, config.log.name = seed, f'seed={seed}'
    for key, value in changes.items():
      config[key] = value
    (run / 'config.json').write_text(config.to_json())
    (run / 'status.json').write_text(json.dumps({'status': status, 'step': 60000}))
    (run / 'eval.jsonl').write_text(json.dumps({'step': 5000, 'modes': 1, 'high_quality': 0.0}) + '\n' +
                                    json.dumps({'step': 60000, 'modes': modes, 'high_quality': hq}) + '\n' +
                                    '{"step": 65000, "mo')  # A line cut short by a kill: skipped.

  for seed, modes in enumerate([8, 1, 8, 0]):
    write('alone', seed, modes, 0.9 if modes == 8 else 0.01)
  write('alone', 9, 8, 0.9, status='running')  # Not ended: left out.
  for seed in range(4):
    write('lanes', seed, 8, 0.93)
  monkeypatch.setattr('sys.argv', ['seed_outcomes', f'--runs=alone={tmp_path / "alone"}', f'--runs=lanes={tmp_path / "lanes"}'])
  outcomes.main()
  text = capsys.readouterr().out
  assert '| 1 | 1, 1.0 | 8, 93.0 |' in text and '| 9 |' not in text
  assert '- alone: 2 of 4 runs cover all 8 modes' in text and '- lanes: 4 of 4 runs cover all 8 modes' in text
  # Hypergeometric by hand: 6 covering runs of 8, 4 in a set; P(2) = P(4) = 15/70 <= P(2).
  assert f'p = {30 / 70:.3f}' in text
  write('mixed', 0, 8, 0.9)
  write('mixed', 1, 8, 0.9, loss='hinge')
  with pytest.raises(SystemExit, match='another config'):
    outcomes.ended_runs([str(tmp_path / 'mixed')])
  both = outcomes.ended_runs([str(tmp_path / 'alone' / 'seed=[01]'), str(tmp_path / 'lanes' / 'seed=3')])
  assert sorted(both) == [0, 1, 3] and both[1]['modes'] == 1  # A label's patterns gathered.


def test_mode_collapse_table_names_each_method_apart():
  """Rows the table must not merge: the G loss, D steps, and Stacked MNIST's D without batch norm."""
  table = bench_scripts.load('mode_collapse_table')
  stacked = experiments.load_config('unrolled:stacked_mnist')
  stacked.unroll.steps = 0
  assert table.method_of(stacked.to_dict()) == 'GAN'
  stacked.model.d_norm = 'none'
  assert table.method_of(stacked.to_dict()) == 'GAN, D norm none'
  ring = experiments.load_config('unrolled:ring')  # MLPs: no norm in D is the protocol, not an ablation.
  assert table.method_of(ring.to_dict()) == 'Unrolled k=5, surrogate G loss'
  grid = experiments.load_config('unrolled:grid')
  assert table.method_of(grid.to_dict()) == 'Unrolled k=1, 2 D steps'
