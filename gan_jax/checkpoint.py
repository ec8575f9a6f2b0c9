"""Orbax checkpoints of the GANState under `<workdir>/checkpoints/<step>/`.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
write that is killed never leaves a checkpoint that looks finished. Restoring walks back from the
newest step: one that fails to load is reported and the previous one is tried.
"""
import pathlib

from absl import logging
import jax
import orbax.checkpoint as ocp

from gan_jax.errors import UserError


class Checkpointer:
  """Saves and restores one run's states, keeping the newest `keep`.

  `read_only`: only restores, and neither creates nor cleans anything in `directory` (so it may
  read a run that another process is writing).
  """

  def __init__(self, directory: pathlib.Path, keep: int = 3, read_only: bool = False):
    self.directory = pathlib.Path(directory).resolve()
    options = (ocp.CheckpointManagerOptions(read_only=True, max_to_keep=None, save_interval_steps=0) if read_only
               else ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))
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
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as e:  # Orbax raises many types for unreadable or mismatched files.
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        logging.warning('checkpoint %d in %s could not be loaded (%s); trying an older one',
                        step, self.directory, first_line[:200])
        failures.append(f'{step}: {first_line[:200]}')
    if failures:
      raise UserError(f'no checkpoint in {self.directory} could be loaded ({"; ".join(failures)}); '
                      'move the directory away to start afresh')
    return None

  def close(self) -> None:
    """Waits for pending writes."""
    self._manager.wait_until_finished()
    self._manager.close()
