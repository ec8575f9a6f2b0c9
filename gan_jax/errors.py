"""The one exception type for mistakes a user can fix.

Anything raised as `UserError` is printed by `launch.py` as a single line
(`error: <message>`) with exit status 2, never as a traceback. The message must
say what was wrong and how to fix it.
"""


class UserError(Exception):
  """Bad input from the user: a flag, config value, data file or checkpoint."""
