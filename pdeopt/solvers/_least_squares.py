"""Levenberg–Marquardt for tall least-squares problems with few unknowns: the damped Gauss–Newton
step is solved on the n×n normal equations (Cholesky), by a dense QR, or by sketch-preconditioned
CG."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.scipy.linalg as jsl
import jax.tree_util as jtu
import lineax as lx
import optimistix as optx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._sketches import AbstractSketch, CountSketch, check_positive_int

# ---- the damped step ------------------------------------------------------------------------


class LinearisedPoint(eqx.Module):
    """What a step solver keeps of the Jacobian J (m×n) and residual f at an accepted point: the
    gradient Jᵀf, Marquardt's scaling diag(JᵀJ), and its own data (JᵀJ, or J and a sketch)."""

    gradient: Float[Array, " n"]
    scale: Float[Array, " n"]
    data: PyTree[Array]
    num_rows: int = eqx.field(static=True)


class AbstractStepSolver(eqx.Module):
    """How [`pdeopt.solvers.LevenbergMarquardt`][] solves its damped Gauss–Newton step

        min_δ ‖J δ + f‖² + ‖(λD)^½ δ‖²,   i.e.   (JᵀJ + λD) δ = −Jᵀf,

    for the m×n Jacobian J (m ≫ n rows), the residual f and the scaling D = diag(JᵀJ).

    `prepare` runs once per accepted point (everything that does not depend on λ); `solve` once
    per trial step. `minimum_damping` is the smallest λ (relative to D) the solver is asked to
    solve with at a point (0 by default): a preconditioned iterative step needs some damping to
    stay well conditioned.
    """

    def minimum_damping(self, point: LinearisedPoint) -> float:
        """The smallest λ the solves at `point` use."""
        del point
        return 0.0

    @abc.abstractmethod
    def prepare(
        self, jac: Float[Array, "m n"], residual: Float[Array, " m"], key: Array
    ) -> LinearisedPoint:
        """The gradient, the scaling and what the solves at this point share."""

    @abc.abstractmethod
    def solve(
        self, point: LinearisedPoint, damping: Float[Array, " n"]
    ) -> tuple[Float[Array, " n"], Bool[Array, ""]]:
        """The step δ for `damping = λD`, and whether it was computed (a factorisation that
        broke down, or an iterative solve that stopped at its cap, was not)."""


def _scaled_point(jac, residual, data) -> LinearisedPoint:
    return LinearisedPoint(jac.T @ residual, jnp.sum(jac**2, axis=0), data, jac.shape[0])


class CholeskyStep(AbstractStepSolver):
    """The normal equations: JᵀJ formed once per accepted point (O(m n²) flops, one GEMM) and
    JᵀJ + λD Cholesky-factorised per trial step (O(n³)). The fastest step for n up to a few
    hundred; J itself is not kept.

    The normal equations square J's condition number. The damping bounds it, and a
    factorisation that breaks down is a rejected trial step, after which the damping grows.
    """

    def prepare(self, jac, residual, key):
        del key
        gram = jac.T @ jac
        return LinearisedPoint(jac.T @ residual, jnp.diagonal(gram), gram, jac.shape[0])

    def solve(self, point, damping):
        factor = jnp.linalg.cholesky(point.data + jnp.diag(damping))
        delta = -jsl.cho_solve((factor, True), point.gradient)
        return delta, jnp.all(jnp.isfinite(factor))


class QRStep(AbstractStepSolver):
    """A Householder QR of the stacked (m + n)×n matrix [J; (λD)^½] per trial step (O(m n²)):
    the backward-stable dense reference (what `optx.LevenbergMarquardt` does with `lx.QR`)."""

    def prepare(self, jac, residual, key):
        del key
        return _scaled_point(jac, residual, (jac, residual))

    def solve(self, point, damping):
        jac, residual = point.data
        q, r = jnp.linalg.qr(jnp.concatenate([jac, jnp.diag(jnp.sqrt(damping))]))
        # min ‖[J; (λD)^½] δ + [f; 0]‖ is R δ = −Qᵀ[f; 0].
        delta = -jsl.solve_triangular(r, q[: residual.size].T @ residual, lower=False)
        return delta, jnp.all(jnp.isfinite(delta))


class SketchedStep(AbstractStepSolver):
    """Sketch-preconditioned conjugate gradients (Blendenpik / LSRN style), for large n.

    Once per accepted point the m rows of J are compressed by a random sketch S ∈ R^{m×s},
    s = `oversampling`·n (a CountSketch by default: O(m n) to apply). Per trial step a QR of the
    small (s + n)×n matrix [SᵀJ; (λD)^½] gives R, and CG solves the normal equations
    split-preconditioned by R, R⁻ᵀ(JᵀJ + λD)R⁻¹, whose condition number is O(1) whatever J's
    is (about 3 for a CountSketch with s = 4n on a 10⁵ × 64 test matrix). Each CG step costs
    two products with J (O(m n)), and JᵀJ is never formed, so a trial step costs
    O(s n² + iterations · m n) instead of the dense paths' O(m n²).

    **Arguments:**

    - `sketch`: the sketch distribution ([`pdeopt.solvers.AbstractSketch`][]).
    - `oversampling`: s / n (at least 2; 4 by default).
    - `damping_floor`: the smallest λ it solves with (1e-5, relative to D). Undamped, a
        CountSketch with s = 4n misses the directions of J's smallest singular values where a few
        rows dominate (on a 10⁵ × 256 hard-constraint Jacobian the preconditioned condition
        number was 10⁴ at λ = 0, 45 at 10⁻⁶, 10 at 10⁻⁵ and 2.4 at 10⁻⁴).
    - `rtol`, `atol`, `max_steps`: CG's tolerances on the preconditioned residual and its cap
        (1e-8, 0, 200). A CG that stops at the cap is a rejected trial step.
    """

    sketch: AbstractSketch = CountSketch()
    oversampling: int = eqx.field(static=True, default=4)
    damping_floor: float = 1e-5
    rtol: float = 1e-8
    atol: float = 0.0
    max_steps: int = eqx.field(static=True, default=200)

    def __check_init__(self):
        check_positive_int("SketchedStep", "max_steps", self.max_steps)
        if not isinstance(self.oversampling, int) or self.oversampling < 2:
            raise ValueError(
                f"`SketchedStep(oversampling={self.oversampling!r})` must be an int >= 2 (the "
                "sketch needs more rows than unknowns); 4 is a good default."
            )

    def minimum_damping(self, point):
        del point
        return self.damping_floor

    def prepare(self, jac, residual, key):
        m, n = jac.shape
        if self.oversampling * n >= m:  # No fewer rows to gain: precondition by J's own QR.
            return _scaled_point(jac, residual, (jac, jac))
        sketch = self.sketch.draw(key, m, self.oversampling * n, jac.dtype)
        sketched = jax.vmap(sketch.transpose().mv, in_axes=1, out_axes=1)(jac)  # Sᵀ J, (s, n)
        return _scaled_point(jac, residual, (jac, sketched))

    def solve(self, point, damping):
        jac, sketched = point.data
        r = jnp.linalg.qr(jnp.concatenate([sketched, jnp.diag(jnp.sqrt(damping))]), mode="r")
        # CG on the split-preconditioned normal equations R⁻ᵀ(JᵀJ + λD)R⁻¹ z = −R⁻ᵀJᵀf, δ = R⁻¹z:
        # its condition number is O(1), so CG's own stopping test is a meaningful one.
        normal = lambda v: jac.T @ (jac @ v) + damping * v
        preconditioned = lambda z: _solve_rt(r, normal(_solve_r(r, z)))
        struct = jax.ShapeDtypeStruct(point.gradient.shape, point.gradient.dtype)
        psd = (lx.symmetric_tag, lx.positive_semidefinite_tag)
        sol = lx.linear_solve(
            lx.FunctionLinearOperator(preconditioned, struct, psd),
            _solve_rt(r, -point.gradient),
            lx.CG(rtol=self.rtol, atol=self.atol, max_steps=self.max_steps),
            throw=False,
        )
        delta = _solve_r(r, sol.value)
        # A rank-deficient sketch gives a singular R: its step is not a step.
        nonsingular = jnp.all(jnp.abs(jnp.diagonal(r)) > 0)
        ok = (sol.result == lx.RESULTS.successful) & nonsingular & jnp.all(jnp.isfinite(delta))
        return delta, ok


def _solve_r(r, v):
    return jsl.solve_triangular(r, v, lower=False)


def _solve_rt(r, v):
    return jsl.solve_triangular(r.T, v, lower=True)


class AutoStep(AbstractStepSolver):
    """`dense` (Cholesky) for n ≤ `max_dense` unknowns or fewer than `min_rows_per_unknown`·n
    rows, `sketched` otherwise; chosen from the static shapes at trace time."""

    dense: AbstractStepSolver = CholeskyStep()
    sketched: AbstractStepSolver = SketchedStep()
    max_dense: int = eqx.field(static=True, default=256)
    min_rows_per_unknown: int = eqx.field(static=True, default=16)

    def minimum_damping(self, point):
        return self.choose(point.num_rows, point.gradient.size).minimum_damping(point)

    def choose(self, m: int, n: int) -> AbstractStepSolver:
        large = n > self.max_dense and m >= self.min_rows_per_unknown * n
        return self.sketched if large else self.dense

    def prepare(self, jac, residual, key):
        return self.choose(*jac.shape).prepare(jac, residual, key)

    def solve(self, point, damping):
        return self.choose(point.num_rows, point.gradient.size).solve(point, damping)


# ---- the solver -----------------------------------------------------------------------------


class _LMState(eqx.Module):
    f: Float[Array, " m"]
    aux: PyTree[Array]
    point: LinearisedPoint
    damping: Float[Array, ""]
    terminate: Bool[Array, ""]
    result: optx.RESULTS
    key: Array
    num_trials: Int[Array, ""]


class _Trial(eqx.Module):
    """The trial steps of one Levenberg–Marquardt step, until one is accepted."""

    damping: Float[Array, ""]
    growth: Float[Array, ""]
    tries: Int[Array, ""]
    delta: Float[Array, " n"]
    f: Float[Array, " m"]
    aux: PyTree[Array]
    ratio: Float[Array, ""]
    accepted: Bool[Array, ""]
    converged: Bool[Array, ""]
    better: Bool[Array, ""]


def _cauchy(rtol, atol, norm, y, y_diff, f, f_diff) -> Bool[Array, ""]:
    """Both the step and the change of the residual are below `atol + rtol·|·|`, elementwise
    (optimistix's termination rule for its least-squares solvers)."""
    y_small = norm(jnp.abs(y_diff) / (atol + rtol * jnp.abs(y))) < 1
    f_small = norm(jnp.abs(f_diff) / (atol + rtol * jnp.abs(f))) < 1
    return y_small & f_small


class LevenbergMarquardt(optx.AbstractLeastSquaresSolver):
    """Levenberg–Marquardt for least-squares problems with few unknowns and many rows, such as
    the basis-weight solves of the hard-constraint layers.

    At an accepted point the residual f and its m×n Jacobian J come from one `jax.linearize`
    and the n tangent directions together; `step_solver` keeps what its solves need
    ([`pdeopt.solvers.AutoStep`][]: JᵀJ for Cholesky when n is small, J and a sketch of it for
    sketch-preconditioned CG when n is large). A step then tries damped Gauss–Newton steps
    (JᵀJ + λD)δ = −Jᵀf, with Marquardt's scaling D = diag(JᵀJ), each costing one residual
    evaluation, until one is accepted, and evaluates J once at the new point. Rejected trials
    therefore cost a residual, not a Jacobian.

    Damping and acceptance (Nielsen's rule with Fletcher's switch to pure Gauss–Newton):

    - λ starts at 0: the first trial is the Gauss–Newton step, exact in one step when f is
        affine in y;
    - a trial is accepted when its gain ratio ρ (actual over predicted decrease of ½‖f‖²)
        exceeds `accept`; then λ ← λ · max(1/3, 1 − (2ρ − 1)³), and λ < `min_damping` becomes 0;
    - a rejected trial (ρ ≤ `accept`, a non-finite residual, or a failed factorisation) sets
        λ ← max(ν λ, `initial_damping`) and doubles ν (ν = 2 at every step's start); after
        `max_trials` rejections in one step the solve stops with
        `optx.RESULTS.nonlinear_divergence`.

    `options["jacobian"]`, a function `(y, args) -> (f, J)` returning the flat residual and the
    m×n Jacobian, replaces the n forward-mode passes where the caller can form J cheaper (the
    hard-constraint layers use the pointwise structure of the PDE residual); it is for residual
    functions without auxiliary output.

    Termination is optimistix's: a step and a change in the residual both below
    `atol + rtol·|·|` elementwise in `norm`. It is tested on every trial, accepted or not, so a
    solve that has converged to round-off stops rather than shrinking its step until
    `max_steps`. A step is one Jacobian evaluation, so `max_steps` caps those.

    `postprocess` returns the number of residual evaluations in the stats as `num_trials`.

    **Arguments:**

    - `rtol`, `atol`: the termination tolerances.
    - `norm`: the norm of the termination test (default `optx.max_norm`).
    - `step_solver`: a [`pdeopt.solvers.AbstractStepSolver`][].
    - `accept`: the gain-ratio threshold for accepting a trial (1e-4).
    - `initial_damping`: λ after the first rejection (1e-3, relative to D).
    - `min_damping`: below this λ becomes 0 (1e-7).
    - `max_trials`: rejections allowed in one step (12).
    - `seed`: the seed of the sketches of a randomized step solver; `options["key"]` wins.
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree], Array] = optx.max_norm
    step_solver: AbstractStepSolver = AutoStep()
    accept: float = 1e-4
    initial_damping: float = 1e-3
    min_damping: float = 1e-7
    max_trials: int = eqx.field(static=True, default=12)
    seed: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        for name in ("rtol", "atol", "accept", "min_damping"):
            value = getattr(self, name)
            if isinstance(value, int | float) and not value >= 0:
                raise ValueError(f"pdeopt.solvers.LevenbergMarquardt: {name} must be >= 0.")
        if isinstance(self.initial_damping, int | float) and not self.initial_damping > 0:
            raise ValueError("pdeopt.solvers.LevenbergMarquardt: initial_damping must be > 0.")
        check_positive_int("LevenbergMarquardt", "max_trials", self.max_trials)

    def _linearise(self, fn, y_flat, unravel, args, options, key):
        if "jacobian" in options:
            f, jac = options["jacobian"](unravel(y_flat), args)
            aux = None
        else:

            def flat_fn(y):
                f, aux = fn(unravel(y), args)
                return ravel_pytree(f)[0], aux

            f, linear, aux = jax.linearize(flat_fn, y_flat, has_aux=True)
            eye = jnp.eye(y_flat.size, dtype=y_flat.dtype)
            jac = jax.vmap(linear, out_axes=1)(eye)  # (m, n), rows in the residual's order.
        return f, aux, self.step_solver.prepare(jac, f, key)

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        del tags
        y_flat, unravel = ravel_pytree(y)
        m = sum(x.size for x in jtu.tree_leaves(f_struct))
        if "jacobian" in options and aux_struct is not None:
            raise ValueError(
                "pdeopt.solvers.LevenbergMarquardt: options['jacobian'] is for residual "
                "functions without auxiliary output (has_aux=False)."
            )
        if m < y_flat.size:
            raise ValueError(
                f"pdeopt.solvers.LevenbergMarquardt: {m} residual rows for {y_flat.size} "
                "unknowns; a least-squares problem needs at least as many rows as unknowns."
            )
        key = options.get("key", jr.key(self.seed))
        # Raw key data in the state: optimistix's error path cannot carry typed keys.
        key = jr.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        key, first = jr.split(key)
        f, aux, point = self._linearise(fn, y_flat, unravel, args, options, first)
        finite = jnp.all(jnp.isfinite(f)) & jnp.all(jnp.isfinite(point.gradient))
        return _LMState(
            f=f,
            aux=aux,
            point=point,
            damping=jnp.zeros((), y_flat.dtype),
            terminate=~finite,
            result=optx.RESULTS.where(finite, optx.RESULTS.successful, optx.RESULTS.nonfinite),
            key=key,
            num_trials=jnp.array(0),
        )

    def step(self, fn, y, args, options, state, tags):
        del tags
        y_flat, unravel = ravel_pytree(y)
        point, loss = state.point, 0.5 * jnp.sum(state.f**2)

        def attempt(trial: _Trial) -> _Trial:
            damping = jnp.maximum(trial.damping, self.step_solver.minimum_damping(point))
            delta, ok = self.step_solver.solve(point, damping * point.scale)
            delta = jnp.where(ok, delta, 0.0)
            f, aux = fn(unravel(y_flat + delta), args)
            f = ravel_pytree(f)[0]
            loss_new = 0.5 * jnp.sum(f**2)
            # The decrease the model JᵀJ + λD predicts: ½(λ δᵀDδ − gᵀδ).
            predicted = 0.5 * (damping * jnp.sum(point.scale * delta**2) - point.gradient @ delta)
            ratio = (loss - loss_new) / jnp.where(predicted > 0, predicted, jnp.inf)
            finite = ok & jnp.isfinite(loss_new)
            accepted = finite & (ratio > self.accept)
            converged = finite & _cauchy(
                self.rtol, self.atol, self.norm, y_flat, delta, f, f - state.f
            )
            done = accepted | converged
            return _Trial(
                damping=jnp.where(
                    done,
                    trial.damping,
                    jnp.maximum(trial.growth * trial.damping, self.initial_damping),
                ),
                growth=jnp.where(done, trial.growth, 2 * trial.growth),
                tries=trial.tries + 1,
                delta=delta,
                f=f,
                aux=aux,
                ratio=ratio,
                accepted=accepted,
                converged=converged,
                better=finite & (loss_new <= loss),
            )

        searching = lambda t: ~(t.accepted | t.converged) & (t.tries <= self.max_trials)
        false, zero = jnp.array(False), jnp.zeros((), y_flat.dtype)
        first = _Trial(
            state.damping,
            zero + 2,
            jnp.array(0),
            jnp.zeros_like(y_flat),
            state.f,
            state.aux,
            zero,
            false,
            false,
            false,
        )
        trial = jax.lax.while_loop(searching, attempt, first)
        move = trial.accepted | (trial.converged & trial.better)
        y_new = jnp.where(move, y_flat + trial.delta, y_flat)
        key, prepare_key = jr.split(state.key)
        f, aux, point = jax.lax.cond(
            move & ~trial.converged,
            lambda: self._linearise(fn, y_new, unravel, args, options, prepare_key),
            lambda: (
                jnp.where(move, trial.f, state.f),
                jtu.tree_map(lambda a, b: jnp.where(move, a, b), trial.aux, state.aux),
                state.point,
            ),
        )
        # Nielsen's update after an acceptance, with Fletcher's switch to λ = 0.
        shrink = jnp.maximum(1 / 3, 1 - (2 * trial.ratio - 1) ** 3)
        damping = jnp.where(trial.accepted, trial.damping * shrink, trial.damping)
        damping = jnp.where(damping < self.min_damping, 0.0, damping)
        stuck = ~(trial.accepted | trial.converged)
        new_state = _LMState(
            f=f,
            aux=aux,
            point=point,
            damping=damping,
            terminate=trial.converged | stuck,
            result=optx.RESULTS.where(
                stuck, optx.RESULTS.nonlinear_divergence, optx.RESULTS.successful
            ),
            key=key,
            num_trials=state.num_trials + trial.tries,
        )
        return unravel(y_new), new_state, aux

    def terminate(self, fn, y, args, options, state, tags):
        return state.terminate, state.result

    def postprocess(self, fn, y, aux, args, options, state, tags, result):
        return y, aux, {"num_trials": state.num_trials}
