"""Every shipped experiment: its config and every member of its sweep pass the checks a run makes."""
import pytest

from gan_jax import experiments
from gan_jax import sweep_runners


@pytest.mark.parametrize('exp', experiments.names())
def test_every_sweep_member_of_every_experiment_is_a_valid_run(exp, tmp_path):
  sweep = sweep_runners.prepare(exp, [], tmp_path / 'sweep')
  assert sweep.jobs
  sweep_runners.validate(sweep)  # Raises UserError naming the first member a run would refuse.


def test_loss_study_gives_every_loss_the_same_hyperparameter_draws(tmp_path):
  sweep = sweep_runners.prepare('loss_study', [], tmp_path / 'sweep')
  by_loss: dict[tuple, list] = {}
  for job in sweep.jobs:
    c = job.config
    loss = (c.loss, c.model.d_norm, c.penalty.clip > 0, c.penalty.gp > 0, c.penalty.dragan > 0)
    by_loss.setdefault(loss, []).append((c.optim.g.lr, c.optim.d.lr, c.optim.g.b1, c.optim.d.b1, c.train.d_steps))
  assert len(by_loss) == 7 and all(len(draws) == 8 for draws in by_loss.values())
  assert len({tuple(draws) for draws in by_loss.values()}) == 1  # Common random numbers across losses.
