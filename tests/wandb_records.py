"""Reads the records of an offline W&B run file (`run-<id>.wandb`) for tests.

wandb 0.31 has no public reader for these files. They are a LevelDB-style log: a 7-byte header
(':W&B', a 2-byte magic, a version byte), then 32 KiB blocks of chunks, each with a 7-byte header
(crc32c uint32, length uint16, type uint8: 1 full, 2 first, 3 middle, 4 last); every assembled
record is a serialized `wandb_internal_pb2.Record`.
"""
import pathlib
import struct

from wandb.proto import wandb_internal_pb2

_BLOCK = 32 * 1024
_HEADER = 7


def read_records(path: pathlib.Path) -> list:
  data = pathlib.Path(path).read_bytes()
  assert data[:4] == b':W&B', f'{path} is not a W&B run file'
  records, pending, pos = [], b'', _HEADER
  while pos + _HEADER <= len(data):
    left_in_block = _BLOCK - pos % _BLOCK
    if left_in_block < _HEADER:
      pos += left_in_block
      continue
    _, length, kind = struct.unpack('<IHB', data[pos:pos + _HEADER])
    if length == 0 and kind == 0:  # Zero padding to the end of the block.
      pos += left_in_block
      continue
    chunk = data[pos + _HEADER:pos + _HEADER + length]
    pos += _HEADER + length
    if kind in (1, 2):
      pending = chunk
    else:
      pending += chunk
    if kind in (1, 4):
      record = wandb_internal_pb2.Record()
      record.ParseFromString(pending)
      records.append(record)
  return records


def summary(run_dir: pathlib.Path) -> dict:
  """{'exit_code': int or None, 'history_steps': [...]} of the one offline run under run_dir/wandb."""
  files = list(pathlib.Path(run_dir).glob('wandb/offline-run-*/run-*.wandb'))
  assert len(files) == 1, f'expected one offline W&B run under {run_dir}, found {files}'
  exit_code, steps = None, []
  for record in read_records(files[0]):
    kind = record.WhichOneof('record_type')
    if kind == 'exit':
      exit_code = record.exit.exit_code
    elif kind == 'history':
      steps.append(record.history.step.num)
  return {'exit_code': exit_code, 'history_steps': steps}
