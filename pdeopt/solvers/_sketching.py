"""Randomized sketch-and-project linear solvers, as `lineax.AbstractLinearSolver`s.

All of them solve a consistent system K z = b (K square nonsingular, or more generally with
b in the range of K) by iterating

    z ← z − KᵀS (SᵀK KᵀS)† Sᵀ (K z − b)

with a fresh random sketch S ∈ R^{N×q} every step (Gower & Richtárik 2015). They stop once
‖K z − b‖₂ ≤ atol + rtol·‖b‖₂, or after `max_steps` steps, in which case they return
`lineax.RESULTS.max_steps_reached`.

Randomness: the PRNG key is `options["key"]` when given, else `jax.random.key(seed)`. A warm
start may be passed as `options["y0"]` (default zeros). `transpose`/`conj` keep the key and
drop `y0`, which belongs to the untransposed system.
"""

import abc
from typing import Any, Literal, TypeAlias

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.scipy as jsp
import lineax as lx
import lineax.internal as lxi
from jaxtyping import Array, Float, PyTree

from ._sketches import AbstractSketch, GaussianSketch, check_positive_int

_OperatorState: TypeAlias = tuple[lx.AbstractLinearOperator, lxi.PackedStructures]
_KaczmarzState: TypeAlias = tuple[
    Float[Array, "m n"], Float[Array, " m"], Float[Array, " m"], lxi.PackedStructures
]


def key_from_options(options: dict[str, Any], seed: int):
    key = options.get("key")
    return jr.key(seed) if key is None else key


def transpose_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k == "key"}


def _y0(options: dict[str, Any], packed: lxi.PackedStructures, size: int, dtype) -> Array:
    """The warm start as a flat vector (zeros unless `options["y0"]`)."""
    y0 = options.get("y0")
    if y0 is None:
        return jnp.zeros(size, dtype)
    return lxi.ravel_vector(y0, lxi.transpose_packed_structures(packed)).astype(dtype)


def _result(converged):
    return lx.RESULTS.where(converged, lx.RESULTS.successful, lx.RESULTS.max_steps_reached)


class AbstractSketchSolver(lx.AbstractLinearSolver):
    """Shared configuration of pdeopt's randomized linear solvers.

    Subclasses provide `rtol`, `atol`, `max_steps` and `seed`, and assume a well-posed
    (full-rank) operator when differentiated, like `lineax.CG` and `lineax.GMRES`.
    """

    rtol: eqx.AbstractVar[float]
    atol: eqx.AbstractVar[float]
    max_steps: eqx.AbstractVar[int]
    seed: eqx.AbstractVar[int]

    def __check_init__(self):
        name = type(self).__name__
        for field in ("rtol", "atol"):
            value = getattr(self, field)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"`{name}({field}={value})` must be non-negative.")
        if (
            isinstance(self.rtol, (int, float))
            and isinstance(self.atol, (int, float))
            and self.rtol == 0
            and self.atol == 0
        ):
            raise ValueError(f"`{name}` needs `rtol > 0` or `atol > 0`, e.g. `rtol=1.0e-8`.")
        if isinstance(self.max_steps, (int, float)) and (
            not isinstance(self.max_steps, int) or self.max_steps < 1
        ):
            raise ValueError(f"`{name}(max_steps={self.max_steps})` must be a positive int.")

    def assume_full_rank(self):
        return True


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

        b = lxi.ravel_vector(vector, packed)
        z0 = _y0(options, packed, operator.in_size(), b.dtype)
        tol = self.atol + self.rtol * jnp.linalg.norm(b)

        def cond_fun(carry):
            _, r, _, step = carry
            return (jnp.linalg.norm(r) > tol) & (step < self.max_steps)

        def body_fun(carry):
            z, r, key, step = carry
            key, subkey = jr.split(key)
            z = z - self._direction(subkey, mv, rmv, r)
            # Recomputing r = Kz - b costs the same single matvec as the incremental update
            # r - K d, and does not drift.
            return z, mv(z) - b, key, step + 1

        init = (z0, mv(z0) - b, key_from_options(options, self.seed), jnp.array(0))
        z, r, _, num_steps = lax.while_loop(cond_fun, body_fun, init)
        solution = lxi.unravel_solution(z, packed)
        return solution, _result(jnp.linalg.norm(r) <= tol), {"num_steps": num_steps}

    def transpose(self, state: _OperatorState, options: dict[str, Any]):
        operator, packed = state
        transpose_state = operator.transpose(), lxi.transpose_packed_structures(packed)
        return transpose_state, transpose_options(options)

    def conj(self, state: _OperatorState, options: dict[str, Any]):
        operator, packed = state
        return (lx.conj(operator), packed), options


class GaussianSketchProject(_AbstractOperatorSketchSolver):
    """One-column Gaussian sketch-and-project ("GV"), matrix-free.

    Each step draws s ~ N(0, I_N), forms w = Kᵀs and updates

        z ← z − (sᵀr / ‖w‖²)·w,    r = K z − b.

    Cost per step: one transposed matvec (`operator.transpose().mv`, a VJP for a matrix-free
    operator) and one matvec (the new residual), plus O(N). The expected error contracts by
    (1 − σ_min(K)²/‖K‖_F²) per step up to constants, so expect T ≈ κ_F(K)²·ln(1/ε) ≳ N·ln(1/ε)
    steps: this beats a dense LU only for very large, structured or streamed K at loose
    tolerances.

    **Arguments:**

    - `rtol`: relative tolerance, ‖Kz − b‖₂ ≤ atol + rtol·‖b‖₂.
    - `atol`: absolute tolerance.
    - `max_steps`: the maximum number of sketch steps.
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
    max_steps: int = 100_000
    seed: int = 0

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

    **Arguments:**

    - `rtol`: relative tolerance, ‖Kz − b‖₂ ≤ atol + rtol·‖b‖₂.
    - `atol`: absolute tolerance.
    - `block_size`: q, the number of sketch columns.
    - `sketch`: the sketch distribution, an [`pdeopt.solvers.AbstractSketch`][]: e.g.
        `GaussianSketch()`, `CountSketch()`, `SparseSignSketch(nnz_per_column=8)`.
    - `max_steps`: the maximum number of block steps.
    - `seed`: the seed used when `options["key"]` is not given.

    ??? cite "References"

        Gower & Richtárik (2015), *Randomized iterative methods for linear systems*; the
        entry is under [`pdeopt.solvers.GaussianSketchProject`][].
    """

    rtol: float
    atol: float
    block_size: int = eqx.field(static=True, default=8)
    sketch: AbstractSketch = GaussianSketch()
    max_steps: int = 100_000
    seed: int = 0

    def __check_init__(self):
        check_positive_int("BlockSketchProject", "block_size", self.block_size)
        if not isinstance(self.sketch, AbstractSketch):
            raise ValueError(
                "`BlockSketchProject(sketch=...)` must be an `AbstractSketch` instance such as "
                "`GaussianSketch()` or `CountSketch()`."
            )

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
    entry is computed per step, and the full residual ‖Kz − b‖ (O(N²)) only every
    `check_every` steps, so `num_steps` is a multiple of `check_every` unless `max_steps` is
    reached. With the default `check_every = N` the amortised cost is O(N) per step.

    **Arguments:**

    - `rtol`: relative tolerance, ‖Kz − b‖₂ ≤ atol + rtol·‖b‖₂.
    - `atol`: absolute tolerance.
    - `sampling`: `"row_norm"` samples i ∝ ‖K_i‖² (Strohmer–Vershynin, expected rate
        1 − σ_min(K)²/‖K‖_F²); `"uniform"` samples i uniformly (the AdaSketch reference code).
        The choice only sets the sampling distribution, computed once in `init`.
    - `check_every`: steps between full residual checks; `None` means the number of rows.
    - `max_steps`: the maximum number of row steps.
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
    sampling: Literal["uniform", "row_norm"] = eqx.field(static=True, default="row_norm")
    check_every: int | None = eqx.field(static=True, default=None)
    max_steps: int = 100_000
    seed: int = 0

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
        z0 = _y0(options, packed, matrix.shape[1], b.dtype)
        tol = self.atol + self.rtol * jnp.linalg.norm(b)

        def row_step(i, z):
            row = matrix[i]
            return z - ((jnp.dot(row, z) - b[i]) * inv_row_norm2[i]) * row

        def cond_fun(carry):
            _, res_norm, _, step = carry
            return (res_norm > tol) & (step < self.max_steps)

        def body_fun(carry):
            z, _, key, step = carry
            key, subkey = jr.split(key)
            u = jr.uniform(subkey, (check_every,), cdf.dtype)
            rows = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), num_rows - 1)
            num_inner = jnp.minimum(check_every, self.max_steps - step)
            z = lax.fori_loop(0, num_inner, lambda j, z: row_step(rows[j], z), z)
            return z, jnp.linalg.norm(matrix @ z - b), key, step + num_inner

        init = (
            z0,
            jnp.linalg.norm(matrix @ z0 - b),
            key_from_options(options, self.seed),
            jnp.array(0),
        )
        z, res_norm, _, num_steps = lax.while_loop(cond_fun, body_fun, init)
        solution = lxi.unravel_solution(z, packed)
        return solution, _result(res_norm <= tol), {"num_steps": num_steps}

    def transpose(self, state: _KaczmarzState, options: dict[str, Any]):
        matrix, _, _, packed = state
        transpose_state = self._state(matrix.T, lxi.transpose_packed_structures(packed))
        return transpose_state, transpose_options(options)

    def conj(self, state: _KaczmarzState, options: dict[str, Any]):
        matrix, inv_row_norm2, cdf, packed = state
        return (jnp.conj(matrix), inv_row_norm2, cdf, packed), options
