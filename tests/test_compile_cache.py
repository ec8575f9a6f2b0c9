"""The persistent compilation cache: a relaunch loads its compiled iteration instead of compiling it."""
import re

from tests.test_cli import launch

LOADED = re.compile(r'compiled the \S+ iteration .* \(loaded from the persistent compilation cache\)')


def test_a_second_launch_loads_the_iteration_the_first_one_compiled(tmp_path, monkeypatch):
  cache = tmp_path / 'cache'
  env = {'GAN_JAX_CACHE': str(cache), 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'}  # Smoke programs compile fast.
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)  # It would take precedence over $GAN_JAX_CACHE.
  args = ['--exp=vanilla:smoke', '--config.train.steps=2', '--config.log.wandb=disabled']
  first = launch(*args, f'--workdir={tmp_path / "first"}', env_extra=env)
  assert first.returncode == 0, first.stderr
  assert re.search(r'compiled the \S+ iteration', first.stderr) and not LOADED.search(first.stderr), first.stderr
  assert any(path.is_file() for path in cache.rglob('*')), 'nothing written to $GAN_JAX_CACHE'
  second = launch(*args, f'--workdir={tmp_path / "second"}', env_extra=env)  # Another run, the same programs.
  assert second.returncode == 0, second.stderr
  assert LOADED.search(second.stderr), second.stderr
