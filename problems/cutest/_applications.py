"""The AdaSketch-Newton application problems: constrained logistic regression (§11.2),
discrete Poisson control (§11.3) and a semilinear elliptic control extension.

All three are [`ConstrainedProblem`][]s whose data travel in `problem.args`, so
`problem.fn(y, problem.args)` and `problem.constraint_fn(y, problem.args)` jit without baking
large constants into the compiled function. Enable `jax_enable_x64` before building them
(the random data and the solvers are meant to run in float64).

??? cite "References"

    I. Hong, S. Na, M. W. Mahoney, M. Kolar, "Constrained Optimization via Exact Augmented
    Lagrangian and Randomized Iterative Sketching", ICML 2023 (experiments of §6).
"""

import functools as ft
import math
import zlib

import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._problem import ConstrainedProblem, as_f64

# --------------------------------------------------------------------------------------
# Constrained logistic regression (the paper's §6)
# --------------------------------------------------------------------------------------

LIBSVM_SHAPES: dict[str, tuple[int, int]] = {
    "ionosphere_scale": (351, 34),
    "mushrooms": (8124, 112),
    "phishing": (11055, 68),
    "sonar_scale": (208, 60),
    "splice_scale": (1000, 60),
    "a9a": (32561, 123),
    "w8a": (49749, 300),
}
"""(N, d) of the paper's seven LIBSVM data sets."""

_NUM_LINEAR_CONSTRAINTS = 10


def _logreg_objective(x, args):
    features, labels, _, _ = args
    # mean log(1 + exp(-y a^T x)), computed stably.
    return jnp.mean(jnp.logaddexp(0.0, -labels * (features @ x)))


def _logreg_constraints(x, args):
    _, _, a, b = args
    return jnp.concatenate([a @ x - b, jnp.reshape(x @ x - 1.0, (1,))])


@ft.partial(jax.jit, static_argnums=(1, 2))
def _draw_constraints(key, d, dtype):
    key_a, key_b = jr.split(key)
    a = jr.normal(key_a, (_NUM_LINEAR_CONSTRAINTS, d), dtype=dtype)
    b = jr.normal(key_b, (_NUM_LINEAR_CONSTRAINTS,), dtype=dtype)
    return a, b


_MAX_DRAWS = 100


def _draw_feasible_constraints(key, d, dtype):
    """`(A, b)` from `key`, redrawn from `fold_in(key, 1)`, `fold_in(key, 2)`, ... until
    `{Ax = b, |x| = 1}` is non-empty, i.e. the minimum-norm solution of `Ax = b` has norm < 1.
    The first draw is kept when it is feasible (as for every synthetic set)."""
    if d <= _NUM_LINEAR_CONSTRAINTS:
        raise ValueError(
            f"Constrained logistic regression needs d > {_NUM_LINEAR_CONSTRAINTS} features for "
            f"{_NUM_LINEAR_CONSTRAINTS} random linear constraints plus |x|^2 = 1 to be "
            f"feasible; got d = {d}."
        )
    for attempt in range(_MAX_DRAWS):
        a, b = _draw_constraints(key if attempt == 0 else jr.fold_in(key, attempt), d, dtype)
        min_norm = np.linalg.lstsq(np.asarray(a), np.asarray(b), rcond=None)[0]
        if np.linalg.norm(min_norm) < 1.0:
            return a, b
    raise ValueError(f"No feasible (A, b) in {_MAX_DRAWS} draws for d = {d}.")


def _dataset_seed(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def dataset_key(name: str) -> PRNGKeyArray:
    """The fixed PRNG key of a data set, `jr.key(crc32(name) mod 2^31)`, the same everywhere."""
    return jr.key(_dataset_seed(name))


def logistic_regression(
    features: Float[ArrayLike, "N d"],
    labels: Float[ArrayLike, " N"],
    *,
    key: PRNGKeyArray,
    name: str = "logreg",
) -> ConstrainedProblem:
    """Constrained logistic regression: `min mean log(1 + exp(-y a^T x))`, `Ax = b`, `|x|^2 = 1`.

    `A` (10 x d) and `b` (10) are iid standard normal, drawn from `key` (so they do not depend
    on any other random draw, unlike the reference code), conditioned on
    feasibility: a draw whose minimum-norm solution of `Ax = b` has norm >= 1 leaves no point
    on the unit sphere, and is replaced by the next draw from `jr.fold_in(key, i)`, i = 1, 2,
    ... (the first draw is feasible for every synthetic set; breast cancer's is not). Needs
    d > 10. Start point `x0 = 1_d`, `lambda0 = 1_11`.

    **Arguments:**

    - `features`: the data matrix.
    - `labels`: labels in {-1, +1} (remap e.g. mushrooms' {1, 2} before calling).
    - `key`: PRNG key for `(A, b)`.
    - `name`: stored as `problem.name`.

    **Returns:**

    A [`ConstrainedProblem`][] with `n = d`, `m = 11`, `args = (features, labels, A, b)`.
    """
    features = jnp.asarray(features)
    labels = jnp.asarray(labels, dtype=features.dtype)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"features must be (N, d) and labels (N,); got {features.shape} and {labels.shape}."
        )
    if not np.all(np.isin(np.asarray(labels), (-1.0, 1.0))):
        raise ValueError("labels must be in {-1, +1}; remap the data set's labels first.")
    d = features.shape[1]
    a, b = _draw_feasible_constraints(key, d, features.dtype)
    m = _NUM_LINEAR_CONSTRAINTS + 1
    return ConstrainedProblem(
        name=name,
        sif_class="logistic regression, 10 linear + 1 sphere constraint",
        y0=as_f64(np.ones(d)),
        lambda0=as_f64(np.ones(m)),
        objective=_logreg_objective,
        constraints=_logreg_constraints,
        args=(features, labels, a, b),
        notes="Spec §11.2; (A, b) from a fixed key.",
    )


def synthetic_logistic_regression(
    name: str, shape: tuple[int, int] | None = None
) -> ConstrainedProblem:
    """Synthetic stand-in for one of the paper's LIBSVM data sets, with its `(N, d)`.

    Features are iid N(0, 1); labels are `sign(a^T w + 0.5 e)` for a hidden `w ~ N(0, I/d)`
    and noise `e ~ N(0, 1)`, drawn on the host by `numpy.random.default_rng(seed)` (no
    compilation, cheap for the large sets) with `seed = crc32(name) mod 2^31`; `(A, b)` come
    from [`dataset_key`][]`(name)`. Two calls give identical problems. Label results obtained
    with it as synthetic.

    **Arguments:**

    - `name`: a key of [`LIBSVM_SHAPES`][], e.g. `"sonar_scale"`.
    - `shape`: `(N, d)` instead of the data set's, drawn from the same seed: a scaled-down
        stand-in for quick checks (d > 10).

    **Returns:**

    A [`ConstrainedProblem`][] named `"synthetic-<name>"` (`"synthetic-<name>-<N>x<d>"` with a
    `shape`).
    """
    if name not in LIBSVM_SHAPES:
        raise KeyError(f"Unknown data set {name!r}; valid names are: {', '.join(LIBSVM_SHAPES)}.")
    num, d = LIBSVM_SHAPES[name] if shape is None else shape
    rng = np.random.default_rng(_dataset_seed(name))
    features = rng.standard_normal((num, d))
    w = rng.standard_normal(d) / math.sqrt(d)
    labels = np.where(features @ w + 0.5 * rng.standard_normal(num) >= 0.0, 1.0, -1.0)
    key_c = dataset_key(name)
    label = f"synthetic-{name}" if shape is None else f"synthetic-{name}-{num}x{d}"
    return logistic_regression(features, labels, key=key_c, name=label)


def breast_cancer_logistic_regression() -> ConstrainedProblem:
    """Logistic regression on `sklearn.datasets.load_breast_cancer` (569 x 30).

    Features are standardised (zero mean, unit variance per column); labels {0, 1} map to
    {-1, +1}. `(A, b)` come from [`dataset_key`][]`("breast_cancer")`. Needs scikit-learn,
    which is not a dependency of pdeopt.
    """
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError as e:
        raise ImportError(
            "breast_cancer_logistic_regression needs scikit-learn: `pip install scikit-learn`, "
            "or use synthetic_logistic_regression(name) instead."
        ) from e
    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = np.where(np.asarray(data.target) == 1, 1.0, -1.0)
    return logistic_regression(x, y, key=dataset_key("breast_cancer"), name="breast_cancer")


# --------------------------------------------------------------------------------------
# PDE-constrained problems on the N x N interior grid of (-1, 1)^2, h = 2 / (N + 1)
# --------------------------------------------------------------------------------------


def laplacian_5pt(u: Float[Array, "N N"], h: float) -> Float[Array, "N N"]:
    """Five-point Laplacian `(u_E + u_W + u_N + u_S - 4u) / h^2` with zero Dirichlet values."""
    up = jnp.pad(u, 1)
    return (up[2:, 1:-1] + up[:-2, 1:-1] + up[1:-1, 2:] + up[1:-1, :-2] - 4.0 * u) / h**2


def _grid_from_vec(v, n):
    # Column-major vec (Julia's vec, as in the reference code): v[i + j N] = U[i, j].
    return jnp.reshape(v, (n, n)).T


def _vec_from_grid(u):
    return jnp.reshape(u.T, (-1,))


def _check_grid_size(n: int) -> None:
    if isinstance(n, int) and n < 1:
        raise ValueError(f"The grid needs N >= 1 interior points per side, got N = {n}.")


def _dst1(u: Float[Array, "... N"]) -> Float[Array, "... N"]:
    """`u @ V` for the orthonormal DST-I matrix `V[j, k] = sqrt(2/(N+1)) sin(pi j k/(N+1))`
    (symmetric, `V @ V = I`), in O(N log N): the real FFT of the odd extension
    `[0, u, 0, -reverse(u)]` (period 2(N+1)) is `-2i` times `u @ V` at frequencies 1..N, up to
    the normalisation."""
    n = u.shape[-1]
    zero = jnp.zeros_like(u[..., :1])
    odd = jnp.concatenate([zero, u, zero, -jnp.flip(u, axis=-1)], axis=-1)
    return jnp.fft.rfft(odd, axis=-1)[..., 1 : n + 1].imag * -math.sqrt(0.5 / (n + 1))


def _laplacian_eigenvalues(n: int, dtype) -> Float[Array, "N N"]:
    """The eigenvalues `e_i + e_j` of `-Delta_h` on the N x N grid,
    `e_k = (4/h^2) sin^2(pi k / (2(N+1)))`, `h = 2/(N+1)`:
    `-Delta_h u = V ((e_i + e_j) * (V u V)) V` with the sine matrix `V` of [`_dst1`][],
    whatever the (row/column-major) vec order."""
    k = jnp.arange(1, n + 1, dtype=dtype)
    h = 2.0 / (n + 1)
    e = (4.0 / h**2) * jnp.sin(jnp.pi * k / (2 * (n + 1))) ** 2
    return e[:, None] + e[None, :]


def control_kkt_preconditioner(
    n: int, state_weight: ArrayLike, control_weight: ArrayLike, shift: ArrayLike, dtype
) -> lx.AbstractLinearOperator:
    """`R = Q D` with `R R^T = P^-1` for the block-diagonal KKT preconditioner of a control
    problem on the N x N grid with variables `[state; control]` and multipliers of
    `A state - control`-type constraints, `A ~ -Delta_h + shift`:

    `P = diag(H_y, a_u I, S_hat)`, `S_hat = A^2 / a_y + I / a_u` (the Schur complement
    `G H^-1 G^T` of `H = diag(a_y I, a_u I)`, `G = [A, -I]`), where `H_y` is the state block
    (`a_y I`, or a diagonal whose mean is `a_y`). The orthonormal sine transform
    (DST-I) along both grid axes diagonalises `Delta_h`, so `P = Q diag(p) Q` with `Q` the
    identity on the state and control blocks and the two-axis sine transform on the
    multipliers (symmetric and its own inverse), computed by FFT: O(N^2 log N). `R` is
    `Q diag(p)^(-1/2)`, so the KKT solver's system `R^T K R = D Q K Q D` costs one
    transform each way per product, half of the symmetric `S K S` with `S = P^(-1/2) =
    Q D Q` (orthogonally similar to it: same spectrum, same Krylov iterates up to `Q`). When
    `H` and `G` are exact (Poisson control) the spectrum is `1, (1 +- sqrt 5)/2` (Murphy,
    Golub and Wathen, 2000), whatever N.

    **Arguments:**

    - `n`: grid points per side, `N`.
    - `state_weight`: the state block's weight, a positive scalar `a_y` or a positive vector
        of `N^2` diagonal entries (the Schur block then uses their mean `a_y`).
    - `control_weight`: `a_u > 0`, the control block's weight.
    - `shift`: a constant added to `-Delta_h` (e.g. the mean of `3 y^2` for `-Delta y + y^3`).
    - `dtype`: the floating dtype.
    """
    nn = n * n
    state_weight = jnp.asarray(state_weight, dtype)
    a_y = jnp.mean(state_weight)
    schur = (_laplacian_eigenvalues(n, dtype) + shift) ** 2 / a_y + 1.0 / control_weight
    ones = jnp.ones(nn, dtype)
    scale = jnp.concatenate(
        [
            ones * jax.lax.rsqrt(state_weight),
            ones * jax.lax.rsqrt(jnp.asarray(control_weight, dtype)),
            jnp.reshape(jax.lax.rsqrt(schur), (-1,)),
        ]
    )

    def transform(z):
        # (V L V)^T for the multipliers' grid L: symmetric and an involution in the vec
        # space; the eigenvalue grid e_i + e_j is symmetric, so the transpose is harmless.
        lam = _dst1(_dst1(jnp.reshape(z[-nn:], (n, n))).T)
        return z.at[-nn:].set(jnp.reshape(lam, (-1,)))

    struct = jax.ShapeDtypeStruct((3 * nn,), dtype)
    sine = lx.FunctionLinearOperator(transform, struct, tags=lx.symmetric_tag)
    return sine @ lx.DiagonalLinearOperator(scale)


def poisson_w_true(n: int) -> np.ndarray:
    """`w_true[i, j] = sin(4 + s (i - (N+1)/2)) + cos(3 + s (j - (N+1)/2))`, `s = 0.1/sqrt(15)`."""
    idx = np.arange(1, n + 1, dtype=np.float64) - 0.5 * (n + 1)
    s = 0.1 / math.sqrt(15.0)
    return np.sin(4.0 + s * idx)[:, None] + np.cos(3.0 + s * idx)[None, :]


def _poisson_objective(x, args):
    w_true = args
    nn = w_true.shape[0]
    w, z = x[:nn], x[nn:]
    return 0.5 * jnp.sum((w - w_true) ** 2) + 0.05 * jnp.sum(z**2)


def _poisson_constraints(x, args):
    nn = args.shape[0]
    n = math.isqrt(nn)
    h = 2.0 / (n + 1)
    w, z = x[:nn], x[nn:]
    return _vec_from_grid(laplacian_5pt(_grid_from_vec(w, n), h)) + z


def _poisson_preconditioner(x, lam, args):
    # H = diag(I, 0.1 I) and G = [Delta_h, I]: the Schur complement Delta_h^2 + 10 I is exact.
    return control_kkt_preconditioner(math.isqrt(args.shape[0]), 1.0, 0.1, 0.0, x.dtype)


def poisson_control(n: int = 3) -> ConstrainedProblem:
    """Discrete Poisson control: `min 1/2 |w - w_true|^2 + 0.1/2 |z|^2` s.t. `Delta_h w + z = 0`.

    Variables `x = [vec(w); vec(z)]` (column-major vec), `n = 2N^2`, `m = N^2`; the constraint
    Jacobian is `[L_h, I]` with `L_h` the 5-point Laplacian. Start `x0 = 1`, `lambda0 = 1`. The
    paper uses `N = 3` (n = 18, m = 9); larger `N` is pdeopt's scaling extension.
    `kkt_preconditioner` is the exact block-diagonal (Schur-complement) preconditioner of
    [`control_kkt_preconditioner`][], for `constrained_minimise(..., preconditioner=...)`.

    **Arguments:**

    - `n`: interior grid points per side, `N`.
    """
    _check_grid_size(n)
    w_true = _vec_from_grid(jnp.asarray(poisson_w_true(n)))
    return ConstrainedProblem(
        name=f"POISSON-CONTROL-{n}",
        sif_class="convex QP, linear PDE constraint",
        y0=as_f64(np.ones(2 * n * n)),
        lambda0=as_f64(np.ones(n * n)),
        objective=_poisson_objective,
        constraints=_poisson_constraints,
        args=w_true,
        notes="Spec §11.3; h = 2/(N+1), zero Dirichlet boundary.",
        kkt_preconditioner=_poisson_preconditioner,
    )


def _semilinear_objective(x, args):
    y_d, alpha = args
    nn = y_d.shape[0]
    y, u = x[:nn], x[nn:]
    return 0.5 * jnp.sum((y - y_d) ** 2) + 0.5 * alpha * jnp.sum(u**2)


def _semilinear_constraints(x, args):
    y_d, _ = args
    nn = y_d.shape[0]
    n = math.isqrt(nn)
    h = 2.0 / (n + 1)
    y, u = x[:nn], x[nn:]
    return -_vec_from_grid(laplacian_5pt(_grid_from_vec(y, n), h)) + y**3 - u


def _semilinear_preconditioner(x, lam, args):
    # The Hessian's state block |I + diag(6 y lambda)|; the Schur block takes the mean of that
    # diagonal and the Jacobian's -Delta_h + diag(3 y^2) with diag(3 y^2) replaced by its mean.
    y_d, alpha = args
    y = x[: y_d.shape[0]]
    state_weight = jnp.abs(1.0 + 6.0 * y * lam)
    shift = 3.0 * jnp.mean(y**2)
    n = math.isqrt(y_d.shape[0])
    return control_kkt_preconditioner(n, state_weight, alpha, shift, x.dtype)


def semilinear_target(n: int) -> np.ndarray:
    """`y_d[i, j] = sin(pi i/(N+1)) sin(pi j/(N+1))`, the target state of the semilinear problem."""
    s = np.sin(np.pi * np.arange(1, n + 1) / (n + 1))
    return s[:, None] * s[None, :]


def semilinear_control(n: int = 3, alpha: float = 1.0e-2) -> ConstrainedProblem:
    """Semilinear control: `min 1/2 |y - y_d|^2 + alpha/2 |u|^2` s.t. `-Delta_h y + y^3 = u`.

    The nonlinear extension of [`poisson_control`][] (not in the paper): same grid, same
    column-major layout `x = [vec(y); vec(u)]`, `n = 2N^2`, `m = N^2`. The norms are plain
    Euclidean norms of grid vectors, as in the Poisson problem (no `h^2` quadrature weight),
    and `alpha = 1e-2` by default. Start `x0 = 1`, `lambda0 = 1`. For `alpha > 0`,
    `kkt_preconditioner` is [`control_kkt_preconditioner`][] with the Hessian's state block
    `|I + diag(6 y lambda)|` itself and, in the Schur block, the mean of its diagonal and the
    mean of `diag(3 y^2)` in the Jacobian: exact for constant `y` and `lambda`, approximate
    otherwise.

    **Arguments:**

    - `n`: interior grid points per side, `N`.
    - `alpha`: control cost.
    """
    _check_grid_size(n)
    if isinstance(alpha, (int, float)) and alpha < 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}.")
    y_d = _vec_from_grid(jnp.asarray(semilinear_target(n)))
    return ConstrainedProblem(
        name=f"SEMILINEAR-CONTROL-{n}",
        sif_class="nonconvex, semilinear PDE constraint",
        y0=as_f64(np.ones(2 * n * n)),
        lambda0=as_f64(np.ones(n * n)),
        objective=_semilinear_objective,
        constraints=_semilinear_constraints,
        args=(y_d, jnp.asarray(alpha, dtype=y_d.dtype)),
        notes="Scaling extension of the paper's control problem (not in the paper).",
        kkt_preconditioner=None
        if isinstance(alpha, (int, float)) and alpha == 0
        else _semilinear_preconditioner,
    )
