"""Darcy reference solver (matrix-free, through lineax) and the coefficient sampler."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
from jaxtyping import Array, Float, PRNGKeyArray

from ._pde import Darcy, _face_coefficients


class ReferenceSolver(eqx.Module):
    """Solves the 5-point scheme of `Darcy` for u given a and f, through lineax.

    The operator u ↦ −∇_h·(a∇_h u) is a matrix-free `lx.FunctionLinearOperator` (it applies
    `Darcy.interior_residual` without the forcing: the residual's own discretisation),
    tagged symmetric positive definite. The default solver is conjugate gradients with a
    Jacobi preconditioner, O(n²) memory; `lx.LU()` also works (lineax materialises the
    n² × n² matrix: small n only).

    **Arguments:**

    - `linear_solver`: a lineax solver for symmetric positive definite systems.
    - `precondition`: use the Jacobi (diagonal) preconditioner with `lx.CG`.
    """

    linear_solver: lx.AbstractLinearSolver = lx.CG(rtol=1.0e-10, atol=1.0e-12, max_steps=20_000)
    precondition: bool = eqx.field(static=True, default=True)

    def solve(
        self,
        pde: Darcy,
        a: Float[Array, "n n"],
        f: Float[Array, "n n"] | None = None,
    ) -> Float[Array, "n n"]:
        """u on the grid for coefficient a and right-hand side f (default: `pde.forcing`)."""
        a = jnp.asarray(a, jnp.float64)
        f = jnp.full(pde.grid_shape, pde.forcing, a.dtype) if f is None else jnp.asarray(f)
        operator = lx.FunctionLinearOperator(
            lambda u: (
                pde.interior_residual(pde.linear_quantities(u) | pde.interior_coefficients(a), a)
                + pde.forcing
            ),
            jax.ShapeDtypeStruct(pde.grid_shape, a.dtype),
            tags=(lx.symmetric_tag, lx.positive_semidefinite_tag),
        )
        options = {}
        if self.precondition and isinstance(self.linear_solver, lx.CG):
            h = pde.axis.spacing
            a_e, a_w = _face_coefficients(a, 0)
            a_n, a_s = _face_coefficients(a, 1)
            boundary = jnp.ones(pde.n).at[0].set(2.0).at[-1].set(2.0)  # h/2 to the face
            diagonal = (
                a_e * boundary.at[0].set(1.0)[:, None]
                + a_w * boundary.at[-1].set(1.0)[:, None]
                + a_n * boundary.at[0].set(1.0)[None, :]
                + a_s * boundary.at[-1].set(1.0)[None, :]
            ) / h**2
            options["preconditioner"] = lx.TaggedLinearOperator(
                lx.DiagonalLinearOperator(1.0 / diagonal), lx.positive_semidefinite_tag
            )
        return lx.linear_solve(operator, f, self.linear_solver, options=options).value


def sample_coefficients(
    pde: Darcy,
    *,
    key: PRNGKeyArray,
    high: float = 12.0,
    low: float = 3.0,
    alpha: float = 2.0,
    tau: float = 3.0,
) -> Float[Array, "n n"]:
    """One piecewise-constant coefficient: a thresholded Gaussian random field.

    ψ ~ N(0, (−Δ + τ²)^(−α)) with Neumann (cosine) modes on the unit square and no mean mode,
    then a = `high` where ψ ≥ 0 and `low` elsewhere (Li et al. 2021, FNO: α = 2, τ = 3,
    values 12 and 3).
    """
    x, _ = pde.coordinates()
    k = jnp.arange(pde.n, dtype=jnp.float64)
    eigen = jnp.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2
    scale = eigen ** (-alpha / 2) * (k[:, None] + k[None, :] > 0)
    xi = jr.normal(key, (pde.n, pde.n), dtype=jnp.float64) * scale
    cosines = jnp.cos(jnp.pi * k[:, None] * jnp.asarray(x)[None, :])  # [mode, point]
    psi = cosines.T @ xi @ cosines
    return jnp.where(psi >= 0, high, low)
