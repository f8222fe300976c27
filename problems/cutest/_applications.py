"""The AdaSketch-Newton application problems: constrained logistic regression (§11.2),
discrete Poisson control (§11.3) and a semilinear elliptic control extension.

All three are [`ConstrainedProblem`][]s whose data travel in `problem.args`, so
`problem.fn(y, problem.args)` and `problem.constraint_fn(y, problem.args)` jit without baking
large constants into the compiled function. Enable `jax_enable_x64` before building them
(the random data and the solvers are meant to run in float64).

??? cite "References"

    I. Hong, S. Na, M. W. Mahoney, M. Kolar, "Constrained Optimization via Exact Augmented
    Lagrangian and Randomized Iterative Sketching", ICML 2023 (experiments of §6; spec
    `specs/al-sketch-newton.md` §11.2-§11.3).
"""

import functools as ft
import math
import zlib

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._problem import ConstrainedProblem, as_f64

# --------------------------------------------------------------------------------------
# Constrained logistic regression (spec §11.2)
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
    on any other random draw, unlike the reference code; spec §11.2). Start point `x0 = 1_d`,
    `lambda0 = 1_11`.

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
    a, b = _draw_constraints(key, d, features.dtype)
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


def synthetic_logistic_regression(name: str) -> ConstrainedProblem:
    """Synthetic stand-in for one of the paper's LIBSVM data sets, with its `(N, d)`.

    Features are iid N(0, 1); labels are `sign(a^T w + 0.5 e)` for a hidden `w ~ N(0, I/d)`
    and noise `e ~ N(0, 1)`, drawn on the host by `numpy.random.default_rng(seed)` (no
    compilation, cheap for the large sets) with `seed = crc32(name) mod 2^31`; `(A, b)` come
    from [`dataset_key`][]`(name)`. Two calls give identical problems. Label results obtained
    with it as synthetic.

    **Arguments:**

    - `name`: a key of [`LIBSVM_SHAPES`][], e.g. `"sonar_scale"`.

    **Returns:**

    A [`ConstrainedProblem`][] named `"synthetic-<name>"`.
    """
    if name not in LIBSVM_SHAPES:
        raise KeyError(f"Unknown data set {name!r}; valid names are: {', '.join(LIBSVM_SHAPES)}.")
    num, d = LIBSVM_SHAPES[name]
    rng = np.random.default_rng(_dataset_seed(name))
    features = rng.standard_normal((num, d))
    w = rng.standard_normal(d) / math.sqrt(d)
    labels = np.where(features @ w + 0.5 * rng.standard_normal(num) >= 0.0, 1.0, -1.0)
    key_c = dataset_key(name)
    return logistic_regression(features, labels, key=key_c, name=f"synthetic-{name}")


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


def poisson_control(n: int = 3) -> ConstrainedProblem:
    """Discrete Poisson control: `min 1/2 |w - w_true|^2 + 0.1/2 |z|^2` s.t. `Delta_h w + z = 0`.

    Variables `x = [vec(w); vec(z)]` (column-major vec), `n = 2N^2`, `m = N^2`; the constraint
    Jacobian is `[L_h, I]` with `L_h` the 5-point Laplacian. Start `x0 = 1`, `lambda0 = 1`. The
    paper uses `N = 3` (n = 18, m = 9); larger `N` is the scaling extension of spec §11.3.

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


def semilinear_target(n: int) -> np.ndarray:
    """`y_d[i, j] = sin(pi i/(N+1)) sin(pi j/(N+1))`, the target state of the semilinear problem."""
    s = np.sin(np.pi * np.arange(1, n + 1) / (n + 1))
    return s[:, None] * s[None, :]


def semilinear_control(n: int = 3, alpha: float = 1.0e-2) -> ConstrainedProblem:
    """Semilinear control: `min 1/2 |y - y_d|^2 + alpha/2 |u|^2` s.t. `-Delta_h y + y^3 = u`.

    The nonlinear extension of [`poisson_control`][] (not in the paper): same grid, same
    column-major layout `x = [vec(y); vec(u)]`, `n = 2N^2`, `m = N^2`. The norms are plain
    Euclidean norms of grid vectors, as in the Poisson problem (no `h^2` quadrature weight),
    and `alpha = 1e-2` by default. Start `x0 = 1`, `lambda0 = 1`.

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
        notes="Extension of spec §11.3 (not in the paper).",
    )
