"""Sweep specs: what `get_sweep()` returns, expanded into named members (config overrides).

A spec is plain data:

  {'product': {'loss': ['minimax', 'hinge'], 'train.seed': [0, 1, 2]}}   grid, last key fastest
  {'zip': {'optim.g.lr': [1e-4, 2e-4], 'optim.d.lr': [4e-4, 8e-4]}}      element-wise, equal lengths
  {'random': {'num': 20, 'seed': 0, 'fields': {                          random search
      'optim.d.lr': {'log_uniform': [1e-5, 1e-3]},                       (values rounded to 4
      'train.ema_decay': {'uniform': [0.9, 0.999]},                       significant digits so
      'train.d_steps': {'int_uniform': [1, 5]},                           they read well as
      'loss': ['minimax', 'hinge']}}}                                     flags; a list = choice)

Combinations: a dict with several of these keys is the product of its parts (e.g. a zip of
learning rates x a product over seeds); the value of 'product' or 'zip' may also be a list of
sub-specs (their product, or their element-wise zip); a list of specs is their concatenation.
Members that repeat an earlier member exactly are dropped.

Each member is named from its swept values, `loss=hinge,seed=0`, using the shortest dotted
suffix of each key that is unique within the sweep. The name is its workdir under the sweep
directory and its W&B run name, and it depends only on the values: resuming a sweep whose spec
grew finds the members already run.
"""
import dataclasses
import itertools
import math
import re
from typing import Any

import numpy as np

from gan_jax import config as config_lib
from gan_jax.errors import UserError

KINDS = ('product', 'zip', 'random')
DISTRIBUTIONS = ('uniform', 'log_uniform', 'int_uniform')
# Keys the sweep machinery sets itself on every member.
RESERVED_KEYS = ('log.group', 'log.name')
SEED_KEY = 'train.seed'


@dataclasses.dataclass(frozen=True)
class Member:
  """One run of a sweep: its position in the expansion, its name and its swept values."""
  index: int
  name: str
  values: dict[str, Any]  # dotted config key -> value, in spec order.

  def override_args(self) -> list[tuple[str, str]]:
    """The member's values as `(key, text)` overrides, the form `--config.key=text` takes."""
    return [(key, value_text(value)) for key, value in self.values.items()]


# ----------------------------------------------------------------------------------------------
# Expansion.


def expand(spec: Any) -> list[dict[str, Any]]:
  """Expands a spec into a list of {dotted key: value} dicts (not yet checked against a config).

  Raises:
    UserError naming the part of the spec that is malformed.
  """
  if isinstance(spec, (list, tuple)):
    if not spec:
      raise UserError('sweep spec: an empty list has no members; give at least one spec')
    return [member for part in spec for member in expand(part)]
  if not isinstance(spec, dict):
    raise UserError(f'sweep spec must be a dict with keys among {", ".join(KINDS)} or a list of such dicts '
                    f'(got {type(spec).__name__} {spec!r})')
  unknown = [k for k in spec if k not in KINDS]
  if unknown or not spec:
    raise UserError(f'sweep spec: unknown kind(s) {", ".join(map(repr, unknown)) or "(none given)"}; '
                    f'use {", ".join(KINDS)} (several in one dict multiply; a list of specs concatenates)')
  parts = []
  for kind, body in spec.items():
    parts.append({'product': _expand_product, 'zip': _expand_zip, 'random': _expand_random}[kind](body))
  return _multiply(parts, 'a spec with several kinds')


def _values_list(kind: str, key: str, values: Any) -> list:
  if not isinstance(key, str) or not key:
    raise UserError(f'sweep {kind}: keys must be dotted config keys such as "train.seed" (got {key!r})')
  if not isinstance(values, (list, tuple)) or not values:
    raise UserError(f'sweep {kind}: {key!r} needs a non-empty list of values (got {values!r}); '
                    f'write [{values!r}] for a single value')
  return list(values)


def _multiply(parts: list[list[dict]], what: str) -> list[dict]:
  return [_merge_row(combo, what) for combo in itertools.product(*parts)]


def _expand_product(body: Any) -> list[dict]:
  if isinstance(body, (list, tuple)):
    return _multiply([expand(sub) for sub in body], 'a product of sub-specs')
  if not isinstance(body, dict):
    raise UserError(f"sweep product: expected {{key: [values]}} or a list of sub-specs (got {body!r})")
  keys = list(body)
  lists = [_values_list('product', k, body[k]) for k in keys]
  return [dict(zip(keys, combo)) for combo in itertools.product(*lists)]


def _expand_zip(body: Any) -> list[dict]:
  if isinstance(body, (list, tuple)):
    subs = [expand(sub) for sub in body]
    what = 'sub-specs'
    lengths = {f'sub-spec {i}': len(s) for i, s in enumerate(subs)}
  elif isinstance(body, dict):
    subs = [[{k: v} for v in _values_list('zip', k, vs)] for k, vs in body.items()]
    what = 'lists'
    lengths = {k: len(s) for k, s in zip(body, subs)}
  else:
    raise UserError(f'sweep zip: expected {{key: [values]}} or a list of sub-specs (got {body!r})')
  if len(set(lengths.values())) > 1:
    raise UserError(f'sweep zip: the {what} differ in length '
                    f'({", ".join(f"{k}: {n}" for k, n in lengths.items())}); zip needs equal lengths')
  return [_merge_row(row, 'a zip') for row in zip(*subs)]


def _merge_row(row: tuple[dict, ...], what: str) -> dict:
  """One member from parts that must not share keys."""
  merged = {}
  for values in row:
    twice = sorted(set(merged) & set(values))
    if twice:
      raise UserError(f'sweep: {", ".join(map(repr, twice))} swept twice in {what}; sweep each key in one place')
    merged.update(values)
  return merged


def _round(x: float) -> float:
  return float(f'{x:.4g}')


def _expand_random(body: Any) -> list[dict]:
  if not isinstance(body, dict) or set(body) - {'num', 'seed', 'fields'} or 'fields' not in body:
    raise UserError("sweep random: expected {'num': N, 'seed': S, 'fields': {key: [choices] or "
                    f"{{'log_uniform': [lo, hi]}} ...}}}} (got {body!r})")
  num, seed, fields = body.get('num'), body.get('seed', 0), body['fields']
  if not isinstance(num, int) or isinstance(num, bool) or num < 1:
    raise UserError(f"sweep random: 'num' must be a positive integer (got {num!r})")
  if not isinstance(seed, int) or isinstance(seed, bool):
    raise UserError(f"sweep random: 'seed' must be an integer (got {seed!r})")
  if not isinstance(fields, dict) or not fields:
    raise UserError(f"sweep random: 'fields' must be a non-empty dict of key -> distribution (got {fields!r})")
  samplers = {key: _sampler(key, dist) for key, dist in fields.items()}
  rng = np.random.default_rng(seed)
  return [{key: sample(rng) for key, sample in samplers.items()} for _ in range(num)]


def _sampler(key: str, dist: Any):
  if isinstance(dist, (list, tuple)):
    choices = _values_list('random', key, dist)
    return lambda rng: choices[int(rng.integers(len(choices)))]
  if not (isinstance(dist, dict) and len(dist) == 1 and next(iter(dist)) in DISTRIBUTIONS):
    raise UserError(f'sweep random: {key!r} needs a list of choices or one of '
                    f'{", ".join(f"{{{d!r}: [lo, hi]}}" for d in DISTRIBUTIONS)} (got {dist!r})')
  name, bounds = next(iter(dist.items()))
  ok = (isinstance(bounds, (list, tuple)) and len(bounds) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds) and bounds[0] < bounds[1])
  if not ok:
    raise UserError(f'sweep random: {key!r}: {name} needs [lo, hi] numbers with lo < hi (got {bounds!r})')
  lo, hi = bounds
  if name == 'uniform':
    return lambda rng: _round(rng.uniform(lo, hi))
  if name == 'int_uniform':
    if not all(float(b).is_integer() for b in bounds):
      raise UserError(f'sweep random: {key!r}: int_uniform needs integer bounds (got {bounds!r})')
    return lambda rng: int(rng.integers(int(lo), int(hi), endpoint=True))
  if lo <= 0:
    raise UserError(f'sweep random: {key!r}: log_uniform needs 0 < lo < hi (got {bounds!r})')
  return lambda rng: _round(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# ----------------------------------------------------------------------------------------------
# Naming, checking against the config, selection.


def value_text(value: Any) -> str:
  """The text of a value as a `--config.key=text` flag (parsed back by config.apply_overrides)."""
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, (list, tuple)):
    return repr(tuple(value))
  return str(value)


def short_labels(keys) -> dict[str, str]:
  """Each dotted key's shortest dotted suffix that no other key ends with: train.seed -> seed."""
  keys = list(dict.fromkeys(keys))
  labels = {}
  for key in keys:
    parts = key.split('.')
    for n in range(1, len(parts) + 1):
      label = '.'.join(parts[-n:])
      if not any(other != key and (other == label or other.endswith('.' + label)) for other in keys):
        break
    labels[key] = label
  return labels


def _name_text(value: Any) -> str:
  if isinstance(value, float):
    text = f'{value:g}'
  elif isinstance(value, (list, tuple)):
    text = '+'.join(_name_text(v) for v in value) or 'none'
  else:
    text = value_text(value)
  return re.sub(r'[^A-Za-z0-9._+-]', '_', text) or 'empty'


def member_name(values: dict[str, Any], labels: dict[str, str]) -> str:
  return ','.join(f'{labels[k]}={_name_text(v)}' for k, v in values.items()) or 'default'


def make_members(spec: Any, config) -> list[Member]:
  """Expands `spec`, checks every key and value against `config` and names the members.

  Raises:
    UserError for a malformed spec, an unknown key (listing the valid ones), a group key, a key
    the sweep sets itself (log.group, log.name) or a value of the wrong type.
  """
  rows = expand(spec)
  seen, unique = set(), []
  for values in rows:
    signature = tuple(sorted((k, value_text(v)) for k, v in values.items()))
    if signature not in seen:
      seen.add(signature)
      unique.append(values)
  keys = list(dict.fromkeys(k for values in unique for k in values))
  for key in keys:
    if key in RESERVED_KEYS:
      raise UserError(f'sweep key {key!r} is set by the sweep itself (W&B group = sweep name, run name = member '
                      'name); use --config.log.group=NAME to name the sweep')
  labels = short_labels(keys)
  members, names = [], set()
  for index, values in enumerate(unique):
    name = member_name(values, labels)
    base, n = name, 2
    while name in names:
      name, n = f'{base}-{n}', n + 1
    names.add(name)
    member = Member(index, name, values)
    try:
      config_lib.apply_overrides(copy_config(config), member.override_args())
    except UserError as e:
      raise UserError(f'sweep member {index} ({name}): {e}') from None
    members.append(member)
  return members


def copy_config(config):
  return config_lib.ConfigDict(config.to_dict())


def member_config(config, member: Member, group: str):
  """The base config (not modified) with the member's values, W&B group and run name applied."""
  out = config_lib.apply_overrides(copy_config(config), member.override_args())
  out.log.group = group
  out.log.name = member.name
  return out


def swept_values(members: list[Member]) -> dict[str, list]:
  """{key: distinct values in order of appearance} over the members."""
  out: dict[str, list] = {}
  for m in members:
    for k, v in m.values.items():
      if v not in out.setdefault(k, []):
        out[k].append(v)
  return out


def parse_filter(text: str) -> list[tuple[str, str]]:
  """'loss=hinge,train.seed=0' -> [('loss', 'hinge'), ('train.seed', '0')]; commas inside a value stay."""
  pieces = [p for p in re.split(r',(?=\s*[A-Za-z_][\w.]*\s*=)', text.strip()) if p.strip()]
  out = []
  for piece in pieces:
    key, sep, value = piece.partition('=')
    if not sep or not key.strip():
      raise UserError(f'--sweep_filter={text}: expected KEY=VALUE[,KEY=VALUE...] such as loss=hinge,train.seed=0 '
                      f'(got {piece!r})')
    out.append((key.strip(), value.strip()))
  if not out:
    raise UserError('--sweep_filter is empty; give KEY=VALUE[,KEY=VALUE...]')
  return out


def parse_index(text: str, count: int) -> list[int]:
  """'3', '0,2', '4-7' (inclusive) -> sorted distinct indices in [0, count)."""
  indices = set()
  for piece in text.split(','):
    piece = piece.strip()
    match = re.fullmatch(r'(\d+)(?:\s*-\s*(\d+))?', piece)
    if not match:
      raise UserError(f'--sweep_index={text}: expected indices and inclusive ranges such as 3, 0,2 or 4-7')
    lo = int(match.group(1))
    hi = int(match.group(2)) if match.group(2) else lo
    if lo > hi:
      raise UserError(f'--sweep_index={text}: range {piece} is empty (write LO-HI with LO <= HI)')
    indices.update(range(lo, hi + 1))
  outside = sorted(i for i in indices if i >= count)
  if outside:
    raise UserError(f'--sweep_index={text}: the sweep has {count} member(s), indices 0-{count - 1} '
                    f'(see --dry_run); {", ".join(map(str, outside))} is out of range')
  return sorted(indices)


def select(members: list[Member], config, filter_text: str | None = None,
           index_text: str | None = None) -> list[Member]:
  """Members matching `--sweep_filter` (all of its keys; a key given twice matches either value)
  and `--sweep_index` (indices into the full expansion, as --dry_run shows them).

  Filter keys are dotted config keys or the short labels of the member names (seed, d.lr); values
  are parsed as the field's type, so optim.d.lr=1e-4 matches 0.0001.
  """
  chosen = list(members)
  if index_text is not None and index_text != '':
    wanted = set(parse_index(index_text, len(members)))
    chosen = [m for m in chosen if m.index in wanted]
  if filter_text:
    swept = list(dict.fromkeys(k for m in members for k in m.values))
    wanted: dict[str, list[str]] = {}
    for key, value in parse_filter(filter_text):
      wanted.setdefault(_resolve_key(key, swept), []).append(value)
    for key in wanted:  # Unknown keys are an error listing the valid ones.
      try:
        config_lib.apply_overrides(copy_config(config), [(key, wanted[key][0])])
      except UserError as e:
        raise UserError(f'--sweep_filter: {e}') from None

    def matches(member: Member) -> bool:
      resolved = config_lib.apply_overrides(copy_config(config), member.override_args())
      for key, texts in wanted.items():
        parent, leaf = _parent(resolved, key)
        targets = [config_lib.apply_overrides(copy_config(resolved), [(key, t)]) for t in texts]
        if not any(_parent(t, key)[0][leaf] == parent[leaf] for t in targets):
          return False
      return True

    chosen = [m for m in chosen if matches(m)]
    if not chosen:
      swept = '; '.join(f'{k} in {{{", ".join(map(value_text, vs))}}}' for k, vs in swept_values(members).items())
      raise UserError(f'--sweep_filter={filter_text} matches none of the {len(members)} member(s)'
                      f'{" selected by --sweep_index" if index_text else ""}; swept values: {swept or "none"}')
  return chosen


def _resolve_key(key: str, swept: list[str]) -> str:
  """A swept key named by a dotted suffix (seed, d.lr) or the full key; other keys as given."""
  if key in swept:
    return key
  matches = [k for k in swept if k.endswith('.' + key)]
  if len(matches) > 1:
    raise UserError(f'--sweep_filter: {key!r} could be any of {", ".join(matches)}; write the full key')
  return matches[0] if matches else key


def _parent(config, key: str):
  parts = key.split('.')
  node = config
  for part in parts[:-1]:
    node = node[part]
  return node, parts[-1]


# ----------------------------------------------------------------------------------------------
# Export for the W&B sweep controller.


def _plain(value: Any) -> Any:
  if isinstance(value, tuple):
    return list(value)
  return value


def wandb_sweep_config(spec: Any, members: list[Member], selected: list[Member], fixed_args: list[str],
                       name: str, project: str) -> tuple[dict, int | None]:
  """A W&B sweep config whose agent runs `launch.py` with `--config.KEY=VALUE` per parameter.

  A single 'product' of scalar values becomes method 'grid' and a single 'random' becomes method
  'random' (log_uniform -> log_uniform_values; run it with `wandb agent --count N`). Anything W&B
  cannot express (zip, combinations, a filtered or indexed selection, list-valued fields) becomes
  a grid over `sweep_index`: each agent run executes `launch.py --sweep --sweep_index=I`, i.e.
  exactly the member this codebase would run.

  Returns:
    (the config as plain data, the `--count` the agent needs or None).
  """
  command = ['${env}', '${interpreter}', '${program}', *fixed_args, '${args}']
  config = {'program': 'launch.py', 'name': name, 'project': project}
  whole = len(selected) == len(members)
  scalar = all(not isinstance(v, (list, tuple, dict)) for m in members for v in m.values.values())
  if whole and scalar and isinstance(spec, dict) and list(spec) == ['product'] and isinstance(spec['product'], dict):
    config['method'] = 'grid'
    config['parameters'] = {f'config.{k}': {'values': [_plain(v) for v in vs]}
                            for k, vs in spec['product'].items()}
    config['command'] = command
    return config, None
  if whole and scalar and isinstance(spec, dict) and list(spec) == ['random']:
    params = {}
    for key, dist in spec['random']['fields'].items():
      if isinstance(dist, (list, tuple)):
        params[f'config.{key}'] = {'values': [_plain(v) for v in dist]}
      else:
        kind, (lo, hi) = next(iter(dist.items()))
        wandb_kind = {'uniform': 'uniform', 'log_uniform': 'log_uniform_values', 'int_uniform': 'int_uniform'}[kind]
        params[f'config.{key}'] = {'distribution': wandb_kind, 'min': lo, 'max': hi}
    config['method'] = 'random'
    config['parameters'] = params
    config['command'] = command
    return config, spec['random']['num']
  config['method'] = 'grid'
  config['parameters'] = {'sweep_index': {'values': [m.index for m in selected]}}
  config['command'] = [*command[:-1], '--sweep', '${args}']
  return config, None
