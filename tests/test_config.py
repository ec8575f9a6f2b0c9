"""Config schema, command-line overrides and workdir compatibility."""
import pytest

from gan_jax import config as config_lib
from gan_jax import experiments
from gan_jax.errors import UserError


def test_overrides_parse_to_field_types():
  c = config_lib.base()
  config_lib.apply_overrides(c, [('train.steps', '7'), ('optim.g.lr', '1e-3'), ('data.on_device', 'false'),
                                 ('loss', 'hinge'), ('eval.metrics', 'fid,kid')])
  assert c.train.steps == 7 and isinstance(c.train.steps, int)
  assert c.optim.g.lr == pytest.approx(1e-3)
  assert c.data.on_device is False
  assert c.loss == 'hinge'
  assert tuple(c.eval.metrics) == ('fid', 'kid')


def test_int_given_to_float_field_is_accepted():
  c = config_lib.apply_overrides(config_lib.base(), [('optim.d.lr', '1')])
  assert c.optim.d.lr == 1.0 and isinstance(c.optim.d.lr, float)


def test_unknown_key_lists_valid_keys():
  with pytest.raises(UserError, match=r"unknown config key 'train\.stpes'.*d_steps.*steps"):
    config_lib.apply_overrides(config_lib.base(), [('train.stpes', '3')])


def test_unknown_group():
  with pytest.raises(UserError, match=r"unknown config key 'trian\.steps'.*valid keys of config: .*train"):
    config_lib.apply_overrides(config_lib.base(), [('trian.steps', '3')])


@pytest.mark.parametrize('key, text', [('train.steps', 'many'), ('train.steps', '2.5'),
                                       ('optim.g.lr', 'fast'), ('data.on_device', 'maybe')])
def test_wrong_type_is_rejected(key, text):
  with pytest.raises(UserError, match=key.replace('.', r'\.')):
    config_lib.apply_overrides(config_lib.base(), [(key, text)])


def test_group_cannot_be_overridden_whole():
  with pytest.raises(UserError, match='is a group'):
    config_lib.apply_overrides(config_lib.base(), [('optim', '1')])


def test_split_override_args():
  overrides, rest = config_lib.split_override_args(
      ['prog', '--exp=vanilla', '--config.train.steps=5', '--config.loss', 'hinge', '--workdir=w'])
  assert overrides == [('train.steps', '5'), ('loss', 'hinge')]
  assert rest == ['prog', '--exp=vanilla', '--workdir=w']
  with pytest.raises(UserError, match='needs a value'):
    config_lib.split_override_args(['prog', '--config.loss'])


def test_shape_differences_name_only_shape_keys():
  a = config_lib.to_dict(config_lib.base())
  b = config_lib.to_dict(config_lib.apply_overrides(
      config_lib.base(), [('model.g_channels', '32'), ('optim.g.lr', '1e-3'), ('train.steps', '5')]))
  assert config_lib.shape_differences(a, b) == ['model.g_channels: 64 -> 32']


@pytest.mark.parametrize('exp', ['vanilla', 'vanilla:smoke', 'vanilla:ring,smoke', 'vanilla:fashion_mnist'])
def test_experiment_configs_load(exp):
  c = experiments.load_config(exp)
  assert set(c.keys()) >= {'data', 'model', 'loss', 'optim', 'train', 'eval', 'log'}


def test_unknown_experiment_and_option():
  with pytest.raises(UserError, match="unknown experiment 'nope'; choose one of .*vanilla"):
    experiments.load_config('nope')
  with pytest.raises(UserError, match='unknown option'):
    experiments.load_config('vanilla:huge')


def test_saved_configs_without_newer_keys_take_their_defaults():
  saved = config_lib.to_dict(config_lib.base())
  del saved['model']['g_cond'], saved['acgan']
  filled = config_lib.with_defaults(saved)
  assert filled['model']['g_cond'] == '' and filled['acgan'] == config_lib.to_dict(config_lib.base())['acgan']
  assert config_lib.shape_differences(saved, config_lib.to_dict(config_lib.base())) == []
  current = config_lib.base()
  current.model.g_cond = 'cbn'
  assert config_lib.shape_differences(saved, config_lib.to_dict(current)) == ["model.g_cond: '' -> 'cbn'"]


def test_vanilla_tricks_sweep_adds_one_stabiliser_per_member_group():
  from gan_jax import sweep as sweep_lib
  from gan_jax import sweep_runners
  config = experiments.load_config('vanilla:tricks')
  members = sweep_lib.make_members(sweep_runners.load_spec('vanilla:tricks'), config)
  assert len(members) == 18 and [m.values['train.seed'] for m in members] == [0, 1, 2] * 6
  base = config_lib.flatten(config_lib.to_dict(sweep_lib.member_config(config, members[0], 'g')))
  for member in members[3::3]:
    changed = {k for k, v in config_lib.flatten(config_lib.to_dict(sweep_lib.member_config(config, member, 'g'))).items()
               if base[k] != v and k not in ('train.seed', 'log.name')}
    assert changed == set(member.values) - {'train.seed'}, (member.name, changed)
