"""Safeguard policies of the exact augmented-Lagrangian Newton method: the reference code's dense
tests (faithful), or matrix-free ones with regularisation and infeasibility detection
(practical)."""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

_Scalar = Float[Array, ""]


class _Assessment(eqx.Module):
    """What the safeguards concluded about the current iterate."""

    singular: Bool[Array, ""]
    shift: _Scalar  # B = ∇²ₓL + shift·I
    psi: _Scalar  # Ψ, bound on ‖K⁻¹‖
    upsilon: _Scalar  # Υ
    k_fro: _Scalar  # ‖K‖_F (with the shifted B)
    flops: _Scalar  # cost of the safeguards themselves


class AbstractSafeguards(eqx.Module):
    """The safeguard policy: singularity test, Hessian modification and accuracy condition.

    Two implementations: [`pdeopt.solvers.FaithfulSafeguards`][] (the reference code, dense) and
    [`pdeopt.solvers.PracticalSafeguards`][] (matrix-free).
    """

    resolve_on_negative_curvature: eqx.AbstractClassVar[bool]
    merit_roundoff: eqx.AbstractVar[float]

    @abc.abstractmethod
    def assess(
        self,
        hvp: Callable[[Array], Array],
        jvp_c: Callable[[Array], Array],
        x: Array,
        m: int,
        xi_b: float,
    ) -> _Assessment:
        """Singularity test and Hessian shift at the current iterate (before the solve)."""

    @abc.abstractmethod
    def residual_tolerance(
        self,
        theta: float,
        delta: _Scalar,
        kkt: _Scalar,
        a: _Assessment,
        target: _Scalar,
        previous: _Scalar,
    ) -> _Scalar:
        """The absolute bound on ‖r‖ = ‖Kz + ∇L‖ at which the inner solve stops; `target` is
        the outer solver's success tolerance on ‖∇L‖, `previous` the ‖∇L‖ of the previous
        iterate (NaN at the first)."""

    @abc.abstractmethod
    def delta_trial(self, mu: _Scalar, nu: _Scalar, beta: float, a: _Assessment) -> _Scalar:
        """δ_trial(μ, ν), the cap on δ at penalties (μ, ν) (`inf` when the policy has none)."""

    def retry(
        self,
        hvp: Callable[[Array], Array],
        dx: Array,
        failed: Bool[Array, ""],
        m: int,
        xi_b: float,
    ) -> tuple[Bool[Array, ""], _Scalar, _Scalar]:
        """After a first solve with B = ∇²ₓL (only when `resolve_on_negative_curvature`):
        whether to solve again, with which shift of B and which dual regularisation δ_c (the
        KKT matrix becomes [[B, Gᵀ], [G, −δ_c I]]). `failed`: the first solve failed or was
        not finite."""
        zero = jnp.array(0.0, dx.dtype)
        return jnp.array(False), zero, zero

    def infeasible(
        self, c_norm: _Scalar, gtc_norm: Callable[[], _Scalar], failed: Bool[Array, ""]
    ) -> Bool[Array, ""]:
        """Whether a step that `failed` (or not) stopped at a stationary point of ‖c‖² with
        c ≠ 0, given ‖c‖ > the solver's tolerance and `gtc_norm()` = ‖Gᵀc‖ (a VJP, so called
        only when needed)."""
        return jnp.array(False)


class FaithfulSafeguards(AbstractSafeguards):
    """The reference code's safeguards, with dense linear algebra.

    - ξ_G = λ_min(GGᵀ); abort with `RESULTS.singular_jacobian` if ξ_G < `singular_threshold`.
    - Full QR of Gᵀ, Z its last n − m columns; if m < n and λ_min(ZᵀHZ) <
      `reduced_hessian_threshold`, B = H + (ξ_B + ‖H‖_F)·I.
    - Ψ = 20·max(‖B‖_F², 1)/(min(ξ_G, 1)·min(ξ_B, 1)), Υ = max(‖G‖_F, ‖H‖_F, 1).
    - The inner solve stops once ‖K‖_F·Ψ·‖r‖ ≤ θ·δ·‖∇L‖.

    H and G are materialised (n Hessian-vector products and n Jacobian-vector products per outer
    iteration), and the QR/eigenvalue work is O(n³): the same cost as a direct KKT solve.

    **Arguments:**

    - `singular_threshold`: threshold on λ_min(GGᵀ); 1e-2 in the reference code.
    - `reduced_hessian_threshold`: threshold on λ_min(ZᵀHZ); 1e-6 (1e-2 for LogReg).
    """

    singular_threshold: float = 1e-2
    reduced_hessian_threshold: float = 1e-6
    resolve_on_negative_curvature: ClassVar[bool] = False
    merit_roundoff: ClassVar[float] = 0.0  # the reference code's exact Armijo test

    def __check_init__(self):
        for name in ("singular_threshold", "reduced_hessian_threshold"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"`FaithfulSafeguards({name}={value})` must be non-negative.")

    def assess(self, hvp, jvp_c, x, m, xi_b):
        n = x.shape[0]
        eye = jnp.eye(n, dtype=x.dtype)
        hess = jax.vmap(hvp)(eye)  # symmetric, so rows == columns
        hess = 0.5 * (hess + hess.T)
        jac_t = jax.vmap(jvp_c)(eye)  # (n, m) = Gᵀ
        xi_g = jnp.linalg.eigvalsh(jac_t.T @ jac_t)[0]
        h_fro = jnp.linalg.norm(hess)
        g_fro = jnp.linalg.norm(jac_t)
        flops = 2.0 * m * m * n + (4.0 / 3.0) * m**3
        if m < n:
            q, _ = jnp.linalg.qr(jac_t, mode="complete")
            z = q[:, m:]
            reduced_min = jnp.linalg.eigvalsh(z.T @ hess @ z)[0]
            shift = jnp.where(reduced_min < self.reduced_hessian_threshold, xi_b + h_fro, 0.0)
            k = n - m
            flops = flops + 4.0 * n * n * m + 2.0 * n * n * k + 2.0 * n * k * k + 4.0 / 3.0 * k**3
        else:
            shift = jnp.array(0.0, x.dtype)
        b_fro = jnp.linalg.norm(hess + shift * eye)
        psi = 20.0 * jnp.maximum(b_fro**2, 1.0) / (jnp.minimum(xi_g, 1.0) * min(xi_b, 1.0))
        upsilon = jnp.maximum(jnp.maximum(g_fro, h_fro), 1.0)
        k_fro = jnp.sqrt(b_fro**2 + 2.0 * g_fro**2)
        singular = xi_g < self.singular_threshold
        return _Assessment(singular, shift, psi, upsilon, k_fro, jnp.asarray(flops, x.dtype))

    def residual_tolerance(self, theta, delta, kkt, a, target, previous):
        # ‖K‖_F·Ψ·‖r‖ ≤ θ·δ·‖∇L‖
        return theta * delta * kkt / (a.k_fro * a.psi)

    def delta_trial(self, mu, nu, beta, a):
        return (0.5 - beta) * nu / ((1.0 + mu + nu) * a.upsilon**2 * a.psi**2)


class PracticalSafeguards(AbstractSafeguards):
    """Matrix-free safeguards for large or degenerate problems (a pdeopt variant, not in the
    paper).

    - No a-priori tests (they would need G and H as matrices). The inner solve stops once
      ‖r‖ ≤ max(θ·δ·‖∇L‖, `target_fraction`·ε) (no Ψ‖K‖_F factor; ε is the outer success
      tolerance: a step whose residual is well below ε ends the solve, so solving further
      buys nothing), and δ_trial ≡ ∞, so δ only shrinks through the descent test (δ ← δ/ρ⁴).
      When the last contraction predicts that the step ends the run (‖∇L_k‖²/‖∇L_{k−1}‖ ≤ ε,
      the superlinear phase), the bound is `target_fraction`·ε, so that it does end it rather
      than land just above ε and cost one more outer iteration.
    - Curvature: if m < n and the computed step has Δxᵀ∇²ₓL Δx <
      `reduced_hessian_threshold`·‖Δx‖², the KKT system is solved again from zero with
      B = H + (ξ_B + ‖H‖)·I, where ‖H‖ ≈ ‖H‖₂ comes from `power_steps` power iterations
      (Hessian-vector products).
    - Rank-deficient G: if the first solve fails or is not finite (a singular KKT matrix),
      it is solved again with the shifted B and the dual regularisation δ_c =
      `dual_regularization`: [[B, Gᵀ], [G, −δ_c I]] is nonsingular for any G, and its step
      is a damped (Levenberg–Marquardt-like) step on c where G loses rank. The same idea as
      IPOPT's inertia correction, triggered here by the failed solve instead of an inertia
      count.
    - Local infeasibility: a step that fails (penalties capped, line search or KKT solve
      failed) at an iterate with ‖c‖ above the solver's tolerance and ‖Gᵀc‖ ≤
      `infeasibility_tol`·‖c‖ has stalled near a stationary point of ‖c‖² that is not
      feasible; the solve ends with `RESULTS.locally_infeasible` instead of the failure.

    **Arguments:**

    - `reduced_hessian_threshold`: curvature threshold of the test above.
    - `target_fraction`: the floor of the inner tolerance as a fraction of the outer
        success tolerance (0.1; 0 solves every step to θ·δ·‖∇L‖ however small).
    - `merit_roundoff`: the relative rounding error of the merit tolerated by the line search
        (1e-12, about 5000 ε): a trial that misses the Armijo bound by at most
        `merit_roundoff`·|L_{μ,ν}| is accepted if it is the full step (α = 1) and cuts ‖∇L‖
        by the factor (1 − β) (see [`pdeopt.solvers.BacktrackingArmijo`][]). 0 restores the
        exact test.
    - `power_steps`: power iterations for the ‖H‖ estimate (a static int).
    - `dual_regularization`: δ_c of the regularised re-solve.
    - `infeasibility_tol`: the relative stationarity ‖Gᵀc‖/‖c‖ that counts as infeasible.
    """

    reduced_hessian_threshold: float = 1e-6
    target_fraction: float = 0.1
    merit_roundoff: float = 1e-12
    power_steps: int = eqx.field(static=True, default=20)
    dual_regularization: float = 1e-2
    infeasibility_tol: float = 1e-2
    resolve_on_negative_curvature: ClassVar[bool] = True

    def __check_init__(self):
        if self.power_steps < 1:
            raise ValueError(f"`PracticalSafeguards(power_steps={self.power_steps})` must be ≥ 1.")
        for name in ("dual_regularization", "infeasibility_tol"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and not value > 0:
                raise ValueError(f"`PracticalSafeguards({name}={value})` must be positive.")
        value = self.target_fraction
        if isinstance(value, (int, float)) and not 0 <= value < 1:
            raise ValueError(f"`PracticalSafeguards(target_fraction={value})` must lie in [0, 1).")
        value = self.merit_roundoff
        if isinstance(value, (int, float)) and not 0 <= value < 1e-6:
            raise ValueError(
                f"`PracticalSafeguards(merit_roundoff={value})` must lie in [0, 1e-6): it is a "
                "relative rounding error, e.g. 1e-12."
            )

    def assess(self, hvp, jvp_c, x, m, xi_b):
        one = jnp.array(1.0, x.dtype)
        return _Assessment(jnp.array(False), 0.0 * one, one, one, one, 0.0 * one)

    def residual_tolerance(self, theta, delta, kkt, a, target, previous):
        floor = self.target_fraction * target
        tolerance = jnp.maximum(theta * delta * kkt, floor)
        # The last contraction predicts that this step ends the run: make sure it does.
        final = kkt * (kkt / previous) <= target  # (False at the first iterate: NaN)
        return jnp.where(final, jnp.minimum(tolerance, floor), tolerance)

    def delta_trial(self, mu, nu, beta, a):
        return jnp.array(jnp.inf, mu.dtype)

    def retry(self, hvp, dx, failed, m, xi_b):
        n = dx.shape[0]
        zero = jnp.array(0.0, dx.dtype)
        if m < n:  # (a NaN step compares False here; `failed` covers it)
            negative = jnp.dot(dx, hvp(dx)) < self.reduced_hessian_threshold * jnp.dot(dx, dx)
        else:
            negative = jnp.array(False)
        redo = negative | failed

        def norm_estimate():
            def power(_, v):
                w = hvp(v)
                return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(dx.dtype).tiny)

            v0 = 1.0 + jnp.arange(n, dtype=dx.dtype) / n
            v = lax.fori_loop(0, self.power_steps, power, v0 / jnp.linalg.norm(v0))
            return xi_b + jnp.linalg.norm(hvp(v))

        shift = lax.cond(redo, norm_estimate, lambda: zero)
        return redo, shift, jnp.where(failed, self.dual_regularization, zero)

    def infeasible(self, c_norm, gtc_norm, failed):
        stationary = lambda: gtc_norm() <= self.infeasibility_tol * c_norm
        return lax.cond(failed, stationary, lambda: jnp.array(False))
