"""Equality-constrained minimisation by Newton steps on an exact augmented Lagrangian.

AdaSketch-Newton (Hong, Na, Mahoney and Kolar, ICML 2023); `docs/constrained_optimization.md`
describes the method, its constants and the cost model of `stats["flops"]`.
"""

import abc
import warnings
from collections.abc import Callable
from typing import Any, ClassVar, no_type_check

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import optimistix as optx
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

from .._results import RESULTS
from ._merit import (
    AbstractMeritHessian,
    LagrangianHessian,
    lagrangian_and_constraints,
    merit_value,
)
from ._nystrom import NystromPCG
from ._sketching import (
    AbstractSketchSolver,
    BlockSketchProject,
    GaussianSketchProject,
    RandomizedKaczmarz,
)

_Scalar = Float[Array, ""]

# --------------------------------------------------------------------------------------
# Safeguard policies: the reference code's dense tests, or matrix-free ones
# --------------------------------------------------------------------------------------


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
        self, theta: float, delta: _Scalar, kkt: _Scalar, a: _Assessment
    ) -> _Scalar:
        """The absolute bound on ‖r‖ = ‖Kz + ∇L‖ at which the inner solve stops."""

    @abc.abstractmethod
    def delta_trial(self, mu: _Scalar, nu: _Scalar, beta: float, a: _Assessment) -> _Scalar:
        """δ_trial(μ, ν), the cap on δ at penalties (μ, ν) (`inf` when the policy has none)."""

    def curvature_shift(
        self, hvp: Callable[[Array], Array], dx: Array, n: int, m: int, xi_b: float
    ) -> tuple[Bool[Array, ""], _Scalar]:
        """After a solve with B = ∇²ₓL: whether to re-solve with a shift, and the shift."""
        return jnp.array(False), jnp.array(0.0, dx.dtype)


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

    def residual_tolerance(self, theta, delta, kkt, a):
        # ‖K‖_F·Ψ·‖r‖ ≤ θ·δ·‖∇L‖
        return theta * delta * kkt / (a.k_fro * a.psi)

    def delta_trial(self, mu, nu, beta, a):
        return (0.5 - beta) * nu / ((1.0 + mu + nu) * a.upsilon**2 * a.psi**2)


class PracticalSafeguards(AbstractSafeguards):
    """Matrix-free safeguards for large problems (a pdeopt variant, not in the paper).

    - No singularity test: a rank-deficient G shows up as a failed or non-finite linear solve.
    - No a-priori Hessian test. Instead an inertia-free curvature test on the computed step: if
      m < n and Δxᵀ∇²ₓL Δx < `reduced_hessian_threshold`·‖Δx‖², the KKT system is solved again
      from zero with B = H + (ξ_B + ‖H‖)·I, where ‖H‖ ≈ ‖H‖₂ comes from `power_steps` power
      iterations (Hessian-vector products). If the shifted step still fails the test, the
      descent test and penalty updates take over.
    - The inner solve stops once ‖r‖ ≤ θ·δ·‖∇L‖ (no Ψ‖K‖_F factor), and δ_trial ≡ ∞, so δ only
      shrinks through the descent test (δ ← δ/ρ⁴).

    **Arguments:**

    - `reduced_hessian_threshold`: curvature threshold of the test above.
    - `power_steps`: power iterations for the ‖H‖ estimate (a static int).
    """

    reduced_hessian_threshold: float = 1e-6
    power_steps: int = eqx.field(static=True, default=20)
    resolve_on_negative_curvature: ClassVar[bool] = True

    def __check_init__(self):
        if self.power_steps < 1:
            raise ValueError(f"`PracticalSafeguards(power_steps={self.power_steps})` must be ≥ 1.")

    def assess(self, hvp, jvp_c, x, m, xi_b):
        one = jnp.array(1.0, x.dtype)
        return _Assessment(jnp.array(False), 0.0 * one, one, one, one, 0.0 * one)

    def residual_tolerance(self, theta, delta, kkt, a):
        return theta * delta * kkt

    def delta_trial(self, mu, nu, beta, a):
        return jnp.array(jnp.inf, mu.dtype)

    def curvature_shift(self, hvp, dx, n, m, xi_b):
        if m >= n:
            return jnp.array(False), jnp.array(0.0, dx.dtype)
        curvature = jnp.dot(dx, hvp(dx))
        negative = curvature < self.reduced_hessian_threshold * jnp.dot(dx, dx)
        v0 = 1.0 + jnp.arange(n, dtype=dx.dtype) / n
        v0 = v0 / jnp.linalg.norm(v0)

        def power(_, v):
            w = hvp(v)
            return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(dx.dtype).tiny)

        v = lax.fori_loop(0, self.power_steps, power, v0)
        return negative, xi_b + jnp.linalg.norm(hvp(v))


# --------------------------------------------------------------------------------------
# Solver configuration
# --------------------------------------------------------------------------------------


class ExactAugmentedLagrangianNewton(eqx.Module):
    """AdaSketch-Newton's outer method: primal-dual Newton steps on the KKT system, globalised
    by Armijo backtracking on the exact augmented Lagrangian
    L_{μ,ν}(x, λ) = f + λᵀc + (μ/2)‖c‖² + (ν/2)‖∇ₓL‖².

    Immutable configuration; pass it to [`pdeopt.solvers.constrained_minimise`][].

    **Arguments:**

    - `rtol`, `atol`: success once ‖∇L‖ ≤ `atol + rtol·‖∇L(x₀, λ₀)‖`, with
      ‖∇L‖ = ‖(∇ₓL, c)‖₂ (reference: `atol=1e-4`, `rtol=0`).
    - `mu0`, `nu0`, `delta0`: initial penalties μ, ν and accuracy δ (1, 0.1, 0.1).
    - `xi_b`: ξ_B of the Hessian shift and of Ψ (0.1).
    - `beta`: Armijo constant β (0.1); also enters δ_trial. Must lie in (0, 0.5).
    - `rho`: penalty growth ρ > 1 (1.5): μ ← ρ²μ, ν ← ν/ρ, δ ← δ/ρ⁴ on a failed descent test.
    - `theta`: θ of the accuracy condition (1).
    - `delta_min`: floor on δ (1e-6). `mu_max`, `nu_min`: penalty caps (1e8, 1e-8); past them z
      is accepted without further penalty updates.
    - `safeguards`: [`pdeopt.solvers.FaithfulSafeguards`][] (default, the reference code) or
      [`pdeopt.solvers.PracticalSafeguards`][].
    - `merit_hessian`: [`pdeopt.solvers.LagrangianHessian`][] (default; exact merit gradient)
      or [`pdeopt.solvers.ObjectiveHessian`][] (the reference code's ∇²f variant).
    - `linear_solver`: any `lx.AbstractLinearSolver` for K z = −∇L, K = [[B, Gᵀ], [G, 0]]
      (symmetric indefinite, given as a matrix-free `lx.FunctionLinearOperator` with
      `lx.symmetric_tag`; direct solvers materialise it through `as_matrix()`). Default
      `lx.LU()`, see below. The sketching solvers
      ([`pdeopt.solvers.GaussianSketchProject`][] ("GV"),
      [`pdeopt.solvers.RandomizedKaczmarz`][] ("RK"), [`pdeopt.solvers.BlockSketchProject`][]),
      `lx.GMRES`, `lx.BiCGStab` and `lx.Normal(NystromPCG(...))` are driven as described
      under **Inner solve**; their own `rtol`/`atol` are overridden.
    - `max_inner_steps`: inner step cap per outer iteration (1e5; the reference code uses 1e6
      for LogReg and PDE problems). A direct solve counts one step per round; an iterative
      solver counts its `stats["num_steps"]` (sketch steps, Krylov steps). For pdeopt's
      sketching solvers it is enforced inside the solve (their `max_steps` is lowered to the
      steps left); lineax's Krylov solvers may overshoot it by one round. On hitting it the
      current z is used and the event is counted in `stats["num_inner_cap_hits"]`.
    - `max_refinements`: cap on inner rounds (solves) per outer iteration (static; 10).
    - `max_line_search_steps`: cap on Armijo halvings (static; 60). The reference code has no
      minimum α; hitting this cap ends the solve with `RESULTS.penalty_cap` if the penalties are
      capped, else `RESULTS.nonlinear_divergence`.

    **Inner solve.** The inner loop is driven here, in rounds, starting from z = 0, until the
    safeguards' accuracy condition ‖r‖ ≤ τ holds, r = Kz + ∇L (faithful:
    τ = θδ‖∇L‖/(‖K‖_F·Ψ); practical: τ = θδ‖∇L‖). Then the descent test
    ∇L_{μ,ν}ᵀz ≤ −(ν/2)‖∇L‖² runs; a failed test updates (μ, ν, δ), so τ shrinks, and resumes
    the rounds from the current z.

    - *Iterative solvers* (sketching, Krylov, `lx.Normal` of those): each round solves
      K z = −∇L with `options = {"key": fresh subkey, "y0": current z}` (warm start) and
      the solver's absolute tolerance set to τ (`rtol = 0`; `atol = τ/√N` for lineax's
      max-norm Krylov tests). So the accuracy condition is what stops the solver and one
      round normally suffices; a round that ends with `max_steps_reached` is not a failure,
      the caps decide. `lx.Normal(...)` keeps its configured tolerance (it bounds ‖Kᵀr‖,
      not ‖r‖); further warm-started rounds make up the difference.
    - *Direct solvers* (anything else, e.g. `lx.LU()`): factorised once per outer iteration;
      each round solves K dz = −r and sets z ← z + dz. One round leaves ‖r‖ at round-off, so
      the faithful condition holds after it unless K is extremely ill conditioned; further
      rounds are iterative refinement.

    With the `preconditioner` of [`pdeopt.solvers.constrained_minimise`][] both kinds solve
    the split-preconditioned system (S K S) w = −S∇L instead, z = S w, and the accuracy
    condition is still tested on r = K z + ∇L.

    The PRNG key (the `key` of [`pdeopt.solvers.constrained_minimise`][]) is split every outer
    iteration and every round. `stats["flops"]` follows a dense-K cost model per solver type,
    counting a matvec as a dense 2N²: LU (2/3)N³ per factorisation + 2N² per round; GV 4N² per
    step; RK 2N per step + 2N² per full-residual check; block (q + 1)·2N² + 4Nq² per step;
    GMRES 2kN² + 2k²N; BiCGStab 4N² per step; `lx.Normal` 4N² per step (+ the Nyström
    construction 4ℓN² + 6Nℓ² and 4Nℓ per step for `NystromPCG`).

    **Why LU is the default.** The paper's inner solvers are sketching solvers, but with the
    reference constants δ sits at its 1e-6 floor and the faithful test asks for relative
    residuals of about 1e-11: on HS6 (N = 3) GV needs 3·10⁴ steps in the first
    outer iteration and RK (uniform) hits the 1e5 cap; about 7·10⁴ and 2.6·10⁵ sketch steps
    over the 9 outer iterations buy exactly the trajectory of 9 LU solves. By the cost model
    above a sketch solver beats LU only if T < N/6 (GV) or T < N²/3 (RK), which never
    holds on the paper's problems. LU is therefore the default; sketching is one constructor
    argument (or the `linear_solver` config group) away, and is worth it only for large,
    structured K at loose (practical-mode) tolerances.

    ??? cite "References"

        ```bibtex
        @inproceedings{hong2023constrained,
            title = {Constrained Optimization via Exact Augmented {L}agrangian and Randomized
                     Iterative Sketching},
            author = {Hong, Ilgee and Na, Sen and Mahoney, Michael W. and Kolar, Mladen},
            booktitle = {Proceedings of the 40th International Conference on Machine Learning},
            series = {PMLR},
            volume = {202},
            pages = {13174--13198},
            year = {2023},
        }
        ```
    """

    rtol: float = 0.0
    atol: float = 1e-4
    mu0: float = 1.0
    nu0: float = 0.1
    delta0: float = 0.1
    xi_b: float = 0.1
    beta: float = 0.1
    rho: float = 1.5
    theta: float = 1.0
    delta_min: float = 1e-6
    mu_max: float = 1e8
    nu_min: float = 1e-8
    safeguards: AbstractSafeguards = FaithfulSafeguards()
    merit_hessian: AbstractMeritHessian = LagrangianHessian()
    linear_solver: lx.AbstractLinearSolver = lx.LU()
    max_inner_steps: int = 100_000
    max_refinements: int = eqx.field(static=True, default=10)
    max_line_search_steps: int = eqx.field(static=True, default=60)

    def __check_init__(self):
        positive = ("mu0", "nu0", "delta0", "xi_b", "theta", "delta_min", "mu_max", "nu_min")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, (int, float)) and not value > 0:
                raise ValueError(
                    f"`ExactAugmentedLagrangianNewton({name}={value})` must be positive."
                )
        if isinstance(self.beta, (int, float)) and not 0 < self.beta < 0.5:
            raise ValueError(
                f"`ExactAugmentedLagrangianNewton(beta={self.beta})` must lie in (0, 0.5), "
                "e.g. `beta=0.1`."
            )
        if isinstance(self.rho, (int, float)) and not self.rho > 1:
            raise ValueError(
                f"`ExactAugmentedLagrangianNewton(rho={self.rho})` must exceed 1, e.g. `rho=1.5`."
            )
        if self.max_refinements < 1 or self.max_line_search_steps < 1:
            raise ValueError("`max_refinements` and `max_line_search_steps` must be ≥ 1.")


class ConstrainedSolution(eqx.Module):
    """The result of [`pdeopt.solvers.constrained_minimise`][].

    **Attributes:**

    - `value`: the minimiser x.
    - `multipliers`: the Lagrange multipliers λ (L = f + λᵀc).
    - `result`: a [`pdeopt.RESULTS`][] item.
    - `stats`: `num_steps` (outer iterations), `max_steps`, `num_inner_steps`,
      `num_fn_evals` (evaluations of f, ∇f, c and Gᵀλ: one per outer iteration plus one per
      Armijo trial), `flops` (the cost model of the inner solves, per solver type as listed
      in [`pdeopt.solvers.ExactAugmentedLagrangianNewton`][], plus the faithful safeguards'
      dense work), `num_penalty_updates`, `num_hessian_shifts`,
      `num_inner_cap_hits`, and the histories `kkt_history` (‖∇L‖ at x₀…x_T, shape
      `(max_steps + 1,)`), `alpha_history` and `inner_steps_history` (shape `(max_steps,)`),
      padded with NaN (−1 for step counts); plus `safeguards` and `merit_hessian`, the names of
      the policies used.
    - `state`: the final `(x, λ, μ, ν, δ)` and counters.
    """

    value: Float[Array, " n"]
    multipliers: Float[Array, " m"]
    result: RESULTS
    stats: dict[str, Any]
    state: Any


class _State(eqx.Module):
    x: Array
    lam: Array
    mu: _Scalar
    nu: _Scalar
    delta: _Scalar
    kkt: _Scalar
    key: PRNGKeyArray
    step: Int[Array, ""]
    result: RESULTS
    kkt_history: Array
    alpha_history: Array
    inner_steps_history: Array
    num_inner_steps: Int[Array, ""]
    num_fn_evals: Int[Array, ""]
    flops: _Scalar
    num_penalty_updates: Int[Array, ""]
    num_hessian_shifts: Int[Array, ""]
    num_inner_cap_hits: Int[Array, ""]


class _Inner(eqx.Module):
    w: Array  # the inner solver's unknown: z = S w under split preconditioning, else w = z
    z: Array
    r: Array
    mu: _Scalar
    nu: _Scalar
    delta: _Scalar
    key: PRNGKeyArray
    steps: Int[Array, ""]
    rounds: Int[Array, ""]
    done: Bool[Array, ""]
    result: RESULTS
    flops: _Scalar
    penalty_updates: Int[Array, ""]
    cap_hit: Bool[Array, ""]


# --------------------------------------------------------------------------------------
# The inner linear solver: tolerance, warm start and cost model per solver type
# --------------------------------------------------------------------------------------

# Krylov solvers for the indefinite K. (`lx.CG` needs a definite operator: lineax rejects it on K,
# so it only runs inside `lx.Normal`, on KᵀK.)
_KRYLOV = (lx.BiCGStab, lx.GMRES)


def _is_iterative(linear_solver: lx.AbstractLinearSolver) -> bool:
    """Whether `linear_solver` is an iterative method, driven to the accuracy condition by its
    tolerance and warm start, rather than a direct method refined by back-substitution."""
    if isinstance(linear_solver, lx.Normal):
        inner = linear_solver.inner_solver
        return isinstance(inner, lx.CG) or _is_iterative(inner)
    return isinstance(linear_solver, (AbstractSketchSolver, *_KRYLOV))


def _with_tolerance(
    linear_solver: lx.AbstractLinearSolver, atol: _Scalar, remaining: Int[Array, ""], size: int
) -> lx.AbstractLinearSolver:
    """`linear_solver` stopping once ‖r‖₂ ≤ `atol` (or after `remaining` steps).

    pdeopt's sketch solvers test ‖r‖₂, lineax's Krylov solvers the max-norm, hence atol/√N.
    `lx.Normal` keeps its configured tolerances: they bound the normal-equation residual
    ‖Kᵀr‖, which does not bound ‖r‖ without σ_min(K); warm-started rounds do the rest.
    """
    if isinstance(linear_solver, AbstractSketchSolver):
        return eqx.tree_at(
            lambda s: (s.rtol, s.atol, s.max_steps),
            linear_solver,
            (0.0, atol, jnp.minimum(linear_solver.max_steps, remaining)),
        )
    if isinstance(linear_solver, _KRYLOV):
        return eqx.tree_at(lambda s: (s.rtol, s.atol), linear_solver, (0.0, atol / size**0.5))
    return linear_solver


def _round_flops(
    linear_solver: lx.AbstractLinearSolver, k: Int[Array, ""], size: int, first: Bool[Array, ""]
) -> _Scalar:
    """The modelled cost of one inner round of `k` steps on the N×N KKT matrix (N = `size`), a
    matvec counted as a dense 2N²."""
    n = size
    k = k.astype(float)
    if not _is_iterative(linear_solver):
        # Factorise once per outer iteration, then back-substitute once per round.
        return 2.0 * n**2 + jnp.where(first, (2.0 / 3.0) * n**3, 0.0)
    if isinstance(linear_solver, GaussianSketchProject):
        return 4.0 * k * n**2  # Kᵀs and the new residual: two matvecs per step
    if isinstance(linear_solver, BlockSketchProject):
        q = min(linear_solver.block_size, n)  # q transposed matvecs, one matvec, QR of N×q
        return k * (2.0 * (q + 1) * n**2 + 4.0 * n * q**2)
    if isinstance(linear_solver, RandomizedKaczmarz):
        every = n if linear_solver.check_every is None else linear_solver.check_every
        return 2.0 * k * n + 2.0 * n**2 * jnp.ceil(k / every)  # lazy residual, full checks
    if isinstance(linear_solver, lx.Normal):  # two matvecs per step (KᵀK), plus Kᵀb
        inner = linear_solver.inner_solver
        flops = 4.0 * k * n**2 + 2.0 * n**2
        if isinstance(inner, NystromPCG):
            rank = min(inner.rank, n)  # ℓ normal matvecs + QR/SVD once, P⁻¹ every step
            flops = flops + 4.0 * rank * n**2 + 6.0 * n * rank**2 + 4.0 * k * n * rank
        return flops
    if isinstance(linear_solver, lx.BiCGStab):
        return 4.0 * k * n**2
    return 2.0 * k * n**2 + 2.0 * k**2 * n  # GMRES


# --------------------------------------------------------------------------------------
# One outer iteration
# --------------------------------------------------------------------------------------


def _inner_solve(
    solver, key, hvp, jvp_c, vjp_c, grad_x, c, shift, kkt, a, mu, nu, delta, dirderiv, precond
):
    """Inner rounds + descent test + penalty updates.

    With a preconditioner S (symmetric positive definite, S² ≈ |K|⁻¹) the linear solver sees
    the split-preconditioned system (S K S) w = −S∇L and z = S w; its residual is S r, so its
    tolerance is τ scaled by ‖S r‖/‖r‖ of the current round, and the accuracy condition is
    still tested on the true r = K z + ∇L.
    """
    n, m = grad_x.shape[0], c.shape[0]
    big_n = n + m
    dtype = grad_x.dtype
    grad_l = jnp.concatenate([grad_x, c])

    def mv(z):
        dx, dlam = z[:n], z[n:]
        return jnp.concatenate([hvp(dx) + shift * dx + vjp_c(dlam), jvp_c(dx)])

    operator = lx.FunctionLinearOperator(
        mv, jax.ShapeDtypeStruct((big_n,), dtype), tags=lx.symmetric_tag
    )
    if precond is None:
        scale = lambda v: v
        system = operator
    else:
        scale = precond.mv
        system = lx.TaggedLinearOperator(precond @ operator @ precond, lx.symmetric_tag)
    rhs = -scale(grad_l)  # the right-hand side of every iterative round
    linear_solver = solver.linear_solver
    iterative = _is_iterative(linear_solver)
    if not iterative:
        lin_state = linear_solver.init(system, {})

    def tolerance(s):
        return solver.safeguards.residual_tolerance(solver.theta, s.delta, kkt, a)

    def system_tolerance(s):
        """τ for the residual the linear solver sees (S r; r itself without S)."""
        if precond is None:
            return tolerance(s)
        r_norm = jnp.linalg.norm(s.r)
        ratio = jnp.linalg.norm(scale(s.r)) / jnp.where(r_norm > 0, r_norm, 1.0)
        return tolerance(s) * jnp.where(r_norm > 0, ratio, 1.0)

    def cond(s):
        return ~s.done

    def refine(s):
        key, subkey = jr.split(s.key)
        if iterative:
            # Solve K z = −∇L from the current z, stopping at the accuracy condition.
            remaining = solver.max_inner_steps - s.steps
            inner_solver = _with_tolerance(linear_solver, system_tolerance(s), remaining, big_n)
            options = {"key": subkey, "y0": s.w}
            sol = lx.linear_solve(system, rhs, inner_solver, options=options, throw=False)
            w = sol.value
            k = jnp.asarray(sol.stats["num_steps"])
            # Running out of steps is not a failure: the caps below decide what happens next.
            failed = (sol.result != lx.RESULTS.successful) & (
                sol.result != lx.RESULTS.max_steps_reached
            )
        else:
            # A direct solve of K dz = −r; later rounds are iterative refinement.
            options = {"key": subkey}
            sol = lx.linear_solve(
                system, -scale(s.r), linear_solver, state=lin_state, options=options, throw=False
            )
            w = s.w + sol.value
            k = jnp.array(1)
            failed = sol.result != lx.RESULTS.successful
        z = scale(w)
        r = mv(z) + grad_l
        flops = _round_flops(linear_solver, k, big_n, s.rounds == 0)
        result = RESULTS.where(failed, RESULTS.promote(sol.result), s.result)
        return eqx.tree_at(
            lambda t: (t.w, t.z, t.r, t.key, t.steps, t.rounds, t.result, t.flops, t.done),
            s,
            (w, z, r, key, s.steps + k, s.rounds + 1, result, s.flops + flops, failed),
        )

    def descent(s):
        d = dirderiv(s.z, s.mu, s.nu)
        not_descent = d > -0.5 * s.nu * kkt**2
        capped = (s.mu > solver.mu_max) | (s.nu < solver.nu_min)
        update = not_descent & ~capped
        mu_new = solver.rho**2 * s.mu
        nu_new = s.nu / solver.rho
        delta_new = jnp.maximum(
            jnp.minimum(
                s.delta / solver.rho**4,
                solver.safeguards.delta_trial(mu_new, nu_new, solver.beta, a),
            ),
            solver.delta_min,
        )
        return eqx.tree_at(
            lambda t: (t.mu, t.nu, t.delta, t.done, t.penalty_updates),
            s,
            (
                jnp.where(update, mu_new, s.mu),
                jnp.where(update, nu_new, s.nu),
                jnp.where(update, delta_new, s.delta),
                ~update,
                s.penalty_updates + update.astype(int),
            ),
        )

    def body(s):
        accurate = jnp.linalg.norm(s.r) <= tolerance(s)
        capped = (s.steps >= solver.max_inner_steps) | (s.rounds >= solver.max_refinements)
        s = eqx.tree_at(lambda t: t.cap_hit, s, s.cap_hit | (capped & ~accurate))
        return lax.cond(accurate | capped, descent, refine, s)

    zero = jnp.zeros((), dtype)
    init = _Inner(
        w=jnp.zeros(big_n, dtype),
        z=jnp.zeros(big_n, dtype),
        r=grad_l,
        mu=mu,
        nu=nu,
        delta=delta,
        key=key,
        steps=jnp.array(0),
        rounds=jnp.array(0),
        done=jnp.array(False),
        result=RESULTS.successful,
        flops=zero,
        penalty_updates=jnp.array(0),
        cap_hit=jnp.array(False),
    )
    return lax.while_loop(cond, body, init)


def _outer_step(fn, constraint_fn, solver, args, preconditioner, st: _State) -> _State:
    x, lam = st.x, st.lam
    key, inner_key = jr.split(st.key)
    n = x.shape[0]
    m = lam.shape[0]
    dtype = x.dtype

    def grad_lag(y):
        return jax.grad(lagrangian_and_constraints, argnums=2, has_aux=True)(
            fn, constraint_fn, y, lam, args
        )

    (grad_x, c), hvp = jax.linearize(grad_lag, x)
    hvp_x = lambda v: hvp(v)[0]
    _, jvp_c = jax.linearize(lambda y: constraint_fn(y, args), x)
    vjp_c_t = jax.linear_transpose(jvp_c, x)
    vjp_c = lambda w: vjp_c_t(w)[0]
    lag_value = fn(x, args) + jnp.dot(lam, c)
    kkt = st.kkt

    a = solver.safeguards.assess(hvp_x, jvp_c, x, m, solver.xi_b)
    precond = None if preconditioner is None else preconditioner(x, lam, args)
    delta = jnp.maximum(
        jnp.minimum(st.delta, solver.safeguards.delta_trial(st.mu, st.nu, solver.beta, a)),
        solver.delta_min,
    )

    def dirderiv(z, mu, nu):
        """∇L_{μ,ν}ᵀz, split into the parts linear in (1, μ, ν)."""
        dx, dlam = z[:n], z[n:]
        g_dx = jvp_c(dx)
        d0 = jnp.dot(grad_x, dx) + jnp.dot(c, dlam)
        d_mu = jnp.dot(c, g_dx)
        m_dx = solver.merit_hessian.matvec(fn, x, args, hvp_x, dx)
        d_nu = jnp.dot(grad_x, m_dx + vjp_c(dlam))
        return d0 + mu * d_mu + nu * d_nu

    def solve(shift):
        return _inner_solve(
            solver,
            inner_key,
            hvp_x,
            jvp_c,
            vjp_c,
            grad_x,
            c,
            shift,
            kkt,
            a,
            st.mu,
            st.nu,
            delta,
            dirderiv,
            precond,
        )

    if solver.safeguards.resolve_on_negative_curvature:
        # At most two attempts, written as a loop so that the inner solve is traced once.
        def attempt_cond(carry):
            return carry[2]

        def attempt_body(carry):
            shift, attempt, _, previous = carry
            inner = solve(shift)
            inner = eqx.tree_at(  # the work of a discarded first attempt still counts
                lambda t: (t.steps, t.flops),
                inner,
                (inner.steps + previous.steps, inner.flops + previous.flops),
            )
            negative, new_shift = solver.safeguards.curvature_shift(
                hvp_x, inner.z[:n], n, m, solver.xi_b
            )
            failed = (inner.result != RESULTS.successful) | ~jnp.all(jnp.isfinite(inner.z))
            redo = (attempt == 0) & (negative | failed)
            return jnp.where(redo, new_shift, shift), attempt + 1, redo, inner

        inner_struct = jax.eval_shape(solve, a.shift)
        dummy = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), inner_struct)
        shift, _, _, inner = lax.while_loop(
            attempt_cond, attempt_body, (a.shift, jnp.array(0), jnp.array(True), dummy)
        )
        shifted = shift > 0
    else:
        inner = solve(a.shift)
        shifted = a.shift > 0
    dx, dlam = inner.z[:n], inner.z[n:]
    mu, nu = inner.mu, inner.nu

    # Armijo backtracking on L_{μ,ν} (α = 1, ½, ¼, …; no minimum α).
    merit0 = lag_value + 0.5 * mu * jnp.sum(c**2) + 0.5 * nu * jnp.sum(grad_x**2)
    slope = solver.beta * dirderiv(inner.z, mu, nu)

    def trial(alpha):
        value, gx_t, c_t = merit_value(
            fn, constraint_fn, x + alpha * dx, lam + alpha * dlam, args, mu, nu
        )
        accepted = value <= merit0 + alpha * slope
        return accepted, jnp.sqrt(jnp.sum(gx_t**2) + jnp.sum(c_t**2))

    def ls_cond(carry):
        _, accepted, _, k = carry
        return ~accepted & (k < solver.max_line_search_steps)

    def ls_body(carry):
        alpha, _, _, k = carry
        alpha = 0.5 * alpha
        accepted, kkt_new = trial(alpha)
        return alpha, accepted, kkt_new, k + 1

    # Starts from α = 2 so that the first trial, α = 1, happens inside the loop.
    alpha, accepted, kkt_new, trials = lax.while_loop(
        ls_cond, ls_body, (jnp.array(2.0, dtype), jnp.array(False), kkt, jnp.array(0))
    )
    capped = (mu > solver.mu_max) | (nu < solver.nu_min)
    ls_result = RESULTS.where(
        accepted,
        RESULTS.successful,
        RESULTS.where(capped, RESULTS.penalty_cap, RESULTS.nonlinear_divergence),
    )
    result = RESULTS.where(inner.result == RESULTS.successful, ls_result, inner.result)
    result = RESULTS.where(a.singular, RESULTS.singular_jacobian, result)
    ok = result == RESULTS.successful

    def keep(new, old):
        return jnp.where(ok, new, old)

    step = st.step
    return _State(
        x=keep(x + alpha * dx, x),
        lam=keep(lam + alpha * dlam, lam),
        mu=keep(mu, st.mu),
        nu=keep(nu, st.nu),
        delta=keep(inner.delta, st.delta),
        kkt=keep(kkt_new, st.kkt),
        key=key,
        step=jnp.where(ok, step + 1, step),
        result=result,
        kkt_history=st.kkt_history.at[step + 1].set(keep(kkt_new, jnp.nan)),
        alpha_history=st.alpha_history.at[step].set(keep(alpha, jnp.nan)),
        inner_steps_history=st.inner_steps_history.at[step].set(inner.steps),
        num_inner_steps=st.num_inner_steps + inner.steps,
        num_fn_evals=st.num_fn_evals + 1 + trials,
        flops=st.flops + inner.flops + a.flops,
        num_penalty_updates=st.num_penalty_updates + inner.penalty_updates,
        num_hessian_shifts=st.num_hessian_shifts + shifted.astype(int),
        num_inner_cap_hits=st.num_inner_cap_hits + inner.cap_hit.astype(int),
    )


# --------------------------------------------------------------------------------------
# The solve and its implicit derivative
# --------------------------------------------------------------------------------------


def _tolerance(solver, kkt0):
    return solver.atol + solver.rtol * kkt0


# `optx.ImplicitAdjoint.apply` needs global functions without a closure, which a runtime
# type-checking wrapper (jaxtyping's import hook in the tests) would add.
@no_type_check
def _primal(inputs):
    fn, constraint_fn, solver, y0, lambda0, args, key, max_steps, preconditioner, while_loop = (
        inputs
    )
    dtype = y0.dtype
    _, grad_x, c = merit_value(fn, constraint_fn, y0, lambda0, args, 0.0, 0.0)
    kkt0 = jnp.sqrt(jnp.sum(grad_x**2) + jnp.sum(c**2))
    tol = _tolerance(solver, kkt0)
    nan = jnp.array(jnp.nan, dtype)
    init = _State(
        x=y0,
        lam=lambda0,
        mu=jnp.asarray(solver.mu0, dtype),
        nu=jnp.asarray(solver.nu0, dtype),
        delta=jnp.asarray(solver.delta0, dtype),
        kkt=kkt0,
        key=key,
        step=jnp.array(0),
        result=RESULTS.where(jnp.isfinite(kkt0), RESULTS.successful, RESULTS.nonfinite),
        kkt_history=jnp.full(max_steps + 1, nan).at[0].set(kkt0),
        alpha_history=jnp.full(max_steps, nan),
        inner_steps_history=jnp.full(max_steps, -1),
        num_inner_steps=jnp.array(0),
        num_fn_evals=jnp.array(1),
        flops=jnp.zeros((), dtype),
        num_penalty_updates=jnp.array(0),
        num_hessian_shifts=jnp.array(0),
        num_inner_cap_hits=jnp.array(0),
    )

    def cond(st):
        return (st.kkt > tol) & (st.step < max_steps) & (st.result == RESULTS.successful)

    def body(st):
        st = _outer_step(fn, constraint_fn, solver, args, preconditioner, st)
        bad = ~jnp.isfinite(st.kkt) & (st.result == RESULTS.successful)
        return eqx.tree_at(lambda t: t.result, st, RESULTS.where(bad, RESULTS.nonfinite, st.result))

    final = while_loop(cond, body, init, max_steps=max_steps)
    unconverged = (final.kkt > tol) & (final.result == RESULTS.successful)
    result = RESULTS.where(unconverged, RESULTS.nonlinear_max_steps_reached, final.result)
    stats = {
        "num_steps": final.step,
        "num_inner_steps": final.num_inner_steps,
        "num_fn_evals": final.num_fn_evals,
        "flops": final.flops,
        "num_penalty_updates": final.num_penalty_updates,
        "num_hessian_shifts": final.num_hessian_shifts,
        "num_inner_cap_hits": final.num_inner_cap_hits,
        "kkt_history": final.kkt_history,
        "alpha_history": final.alpha_history,
        "inner_steps_history": final.inner_steps_history,
    }
    return (final.x, final.lam), (result, stats, final)


@no_type_check
def _rewrite(root, residual, inputs):
    """The KKT conditions F(x, λ; args) = (∇f + Gᵀλ, c) = 0 that define the solution."""
    fn, constraint_fn, _, _, _, args, _, _, _, _ = inputs
    x, lam = root
    grad_x, c = jax.grad(lagrangian_and_constraints, argnums=2, has_aux=True)(
        fn, constraint_fn, x, lam, args
    )
    return grad_x, c


def _as_float64(name: str, value: ArrayLike) -> Array:
    value = jnp.asarray(value)
    if value.ndim != 1:
        raise ValueError(
            f"`constrained_minimise` needs a 1-D `{name}` of shape (n,); got shape "
            f"{value.shape}. Flatten it first, e.g. with `jax.flatten_util.ravel_pytree`."
        )
    if value.dtype == jnp.float64:
        return value
    if not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"`constrained_minimise` runs in float64 (its accuracy condition is unreachable in "
            f"float32), but `{name}` has dtype {value.dtype} and x64 is disabled; call "
            '`jax.config.update("jax_enable_x64", True)` at start-up.'
        )
    if jnp.issubdtype(value.dtype, jnp.floating):
        warnings.warn(
            f"`constrained_minimise` promotes `{name}` from {value.dtype} to float64 "
            "(its accuracy condition is unreachable in float32).",
            stacklevel=3,
        )
    return value.astype(jnp.float64)


_DEFAULT_ADJOINT = optx.ImplicitAdjoint(linear_solver=lx.LU())


def constrained_minimise(
    fn: Callable[[Float[Array, " n"], PyTree], Float[Array, ""]],
    constraint_fn: Callable[[Float[Array, " n"], PyTree], Float[Array, " m"]],
    solver: ExactAugmentedLagrangianNewton,
    y0: Float[ArrayLike, " n"],
    args: PyTree = None,
    *,
    lambda0: Float[ArrayLike, " m"] | None = None,
    max_steps: int = 256,
    key: PRNGKeyArray | None = None,
    throw: bool = True,
    adjoint: optx.AbstractAdjoint = _DEFAULT_ADJOINT,
    preconditioner: Callable[[Array, Array, PyTree], lx.AbstractLinearOperator] | None = None,
) -> ConstrainedSolution:
    """Solve min_x f(x) subject to c(x) = 0 (equality constraints only).

    The whole solve is one `lax.while_loop` (jittable, fixed-shape state). Gradients of the
    solution with respect to `args` (and any arrays closed over by a `fn` that is an
    `eqx.Module`) come from the implicit function theorem on the KKT conditions
    F(x, λ; args) = (∇f + Gᵀλ, c) = 0; with the default `optx.ImplicitAdjoint`, the solver
    iterations are never differentiated.

    **Arguments:**

    - `fn`: the objective, `fn(y, args) -> scalar`.
    - `constraint_fn`: the constraints, `constraint_fn(y, args) -> (m,)` array, m ≥ 1.
    - `solver`: an [`pdeopt.solvers.ExactAugmentedLagrangianNewton`][] configuration.
    - `y0`: the starting point, a 1-D float64 array (float32 is promoted with a warning).
    - `args`: passed to `fn` and `constraint_fn`.
    - `lambda0`: initial multipliers (default zeros).
    - `max_steps`: outer iteration cap (static; sizes the history arrays).
    - `key`: PRNG key for randomized inner solvers (default `jax.random.key(0)`). It is split
      every outer iteration and every inner round, and each inner solve gets a fresh subkey
      as `options["key"]`; the same key reproduces the same iterates.
    - `throw`: if `True`, raise on any result other than `RESULTS.successful`; otherwise return
      the failure in `solution.result`.
    - `adjoint`: an `optx.AbstractAdjoint`; `optx.ImplicitAdjoint(linear_solver=lx.LU())` by
      default. Its linear solver sees the symmetric indefinite KKT Jacobian.
    - `preconditioner`: `preconditioner(x, λ, args) -> S`, a symmetric positive definite
      `lx.AbstractLinearOperator` on R^{n+m} with S² ≈ |K|⁻¹ (e.g. the inverse square root of
      a block-diagonal KKT preconditioner diag(B̂, Ĝ B̂⁻¹ Ĝᵀ)), built once per outer iteration.
      The inner solver then solves the split-preconditioned system (S K S) w = −S∇L and
      z = S w, so every linear solver (Krylov, sketching, direct) sees the better-conditioned
      operator; the accuracy condition is still tested on K z + ∇L. The PDE-control problems
      provide one as `problem.kkt_preconditioner`. Default `None`: no preconditioning.
      `stats["flops"]` does not count the applications of S.

    **Returns:**

    A [`pdeopt.solvers.ConstrainedSolution`][].
    """
    if not isinstance(solver, ExactAugmentedLagrangianNewton):
        raise TypeError(
            "`constrained_minimise(..., solver=...)` takes an `ExactAugmentedLagrangianNewton`, "
            f"e.g. `ExactAugmentedLagrangianNewton()`; got {type(solver).__name__}."
        )
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive Python int; got {max_steps!r}.")
    y0 = _as_float64("y0", y0)
    c_struct = jax.eval_shape(constraint_fn, y0, args)
    if c_struct.ndim != 1 or c_struct.shape[0] == 0:
        raise ValueError(
            "`constraint_fn(y, args)` must return a non-empty 1-D array of shape (m,); got "
            f"shape {c_struct.shape}. For unconstrained problems use `optimistix.minimise`."
        )
    m = c_struct.shape[0]
    if lambda0 is None:
        lambda0 = jnp.zeros(m, jnp.float64)
    else:
        lambda0 = _as_float64("lambda0", lambda0)
        if lambda0.shape != (m,):
            raise ValueError(f"`lambda0` must have shape ({m},); got {lambda0.shape}.")
    if key is None:
        key = jr.key(0)
    if preconditioner is not None:
        _check_preconditioner(preconditioner, y0, lambda0, args)
    inputs = (fn, constraint_fn, solver, y0, lambda0, args, key, max_steps, preconditioner)
    (x, lam), (result, stats, state) = adjoint.apply(
        _primal, _rewrite, inputs, frozenset({lx.symmetric_tag})
    )
    stats = {
        **stats,
        "max_steps": max_steps,
        "safeguards": type(solver.safeguards).__name__,
        "merit_hessian": type(solver.merit_hessian).__name__,
    }
    sol = ConstrainedSolution(x, lam, result, stats, state)
    if throw:  # (`error_if` cannot carry the PRNG key in the state)
        keys, checked = eqx.partition(sol, _is_key)
        checked = result.error_if(checked, result != RESULTS.successful)
        sol = eqx.combine(keys, checked)
    return sol


def _check_preconditioner(preconditioner, y0, lambda0, args) -> None:
    size = y0.shape[0] + lambda0.shape[0]
    if not callable(preconditioner):
        raise TypeError(
            "`preconditioner` must be a function `(x, lambda, args) -> lx.AbstractLinearOperator`"
            f", got {type(preconditioner).__name__}."
        )
    struct = eqx.filter_eval_shape(preconditioner, y0, lambda0, args)
    if not isinstance(struct, lx.AbstractLinearOperator):
        raise TypeError(
            "`preconditioner(x, lambda, args)` must return an `lx.AbstractLinearOperator` (e.g. "
            f"`lx.FunctionLinearOperator`), got {type(struct).__name__}."
        )
    if struct.in_size() != size or struct.out_size() != size:
        raise ValueError(
            f"`preconditioner(x, lambda, args)` must act on R^(n+m) = R^{size} (x then lambda), "
            f"got an operator from R^{struct.in_size()} to R^{struct.out_size()}."
        )


def _is_key(x) -> bool:
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
