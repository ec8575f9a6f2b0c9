"""The vectorized runner: grouping by program, equivalence with runs made one by one, and (slow) a
sweep through sweep_runners.launch killed midway, resumed, with a diverging member, then reported."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gan_jax import experiments
from gan_jax import report
from gan_jax.errors import UserError
from gan_jax import from_checkpoint
from gan_jax.train import loop
from gan_jax.train import program as program_lib
from gan_jax.train import run as run_lib
from tests import wandb_records
from tests.conftest import REPO_ROOT


def _config(exp='vanilla:ring,smoke', **overrides):
  items = [('log.wandb', 'disabled')] + [(k.replace('__', '.'), str(v)) for k, v in overrides.items()]
  return experiments.load_config(exp, items)


def test_runs_differing_in_seeds_adam_and_penalty_weights_share_a_program():
  configs = [
      _config(),                                                             # 0
      _config(train__seed=3, optim__g__lr=1e-4, optim__d__b1=0.0),           # 0
      _config(loss='hinge'),                                                 # 1: another loss
      _config(penalty__r1=1.0),                                              # 2: R1 switched on
      _config(penalty__r1=10.0, train__seed=1, log__name='x', log__group='g'),  # 2: only its weight differs
      _config(train__d_steps=2),                                             # 3: another program
      _config(train__steps=40),                                              # 4: another host loop
  ]
  assert program_lib.group_by_program(configs) == [[0, 1], [2], [3, 4], [5], [6]]


def test_runs_that_do_not_share_a_program_are_refused(tmp_path):
  with pytest.raises(UserError, match='differ only in train.seed'):
    loop.train([_config(), _config(loss='hinge')], [tmp_path / 'a', tmp_path / 'b'])
  assert not (tmp_path / 'a').exists()


def _records(workdir: pathlib.Path, name: str = 'metrics') -> list[dict]:
  return [json.loads(line) for line in (workdir / f'{name}.jsonl').read_text().splitlines()]


def _final_state(workdir: pathlib.Path, config):
  """The latest checkpointed state of the run in `workdir`."""
  return from_checkpoint.load_latest(config, workdir).state


def _assert_same_runs(configs, sequential_dirs, vectorized_dirs, rtol):
  for config, a, b in zip(configs, sequential_dirs, vectorized_dirs):
    seq, vec = _records(a), _records(b)
    assert [r['step'] for r in vec] == [r['step'] for r in seq] == [5, 10, 15, 20]
    for key in ('d_loss', 'g_loss', 'd_real', 'd_fake', 'g_grad_norm'):
      np.testing.assert_allclose([r[key] for r in vec], [r[key] for r in seq], rtol=rtol, err_msg=f'{b.name} {key}')
    state_a, state_b = _final_state(a, config), _final_state(b, config)
    assert int(state_b.step) == 20
    jax.tree.map(lambda x, y: np.testing.assert_allclose(y, x, rtol=rtol, atol=1e-6), state_a.g.params,
                 state_b.g.params)
    assert float(state_b.g.opt_state.hyperparams['learning_rate']) == pytest.approx(config.optim.g.lr)
    saved_a, saved_b = json.loads((a / 'config.json').read_text()), json.loads((b / 'config.json').read_text())
    saved_a['log'].pop('wandb'), saved_b['log'].pop('wandb')
    assert saved_b == saved_a
    assert json.loads((b / 'status.json').read_text()) == {'status': 'finished', 'step': 20, 'message': ''}
    assert sorted(p.name for p in (b / 'samples').iterdir()) == ['step_0.png', 'step_10.png', 'step_20.png']


@pytest.mark.slow
def test_vectorized_runs_match_the_same_runs_made_one_by_one(tmp_path):
  """Two ring runs vectorized, each with its own W&B run; the second (other seed, other learning
  rates) gives the same metrics, parameters and outputs as train_and_evaluate gives it alone; its
  checkpoint is then resumed by train_and_evaluate."""
  evaluated = dict(eval__metrics='modes', eval__eval_every=10, eval__mixture_samples=500)
  configs = [_config(train__seed=0, log__wandb='offline', **evaluated),
             _config(train__seed=1, optim__g__lr=3e-4, optim__d__lr=2e-3, log__wandb='offline', **evaluated)]
  vectorized_dirs = [tmp_path / f'vec{i}' for i in range(2)]
  done = []
  results = loop.train(configs, vectorized_dirs, on_done=lambda *args: done.append(args))
  assert done == [(0, 'finished', ''), (1, 'finished', '')]
  assert [(r['status'], r['step']) for r in results] == [('finished', 20)] * 2
  for workdir in vectorized_dirs:
    wandb_run = wandb_records.summary(workdir)
    assert wandb_run['exit_code'] == 0 and {5, 10, 15, 20} <= set(wandb_run['history_steps']), wandb_run
  # The different seeds and learning rates gave different runs.
  assert _records(vectorized_dirs[0])[-1]['d_loss'] != _records(vectorized_dirs[1])[-1]['d_loss']

  config = configs[1]
  config.log.wandb = 'disabled'
  loop.train_and_evaluate(config, tmp_path / 'alone')
  _assert_same_runs([config], [tmp_path / 'alone'], vectorized_dirs[1:], rtol=1e-4)
  # Each run is evaluated with its own seed's draws, as it would be alone.
  alone_eval, vec_eval = (_records(d, 'eval') for d in (tmp_path / 'alone', vectorized_dirs[1]))
  assert [r['step'] for r in vec_eval] == [r['step'] for r in alone_eval] == [10, 20]
  for a, b in zip(alone_eval, vec_eval):
    assert b['modes'] == a['modes'] and abs(b['high_quality'] - a['high_quality']) <= 0.01, (a, b)

  config.train.steps = 30
  result = loop.train_and_evaluate(config, vectorized_dirs[1])
  assert result['step'] == 30
  assert [r['step'] for r in _records(vectorized_dirs[1])] == [5, 10, 15, 20, 25, 30]


@pytest.mark.slow
def test_vectorized_dcgan_with_batchnorm_matches_a_run_made_alone(tmp_path, data_dir):
  """MNIST DCGAN smoke, two runs vectorized (BatchNorm statistics per run inside the vmapped
  program, real batches drawn on the host per run); the second one (other seed and D learning
  rate) also made alone."""
  configs = [_config('vanilla:smoke', train__seed=seed, train__steps=10, train__sample_every=0, optim__d__lr=lr,
                     data__on_device=False) for seed, lr in ((0, 2e-4), (1, 1e-3))]
  loop.train(configs, [tmp_path / 'vec0', tmp_path / 'vec1'])
  loop.train_and_evaluate(configs[1], tmp_path / 'alone')
  alone, vec = _records(tmp_path / 'alone'), _records(tmp_path / 'vec1')
  assert [r['step'] for r in vec] == [r['step'] for r in alone] == [5, 10]
  for key in ('d_loss', 'g_loss'):
    np.testing.assert_allclose([r[key] for r in vec], [r[key] for r in alone], rtol=1e-3, err_msg=key)
  assert _records(tmp_path / 'vec0')[-1]['d_loss'] != vec[-1]['d_loss']
  state_alone, state_vec = _final_state(tmp_path / 'alone', configs[1]), _final_state(tmp_path / 'vec1', configs[1])
  assert state_vec.d.batch_stats
  jax.tree.map(lambda x, y: np.testing.assert_allclose(y, x, rtol=1e-3, atol=1e-5), state_alone.d.batch_stats,
               state_vec.d.batch_stats)


# ---------------------------------------------------------------------------------------------
# A sweep through sweep_runners.launch.

SWEEP_OVERRIDES = [('log.wandb', 'disabled'), ('train.steps', '100'), ('train.log_every', '10'),
                   ('train.checkpoint_every', '20'), ('train.sample_every', '100')]
GRID = {'product': {'optim.d.lr': [0.001, 0.003], 'train.seed': [0, 1]}}
DIVERGING = {'zip': {'optim.d.lr': [1e10], 'optim.g.lr': [1e10]}}
GRID_NAMES = ['d.lr=0.001,seed=0', 'd.lr=0.001,seed=1', 'd.lr=0.003,seed=0', 'd.lr=0.003,seed=1']
DIVERGING_NAME = 'd.lr=1e+10,g.lr=1e+10'
_SWEEP_SCRIPT = ('import json, sys\n'
                 'from gan_jax import sweep_runners\n'
                 'a = json.loads(sys.argv[1])\n'
                 "sys.exit(sweep_runners.launch(a['exp'], a['overrides'], a['dir'], runner='vectorized',\n"
                 "                              spec=a['spec']))\n")


def _start_sweep(directory: pathlib.Path, log: pathlib.Path) -> subprocess.Popen:
  args = json.dumps({'exp': 'vanilla:ring,smoke', 'overrides': SWEEP_OVERRIDES, 'dir': str(directory),
                     'spec': [GRID, DIVERGING]})
  with open(log, 'a') as f:
    return subprocess.Popen([sys.executable, '-c', _SWEEP_SCRIPT, args], cwd=REPO_ROOT, stdout=f,
                            stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))


def _status(workdir: pathlib.Path) -> dict:
  try:
    return json.loads((workdir / 'status.json').read_text())
  except (FileNotFoundError, json.JSONDecodeError):
    return {}


def _checkpoints(workdir: pathlib.Path) -> list[int]:
  return sorted(int(p.name) for p in (workdir / 'checkpoints').glob('*') if p.name.isdigit())


def _table(directory: pathlib.Path) -> dict:
  return {row['name']: row for row in map(json.loads, (directory / 'sweep.jsonl').read_text().splitlines())}


@pytest.mark.slow
def test_vectorized_sweep_is_killed_resumed_and_reported(tmp_path):
  """A 2x2 grid (D learning rate x seed) plus a member with an absurd learning rate: five members
  of one program. Killed (SIGKILL) once every grid member has a checkpoint and none has finished,
  then resumed; the diverging member fails while the others finish; then the report."""
  directory = tmp_path / 'vec'
  log = tmp_path / 'sweep.log'
  process = _start_sweep(directory, log)
  deadline = time.monotonic() + 120
  killed = False
  try:
    while time.monotonic() < deadline and process.poll() is None:
      statuses = [_status(directory / n).get('status') for n in GRID_NAMES]
      if statuses == ['running'] * 4 and all(_checkpoints(directory / n) for n in GRID_NAMES):
        killed = True
        break
      time.sleep(0.01)
  finally:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
  assert killed, f'the sweep ended before it could be killed midway:\n{log.read_text()[-3000:]}'
  at_kill = {n: _checkpoints(directory / n)[-1] for n in GRID_NAMES}
  assert all(step < 100 for step in at_kill.values()), at_kill
  assert {row['status'] for name, row in _table(directory).items() if name in GRID_NAMES} == {'running'}

  resumed = _start_sweep(directory, log)
  assert resumed.wait(timeout=180) == 1, log.read_text()[-3000:]
  output = log.read_text()
  assert '4 of 5 member(s) finished' in output, output[-3000:]
  table = _table(directory)
  assert list(table) == GRID_NAMES + [DIVERGING_NAME]
  for name in GRID_NAMES:
    row = table[name]
    assert (row['status'], row['step'], row['error'], row['workdir']) == ('finished', 100, '', name), row
    workdir = directory / name
    config = json.loads((workdir / 'config.json').read_text())
    assert config['log']['group'] == 'vanilla_ring_smoke-vec' and config['log']['name'] == name
    assert config['optim']['d']['lr'] == float(name.split(',')[0].split('=')[1])
    assert (workdir / 'samples' / 'step_100.png').exists() and _checkpoints(workdir)[-1] == 100
    # Resumed from its own last checkpoint: the steps logged after the restart begin right after it.
    steps = [r['step'] for r in _records(workdir)]
    restarts = [i for i in range(1, len(steps)) if steps[i] <= steps[i - 1]]
    assert len(restarts) <= 1, steps
    assert steps[restarts[0]] == at_kill[name] + 10 if restarts else steps[0] == 10, (steps, at_kill)
    assert sorted(set(steps)) == list(range(10, 101, 10))
  failed = table[DIVERGING_NAME]
  assert failed['status'] == 'failed' and failed['error'].startswith('diverged: non-finite values'), failed
  assert _status(directory / DIVERGING_NAME)['status'] == 'diverged'
  assert not _checkpoints(directory / DIVERGING_NAME)  # Diverged before its first checkpoint.
  # The runs learned something different per member: seeds and learning rates gave different losses.
  finals = {name: _records(directory / name)[-1]['d_loss'] for name in GRID_NAMES}
  assert len(set(finals.values())) == 4 and all(np.isfinite(list(finals.values())))

  summary = report.write_report(directory)
  assert '5 run(s)' in summary, summary
  rows = list(__import__('csv').DictReader((directory / 'report.csv').open()))
  assert sorted((r['optim.d.lr'], r['runs'], r['status']) for r in rows) == [
      ('0.001', '2', '2 finished'), ('0.003', '2', '2 finished'), ('10000000000.0', '1', '1 diverged')]
  for row in rows:
    lr = row['optim.d.lr']
    if lr == '10000000000.0':
      continue
    values = [finals[f'd.lr={lr},seed={seed}'] for seed in (0, 1)]
    assert float(row['d_loss_final_mean']) == pytest.approx(np.mean(values), rel=1e-12)


@pytest.mark.parametrize('exp,mapping,runs,on_device', [
    ('vanilla:ring,smoke', 'chunks', 7, True), ('vanilla:ring,smoke', 'chunks', 7, False),
    ('vanilla:ring,smoke', 'unrolled', 3, False), ('vanilla:smoke', 'unrolled', 2, True)])
def test_every_lane_mapping_equals_one_vmap(exp, mapping, runs, on_device, data_dir):
  """The lanes computed in chunks of 3 (lax.map over vmapped chunks, the last one smaller: CPU MLP
  groups) or unrolled (one iteration per lane: CPU convolutional groups, BatchNorm included) give
  the same states and metric sums as one vmap over all runs."""
  config = _config(exp)
  run = run_lib.build_run(config)
  phase = run.phases[0]
  iteration = program_lib.iteration_fn(run, phase, on_device)
  keys = jax.random.split(jax.random.key(0), runs)
  state = jax.jit(jax.vmap(run.init_state))(keys)
  sums = program_lib.Program(run, phase, program_lib.Layout(runs), on_device).zero_sums()
  if on_device:
    data = jax.device_put(run.train_source.arrays)
  else:  # Each run's own host batches (any points do).
    shapes = phase.batch.shapes(run.train_source)
    rng = np.random.default_rng(0)
    data = jax.tree.map(lambda s: rng.normal(size=(runs, *s.shape)).astype(s.dtype), shapes)
  data_axis = None if on_device else 0
  expected = jax.jit(program_lib.over_runs(iteration, data_axis, 'vmap'))(state, sums, data, phase.fade, keys)
  got = jax.jit(program_lib.over_runs(iteration, data_axis, mapping, chunk=3))(state, sums, data, phase.fade, keys)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, expected)
  d_params = jax.tree.leaves(expected[0].d.params)[0]
  assert not np.allclose(d_params[0], d_params[1])  # The runs differ, so a mixed-up lane would show.


@pytest.mark.slow
def test_a_member_that_diverges_restarts_alone_and_collapse_is_detected_per_member(tmp_path):
  """With train.restarts, a run that diverges in its group (absurd learning rates) continues alone
  through train_and_evaluate with the rates lowered, while its group finishes; without restarts, a
  collapsed run (train.collapse_patience) is recorded as diverged, as train_and_evaluate records it."""
  restarting = dict(train__restarts=1, train__restart_lr_factor=2e-34, train__checkpoint_every=5)
  configs = [_config(train__seed=0, **restarting),
             _config(train__seed=1, optim__g__lr=1e30, optim__d__lr=1e30, **restarting)]
  workdirs = [tmp_path / 'healthy', tmp_path / 'absurd']
  done = []
  results = loop.train(configs, workdirs, on_done=lambda *args: done.append(args))
  assert sorted(done) == [(0, 'finished', ''), (1, 'finished', '')]
  assert [(r['status'], r['step']) for r in results] == [('finished', 20)] * 2
  assert json.loads((workdirs[0] / 'status.json').read_text()) == {'status': 'finished', 'step': 20, 'message': ''}
  status = json.loads((workdirs[1] / 'status.json').read_text())
  assert status['status'] == 'finished' and status['restarts'] == 1
  saved = json.loads((workdirs[1] / 'config.json').read_text())
  np.testing.assert_allclose([saved['optim']['g']['lr'], saved['optim']['d']['lr']], [2e-4, 2e-4], rtol=1e-6)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(_final_state(workdirs[1], configs[1])))

  # Any d_loss is below 1e9: both runs collapse at the third log (step 15), after the checkpoint at 10.
  collapsing = [_config(train__seed=s, train__collapse_patience=3, train__collapse_d_loss=1e9) for s in (0, 1)]
  done.clear()
  results = loop.train(collapsing, [tmp_path / 'c0', tmp_path / 'c1'],
                                     on_done=lambda *args: done.append(args))
  assert [r['status'] for r in results] == ['diverged'] * 2 and [d[1] for d in done] == ['failed'] * 2
  for workdir in (tmp_path / 'c0', tmp_path / 'c1'):
    status = json.loads((workdir / 'status.json').read_text())
    assert status['status'] == 'diverged' and status['step'] == 15
    assert status['message'].startswith('collapse: d_loss <= 1e+09 at 3 consecutive logs up to step 15')


@pytest.mark.slow
def test_vectorized_progan_group_equals_the_runs_made_one_by_one(tmp_path, data_dir):
  """Two seeds of progan:smoke (4x4, the 8x8 fade-in, 8x8; WGAN-GP, minibatch stddev, EMA) as the
  lanes of one program, the second with its own per-resolution learning rates: each run ends as it
  does made alone, and the group resumed from the middle of the fade-in (step 6, alpha 0.5) ends
  bit-identical to the uninterrupted group."""
  rates = ['()', '(2e-3, 5e-4)']
  configs = [_config('progan:smoke', train__seed=seed, train__sample_every=0, train__checkpoint_every=2,
                     train__keep_checkpoints=10, progressive__g_lr=g_lr) for seed, g_lr in enumerate(rates)]
  workdirs = [tmp_path / f'vec{i}' for i in range(2)]
  results = loop.train(configs, workdirs)
  assert [(r['status'], r['step'], r['compilations']) for r in results] == [('finished', 12, 2)] * 2
  finals = []
  for i, config in enumerate(configs):
    alone = tmp_path / f'alone{i}'
    loop.train_and_evaluate(config, alone)
    vec, seq = _records(workdirs[i]), _records(alone)
    assert [(r['step'], r['resolution'], r['alpha']) for r in vec] == [
        (r['step'], r['resolution'], r['alpha']) for r in seq]
    for key in ('d_loss', 'g_loss', 'gp'):
      np.testing.assert_allclose([r[key] for r in vec], [r[key] for r in seq], rtol=1e-3, err_msg=f'{i} {key}')
    state_vec, state_alone = _final_state(workdirs[i], config), _final_state(alone, config)
    assert int(state_vec.step) == 12
    jax.tree.map(lambda x, y: np.testing.assert_allclose(y, x, rtol=1e-3, atol=1e-5),
                 (state_alone.g.params, state_alone.ema_params), (state_vec.g.params, state_vec.ema_params))
    assert float(state_vec.g.opt_state.hyperparams['learning_rate']) == pytest.approx(
        5e-4 if i == 1 else config.optim.g.lr)
    finals.append(vec[-1]['d_loss'])
  assert len(set(finals)) == 2  # Different seeds and rates gave different runs.

  resumed = [tmp_path / f'resumed{i}' for i in range(2)]
  for source, target in zip(workdirs, resumed):
    (target / 'checkpoints').mkdir(parents=True)
    shutil.copy(source / 'config.json', target / 'config.json')
    shutil.copytree(source / 'checkpoints' / '6', target / 'checkpoints' / '6')
  results = loop.train(configs, resumed)
  assert [(r['step'], r['compilations']) for r in results] == [(12, 1)] * 2  # Only the 8x8 program.
  for config, a, b in zip(configs, workdirs, resumed):
    for x, y in zip(jax.tree.leaves(_final_state(a, config)), jax.tree.leaves(_final_state(b, config))):
      np.testing.assert_array_equal(x, y)
