"""Scaffolding shared by the problem nodes: argument checks, sample keys, batched generation
and the data-file choice (a user's file at `data_path`, else the generated cache)."""

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import jax
import jax.random as jr
import numpy as np
from jaxtyping import PRNGKeyArray

from pdeopt.data import DataFile, read_data_file, read_or_generate


def check_positive_integers(problem, names: Iterable[str]) -> None:
    """Raise a `ValueError` naming `problem.<name>` for the first attribute that is not an
    integer ≥ 1."""
    for name in names:
        value = getattr(problem, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"problem.{name} must be a positive integer, got {value!r}.")


def sample_keys(seed: int, seeds: Sequence[int]) -> PRNGKeyArray:
    """The key of each sample seed i: `fold_in(key(seed), i)`, so that a sample does not
    depend on which other samples are drawn."""
    return jax.vmap(lambda i: jr.fold_in(jr.key(seed), i))(np.asarray(seeds))


def solve_in_batches(solve: Callable, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """`solve` applied to consecutive chunks of `batch_size` inputs, concatenated (NumPy)."""
    return np.concatenate(
        [np.asarray(solve(inputs[s : s + batch_size])) for s in range(0, len(inputs), batch_size)]
    )


def read_problem_data(problem, **generate_options) -> tuple[str | Path, DataFile]:
    """The file at `problem.data_path` if set, else the problem's cache at `problem.cache_path`
    (generated first if absent, with `read_or_generate(..., **generate_options)`); returns the
    path read and the file."""
    if problem.data_path is not None:
        return problem.data_path, read_data_file(problem.data_path)
    return problem.cache_path, read_or_generate(problem, problem.cache_path, **generate_options)
