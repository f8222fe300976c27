"""The 47 small CUTEst equality-constrained problems of the AdaSketch-Newton benchmark.

These are the problems of the paper's CUTEst table. Each one is written in JAX from
its published closed form (Hock & Schittkowski 1981; Boggs & Tolle 1989; Moré, Garbow &
Hillstrom 1981; the CUTEst SIF files), with `n`, `m` and the start point exactly as in
CUTEst. The S2MPJ Python translations of the SIF files (`GrattonToint/S2MPJ`) were read as an
oracle for group scalings, signs and start points; no code was copied.

Conventions:

- A SIF constraint group `g` with `SCALE s` gives the CUTEst constraint value `g / s` (so
  RSNBRNE's first residual is `10 (x2 - x1^2)`); an objective group `(g)^2` with scale `s`
  contributes `g^2 / s`.
- The nonlinear-equation ("NE") problems have `f = 0` and `c` = the residuals.
- `lambda0` is zero (CUTEst.jl `meta.y0`). Caveat: GENHS28's SIF file starts the
  multipliers at 1; the paper's runs used `meta.y0`, which we take to be zero.

**The table** is `problems.toml`, next to this file: one `[NAME]` table a problem, in the
paper's order, read when this module is imported. This module holds the closed-form functions:

- The functions of `[NAME]` are `_<name>_f` (objective) and `_<name>_c` (constraints), `<name>`
  lower case with `-` as `_` (`_ba_l1_c`). A CUTEst class of objective type `N` (no objective:
  the nonlinear equations) takes `_zero` instead of `_<name>_f`. `objective = "f"` or
  `constraints = "c"` names another function, `_f` or `_c` (BT9 and BT10 share `_minus_x1`;
  BT3, BT6, BT11 and MWRIGHT reuse the HS functions with the same closed form).
- `sif_class`, `m`, `y0` (the start point) and `iters` (the six `PaperIterations` columns,
  `nan` for "fail" or "not reported") are required; `solution` (`x*`), `f_star` and `notes`
  are optional.
- `y0` and `solution` are lists of numbers, or `{ function = "f", k = v, ... }` for the
  array `_f(k=v, ...)` (ORTHREGB, MOREBVNE, INTEQNE, MANCINONE, BA-L1SP). Closed-form numbers
  are written as Python's shortest round-trip decimals, with their formula in a comment.

Reading the table checks it: unknown or missing keys, a function that does not exist, a `y0`
length or an `m` that differs from the `n`, `m` of the CUTEst class (where the class gives
numbers, not `V`), a `solution` of another length than `y0`, anything but six counts raise a
`ValueError` that names the problem and the key.

**Bundle adjustment:** BA-L1 and BA-L1SP (n = 57, m = 12) read their data (BA-L1's
observations, BA-L1SP's 144 coefficients and 12 constants) from `bundle_adjustment.toml`,
next to this file: the numbers of the SIF files.

**Not cross-checked against S2MPJ** (absent there): SINVALNE, HIMMELBE and BA-L1; their
formulas follow the published SIF files (see each problem's `notes`). BA-L1 is checked
against BA-L1SP, whose data are its Jacobian and residuals at x0. MANCINONE follows the
May 2024 corrected SIF file; the paper (2023) used the earlier CUTEst version.
"""

import functools as ft
import math
import pathlib
import tomllib
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from ._problem import ConstrainedProblem, PaperIterations, as_f64

_SQ2 = math.sqrt(2.0)


def _zero(y, args):
    del args
    return jnp.zeros((), dtype=jnp.result_type(y))


def _stack(*cs):
    return jnp.stack([jnp.asarray(c) for c in cs])


# --------------------------------------------------------------------------------------
# Hock-Schittkowski problems (and their CUTEst variants)
# --------------------------------------------------------------------------------------


def _hs6_f(x, args):
    return (1.0 - x[0]) ** 2


def _hs6_c(x, args):
    return _stack(10.0 * (x[1] - x[0] ** 2))


def _hs7_f(x, args):
    return jnp.log1p(x[0] ** 2) - x[1]


def _hs7_c(x, args):
    return _stack((1.0 + x[0] ** 2) ** 2 + x[1] ** 2 - 4.0)


def _hs28_f(x, args):
    return (x[0] + x[1]) ** 2 + (x[1] + x[2]) ** 2


def _hs28_c(x, args):
    return _stack(x[0] + 2.0 * x[1] + 3.0 * x[2] - 1.0)


def _hs40_f(x, args):
    return -x[0] * x[1] * x[2] * x[3]


def _hs40_c(x, args):
    return _stack(
        x[0] ** 3 + x[1] ** 2 - 1.0,
        x[0] ** 2 * x[3] - x[2],
        x[3] ** 2 - x[1],
    )


def _hs42_f(x, args):
    return (x[0] - 1.0) ** 2 + (x[1] - 2.0) ** 2 + (x[2] - 3.0) ** 2 + (x[3] - 4.0) ** 2


def _hs42_c(x, args):
    return _stack(x[0] - 2.0, x[2] ** 2 + x[3] ** 2 - 2.0)


def _hs47_f(x, args):
    return (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 3 + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 4


def _hs47_c(x, args):
    return _stack(
        x[0] + x[1] ** 2 + x[2] ** 3 - 3.0,
        x[1] - x[2] ** 2 + x[3] - 1.0,
        x[0] * x[4] - 1.0,
    )


def _hs48_f(x, args):
    return (x[0] - 1.0) ** 2 + (x[1] - x[2]) ** 2 + (x[3] - x[4]) ** 2


def _hs48_c(x, args):
    return _stack(jnp.sum(x) - 5.0, x[2] - 2.0 * (x[3] + x[4]) + 3.0)


def _hs50_f(x, args):
    return (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2 + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 2


def _hs50_c(x, args):
    return x[:3] + 2.0 * x[1:4] + 3.0 * x[2:5] - 6.0


def _hs51_f(x, args):
    # Also BT3's objective.
    return (x[0] - x[1]) ** 2 + (x[1] + x[2] - 2.0) ** 2 + (x[3] - 1.0) ** 2 + (x[4] - 1.0) ** 2


def _hs51_c(x, args):
    return _stack(x[0] + 3.0 * x[1] - 4.0, x[2] + x[3] - 2.0 * x[4], x[1] - x[4])


def _hs52_f(x, args):
    return (
        (4.0 * x[0] - x[1]) ** 2 + (x[1] + x[2] - 2.0) ** 2 + (x[3] - 1.0) ** 2 + (x[4] - 1.0) ** 2
    )


def _hs52_c(x, args):
    # Also BT3's constraints.
    return _stack(x[0] + 3.0 * x[1], x[2] + x[3] - 2.0 * x[4], x[1] - x[4])


def _hs56_f(x, args):
    return -x[0] * x[1] * x[2]


def _hs56_c(x, args):
    s = jnp.sin(x[3:7]) ** 2
    return _stack(
        x[0] - 4.2 * s[0],
        x[1] - 4.2 * s[1],
        x[2] - 4.2 * s[2],
        x[0] + 2.0 * x[1] + 2.0 * x[2] - 7.2 * s[3],
    )


def _hs77_f(x, args):
    # Also BT6 (identical closed form).
    return (
        (x[0] - 1.0) ** 2
        + (x[0] - x[1]) ** 2
        + (x[2] - 1.0) ** 2
        + (x[3] - 1.0) ** 4
        + (x[4] - 1.0) ** 6
    )


def _hs77_c(x, args):
    return _stack(
        x[0] ** 2 * x[3] + jnp.sin(x[3] - x[4]) - 2.0 * _SQ2,
        x[1] + x[2] ** 4 * x[3] ** 2 - 8.0 - _SQ2,
    )


def _hs78_f(x, args):
    return jnp.prod(x)


def _hs78_c(x, args):
    return _stack(
        jnp.sum(x**2) - 10.0,
        x[1] * x[2] - 5.0 * x[3] * x[4],
        x[0] ** 3 + x[1] ** 3 + 1.0,
    )


def _hs79_f(x, args):
    # Also BT11's objective.
    return (
        (x[0] - 1.0) ** 2
        + (x[0] - x[1]) ** 2
        + (x[1] - x[2]) ** 2
        + (x[2] - x[3]) ** 4
        + (x[3] - x[4]) ** 4
    )


def _hs79_c(x, args):
    # Also MWRIGHT's constraints.
    return _stack(
        x[0] + x[1] ** 2 + x[2] ** 3 - 2.0 - 3.0 * _SQ2,
        x[1] - x[2] ** 2 + x[3] + 2.0 - 2.0 * _SQ2,
        x[0] * x[4] - 2.0,
    )


def _hs100lnp_f(x, args):
    x1, x2, x3, x4, x5, x6, x7 = x
    return (
        (x1 - 10.0) ** 2
        + 5.0 * (x2 - 12.0) ** 2
        + x3**4
        + 3.0 * (x4 - 11.0) ** 2
        + 10.0 * x5**6
        + 7.0 * x6**2
        + x7**4
        - 4.0 * x6 * x7
        - 10.0 * x6
        - 8.0 * x7
    )


def _hs100lnp_c(x, args):
    x1, x2, x3, x4, x5, x6, x7 = x
    return _stack(
        127.0 - 2.0 * x1**2 - 3.0 * x2**4 - x3 - 4.0 * x4**2 - 5.0 * x5,
        -4.0 * x1**2 - x2**2 + 3.0 * x1 * x2 - 2.0 * x3**2 - 5.0 * x6 + 11.0 * x7,
    )


def _genhs28_f(x, args):
    return jnp.sum((x[:-1] + x[1:]) ** 2)


def _genhs28_c(x, args):
    return x[:-2] + 2.0 * x[1:-1] + 3.0 * x[2:] - 1.0


# --------------------------------------------------------------------------------------
# Boggs-Tolle problems (CUTEst versions, with the SIF files' typo corrections)
# --------------------------------------------------------------------------------------


def _bt2_f(x, args):
    return (x[0] - 1.0) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4


def _bt2_c(x, args):
    return _stack(x[0] * (1.0 + x[1] ** 2) + x[2] ** 4 - 8.2426407)


def _bt5_f(x, args):
    x1, x2, x3 = x
    return 1000.0 - x1**2 - 2.0 * x2**2 - x3**2 - x1 * x2 - x1 * x3


def _bt5_c(x, args):
    x1, x2, x3 = x
    return _stack(x1**2 + x2**2 + x3**2 - 25.0, 8.0 * x1 + 14.0 * x2 + 7.0 * x3 - 56.0)


def _bt9_c(x, args):
    return _stack(x[1] - x[0] ** 3 - x[2] ** 2, x[0] ** 2 - x[1] - x[3] ** 2)


def _minus_x1(x, args):
    # BT9 and BT10.
    return -x[0]


def _bt10_c(x, args):
    return _stack(x[1] - x[0] ** 3, x[0] ** 2 - x[1])


def _bt11_c(x, args):
    return _stack(
        x[0] + x[1] ** 2 + x[2] ** 3 + 2.0 - math.sqrt(18.0),
        x[1] - x[2] ** 2 + x[3] + 2.0 - math.sqrt(8.0),
        x[0] - x[4] - 2.0,
    )


def _bt12_f(x, args):
    return 0.01 * x[0] ** 2 + x[1] ** 2


def _bt12_c(x, args):
    x1, x2, x3, x4, x5 = x
    return _stack(
        x1 + x2 - x3**2 - 25.0,
        x1**2 + x2**2 - x4**2 - 25.0,
        x1 - x5**2 - 2.0,
    )


def _mwright_f(x, args):
    return (
        x[0] ** 2
        + (x[0] - x[1]) ** 2
        + (x[1] - x[2]) ** 3
        + (x[2] - x[3]) ** 4
        + (x[3] - x[4]) ** 4
    )


# ORTHREGB: fit an ellipsoid {p : p^T H p - 2 g^T p = 1} orthogonally to 6 points in 3-D.
# Variables: H11, H12, H13, H22, H23, H33, G1, G2, G3, then (X_i, Y_i, Z_i) for i = 1..6.
_ORTHREGB_CENTRE = np.array([0.5, 0.5, 0.5])
_ORTHREGB_POINTS = _ORTHREGB_CENTRE + np.array(
    [
        [9.0, 9.0, 0.0],
        [6.0, -6.0, 0.0],
        [-9.0, -9.0, 0.0],
        [-6.0, 6.0, 0.0],
        [0, 0, 7.0],
        [0, 0, -7.0],
    ]
)


def _orthregb_f(x, args):
    return jnp.sum((x[9:].reshape(6, 3) - _ORTHREGB_POINTS) ** 2)


def _orthregb_c(x, args):
    h11, h12, h13, h22, h23, h33, g1, g2, g3 = x[:9]
    p = x[9:].reshape(6, 3)
    px, py, pz = p[:, 0], p[:, 1], p[:, 2]
    return (
        h11 * px**2
        + 2.0 * h12 * px * py
        + h22 * py**2
        + 2.0 * h13 * px * pz
        + 2.0 * h23 * py * pz
        + h33 * pz**2
        - 2.0 * (g1 * px + g2 * py + g3 * pz)
        - 1.0
    )


def _orthregb_x0() -> np.ndarray:
    # H = I, g = 0 and the data points.
    return np.concatenate([[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0], _ORTHREGB_POINTS.ravel()])


def _orthregb_solution() -> np.ndarray:
    # The data points lie on the ellipsoid (p - c)^T M (p - c) = 1 (semi-axes 9*sqrt(2),
    # 6*sqrt(2) along (1, 1, 0), (1, -1, 0) and 7 along z). Writing it as p^T H p - 2 g^T p = 1
    # gives H = k M, g = H c with k = 1 / (1 - c^T M c); f = 0 there.
    u = np.array([1.0, 1.0, 0.0]) / _SQ2
    v = np.array([1.0, -1.0, 0.0]) / _SQ2
    e = np.array([0.0, 0.0, 1.0])
    m_ = np.outer(u, u) / 162.0 + np.outer(v, v) / 72.0 + np.outer(e, e) / 49.0
    c = _ORTHREGB_CENTRE
    h = m_ / (1.0 - c @ m_ @ c)
    g = h @ c
    hvec = [h[0, 0], h[0, 1], h[0, 2], h[1, 1], h[1, 2], h[2, 2]]
    return np.concatenate([hvec, g, _ORTHREGB_POINTS.ravel()])


# --------------------------------------------------------------------------------------
# Nonlinear equations (f = 0)
# --------------------------------------------------------------------------------------


def _himmelba_c(x, args):
    return _stack((x[0] - 5.0) / 0.25, x[1] - 6.0)


def _booth_c(x, args):
    return _stack(x[0] + 2.0 * x[1] - 7.0, 2.0 * x[0] + x[1] - 5.0)


def _zangwil3_c(x, args):
    return _stack(x[0] - x[1] + x[2], -x[0] + x[1] + x[2], x[0] + x[1] - x[2])


def _sinvalne_c(x, args):
    # SINEVAL's least-squares groups as residuals, with SINVALNE's SIF scalings (0.1 and 2).
    return _stack((x[1] - jnp.sin(x[0])) / 0.1, x[0] / 2.0)


def _waysea1ne_c(x, args):
    return _stack(x[0] ** 6 + x[1] ** 4 - 17.0, 2.0 * x[0] + x[1] - 4.0)


def _waysea2ne_c(x, args):
    x1, x2 = x
    return _stack(-4.0 * x1**2 - 4.0 * x2**2 + 2.5 * x1 + 13.0 * x2 - 9.340125, x2 - 1.0)


def _rsnbrne_c(x, args):
    return _stack((x[1] - x[0] ** 2) / 0.1, x[0] - 1.0)


def _cubene_c(x, args):
    return _stack(x[0] - 1.0, (x[1] - x[0] ** 3) / 0.1)


def _trigon1ne_c(x, args):
    n = x.shape[0]
    i = jnp.arange(1, n + 1, dtype=x.dtype)
    return jnp.sum(jnp.cos(x)) + i * (jnp.cos(x) + jnp.sin(x)) - (n + i)


def _helixne_c(x, args):
    # theta = atan2(x2, x1) / (2 pi), with the SIF file's constant 0.15915494 for 1 / (2 pi).
    theta = 0.15915494 * jnp.arctan2(x[1], x[0])
    r = jnp.sqrt(x[0] ** 2 + x[1] ** 2)
    return _stack((x[2] - 10.0 * theta) / 0.1, (r - 1.0) / 0.1, x[2])


def _gottfr_c(x, args):
    x1, x2 = x
    return _stack(
        x1 - 0.1136 * (x1 + 3.0 * x2) * (1.0 - x1),
        x2 + 7.5 * (2.0 * x1 - x2) * (1.0 - x2),
    )


def _himmelbe_c(x, args):
    return _stack(0.25 * (x[0] + x[1]) ** 2 - x[2], 1.0 - x[0], 1.0 - x[1])


def _interior_grid(n):
    # h = 1 / (n + 1) and the n interior points t_i = i h of [0, 1] (MGH problems 28 and 29).
    h = 1.0 / (n + 1)
    t = h * np.arange(1, n + 1)
    return h, t


def _morebvne_c(x, args):
    n = x.shape[0]
    h, t = _interior_grid(n)
    xpad = jnp.pad(x, 1)
    return 2.0 * x - xpad[:-2] - xpad[2:] + 0.5 * h**2 * (x + t + 1.0) ** 3


def _morebvne_x0(n):
    t = _interior_grid(n)[1]
    return t * (t - 1.0)


def _denschncne_c(x, args):
    return _stack(x[0] ** 2 + x[1] ** 2 - 2.0, jnp.exp(x[0] - 1.0) + x[1] ** 3 - 2.0)


def _denschnfne_c(x, args):
    x1, x2 = x
    return _stack(
        2.0 * (x1 + x2) ** 2 + (x1 - x2) ** 2 - 8.0,
        5.0 * x1**2 + (x2 - 3.0) ** 2 - 9.0,
    )


def _himmelbc_c(x, args):
    return _stack(x[0] ** 2 + x[1] - 11.0, x[0] + x[1] ** 2 - 7.0)


def _price4ne_c(x, args):
    x1, x2 = x
    return _stack(2.0 * x1**3 * x2 - x2**3, 6.0 * x1 - x2**2 + x2)


def _inteq_weights(n_free):
    # Discrete integral equation (MGH problem 29) on N + 2 points; the two boundary values
    # are kept as variables with the residuals x_0 = 0 and x_{N+1} = 0.
    h, t = _interior_grid(n_free)
    ti, tj = t[:, None], t[None, :]
    w = np.where(tj <= ti, (1.0 - ti) * tj, ti * (1.0 - tj)) * (0.5 * h)
    return t, w


def _inteqne_c(x, args):
    n_free = x.shape[0] - 2
    t, w = _inteq_weights(n_free)
    inner = x[1:-1]
    g = inner + w @ (inner + 1.0 + t) ** 3
    return jnp.concatenate([x[:1], g, x[-1:]])


def _inteqne_x0(n):
    # MOREBVNE's start point on the n - 2 interior points, and x_0 = x_{N+1} = 0.
    return np.pad(_morebvne_x0(n - 2), 1)


_MANCINO_ALPHA = 5
_MANCINO_BETA = 14.0
_MANCINO_GAMMA = 3


def _mancino_terms(xsq, n, sqrt=np.sqrt, log=np.log, sin=np.sin, cos=np.cos):
    # v_ij = sqrt(x_j^2 + i/j); term_ij = v_ij (sin^5(log v_ij) + cos^5(log v_ij)), j != i.
    i = np.arange(1, n + 1, dtype=np.float64)[:, None]
    j = np.arange(1, n + 1, dtype=np.float64)[None, :]
    v = sqrt(xsq[None, :] + i / j)
    lv = log(v)
    terms = v * (sin(lv) ** _MANCINO_ALPHA + cos(lv) ** _MANCINO_ALPHA)
    return terms * (1.0 - np.eye(n))


def _mancinone_c(x, args):
    n = x.shape[0]
    i = np.arange(1, n + 1, dtype=np.float64)
    ci = (i - 0.5 * n) ** _MANCINO_GAMMA
    terms = _mancino_terms(x**2, n, jnp.sqrt, jnp.log, jnp.sin, jnp.cos)
    return _MANCINO_BETA * n * x + jnp.sum(terms, axis=1) - ci


def _mancinone_x0(n):
    i = np.arange(1, n + 1, dtype=np.float64)
    ci = (i - 0.5 * n) ** _MANCINO_GAMMA
    hi = _mancino_terms(np.zeros(n), n).sum(axis=1)
    a = (
        -_MANCINO_BETA
        * n
        / ((_MANCINO_BETA * n) ** 2 - (_MANCINO_ALPHA + 1.0) ** 2 * (n - 1.0) ** 2)
    )
    return a * (hi + ci)


# --------------------------------------------------------------------------------------
# Bundle adjustment (BA-L1, BA-L1SP): one 3-D point seen by six cameras, n = 57, m = 12
# --------------------------------------------------------------------------------------

# Variables: the point P = (X, Y, Z), then for each camera the Rodrigues vector w, the
# translation t, the radial distortion k1, k2 and the focal length f. The observations and
# BA-L1SP's coefficients are in bundle_adjustment.toml.
with pathlib.Path(__file__).with_name("bundle_adjustment.toml").open("rb") as _file:
    _BA_DATA = tomllib.load(_file)
_BA_L1_OBSERVATIONS = np.array(_BA_DATA["BA-L1"]["observations"])  # (6, 2)
_BA_L1SP_A = np.array(_BA_DATA["BA-L1SP"]["a"])  # (12, 12)
_BA_L1SP_B = np.array(_BA_DATA["BA-L1SP"]["b"])
# Row i (0-based) depends on the point and on camera i // 2: its 12 columns.
_BA_COLUMNS = np.array([[0, 1, 2, *range(3 + 9 * (i // 2), 12 + 9 * (i // 2))] for i in range(12)])


def _ba_l1_c(x, args):
    # Residuals f (1 + k1 s + k2 s^2) d - (u, v), d = -(c1, c2) / c3, s = |d|^2, of the camera
    # coordinates c = R(w) P + t, R(w) P = P cos th + (e x P) sin th + e (e . P)(1 - cos th),
    # th = |w|, e = w / th. As CUTEst evaluates it, the SIF's Fortran adds e1 (e . P)(1 - cos th)
    # to c2 (Rodrigues: e2); for th^2 <= eps it takes R(w) P = P + w x P.
    point, cams = x[:3], x[3:].reshape(6, 9)
    w, t, k1, k2, f = cams[:, :3], cams[:, 3:6], cams[:, 6], cams[:, 7], cams[:, 8]
    th2 = jnp.sum(w**2, axis=1, keepdims=True)
    small = th2 <= jnp.finfo(jnp.result_type(x)).eps
    th = jnp.sqrt(jnp.where(small, 1.0, th2))
    e = w / th
    e_sif = e[:, np.array([0, 0, 2])]  # the typo: e1 in the y coordinate
    p = (e @ point)[:, None] * (1.0 - jnp.cos(th))
    rotated = jnp.cos(th) * point + jnp.sin(th) * jnp.cross(e, point) + e_sif * p
    c = jnp.where(small, point + jnp.cross(w, point), rotated) + t
    d = -c[:, :2] / c[:, 2:]
    s = jnp.sum(d**2, axis=1)
    return ((f * (1.0 + k1 * s + k2 * s**2))[:, None] * d - _BA_L1_OBSERVATIONS).ravel()


def _ba_l1sp_c(x, args):
    # c_i = sum_{j in S_i} a_ij x_j (1 + x_j / 2 + sum_{k > j} x_k) - b_i, S_i = _BA_COLUMNS[i]:
    # the SIF gives a_ij to the linear term x_j and to the elements x_j^2 / 2 and x_j x_k, k > j.
    after = jnp.cumsum(x[::-1])[::-1] - x  # sum_{k > j} x_k
    z = x * (1.0 + 0.5 * x + after)
    return jnp.sum(_BA_L1SP_A * z[_BA_COLUMNS], axis=1) - _BA_L1SP_B


def _ba_l1sp_x0() -> np.ndarray:
    # BA-L1SP.SIF has no START POINT: the SIF default 0.
    return np.zeros(57)


# --------------------------------------------------------------------------------------
# The registry: the paper's table, read from problems.toml
# --------------------------------------------------------------------------------------


def _make(
    name: str,
    sif_class: str,
    y0,
    m: int,
    constraints: Callable,
    objective: Callable = _zero,
    *,
    iters: PaperIterations,
    solution=None,
    f_star: float | None = None,
    notes: str = "",
) -> ConstrainedProblem:
    return ConstrainedProblem(
        name=name,
        sif_class=sif_class,
        y0=as_f64(y0),
        lambda0=as_f64(np.zeros(m)),
        objective=objective,
        constraints=constraints,
        solution=None if solution is None else as_f64(solution),
        reference_objective=f_star,
        paper_iterations=iters,
        notes=notes,
    )


_TABLE = pathlib.Path(__file__).with_name("problems.toml")
_PROBLEM_KEYS = ("sif_class", "y0", "m", "iters")
_OPTIONAL_KEYS = ("objective", "constraints", "solution", "f_star", "notes")


class _Entry:
    """One problem's row of the table, with errors that name the problem and the key."""

    def __init__(self, path: pathlib.Path, name: str, row: object):
        self.path, self.name = path, name
        if not isinstance(row, dict):
            raise self.error(None, f"expected a table of keys, got {row!r}")
        self.row = row

    def error(self, key: str | None, message: str) -> ValueError:
        where = f"[{self.name}]" if key is None else f"[{self.name}] {key}"
        return ValueError(f"{self.path}: {where}: {message}.")

    def check_keys(self, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        allowed = required + optional
        for key in self.row:
            if key not in allowed:
                raise self.error(key, f"unknown key; the keys are {', '.join(allowed)}")
        for key in required:
            if key not in self.row:
                raise self.error(key, "missing")

    def integer(self, key: str) -> int:
        value = self.row[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(key, f"expected a positive integer, got {value!r}")
        return value

    def string(self, key: str, default: str | None = None) -> str:
        value = self.row.get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return value

    def numbers(self, key: str) -> list[float]:
        value = self.row[key]
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise self.error(key, f"expected a list of numbers, got {value!r}")
        return value

    def function(self, key: str, fname: object) -> Callable:
        """The function `_<fname>` of this module."""
        fn = globals().get(f"_{fname}") if isinstance(fname, str) else None
        if not callable(fn):
            raise self.error(key, f"no function `_{fname}` in {__name__}")
        return fn

    def vector(self, key: str) -> list[float] | np.ndarray:
        """A list of numbers, or `{ function = "f", k = v, ... }`: `_f(k=v, ...)`."""
        value = self.row[key]
        if not isinstance(value, dict):
            return self.numbers(key)
        kwargs = dict(value)
        if "function" not in kwargs:
            raise self.error(key, f"a computed vector needs `function = ...`, got {value!r}")
        fn = self.function(key, kwargs.pop("function"))
        try:
            value = fn(**kwargs)
        except TypeError as e:
            call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise self.error(key, f"`{fn.__name__}({call})` failed: {e}") from e
        if np.ndim(value) != 1:
            raise self.error(key, f"`{fn.__name__}` returned shape {np.shape(value)}")
        return value

    def check_size(self, key: str, label: str, value: int) -> None:
        """`value` against the class's `n` or `m` (`label`), where the class gives a number."""
        sif_class = self.string("sif_class")
        fields = sif_class.split("-")
        expected = fields[{"n": 2, "m": 3}[label]] if len(fields) == 4 else "V"
        if expected.isdigit() and value != int(expected):
            raise self.error(
                key,
                f"{label} = {value}, but the CUTEst class {sif_class} says {label} = {expected}",
            )

    def iters(self) -> PaperIterations:
        counts = self.numbers("iters")
        if len(counts) != len(PaperIterations._fields):
            raise self.error(
                "iters",
                f"expected {len(PaperIterations._fields)} counts "
                f"({', '.join(PaperIterations._fields)}), got {len(counts)}",
            )
        return PaperIterations(*counts)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _problem_spec(entry: _Entry) -> dict:
    """The keyword arguments of `_make` for one implemented problem."""
    entry.check_keys(_PROBLEM_KEYS, _OPTIONAL_KEYS)
    sif_class = entry.string("sif_class")
    y0 = entry.vector("y0")
    entry.check_size("y0", "n", len(y0))
    m = entry.integer("m")
    entry.check_size("m", "m", m)
    lower = entry.name.lower().replace("-", "_")
    # CUTEst objective type N: no objective (the nonlinear equations).
    objective = "zero" if sif_class.startswith("N") else f"{lower}_f"
    spec = dict(
        sif_class=sif_class,
        y0=y0,
        m=m,
        objective=entry.function("objective", entry.string("objective", objective)),
        constraints=entry.function("constraints", entry.string("constraints", f"{lower}_c")),
        iters=entry.iters(),
        notes=entry.string("notes", ""),
    )
    if "solution" in entry.row:
        spec["solution"] = solution = entry.vector("solution")
        if len(solution) != len(y0):
            raise entry.error("solution", f"length {len(solution)}, but y0 has {len(y0)}")
    if "f_star" in entry.row:
        if not _is_number(f_star := entry.row["f_star"]):
            raise entry.error("f_star", f"expected a number, got {f_star!r}")
        spec["f_star"] = float(f_star)
    return spec


def _read_table(path: pathlib.Path) -> dict[str, dict]:
    """The problems' specs from the table, in the file's order (the paper's)."""
    with path.open("rb") as f:
        try:
            table = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: {e}.") from e
    return {name: _problem_spec(_Entry(path, name, row)) for name, row in table.items()}


_SPECS = _read_table(_TABLE)

PROBLEMS: dict[str, Callable[[], ConstrainedProblem]] = {
    name: ft.partial(_make, name, **spec) for name, spec in _SPECS.items()
}
"""Factories for the implemented CUTEst problems, in the order of the paper's table."""


def get_problem(name: str) -> ConstrainedProblem:
    """Build the CUTEst problem called `name` (CUTEst spelling, case-insensitive).

    **Arguments:**

    - `name`: e.g. `"HS6"` or `"bt9"`.

    **Returns:**

    A [`ConstrainedProblem`][].

    **Raises:**

    `KeyError` naming the valid problems.
    """
    key = name.upper()
    if key in PROBLEMS:
        return PROBLEMS[key]()
    raise KeyError(f"Unknown CUTEst problem {name!r}; valid names are: {', '.join(PROBLEMS)}.")
