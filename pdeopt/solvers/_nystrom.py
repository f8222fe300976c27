"""Conjugate gradients with a randomized Nyström preconditioner."""

from collections.abc import Callable
from typing import Any, TypeAlias

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.scipy as jsp
import lineax as lx
import lineax.internal as lxi
from jaxtyping import Array, Float, PyTree, Scalar

from ._sketches import check_positive_int
from ._sketching import AbstractRandomizedLinearSolver

_NystromState: TypeAlias = tuple[Any, Float[Array, "n rank"], Float[Array, " rank"], Any]


class NystromPCG(AbstractRandomizedLinearSolver):
    """Conjugate gradients preconditioned by a randomized rank-ℓ Nyström approximation.

    `init` draws a Gaussian test matrix Ω ∈ R^{N×ℓ}, applies the operator to its ℓ columns
    (ℓ matvecs, matrix-free) and builds the Nyström approximation Â = U Λ̂ Uᵀ ≈ A (stabilised
    with a shift ν = √N·eps·‖AΩ‖). `compute` then runs `lineax.CG` with the preconditioner

        P⁻¹ = λ̂_ℓ U Λ̂⁻¹ Uᵀ + (I − UUᵀ),

    which maps the ℓ largest eigenvalues of A to about λ̂_ℓ. This pays off when A has ℓ large
    outlying eigenvalues (fast spectral decay).

    This is not sketch-and-project: the randomness is only in the preconditioner, and the
    tolerances, `norm` (the max-norm by default) and stopping test are exactly those of
    `lineax.CG`, so `NystromPCG(rtol, atol)` stops where `lineax.CG(rtol, atol)` with the same
    preconditioner would. `stats` holds `num_steps` and `max_steps` (the cap in force).

    The operator must be symmetric positive (semi)definite, tagged
    `lineax.positive_semidefinite_tag`; `init` raises otherwise. **For symmetric indefinite
    systems such as KKT matrices use `lineax.Normal(NystromPCG(...))`**: that applies the
    method to the normal operator KᵀK (which `lineax.Normal` tags PSD), squaring the condition
    number that the Nyström preconditioner then reduces.

    **Arguments:**

    - `rtol`: relative tolerance, as for `lineax.CG`.
    - `atol`: absolute tolerance, as for `lineax.CG`.
    - `norm`: the norm of CG's stopping test; the max-norm (`lineax.internal.max_norm`) by
        default, as for `lineax.CG`.
    - `rank`: ℓ, the rank of the Nyström approximation (capped at N).
    - `max_steps`: the maximum number of CG steps; `None` means 10·N, `lineax.CG`'s default
        (CG converges in at most N steps in exact arithmetic). Reaching it returns
        `lineax.RESULTS.max_steps_reached`.
    - `seed`: the seed used when `options["key"]` is not given.

    `options["y0"]` is passed on to CG as a warm start; `transpose` and `conj` drop it.

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
    norm: Callable[[PyTree[Array]], Scalar] = lxi.max_norm
    rank: int = eqx.field(static=True, default=10)
    max_steps: int | None = None
    seed: int = 0

    def __check_init__(self):
        check_positive_int("NystromPCG", "rank", self.rank)

    def modelled_flops(self, num_steps, size):
        rank = min(self.rank, size)  # ℓ matvecs + QR/SVD once, one matvec and P⁻¹ per step
        setup = 2.0 * rank * size**2 + 6.0 * size * rank**2
        return setup + num_steps * (2.0 * size**2 + 4.0 * size * rank)

    def _cg(self, size: int) -> lx.CG:
        max_steps = 10 * size if self.max_steps is None else self.max_steps
        return lx.CG(rtol=self.rtol, atol=self.atol, norm=self.norm, max_steps=max_steps)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]) -> _NystromState:
        if not lx.is_positive_semidefinite(operator):
            raise ValueError(
                "`NystromPCG` needs a symmetric positive semidefinite operator, and this one "
                "is not tagged `lx.positive_semidefinite_tag`. For an indefinite or "
                "nonsymmetric operator (e.g. a KKT matrix) solve the normal equations with "
                "`lx.Normal(NystromPCG(...))`; for an operator that is positive semidefinite, "
                "tag it: `lx.TaggedLinearOperator(operator, lx.positive_semidefinite_tag)`, or "
                "`tags=lx.positive_semidefinite_tag` where it is built."
            )
        size = operator.in_size()
        cg_state = self._cg(size).init(operator, {})
        packed = lxi.pack_structures(operator)
        rank = min(self.rank, size)
        dtype = jnp.result_type(*jax.tree.leaves(operator.in_structure()))

        def mv(z):
            return lxi.ravel_vector(operator.mv(lxi.unravel_solution(z, packed)), packed)

        omega = jr.normal(self._key(options), (size, rank), dtype)
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
        cg = self._cg(u.shape[0])
        solution, result, stats = cg.compute(cg_state, vector, cg_options)
        return solution, result, {"num_steps": stats["num_steps"], "max_steps": cg.max_steps}

    def transpose(self, state: _NystromState, options: dict[str, Any]):
        # A is symmetric, so the Nyström factors are unchanged.
        cg_state, u, eigs, packed = state
        cg_state, _ = self._cg(u.shape[0]).transpose(cg_state, {})
        transpose_state = cg_state, u, eigs, lxi.transpose_packed_structures(packed)
        return transpose_state, self._keep_key(options)

    def conj(self, state: _NystromState, options: dict[str, Any]):
        cg_state, u, eigs, packed = state
        cg_state, _ = self._cg(u.shape[0]).conj(cg_state, {})
        return (cg_state, jnp.conj(u), eigs, packed), self._keep_key(options)
