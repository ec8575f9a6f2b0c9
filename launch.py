"""Runs an experiment: `python launch.py --exp=NAME[:ARG] [--config.a.b=v ...] [--workdir=DIR]`.

`--exp=NAME[:ARG]` loads experiments/NAME.py and calls get_config(ARG); `--config.a.b=v`
overrides any config field (type-checked; unknown keys are an error listing the valid ones).

Sweeps and reports (gan_jax/sweep.py, gan_jax/sweep_runners.py, gan_jax/report.py):
  --sweep [--sweep_filter=loss=hinge,train.seed=0] [--sweep_index=0-3] [--dry_run]
          [--sweep_spec='{"product": {"train.seed": [10, 11]}}'  (JSON: this grid instead of get_sweep())]
          [--runner=sequential|processes|vectorized [--parallel=N]] [--workdir=SWEEP_DIR (reuse it to resume)]
  --sweep --wandb_sweep     writes SWEEP_DIR/sweep.yaml for `wandb sweep` / `wandb agent`
  --report=DIR              report.md, report.csv and plots from the run directories under DIR
  --report=DIR --report_by=FIELD   also the search per value of FIELD (a loss study: per loss by itself)
Several processes (hosts) training one run: start the same command on each, adding
  --coordinator=HOST:PORT --num_processes=N --process_id=I   (or $JAX_COORDINATOR_ADDRESS,
  $JAX_NUM_PROCESSES, $JAX_PROCESS_ID; --coordinator=auto detects SLURM / Cloud TPU / Open MPI).
On a cluster (gan_jax/cluster.py, through submitit), a run or a sweep as SLURM job(s), or as local jobs:
  --cluster=slurm|local|debug [--nodes=1 --tasks_per_node=1 --gpus_per_node=0 --time_min=120 --partition=P
          --cpus_per_task=C --mem_gb=M --slurm_opt=KEY=VALUE --array_parallelism=N --requeues=10]
Mistakes a user can fix print one line `error: ...` and exit with status 2; so does a launch on a
--workdir that another process is training (one writer per run directory: gan_jax/workdir_lock.py).
"""
import datetime
import json
import os
import pathlib
import signal
import sys

from absl import app
from absl import flags
from absl import logging

from gan_jax import cluster
from gan_jax import config as config_lib
from gan_jax import experiments as experiments_lib
from gan_jax import logging as run_log
from gan_jax import sweep_runners
from gan_jax import workdir_lock
from gan_jax.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string('exp', None, 'Experiment NAME[:ARG]: experiments/NAME.py, get_config(ARG).')
flags.DEFINE_string('workdir', None, 'Run directory; default runs/<exp>/<timestamp>. Reuse it to resume.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample'],
                  'train (or resume); eval or sample: use the latest checkpoint in --workdir.')
flags.DEFINE_integer('num_samples', 10_000, 'With --mode=sample: how many samples to write.')
flags.DEFINE_string('out', None, 'With --mode=sample: the .npz file to write (default <workdir>/samples.npz).')
flags.DEFINE_string('labels', None, "With --mode=sample of a class-conditional run: 'balanced' (default), one "
                    'label for all samples, or one comma-separated label per sample (0,1,2).')
flags.DEFINE_bool('sweep', False, "Run the members of the experiment's get_sweep(); --workdir is the sweep directory.")
flags.DEFINE_string('sweep_filter', None, 'Sweep members whose values match, e.g. loss=hinge,train.seed=0 '
                    '(a key given twice matches either value).')
flags.DEFINE_string('sweep_index', None, 'Sweep members by index as --dry_run lists them: 3, 0,2 or 4-7.')
flags.DEFINE_string('sweep_spec', None, "With --sweep: a grid as JSON (gan_jax/sweep.py's spec) instead of the "
                    "experiment's get_sweep(), e.g. more seeds of one row.")
flags.DEFINE_bool('dry_run', False, 'Print the resolved config (or the sweep members) and exit.')
flags.DEFINE_enum('runner', 'sequential', list(sweep_runners.RUNNERS), 'How sweep members run.')
flags.DEFINE_integer('parallel', None, 'Concurrent members of --runner=processes (default one per local GPU).')
flags.DEFINE_bool('wandb_sweep', False, 'With --sweep: write sweep.yaml for the W&B sweep controller; run nothing.')
flags.DEFINE_string('report', None, 'Write report.md, report.csv and plots for the runs under this directory.')
flags.DEFINE_string('report_by', None, 'With --report: a config field; the report also shows the search per value '
                    'of it (best configuration, median and range, strip plot).')
flags.DEFINE_string('coordinator', None, "Multi-process training: process 0's HOST:PORT (every process passes the "
                    "same), or 'auto' to detect the cluster.")
flags.DEFINE_integer('num_processes', None, 'Multi-process training: how many processes take part.')
flags.DEFINE_integer('process_id', None, "Multi-process training: this process's index, 0..num_processes-1.")

_overrides: list[tuple[str, str]] = []


def parse_flags(argv: list[str]) -> list[str]:
  """Takes `--config.KEY=VALUE` arguments out of argv (kept in _overrides), then parses absl flags."""
  try:
    overrides, rest = config_lib.split_override_args(argv)
    _overrides.extend(overrides)
    return FLAGS(rest)
  except (UserError, flags.Error) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> int:
  run_log.quiet_library_logs()
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {" ".join(argv[1:])}; flags take the form --name=value')
  if FLAGS.report:
    from gan_jax import report
    print(report.write_report(FLAGS.report, by=FLAGS.report_by))
    return 0
  if FLAGS.report_by:
    raise UserError('--report_by needs --report=DIR')
  if not FLAGS.exp and FLAGS.mode == 'train':
    raise UserError(f'--exp is required; experiments: {", ".join(experiments_lib.names())}')
  resources = cluster.resources_from_flags()
  if FLAGS.cluster and (FLAGS.mode != 'train' or FLAGS.dry_run or FLAGS.wandb_sweep):
    raise UserError('--cluster trains: it does not combine with --mode=eval|sample, --dry_run or --wandb_sweep')
  for name in ('parallel', 'coordinator', 'num_processes', 'process_id'):
    if FLAGS.cluster and FLAGS[name].present:
      raise UserError(f'--{name} does not apply with --cluster: jobs take their processes from --nodes and '
                      '--tasks_per_node')
  if FLAGS.cluster and FLAGS.sweep:
    return cluster.submit_sweep(FLAGS.exp, _overrides, FLAGS.workdir, FLAGS.sweep_filter, FLAGS.sweep_index,
                                FLAGS.runner, FLAGS.cluster, resources, sweep_runners.parse_spec(FLAGS.sweep_spec))
  if FLAGS.sweep:
    return sweep_runners.launch(FLAGS.exp, _overrides, FLAGS.workdir, FLAGS.sweep_filter, FLAGS.sweep_index,
                                FLAGS.dry_run, FLAGS.runner, FLAGS.parallel, FLAGS.wandb_sweep,
                                sweep_runners.parse_spec(FLAGS.sweep_spec))
  for name in ('sweep_filter', 'sweep_index', 'sweep_spec', 'runner', 'parallel', 'wandb_sweep'):
    if FLAGS[name].present:
      raise UserError(f'--{name} needs --sweep')
  if FLAGS.mode != 'train':
    return from_checkpoint(FLAGS.mode)
  for name in ('num_samples', 'out', 'labels'):
    if FLAGS[name].present:
      raise UserError(f'--{name} needs --mode=sample')
  config = experiments_lib.load_config(FLAGS.exp, _overrides)
  if FLAGS.dry_run:
    print('\n'.join(f'{k} = {v!r}' for k, v in sorted(config_lib.flatten(config_lib.to_dict(config)).items())))
    return 0
  workdir = FLAGS.workdir
  if workdir is None:
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    if os.environ.get('WANDB_RUN_ID'):  # Under `wandb agent`: runs started in the same second differ.
      stamp += '-' + os.environ['WANDB_RUN_ID']
    workdir = pathlib.Path('runs') / sweep_runners.exp_slug(FLAGS.exp) / stamp
  if FLAGS.cluster:
    return cluster.submit_run(FLAGS.exp, _overrides, pathlib.Path(workdir), FLAGS.cluster, resources)
  from gan_jax import compile_cache  # Imported late: JAX starts only after the flags are valid.
  from gan_jax import distributed
  compile_cache.enable()
  distributed.initialize_distributed(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
  from gan_jax.train import loop
  result = loop.train_and_evaluate(config, pathlib.Path(workdir))
  logging.info('run finished at step %d in %s', result['step'], workdir)
  return 0


def from_checkpoint(mode: str) -> int:
  """--mode=eval|sample on the run in --workdir."""
  if not FLAGS.workdir:
    raise UserError(f'--mode={mode} needs --workdir=DIR, the run directory to read')
  workdir = pathlib.Path(FLAGS.workdir)
  from gan_jax import compile_cache  # JAX starts only after the flags are valid.
  from gan_jax import from_checkpoint as from_checkpoint_lib
  compile_cache.enable()
  if FLAGS.exp:
    config = experiments_lib.load_config(FLAGS.exp, _overrides)
  else:
    config = config_lib.apply_overrides(from_checkpoint_lib.saved_config(workdir), _overrides)
  if mode == 'eval' and FLAGS['labels'].present:
    raise UserError('--labels needs --mode=sample (evaluation draws labels uniformly over the classes)')
  live = workdir_lock.holder(workdir)
  if live:
    print(f'note: {workdir} is being trained by {live.describe()}; reading its latest checkpoint without '
          'taking its lock' + (' (results printed, not appended to its eval.jsonl)' if mode == 'eval' else ''),
          file=sys.stderr)
  if mode == 'eval':
    print(json.dumps(from_checkpoint_lib.evaluate(config, workdir, append=not live)))
  else:
    out = from_checkpoint_lib.sample(config, workdir, FLAGS.num_samples, FLAGS.out or workdir / 'samples.npz',
                                     FLAGS.labels)
    print(f'wrote {FLAGS.num_samples} samples to {out}')
  return 0


def run_main(argv: list[str]) -> None:
  try:
    sys.exit(main(argv))
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt as e:  # stop_signals.Interrupted (checkpointed) or a second signal (not).
    print(f'interrupted: {e}', file=sys.stderr)
    sys.exit(128 + getattr(e, 'signum', signal.SIGINT))


if __name__ == '__main__':
  app.run(run_main, flags_parser=parse_flags)
