"""Loads a script of bench/ as a module, for tests of the tables and pages those scripts write."""
import importlib.util
import pathlib
import types

BENCH_DIR = pathlib.Path(__file__).resolve().parents[1] / 'bench'


def load(name: str) -> types.ModuleType:
  """bench/<name>.py, imported under `name` (its main() not run)."""
  spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
