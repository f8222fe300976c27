"""The diffusion–reaction learning problem: PDE, reference data and its HDF5 cache."""

import dataclasses
from typing import ClassVar

import jax
import numpy as np

from pdeopt.constraints import FiniteDifference

from .._base import AbstractProblem
from ._pde import DiffusionReaction
from ._solver import ReferenceSolver, sample_initial_condition


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiffusionReactionProblem(AbstractProblem):
    """1-D diffusion–reaction as a learning problem: u0 ↦ u (the Hydra `problem` node).

    Sample i's initial condition is `sample_initial_condition(pde, key=jr.fold_in(jr.key(seed),
    i))`; data are cached in PDEBench's single-file layout (`tensor` `[N, nt, nx]`,
    `x-coordinate`, `t-coordinate`), like `ReacDiff_Nu0.5_Rho1.0.hdf5`, which is read instead
    by setting `data_path` (its grid must be `nt × nx`).

    **Arguments:** `nx`, `nt`, `nu`, `rho`, `t_final`, `accuracy` (see `DiffusionReaction`),
    `solver`, and the common ones of `problems.AbstractProblem`.
    """

    nx: int = 64
    nt: int = 21
    nu: float = 0.5
    rho: float = 1.0
    t_final: float = 1.0
    accuracy: int = 2
    n_train: int = 32
    n_test: int = 8
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)

    name: ClassVar[str] = "diffusion_reaction"

    @property
    def pde(self) -> DiffusionReaction:
        return DiffusionReaction(
            nx=self.nx,
            nt=self.nt,
            nu=self.nu,
            rho=self.rho,
            t_final=self.t_final,
            derivatives=FiniteDifference(accuracy=self.accuracy),
        )

    def sample_inputs(self, pde, seeds):
        keys = self.sample_keys(seeds)
        return np.asarray(jax.vmap(lambda k: sample_initial_condition(pde, key=k))(keys))
