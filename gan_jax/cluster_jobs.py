"""What runs inside a cluster job (every task of it): submitit Checkpointables submitted by gan_jax/cluster.py.

When SIGUSR2 (the time-limit or preemption warning of SLURM and LocalExecutor) stops training after a
checkpoint, process 0 hands over to submitit's handler, which calls `checkpoint()` (the same call
again) and requeues the job; the requeued job resumes from the run's last checkpoint.
"""
import pathlib
import signal
import sys
from typing import Any, Callable

from absl import flags
from absl import logging
import submitit

from gan_jax.errors import UserError


def _job_setup() -> None:
  """Logging and the compilation cache, as launch.py sets them up. In this process (--cluster=debug)
  launch.py has done so already."""
  from gan_jax import compile_cache
  from gan_jax import logging as run_log
  if not flags.FLAGS.is_parsed():  # A job process of its own: no command line was parsed.
    flags.FLAGS.mark_as_parsed()
    logging.use_absl_handler()
    logging.set_verbosity(logging.INFO)
    run_log.quiet_library_logs()
  compile_cache.enable()


def _requeue_when_warned(train: Callable[[], Any]) -> Any:
  """Runs `train()`; after SIGUSR2 stopped it, requeues the job (process 0) or exits (the others).
  A UserError prints its one line and exits with status 2, as launch.py does."""
  from gan_jax import stop_signals
  try:
    return train()
  except stop_signals.Interrupted as e:
    if e.signum != signal.SIGUSR2:
      raise
    import jax
    logging.info('stopped for the time limit or preemption: %s', e)
    handler = signal.getsignal(signal.SIGUSR2)  # submitit's, restored when the loop ended.
    if jax.process_index() == 0 and callable(handler):
      handler(signal.SIGUSR2, None)  # Requeues the job, then exits this process.
    sys.exit(0)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


class RunJob(submitit.helpers.Checkpointable):
  """One run: `RunJob()(exp, overrides, workdir)` in every task of the job -> the run's result
  (loop.train_and_evaluate's). Several tasks train it data-parallel through jax.distributed."""

  def __call__(self, exp: str, overrides: list[tuple[str, str]], workdir: str) -> dict[str, Any]:
    _job_setup()
    from gan_jax import distributed
    distributed.initialize_from_job()
    from gan_jax import experiments
    from gan_jax.train import loop
    config = experiments.load_config(exp, overrides)
    return _requeue_when_warned(lambda: loop.train_and_evaluate(config, pathlib.Path(workdir)))


class SweepJob(submitit.helpers.Checkpointable):
  """One array element of a sweep: the members `index_text` names (one, or one group of lanes with
  runner 'vectorized') -> the exit status of sweep_runners.summarize."""

  def __call__(self, exp: str, overrides: list[tuple[str, str]], directory: str, index_text: str, runner: str,
               spec: Any = None) -> int:
    _job_setup()
    from gan_jax import sweep_runners
    sweep = sweep_runners.prepare(exp, overrides, directory, index_text=index_text, spec=spec)
    table = _requeue_when_warned(lambda: sweep_runners.run(sweep, runner))
    return sweep_runners.summarize(sweep, table)
