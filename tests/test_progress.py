"""The progress line's timing rules and the training clock, on a clock the test sets."""
import pytest

from gan_jax.train import progress as progress_lib


@pytest.fixture
def clock(monkeypatch):
  now = [1000.0]
  monkeypatch.setattr(progress_lib.time, 'perf_counter', lambda: now[0])
  return now


def test_lines_by_time_come_soon_after_compiling_then_every_interval(clock):
  progress = progress_lib.Progress(0, 1000)
  clock[0] += 30.0  # Compiling.
  progress.compiled(1)
  clock[0] += progress_lib.FIRST_LINE_SECONDS - 0.1
  assert not progress.line_due()
  clock[0] += 0.1
  assert progress.line_due()
  due = clock[0]
  clock[0] += 4.0  # The device catches up with the host before the line is printed.
  steps_per_sec, line = progress.report(41, {'d_loss': 0.5})
  assert steps_per_sec == pytest.approx(40 / (progress_lib.FIRST_LINE_SECONDS + 4.0))
  assert line.startswith('step 41/1000 (4%) | ') and 'ETA' in line and 'd_loss 0.5' in line
  clock[0] = due + progress_lib.LINE_SECONDS - 0.1  # Timed from when the line fell due.
  assert not progress.line_due()
  clock[0] = due + progress_lib.LINE_SECONDS
  assert progress.line_due()


def test_training_seconds_count_compilation_but_not_what_is_excluded(clock):
  progress = progress_lib.Progress(0, 100)
  clock[0] += 10.0
  progress.compiled(1)
  clock[0] += 5.0
  progress.exclude(2.0)  # An evaluation.
  assert progress.training_seconds == pytest.approx(13.0)
