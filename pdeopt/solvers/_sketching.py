"""pdeopt's randomized linear solvers (`lineax.AbstractLinearSolver`s): their shared base and
the sketch-and-project solvers.

[`pdeopt.solvers.AbstractRandomizedLinearSolver`][] owns what all of them share: `rtol`,
`atol`, `norm`, `max_steps`, `seed`, the PRNG key and `assume_full_rank`. Under it,
[`pdeopt.solvers.AbstractSketchSolver`][] owns the loop of the sketch-and-project solvers
defined here, which solve a consistent system K z = b by iterating

    z ← z − KᵀS (SᵀK KᵀS)† Sᵀ (K z − b)

with a fresh random sketch S ∈ R^{N×q} every step (Gower & Richtárik 2015).
[`pdeopt.solvers.NystromPCG`][] (`_nystrom.py`) is the other subclass of the base.

Randomness: the PRNG key is `options["key"]` when given, else `jax.random.key(seed)`. A warm
start may be passed as `options["y0"]` (default zeros). `transpose`/`conj` keep the key and
drop `y0`, which belongs to the untransposed, unconjugated system.
"""

import abc
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.scipy as jsp
import lineax as lx
import lineax.internal as lxi
from jaxtyping import Array, Bool, Float, Int, PyTree, Scalar

from .._custom_types import Key
from ._sketches import AbstractSketch, GaussianSketch, check_positive_int

_OperatorState: TypeAlias = tuple[lx.AbstractLinearOperator, lxi.PackedStructures]
_KaczmarzState: TypeAlias = tuple[
    Float[Array, "m n"], Float[Array, " m"], Float[Array, " m"], lxi.PackedStructures
]

# The stagnation test: every `stagnation_iters` steps the smallest residual norm seen so far
# must have fallen below this fraction of its value at the previous test.
_STAGNATION_FACTOR = 0.9
# Defaults, in epochs (the steps that draw N sketch columns in all, N the rows of K).
_STAGNATION_EPOCHS = 40
_MAX_STEPS_EPOCHS = 20_000


class AbstractRandomizedLinearSolver(lx.AbstractLinearSolver):
    """A randomized iterative lineax solver: tolerances, norm, step cap and seed.

    Subclasses provide the fields `rtol`, `atol`, `norm` (the norm of the stopping test),
    `max_steps` (an int, or `None` for a default derived from the system size) and `seed`.
    The PRNG key of a solve is `options["key"]` when given, else `jax.random.key(seed)`;
    `transpose` and `conj` keep the key and drop `options["y0"]`. Like `lineax.CG` and
    `lineax.GMRES` they assume a well-posed (full-rank) operator when differentiated.
    """

    rtol: eqx.AbstractVar[float]
    atol: eqx.AbstractVar[float]
    norm: eqx.AbstractVar[Callable[[PyTree[Array]], Scalar]]
    max_steps: eqx.AbstractVar[int | None]
    seed: eqx.AbstractVar[int]

    def __check_init__(self):
        name = type(self).__name__
        for field in ("rtol", "atol"):
            value = getattr(self, field)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"`{name}({field}={value})` must be non-negative.")
        rtol, atol = self.rtol, self.atol
        if isinstance(rtol, (int, float)) and isinstance(atol, (int, float)) and rtol == 0 == atol:
            raise ValueError(f"`{name}` needs `rtol > 0` or `atol > 0`, e.g. `rtol=1.0e-8`.")
        if self.max_steps is not None and isinstance(self.max_steps, (int, float)):
            check_positive_int(name, "max_steps", self.max_steps, " or None")

    def _key(self, options: dict[str, Any]):
        key = options.get("key")
        return jr.key(self.seed) if key is None else key

    @staticmethod
    def _keep_key(options: dict[str, Any]) -> dict[str, Any]:
        """The options of the transposed or conjugated system: the key, without `y0`."""
        return {k: v for k, v in options.items() if k == "key"}

    def assume_full_rank(self):
        return True

    @abc.abstractmethod
    def modelled_flops(self, num_steps: Float[Array, ""], size: int) -> Scalar:
        """The modelled cost of `num_steps` steps on an N×N system (N = `size`), a matvec
        counted as a dense 2N² (the cost model of the constrained solver's `stats["flops"]`)."""


def _y0(options: dict[str, Any], packed: lxi.PackedStructures, size: int, dtype) -> Array:
    """The warm start as a flat vector (zeros unless `options["y0"]`)."""
    y0 = options.get("y0")
    if y0 is None:
        return jnp.zeros(size, dtype)
    return lxi.ravel_vector(y0, lxi.transpose_packed_structures(packed)).astype(dtype)


class _Loop(eqx.Module):
    """The carry of the sketch-and-project loop.

    - `iterate`: what the solver's step advances (the flat z, with the residual if it keeps it).
    - `res_norm`: `norm(K z − b)` at the last residual evaluation.
    - `best`, `reference`: the smallest `res_norm` so far, and its value at the last
      stagnation test (at step `tested_at`).
    """

    iterate: PyTree[Array]
    res_norm: Scalar
    key: Key
    step: Int[Array, ""]
    best: Scalar
    reference: Scalar
    tested_at: Int[Array, ""]
    stagnated: Bool[Array, ""]


class AbstractSketchSolver(AbstractRandomizedLinearSolver):
    """Sketch-and-project: the loop and stopping rules shared by pdeopt's sketch solvers.

    A solve of K z = b, K with N rows, runs from `options["y0"]` (default zeros) and stops

    - successfully once `norm(K z − b) ≤ atol + rtol·norm(b)`;
    - with `lineax.RESULTS.stagnation` once `stagnation_iters` steps have not cut the
      smallest residual norm seen so far by 10 % (tested when the residual is evaluated:
      every step, or every `check_every` steps for `RandomizedKaczmarz`);
    - with `lineax.RESULTS.max_steps_reached` after `max_steps` steps.

    `stats` holds `num_steps` and `max_steps` (the cap in force), as for `lineax.CG`.

    **The norm** defaults to the 2-norm (`lineax.internal.two_norm`), not lineax's max-norm:
    the convergence theory of sketch-and-project, the rates quoted by the solvers below, and
    the accuracy condition of [`pdeopt.solvers.ExactAugmentedLagrangianNewton`][] are all
    stated in the 2-norm, and in that norm the test does not depend on N (the max-norm test is
    up to √N times looser in the 2-norm).

    **The defaults of `stagnation_iters` and `max_steps`** are multiples of an *epoch*,
    ⌈N/q⌉ steps for a solver that draws q sketch columns per step (N columns in all): 40
    epochs and 20 000 epochs. Sketch-and-project needs about κ_F(K)²·ln(1/ε)/q steps,
    κ_F(K) = ‖K‖_F/σ_min(K) ≥ √N, so no fixed multiple of N is enough for every well-posed
    system. A hopeless solve is recognised by its residual instead, which stops falling: an
    inconsistent system (it levels off at the least-squares residual), a tolerance below what
    the precision allows (it levels off at rounding), or a system so ill-conditioned that the
    residual barely moves. Such a solve fails after two to five windows (80–200 epochs in
    `experiments/bench_sketch_failure.py`), sooner than a well-conditioned system converges
    (κ_F(K)² = 10·N needs about 180 epochs for ε = 1e-8).

    The window is that long because the residual of a randomized solve is not monotone: on
    the test catalogue's SPD system (κ = 10, N = 12), which converges at 30–40 epochs per
    factor e, randomized Kaczmarz has plateaus of up to 30 epochs; a 20-epoch window declared
    stagnation in up to 2 % of its solves, 40 epochs in none of 200 per solver and family. A solve
    passes the test while it gains 10 % per 40 epochs (380 epochs per factor e), and at that
    pace `max_steps` is reached only after a cut by 0.9⁵⁰⁰ ≈ 1e-23, beyond float64 rounding:
    with the defaults, a solve ends by converging or by stagnating, and `max_steps` is a
    backstop. `stagnation_iters >= max_steps` turns the stagnation test off.
    """

    stagnation_iters: eqx.AbstractVar[int | None]

    def __check_init__(self):
        if self.stagnation_iters is not None and isinstance(self.stagnation_iters, (int, float)):
            check_positive_int(
                type(self).__name__, "stagnation_iters", self.stagnation_iters, " or None"
            )

    def _columns_per_step(self, num_rows: int) -> int:
        """q, the number of sketch columns one step draws."""
        del num_rows
        return 1

    def _limits(self, num_rows: int) -> tuple[int | Int[Array, ""], int | Int[Array, ""]]:
        """(`max_steps`, `stagnation_iters`), the defaults resolved for N = `num_rows`."""
        epoch = -(-num_rows // self._columns_per_step(num_rows))
        max_steps = _MAX_STEPS_EPOCHS * epoch if self.max_steps is None else self.max_steps
        window = self.stagnation_iters
        return max_steps, _STAGNATION_EPOCHS * epoch if window is None else window

    def _residual_norm(self, r: Float[Array, " m"], packed: lxi.PackedStructures) -> Scalar:
        """`norm` of the flat residual, taken in the operator's output structure."""
        return self.norm(lxi.unravel_solution(r, lxi.transpose_packed_structures(packed)))

    def _run(self, advance, iterate, res_norm, vector, key, max_steps, window):
        """Iterate `advance(iterate, key, step) -> (iterate, res_norm, step)` until one of
        the stopping rules holds; returns the final iterate, the result and the stats."""
        tol = self.atol + self.rtol * self.norm(vector)

        def cond_fun(loop: _Loop):
            return (loop.res_norm > tol) & (loop.step < max_steps) & ~loop.stagnated

        def body_fun(loop: _Loop):
            key, subkey = jr.split(loop.key)
            iterate, res_norm, step = advance(loop.iterate, subkey, loop.step)
            best = jnp.minimum(loop.best, res_norm)
            test = step - loop.tested_at >= window
            return _Loop(
                iterate=iterate,
                res_norm=res_norm,
                key=key,
                step=step,
                best=best,
                reference=jnp.where(test, best, loop.reference),
                tested_at=jnp.where(test, step, loop.tested_at),
                stagnated=test & (best > _STAGNATION_FACTOR * loop.reference),
            )

        zero = jnp.array(0)
        init = _Loop(iterate, res_norm, key, zero, res_norm, res_norm, zero, jnp.array(False))
        final = lax.while_loop(cond_fun, body_fun, init)
        # A stagnation test at the last step counts as reaching `max_steps`.
        stagnated = final.stagnated & (final.step < max_steps)
        failure = lx.RESULTS.where(stagnated, lx.RESULTS.stagnation, lx.RESULTS.max_steps_reached)
        result = lx.RESULTS.where(final.res_norm <= tol, lx.RESULTS.successful, failure)
        return final.iterate, result, {"num_steps": final.step, "max_steps": max_steps}


class _AbstractOperatorSketchSolver(AbstractSketchSolver):
    """Matrix-free sketch-and-project: the state is the linearised operator."""

    @abc.abstractmethod
    def _direction(self, key, mv, rmv, residual: Float[Array, " m"]) -> Float[Array, " n"]:
        """The step d = KᵀS(SᵀKKᵀS)†Sᵀr for a fresh sketch S drawn from `key`."""

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]) -> _OperatorState:
        del options
        return lx.linearise(operator), lxi.pack_structures(operator)

    def compute(
        self, state: _OperatorState, vector: PyTree[Array], options: dict[str, Any]
    ) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
        operator, packed = state
        packed_t = lxi.transpose_packed_structures(packed)
        operator_t = operator.transpose()

        def mv(z):
            return lxi.ravel_vector(operator.mv(lxi.unravel_solution(z, packed)), packed)

        def rmv(r):
            return lxi.ravel_vector(operator_t.mv(lxi.unravel_solution(r, packed_t)), packed_t)

        def advance(iterate, key, step):
            z, r = iterate
            z = z - self._direction(key, mv, rmv, r)
            # Recomputing r = Kz - b costs the same single matvec as the incremental update
            # r - K d, and does not drift.
            r = mv(z) - b
            return (z, r), self._residual_norm(r, packed), step + 1

        b = lxi.ravel_vector(vector, packed)
        z0 = _y0(options, packed, operator.in_size(), b.dtype)
        r0 = mv(z0) - b
        max_steps, window = self._limits(b.shape[0])
        (z, _), result, stats = self._run(
            advance,
            (z0, r0),
            self._residual_norm(r0, packed),
            vector,
            self._key(options),
            max_steps,
            window,
        )
        return lxi.unravel_solution(z, packed), result, stats

    def transpose(self, state: _OperatorState, options: dict[str, Any]):
        operator, packed = state
        transpose_state = operator.transpose(), lxi.transpose_packed_structures(packed)
        return transpose_state, self._keep_key(options)

    def conj(self, state: _OperatorState, options: dict[str, Any]):
        operator, packed = state
        return (lx.conj(operator), packed), self._keep_key(options)


class GaussianSketchProject(_AbstractOperatorSketchSolver):
    """One-column Gaussian sketch-and-project ("GV"), matrix-free.

    Each step draws s ~ N(0, I_N), forms w = Kᵀs and updates

        z ← z − (sᵀr / ‖w‖²)·w,    r = K z − b.

    Cost per step: one transposed matvec (`operator.transpose().mv`, a VJP for a matrix-free
    operator) and one matvec (the new residual), plus O(N). The expected error contracts by
    (1 − σ_min(K)²/‖K‖_F²) per step up to constants, so expect T ≈ κ_F(K)²·ln(1/ε) ≳ N·ln(1/ε)
    steps: this beats a dense LU only for very large, structured or streamed K at loose
    tolerances.

    The stopping rules are those of [`pdeopt.solvers.AbstractSketchSolver`][]; one step draws
    one sketch column, so an epoch is N steps.

    **Arguments:**

    - `rtol`: relative tolerance, `norm(Kz − b) ≤ atol + rtol·norm(b)`.
    - `atol`: absolute tolerance.
    - `norm`: the norm of the stopping and stagnation tests; the 2-norm by default.
    - `max_steps`: the maximum number of sketch steps; `None` means 20 000·N.
    - `stagnation_iters`: the steps within which the smallest residual must fall by 10 %;
        `None` means 40·N.
    - `seed`: the seed used when `options["key"]` is not given.

    ??? cite "References"

        ```bibtex
        @article{gower2015randomized,
            title={Randomized iterative methods for linear systems},
            author={Gower, Robert M. and Richt{\'a}rik, Peter},
            journal={SIAM Journal on Matrix Analysis and Applications},
            volume={36},
            number={4},
            pages={1660--1690},
            year={2015}
        }

        @inproceedings{hong2023constrained,
            title={Constrained Optimization via Exact Augmented {L}agrangian and Randomized
                   Iterative Sketching},
            author={Hong, Ilgee and Na, Sen and Mahoney, Michael W. and Kolar, Mladen},
            booktitle={Proceedings of the 40th International Conference on Machine Learning},
            pages={13174--13198},
            year={2023}
        }
        ```
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree[Array]], Scalar] = lxi.two_norm
    max_steps: int | None = None
    stagnation_iters: int | None = None
    seed: int = 0

    def modelled_flops(self, num_steps, size):
        return 4.0 * num_steps * size**2  # Kᵀs and the new residual: two matvecs per step

    def _direction(self, key, mv, rmv, residual):
        s = jr.normal(key, residual.shape, residual.dtype)
        w = rmv(s)
        w_norm2 = jnp.dot(w, w)
        safe_norm2 = jnp.where(w_norm2 > 0, w_norm2, 1)
        return jnp.where(w_norm2 > 0, jnp.dot(s, residual) / safe_norm2, 0) * w


class BlockSketchProject(_AbstractOperatorSketchSolver):
    """Block sketch-and-project with a q-column sketch S, matrix-free.

    Each step draws S ∈ R^{N×q} from `sketch`, forms W = KᵀS (N×q, by `jax.vmap` of the
    transposed matvec over the q columns of S) and its column-pivoted thin QR W P = Q R, then

        z ← z − Q R₁₁⁻ᵀ (Pᵀ Sᵀ r)₁,

    which equals z − W (WᵀW)† Sᵀr without forming WᵀW (that would square the conditioning).
    Rank deficiency of W (e.g. an empty CountSketch column) is handled by truncating the
    pivoted R to the columns with |R_jj| > max(N, q)·eps·|R_11|; for consistent systems this
    is the exact projection onto range(W).

    Cost per step: q transposed matvecs, one matvec (the new residual), O(Nq²) for the QR, and
    drawing S. A block step projects onto a larger subspace than a one-column step with any
    column of S, so it makes at least as much progress, at better arithmetic intensity; with
    a Gaussian sketch and q = N one step solves a square system exactly.

    The stopping rules are those of [`pdeopt.solvers.AbstractSketchSolver`][]; one step draws
    q' = min(q, N) sketch columns, so an epoch is ⌈N/q'⌉ steps.

    **Arguments:**

    - `rtol`: relative tolerance, `norm(Kz − b) ≤ atol + rtol·norm(b)`.
    - `atol`: absolute tolerance.
    - `norm`: the norm of the stopping and stagnation tests; the 2-norm by default.
    - `block_size`: q, the number of sketch columns.
    - `sketch`: the sketch distribution, an [`pdeopt.solvers.AbstractSketch`][]: e.g.
        `GaussianSketch()`, `CountSketch()`, `SparseSignSketch(nnz_per_column=8)`.
    - `max_steps`: the maximum number of block steps; `None` means 20 000·⌈N/q'⌉.
    - `stagnation_iters`: the block steps within which the smallest residual must fall by
        10 %; `None` means 40·⌈N/q'⌉.
    - `seed`: the seed used when `options["key"]` is not given.

    ??? cite "References"

        Gower & Richtárik (2015), *Randomized iterative methods for linear systems*; the
        entry is under [`pdeopt.solvers.GaussianSketchProject`][].
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree[Array]], Scalar] = lxi.two_norm
    block_size: int = eqx.field(static=True, default=8)
    sketch: AbstractSketch = GaussianSketch()
    max_steps: int | None = None
    stagnation_iters: int | None = None
    seed: int = 0

    def __check_init__(self):
        check_positive_int("BlockSketchProject", "block_size", self.block_size)
        if not isinstance(self.sketch, AbstractSketch):
            raise ValueError(
                "`BlockSketchProject(sketch=...)` must be an `AbstractSketch` instance such as "
                "`GaussianSketch()` or `CountSketch()`."
            )

    def modelled_flops(self, num_steps, size):
        q = min(self.block_size, size)  # q transposed matvecs, one matvec, QR of N×q
        return num_steps * (2.0 * (q + 1) * size**2 + 4.0 * size * q**2)

    def _columns_per_step(self, num_rows: int) -> int:
        return min(self.block_size, num_rows)

    def _direction(self, key, mv, rmv, residual):
        sketch = self.sketch.draw(key, residual.shape[0], self.block_size, residual.dtype)
        w = jax.vmap(rmv, in_axes=1, out_axes=1)(sketch.as_matrix())
        c = sketch.transpose().mv(residual)
        q, r, perm = jsp.linalg.qr(w, mode="economic", pivoting=True)
        k = r.shape[0]
        r11 = r[:, :k]
        diag = jnp.abs(jnp.diag(r11))
        keep = diag > max(w.shape) * jnp.finfo(w.dtype).eps * diag[0]
        r11 = jnp.where(keep[:, None] & keep[None, :], r11, 0) + jnp.diag(~keep)
        c = jnp.where(keep, c[perm][:k], 0)
        y = jsp.linalg.solve_triangular(r11, c, trans="T", lower=False)
        return q @ y


class RandomizedKaczmarz(AbstractSketchSolver):
    """Randomized Kaczmarz: sketch-and-project with coordinate sketches s = e_i ("RK").

    Each step samples a row i and updates z ← z − ((K_i z − b_i)/‖K_i‖²)·K_iᵀ at O(N) cost.
    Row access needs the matrix: `init` materialises `operator.as_matrix()` once (O(N²)
    memory; N matvecs for a matrix-free operator). The residual is lazy: only the sampled
    entry is computed per step, and the full residual K z − b (O(N²)) only every
    `check_every` steps, so `num_steps` is a multiple of `check_every` unless `max_steps` is
    reached. With the default `check_every = N` the amortised cost is O(N) per step.

    The stopping rules are those of [`pdeopt.solvers.AbstractSketchSolver`][], tested at the
    residual checks; one step draws one row, so an epoch is N steps.

    **Arguments:**

    - `rtol`: relative tolerance, `norm(Kz − b) ≤ atol + rtol·norm(b)`.
    - `atol`: absolute tolerance.
    - `norm`: the norm of the stopping and stagnation tests; the 2-norm by default.
    - `sampling`: `"row_norm"` samples i ∝ ‖K_i‖² (Strohmer–Vershynin, expected rate
        1 − σ_min(K)²/‖K‖_F²); `"uniform"` samples i uniformly (the AdaSketch reference code).
        The choice only sets the sampling distribution, computed once in `init`.
    - `check_every`: steps between full residual checks; `None` means the number of rows.
    - `max_steps`: the maximum number of row steps; `None` means 20 000·N.
    - `stagnation_iters`: the row steps within which the smallest residual must fall by
        10 %; `None` means 40·N.
    - `seed`: the seed used when `options["key"]` is not given.

    ??? cite "References"

        ```bibtex
        @article{strohmer2009randomized,
            title={A randomized {K}aczmarz algorithm with exponential convergence},
            author={Strohmer, Thomas and Vershynin, Roman},
            journal={Journal of Fourier Analysis and Applications},
            volume={15},
            number={2},
            pages={262--278},
            year={2009}
        }
        ```

        and Gower & Richtárik (2015), under [`pdeopt.solvers.GaussianSketchProject`][].
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree[Array]], Scalar] = lxi.two_norm
    sampling: Literal["uniform", "row_norm"] = eqx.field(static=True, default="row_norm")
    check_every: int | None = eqx.field(static=True, default=None)
    max_steps: int | None = None
    stagnation_iters: int | None = None
    seed: int = 0

    def modelled_flops(self, num_steps, size):
        every = size if self.check_every is None else self.check_every
        # a row step, plus a full residual every `every` steps
        return 2.0 * num_steps * size + 2.0 * size**2 * jnp.ceil(num_steps / every)

    def __check_init__(self):
        if self.sampling not in ("uniform", "row_norm"):
            raise ValueError(
                f"`RandomizedKaczmarz(sampling={self.sampling!r})` is not a sampling "
                "distribution; use `sampling='row_norm'` or `sampling='uniform'`."
            )
        if self.check_every is not None:
            check_positive_int("RandomizedKaczmarz", "check_every", self.check_every, " or None")

    def _state(self, matrix, packed) -> _KaczmarzState:
        row_norm2 = jnp.sum(matrix * matrix, axis=1)
        if self.sampling == "row_norm":
            weights = row_norm2
        else:
            weights = jnp.ones_like(row_norm2)
        cdf = jnp.cumsum(weights)
        inv_row_norm2 = jnp.where(row_norm2 > 0, 1 / jnp.where(row_norm2 > 0, row_norm2, 1), 0)
        return matrix, inv_row_norm2, cdf / cdf[-1], packed

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]) -> _KaczmarzState:
        del options
        return self._state(operator.as_matrix(), lxi.pack_structures(operator))

    def compute(
        self, state: _KaczmarzState, vector: PyTree[Array], options: dict[str, Any]
    ) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
        matrix, inv_row_norm2, cdf, packed = state
        num_rows = matrix.shape[0]
        check_every = num_rows if self.check_every is None else self.check_every
        b = lxi.ravel_vector(vector, packed)
        max_steps, window = self._limits(num_rows)

        def row_step(i, z):
            row = matrix[i]
            return z - ((jnp.dot(row, z) - b[i]) * inv_row_norm2[i]) * row

        def advance(z, key, step):
            u = jr.uniform(key, (check_every,), cdf.dtype)
            rows = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), num_rows - 1)
            num_inner = jnp.minimum(check_every, max_steps - step)
            z = lax.fori_loop(0, num_inner, lambda j, z: row_step(rows[j], z), z)
            return z, self._residual_norm(matrix @ z - b, packed), step + num_inner

        z0 = _y0(options, packed, matrix.shape[1], b.dtype)
        res_norm0 = self._residual_norm(matrix @ z0 - b, packed)
        z, result, stats = self._run(
            advance, z0, res_norm0, vector, self._key(options), max_steps, window
        )
        return lxi.unravel_solution(z, packed), result, stats

    def transpose(self, state: _KaczmarzState, options: dict[str, Any]):
        matrix, _, _, packed = state
        transpose_state = self._state(matrix.T, lxi.transpose_packed_structures(packed))
        return transpose_state, self._keep_key(options)

    def conj(self, state: _KaczmarzState, options: dict[str, Any]):
        matrix, inv_row_norm2, cdf, packed = state
        return (jnp.conj(matrix), inv_row_norm2, cdf, packed), self._keep_key(options)
