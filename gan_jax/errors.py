"""The one exception type for mistakes a user can fix.

Anything raised as `UserError` is printed by `launch.py` as a single line
(`error: <message>`) with exit status 2, never as a traceback. The message must
say what was wrong and how to fix it.
"""


class UserError(Exception):
  """Bad input from the user: a flag, config value, data file or checkpoint."""


def reported_error(log: str, otherwise: str, log_path) -> str:
  """Why a child `launch.py` failed, from its stderr `log` (kept at `log_path`): its last
  `error: ` line; else `otherwise`, the log's last non-empty line and where the log is."""
  lines = [line for line in log.splitlines() if line.strip()]
  errors = [line for line in lines if line.startswith('error: ')]
  if errors:
    return errors[-1]
  return otherwise + (f': {lines[-1]}' if lines else '') + f' (log: {log_path})'
