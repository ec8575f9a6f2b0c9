"""Orbax checkpoints of the GANState under `<workdir>/checkpoints/<step>/`.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
write that is killed never leaves a checkpoint that looks finished. Restoring walks back from the
newest step: one that fails to load is reported and the previous one is tried.
"""
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from gan_jax.errors import UserError


class Checkpointer:
  """Saves and restores one run's states, keeping the newest `keep`.

  `read_only`: only restores, and neither creates nor cleans anything in `directory` (so it may
  read a run that another process is writing).
  """

  def __init__(self, directory: pathlib.Path, keep: int = 3, read_only: bool = False):
    self.directory = pathlib.Path(directory).resolve()
    # Reading only: nothing created, nothing deleted (no max_to_keep), no temporary directory cleaned.
    options = (ocp.CheckpointManagerOptions(create=False, max_to_keep=None, cleanup_tmp_directories=False)
               if read_only else ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state) -> None:
    """Starts writing `state` as checkpoint `step` (finished in the background)."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state))

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def restore_latest(self, template):
    """The newest loadable state shaped like `template`, or None if there is no checkpoint.

    Raises:
      UserError if checkpoints exist but none of them loads.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    failures = []
    for step in reversed(self.steps()):
      try:
        try:
          return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except ValueError as e:
          if 'tree structures do not match' not in str(e):
            raise
          return self._restore_older(step, template)  # Saved before the state gained fields.
      except Exception as e:  # Orbax raises many types for unreadable or mismatched files.
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        logging.warning('checkpoint %d in %s could not be loaded (%s); trying an older one',
                        step, self.directory, first_line[:200])
        failures.append(f'{step}: {first_line[:200]}')
    if failures:
      raise UserError(f'no checkpoint in {self.directory} could be loaded ({"; ".join(failures)}); '
                      'move the directory away to start afresh')
    return None

  def _restore_older(self, step: int, template):
    """Checkpoint `step`, written when the state had fewer fields (e.g. a penalty weight added
    since): every saved value whose path and shape the template has, the template's values for
    the fields the checkpoint lacks (named in a warning).

    Raises:
      ValueError if the checkpoint holds a value the template has no place for, or a shape differs.
    """
    saved = _leaves_by_path(self._manager.restore(step, args=ocp.args.StandardRestore()))
    fresh = _leaves_by_path(template)
    unknown = sorted(set(saved) - set(fresh))
    if unknown:
      raise ValueError(f'it holds {", ".join(unknown[:5])}, which the current state does not')
    for path, value in saved.items():
      if np.shape(value) != np.shape(fresh[path]):
        raise ValueError(f'{path} has shape {np.shape(value)}, the current state {np.shape(fresh[path])}')
    missing = sorted(set(fresh) - set(saved))
    logging.warning('checkpoint %d in %s predates %s; those start from their initial values', step,
                    self.directory, ', '.join(missing))
    leaves = [jnp.asarray(saved.get(path, value), value.dtype) for path, value in fresh.items()]
    return jax.tree.unflatten(jax.tree.structure(template), leaves)

  def close(self) -> None:
    """Waits for pending writes."""
    self._manager.wait_until_finished()
    self._manager.close()


def _leaves_by_path(tree) -> dict[str, object]:
  """{'g/opt_state/0/mu/...': leaf} in the tree's leaf order, with dict keys, attribute names and
  sequence indices alike as path parts (a restored tree has dicts and lists where the state has
  dataclasses and named tuples)."""
  def part(key) -> str:
    for attribute in ('key', 'name', 'idx'):
      if hasattr(key, attribute):
        return str(getattr(key, attribute))
    return str(key)

  return {'/'.join(part(k) for k in path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
