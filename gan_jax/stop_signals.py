"""Stopping a run cleanly: SIGTERM, SIGINT or SIGUSR2 ends training after the iteration in flight,
with every live run checkpointed at that step (gan_jax/train/loop.py), and raises `Interrupted`."""
import signal
import threading
import time

from absl import logging
import jax

from gan_jax import distributed


class Interrupted(KeyboardInterrupt):
  """SIGTERM or SIGINT stopped the run after checkpointing its last completed step.

  A KeyboardInterrupt, so sweep runners stop the sweep and record the member as interrupted.
  """

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


class StopSignals:
  """While active, SIGTERM, SIGINT and SIGUSR2 only set `received` (the signal number); the loop
  stops cleanly. SIGUSR2 is the warning SLURM and submitit send before a time limit or preemption
  (gan_jax/cluster.py requeues the job after the checkpoint).

  A second signal while one is pending raises KeyboardInterrupt at once, unless it comes within
  SAME_REQUEST_SECONDS of the first: then it is the same request delivered twice (a terminal's
  Ctrl-C reaches a process sweep's members directly and again as the SIGTERM the sweep forwards;
  `pkill` does the same) and is ignored. Handlers are installed only on the main thread (Python
  allows no others) and restored on exit. With several processes, process 0's signal decides for
  all (`stop_at`), so every process stops at the same step.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
  SYNC_STEPS = 10  # With several processes: steps between two agreements on whether to stop.
  SAME_REQUEST_SECONDS = 1.0

  def __init__(self):
    self.received: int | None = None
    self._received_at = 0.0
    self._previous = {}

  def _handle(self, signum, frame) -> None:
    del frame
    if self.received is not None:
      if time.monotonic() - self._received_at < self.SAME_REQUEST_SECONDS:
        return
      raise KeyboardInterrupt(f'second {signal.Signals(signum).name}: stopping without a checkpoint')
    self.received, self._received_at = signum, time.monotonic()
    logging.warning('%s received: finishing the current step, then checkpointing and stopping',
                    signal.Signals(signum).name)

  def stop_at(self, step: int) -> int:
    """The signal that stops the loop after iteration `step`, else 0 (the same in every process)."""
    if jax.process_count() == 1:
      return self.received or 0
    return distributed.from_main(self.received or 0) if step % self.SYNC_STEPS == 0 else 0

  def __enter__(self) -> 'StopSignals':
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)
