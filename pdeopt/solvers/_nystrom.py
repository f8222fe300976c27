"""Conjugate gradients with a randomized Nyström preconditioner."""

from typing import Any, TypeAlias

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.scipy as jsp
import lineax as lx
import lineax.internal as lxi
from jaxtyping import Array, Float, PyTree

from ._sketches import check_positive_int
from ._sketching import AbstractSketchSolver, key_from_options, transpose_options

_NystromState: TypeAlias = tuple[Any, Float[Array, "n rank"], Float[Array, " rank"], Any]


class NystromPCG(AbstractSketchSolver):
    """Conjugate gradients preconditioned by a randomized rank-ℓ Nyström approximation.

    `init` draws a Gaussian test matrix Ω ∈ R^{N×ℓ}, applies the operator to its ℓ columns
    (ℓ matvecs, matrix-free) and builds the Nyström approximation Â = U Λ̂ Uᵀ ≈ A (stabilised
    with a shift ν = √N·eps·‖AΩ‖). `compute` then runs `lineax.CG` with the preconditioner

        P⁻¹ = λ̂_ℓ U Λ̂⁻¹ Uᵀ + (I − UUᵀ),

    which maps the ℓ largest eigenvalues of A to about λ̂_ℓ. This pays off when A has ℓ large
    outlying eigenvalues (fast spectral decay). Tolerances are those of `lineax.CG`.

    The operator must be symmetric positive (semi)definite, tagged
    `lineax.positive_semidefinite_tag`. **For symmetric indefinite systems such as KKT
    matrices use `lineax.Normal(NystromPCG(...))`**: that applies the method to the normal
    operator KᵀK (which `lineax.Normal` tags PSD), squaring the condition number that the
    Nyström preconditioner then reduces.

    **Arguments:**

    - `rtol`: relative tolerance, as for `lineax.CG`.
    - `atol`: absolute tolerance, as for `lineax.CG`.
    - `rank`: ℓ, the rank of the Nyström approximation (capped at N).
    - `max_steps`: the maximum number of CG steps.
    - `seed`: the seed used when `options["key"]` is not given.

    `options["y0"]` is passed on to CG as a warm start.

    ??? cite "References"

        ```bibtex
        @article{frangella2023randomized,
            title={Randomized {N}ystr{\"o}m preconditioning},
            author={Frangella, Zachary and Tropp, Joel A. and Udell, Madeleine},
            journal={SIAM Journal on Matrix Analysis and Applications},
            volume={44},
            number={2},
            pages={718--752},
            year={2023}
        }
        ```
    """

    rtol: float
    atol: float
    rank: int = eqx.field(static=True, default=10)
    max_steps: int = 10_000
    seed: int = 0

    def __check_init__(self):
        check_positive_int("NystromPCG", "rank", self.rank)

    def _cg(self) -> lx.CG:
        return lx.CG(rtol=self.rtol, atol=self.atol, max_steps=self.max_steps)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]) -> _NystromState:
        if not lx.is_positive_semidefinite(operator):
            raise ValueError(
                "`NystromPCG` needs a symmetric positive semidefinite operator tagged "
                "`lx.positive_semidefinite_tag`; for an indefinite or nonsymmetric operator "
                "use `lx.Normal(NystromPCG(...))`."
            )
        cg_state = self._cg().init(operator, {})
        packed = lxi.pack_structures(operator)
        size = operator.in_size()
        rank = min(self.rank, size)
        dtype = jnp.result_type(*jax.tree.leaves(operator.in_structure()))

        def mv(z):
            return lxi.ravel_vector(operator.mv(lxi.unravel_solution(z, packed)), packed)

        omega = jr.normal(key_from_options(options, self.seed), (size, rank), dtype)
        omega, _ = jnp.linalg.qr(omega)
        y = jax.vmap(mv, in_axes=1, out_axes=1)(omega)
        # ‖Y‖₂ from the thin SVD: `jnp.linalg.norm(y, 2)` lowers to a full one (a size² array).
        norm = jnp.linalg.svd(y, full_matrices=False, compute_uv=False)[0]
        shift = jnp.sqrt(size) * jnp.finfo(dtype).eps * norm
        y = y + shift * omega
        chol = jnp.linalg.cholesky(omega.T @ y)
        b = jsp.linalg.solve_triangular(chol, y.T, lower=True).T
        u, sigma, _ = jnp.linalg.svd(b, full_matrices=False)
        eigs = jnp.maximum(sigma**2 - shift, jnp.finfo(dtype).eps * sigma[0] ** 2)
        return cg_state, u, eigs, packed

    def compute(
        self, state: _NystromState, vector: PyTree[Array], options: dict[str, Any]
    ) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
        cg_state, u, eigs, packed = state
        packed_t = lxi.transpose_packed_structures(packed)

        def inverse_preconditioner(v):
            flat = lxi.ravel_vector(v, packed_t)
            coeffs = u.T @ flat
            flat = flat + u @ ((eigs[-1] / eigs - 1) * coeffs)
            return lxi.unravel_solution(flat, packed_t)

        in_structure = jax.eval_shape(lambda: lxi.unravel_solution(u[:, 0], packed_t))
        preconditioner = lx.FunctionLinearOperator(
            inverse_preconditioner, in_structure, lx.positive_semidefinite_tag
        )
        cg_options = {"preconditioner": preconditioner}
        if "y0" in options:
            cg_options["y0"] = options["y0"]
        solution, result, stats = self._cg().compute(cg_state, vector, cg_options)
        return solution, result, {"num_steps": stats["num_steps"]}

    def transpose(self, state: _NystromState, options: dict[str, Any]):
        # A is symmetric, so the Nyström factors are unchanged.
        cg_state, u, eigs, packed = state
        cg_state, _ = self._cg().transpose(cg_state, {})
        transpose_state = cg_state, u, eigs, lxi.transpose_packed_structures(packed)
        return transpose_state, transpose_options(options)

    def conj(self, state: _NystromState, options: dict[str, Any]):
        cg_state, u, eigs, packed = state
        cg_state, _ = self._cg().conj(cg_state, {})
        return (cg_state, jnp.conj(u), eigs, packed), options
