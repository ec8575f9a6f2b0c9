"""Where dataset files live on disk, and one clear error when they are not there.

Search order for a dataset's directory:
  1. `config.data.dir` (if set),
  2. `$GAN_JAX_DATA`,
  3. the default search path `DEFAULT_SEARCH_PATH`: `./data`, `<repo>/data`, `<repo>/../shared/data`,
     `~/.gan_jax/data`.
A dataset named `mnist` is looked for in `<dir>/mnist/` (and in `<dir>/` itself, so pointing
`data.dir` straight at the folder that holds the files also works).
"""
import os
import pathlib

from gan_jax.errors import UserError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_SEARCH_PATH = (
    pathlib.Path('data'),
    REPO_ROOT / 'data',
    REPO_ROOT.parent / 'shared' / 'data',
    pathlib.Path('~/.gan_jax/data').expanduser(),
)


def search_path(data_dir: str = '') -> list[pathlib.Path]:
  """The directories searched for dataset files, in order."""
  if data_dir:
    return [pathlib.Path(data_dir).expanduser()]
  env = os.environ.get('GAN_JAX_DATA', '')
  if env:
    return [pathlib.Path(env).expanduser()]
  return list(DEFAULT_SEARCH_PATH)


def find_dataset_dir(dataset: str, data_dir: str, any_of: tuple[str, ...], how_to_get: str) -> pathlib.Path:
  """Returns the directory holding at least one of `any_of` for `dataset`.

  Args:
    dataset: subdirectory name, e.g. 'mnist'.
    data_dir: `config.data.dir`; empty means `$GAN_JAX_DATA`, then the default search path.
    any_of: file names of which one must exist in the directory.
    how_to_get: a sentence telling the user where to obtain the files.

  Raises:
    UserError naming the places looked in, the expected files and how to get them.
  """
  candidates = []
  for root in search_path(data_dir):
    candidates += [root / dataset, root]
  for cand in candidates:
    if any((cand / name).exists() for name in any_of):
      return cand
  looked = ', '.join(str(c) for c in candidates)
  raise UserError(
      f'dataset {dataset!r}: none of {", ".join(any_of)} found (looked in {looked}). '
      f'Set --config.data.dir or $GAN_JAX_DATA to the folder holding them. {how_to_get}')
