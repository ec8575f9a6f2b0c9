"""One writer per run directory: an exclusive OS advisory lock on `<workdir>/lock`.

A process that trains a run holds the lock (flock) from before it writes the first file until
the run ends. The kernel releases it when the process exits, however it exits (kill -9 too), so a
lock is never stale. While held, the file names the holder: {"pid", "host", "since"}.

  with workdir_lock.hold(workdir):     # raises InUse (exit status 2 in launch.py) if another holds it
    ...train...
  workdir_lock.holder(workdir)         # Holder or None, without taking the lock (eval / sample)

`hold` is re-entrant within a process (a sweep runner claims a member, then the loop holds it
again for the same run). On a filesystem without flock support (some network filesystems) the
lock is skipped with one warning: two launches on one workdir are then not kept apart.
"""
import contextlib
import dataclasses
import datetime
import errno
import fcntl
import json
import os
import pathlib
import socket
import time
from typing import Iterator

from absl import logging

from gan_jax.errors import UserError

LOCK_FILE = 'lock'
# A failed attempt is retried for this long: a reader's probe (`holder`) holds a shared lock for
# microseconds, which must not make a launch give up.
RETRY_SECONDS = 1.0
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@dataclasses.dataclass(frozen=True)
class Holder:
  """Who holds a run directory's lock: process id, host name and start time (ISO 8601, UTC)."""
  pid: int | None
  host: str
  since: str

  def describe(self) -> str:
    return f'pid {self.pid if self.pid is not None else "?"} on {self.host or "?"} since {self.since or "?"}'


class InUse(UserError):
  """Another process holds the run directory's lock."""

  def __init__(self, workdir: pathlib.Path, holder: Holder):
    self.workdir, self.holder = workdir, holder
    super().__init__(f'{workdir} is in use by {holder.describe()}; wait for it, stop it, or choose another --workdir')


_held: dict[pathlib.Path, list] = {}  # lock path -> [fd or None (unsupported filesystem), depth]
_warned_unsupported = False


def _lock_path(workdir: os.PathLike) -> pathlib.Path:
  return pathlib.Path(workdir).resolve() / LOCK_FILE


def _read_holder(path: pathlib.Path) -> Holder:
  try:
    record = json.loads(path.read_text() or '{}')
  except (OSError, json.JSONDecodeError):
    record = {}
  return Holder(record.get('pid'), record.get('host', ''), record.get('since', ''))


def _try_flock(fd: int, operation: int) -> bool:
  """flock(fd, operation | LOCK_NB), retried for RETRY_SECONDS; False if another process holds it."""
  deadline = time.monotonic() + RETRY_SECONDS
  while True:
    try:
      fcntl.flock(fd, operation | fcntl.LOCK_NB)
      return True
    except BlockingIOError:
      if time.monotonic() >= deadline:
        return False
      time.sleep(0.05)


def _warn_unsupported(path: pathlib.Path, e: OSError) -> None:
  global _warned_unsupported
  if not _warned_unsupported:
    logging.warning('the filesystem of %s does not support file locks (%s): training goes on without the '
                    'one-writer lock, so nothing stops a second launch on the same --workdir from writing '
                    'the same run and corrupting its metrics and checkpoints', path.parent, e)
    _warned_unsupported = True


@contextlib.contextmanager
def hold(workdir: os.PathLike) -> Iterator[None]:
  """Holds the lock of `workdir` (created if missing) for the `with` block.

  On contention nothing in the directory is changed: the lock file is opened, not truncated.

  Raises:
    InUse naming the holder if another process holds the lock.
  """
  path = _lock_path(workdir)
  if path in _held:
    _held[path][1] += 1
    try:
      yield
    finally:
      _held[path][1] -= 1
    return
  path.parent.mkdir(parents=True, exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    if not _try_flock(fd, fcntl.LOCK_EX):
      raise InUse(path.parent, _read_holder(path))
  except OSError as e:
    if e.errno not in _UNSUPPORTED:
      os.close(fd)
      raise
    _warn_unsupported(path, e)
    os.close(fd)
    fd = None
  except BaseException:
    os.close(fd)
    raise
  if fd is not None:
    since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    record = json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'since': since}) + '\n'
    os.ftruncate(fd, 0)
    os.pwrite(fd, record.encode(), 0)
  _held[path] = [fd, 1]
  try:
    yield
  finally:
    _held[path][1] -= 1
    if not _held[path][1]:
      del _held[path]
      if fd is not None:
        os.ftruncate(fd, 0)  # The holder's record goes with the lock.
        os.close(fd)


def holder(workdir: os.PathLike) -> Holder | None:
  """The process holding `workdir`'s lock, or None if none does (or the filesystem has no locks).

  Takes no lock a writer could wait on for longer than a moment, and writes nothing.
  """
  path = _lock_path(workdir)
  if path in _held:
    return _read_holder(path)
  try:
    fd = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except BlockingIOError:
    return _read_holder(path)
  except OSError as e:
    if e.errno in _UNSUPPORTED:
      return None
    raise
  finally:
    os.close(fd)  # Closing releases the probe's shared lock.
  return None
