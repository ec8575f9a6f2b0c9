"""gan_jax/distributed.py: starting multi-process JAX from flags (the job-environment start is tested in test_cluster.py)."""
import pytest

from gan_jax import distributed
from gan_jax.errors import UserError


def test_distributed_flags_need_a_coordinator(monkeypatch):
  monkeypatch.delenv('JAX_COORDINATOR_ADDRESS', raising=False)
  assert not distributed.initialize_distributed(None, None, None)
  with pytest.raises(UserError, match='need --coordinator'):
    distributed.initialize_distributed(None, 2, 0)
  with pytest.raises(UserError, match='needs --num_processes=N and --process_id'):
    distributed.initialize_distributed('localhost:1234', 2, 2)
