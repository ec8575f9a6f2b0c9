"""The one-line progress report of a long run: step, steps/s, ETA and the latest losses."""
import time

LINE_SECONDS = 15.0       # Between log steps, a progress line at least this often,
FIRST_LINE_SECONDS = 3.0  # and the first this soon after compilation.


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


class Progress:
  """Measures throughput between reports; `report()` returns steps/s and the progress line.

  `training_seconds`: wall time since construction, compilation included, less what `exclude`
  took out (evaluation, a measurement cost rather than training). `line_due()`: whether a line
  is owed by time (LINE_SECONDS since the last, FIRST_LINE_SECONDS after `compiled`).
  """

  def __init__(self, start_step: int, total_steps: int):
    self.total = total_steps
    self._last_step = start_step
    self._last_time = self._started = self._last_line = time.perf_counter()
    self._excluded = 0.0
    self._due_at = None

  def compiled(self, step: int) -> None:
    """The program is compiled: throughput counts from here, and the first line comes soon."""
    self.restart_clock(step)
    self._last_line = self._last_time - LINE_SECONDS + FIRST_LINE_SECONDS

  def line_due(self) -> bool:
    """Whether a line is owed by time. The host runs ahead of the device, so the line is printed
    only when the device catches up; the next one is timed from now, when it fell due."""
    now = time.perf_counter()
    if now - self._last_line < LINE_SECONDS:
      return False
    self._due_at = now
    return True

  @property
  def training_seconds(self) -> float:
    return time.perf_counter() - self._started - self._excluded

  def exclude(self, seconds: float) -> None:
    self._excluded += seconds

  def restart_clock(self, step: int) -> None:
    """Resets the reference point (e.g. after compiling, so compile time is not counted)."""
    self._last_step = step
    self._last_time = time.perf_counter()

  def report(self, step: int, scalars: dict[str, float]) -> tuple[float, str]:
    now = time.perf_counter()
    elapsed = now - self._last_time
    steps_per_sec = (step - self._last_step) / elapsed if elapsed > 0 else float('nan')
    self._last_step, self._last_time = step, now
    self._last_line, self._due_at = self._due_at or now, None
    eta = (self.total - step) / steps_per_sec if steps_per_sec > 0 else float('nan')
    shown = ' '.join(f'{k} {v:.4g}' for k, v in scalars.items())
    line = (f'step {step}/{self.total} ({100.0 * step / self.total:.0f}%) | {steps_per_sec:.2f} steps/s | '
            f'ETA {format_duration(eta) if eta == eta else "?"} | {shown}')
    return steps_per_sec, line
