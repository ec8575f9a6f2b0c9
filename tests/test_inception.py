"""The Flax FID Inception against an independent torch reference with random weights.

The reference's BatchNorm running statistics are set from a calibration batch (so
activations stay O(1) through all 94 conv layers) and then perturbed per channel, and the
BatchNorm affine parameters and the fc bias are random, so a mistake in any mapped
tensor, layout, padding or pooling mode shows up in the outputs.
"""
import os

import numpy as np
import pytest

# Skipped without torch on a user's machine; CI sets GAN_JAX_REQUIRE_TORCH=1 so that a failed
# install fails the suite instead of skipping these tests silently.
torch = __import__('torch') if os.environ.get('GAN_JAX_REQUIRE_TORCH') else pytest.importorskip('torch')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
from tests import inception_torch_reference as reference_lib  # pylint: disable=g-import-not-at-top

RTOL = 1e-4


def _randomized_reference() -> torch.nn.Module:
  torch.manual_seed(0)
  model = reference_lib.FIDInceptionReference()
  bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for bn in bns:
      bn.weight.uniform_(0.5, 1.5)
      bn.bias.uniform_(-0.2, 0.2)
      bn.momentum = None  # One training-mode pass sets the running stats to its batch stats.
      bn.reset_running_stats()
    model.train()
    model(torch.rand(2, 3, 299, 299) * 2 - 1)
    model.eval()
    for bn in bns:
      bn.running_mean.add_(0.1 * bn.running_var.sqrt() * torch.randn_like(bn.running_mean))
      bn.running_var.mul_(torch.empty_like(bn.running_var).uniform_(0.5, 2.0))
    model.fc.bias.uniform_(-1.0, 1.0)
  return model


@pytest.fixture(scope='module')
def reference():
  model = _randomized_reference()
  state_dict = model.state_dict()
  return model, state_dict, inception.load_torch_state_dict(state_dict)


def _torch_outputs(model, images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  with torch.no_grad():
    pool, logits = model(torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous())
  return pool.numpy(), logits.numpy()


def _images(seed: int, shape: tuple[int, ...]) -> np.ndarray:
  return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def _assert_close(actual, desired) -> None:
  """Relative agreement to RTOL both ways, with atol 1e-5 of the largest |value|."""
  actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
  assert actual.shape == desired.shape
  atol = 1e-5 * np.max(np.abs(desired))
  np.testing.assert_allclose(actual, desired, rtol=RTOL, atol=atol)
  np.testing.assert_allclose(desired, actual, rtol=RTOL, atol=atol)


@pytest.mark.parametrize('in_shape', [(2, 32, 32, 3), (1, 400, 360, 1)])
def test_resize_matches_torch_interpolate(in_shape):
  images = _images(1, in_shape)
  ours = np.asarray(inception.preprocess(jnp.asarray(images)))
  theirs = F.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2), size=(299, 299),
                         mode='bilinear', align_corners=False)
  theirs = theirs.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_matches_torch_at_299(reference):
  model, _, variables = reference
  images = _images(2, (2, 299, 299, 3))
  pool, logits = inception.make_feature_fn(variables, logits_bias=True)(images)
  want_pool, want_logits = _torch_outputs(model, images)
  assert pool.dtype == logits.dtype == jnp.float32
  assert pool.shape == (2, 2048) and logits.shape == (2, 1008)
  _assert_close(pool, want_pool)
  _assert_close(logits, want_logits)


def test_matches_torch_through_resize_grayscale_and_chunks(reference):
  model, state_dict, variables = reference
  images = _images(3, (3, 32, 32, 1))
  pool, logits = inception.make_feature_fn(variables, batch_size=2)(images)  # Chunks 2 + 1 (padded).
  want_pool, _ = _torch_outputs(model, images)
  want_logits = want_pool.astype(np.float64) @ state_dict['fc.weight'].numpy().T.astype(np.float64)
  _assert_close(pool, want_pool)
  _assert_close(logits, want_logits)  # Default: no fc bias, the reference IS logits.


def test_converter_and_weight_files_round_trip(reference, tmp_path):
  _, state_dict, variables = reference
  pth, npz = tmp_path / 'weights.pth', tmp_path / 'weights.npz'
  torch.save(state_dict, pth)
  inception.main([f'--torch_weights={pth}', f'--out={npz}'])
  images = _images(2, (2, 299, 299, 3))
  want = inception.make_feature_fn(variables)(images)
  for path in (npz, pth):
    loaded = inception.load_weights(path)
    got = inception.make_feature_fn(loaded)(images)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(want[1]))


def test_missing_unexpected_and_misshapen_keys(reference):
  _, state_dict, _ = reference
  missing = dict(state_dict)
  del missing['Mixed_6c.branch7x7_2.bn.running_var']
  with pytest.raises(UserError, match=r"missing key\(s\) 'Mixed_6c\.branch7x7_2\.bn\.running_var'"):
    inception.load_torch_state_dict(missing)
  extra = dict(state_dict, **{'AuxLogits.fc.weight': torch.zeros(1008, 768)})
  with pytest.raises(UserError, match=r"unexpected key\(s\) 'AuxLogits\.fc\.weight'"):
    inception.load_torch_state_dict(extra)
  misshapen = dict(state_dict, **{'fc.weight': torch.zeros(1000, 2048)})
  with pytest.raises(UserError, match=r"'fc\.weight' has shape \(1000, 2048\), expected \(1008, 2048\)"):
    inception.load_torch_state_dict(misshapen)


def test_bad_weight_files(tmp_path):
  with pytest.raises(UserError, match='not found'):
    inception.load_weights(tmp_path / 'absent.npz')
  corrupt = tmp_path / 'corrupt.npz'
  corrupt.write_bytes(b'not a zip file')
  with pytest.raises(UserError, match='cannot read'):
    inception.load_weights(corrupt)
  wrong = tmp_path / 'wrong.npz'
  np.savez(wrong, x=np.zeros(3))
  with pytest.raises(UserError, match='missing key'):
    inception.load_weights(wrong)
  with pytest.raises(UserError, match='C = 1 or 3'):
    inception.preprocess(jnp.zeros((1, 8, 8, 2)))

