"""The 45 small CUTEst equality-constrained problems of the AdaSketch-Newton benchmark.

The paper's CUTEst table lists 47 problems. Each one here is written in JAX from
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

**Dropped:** BA-L1 and BA-L1SP (bundle adjustment, n = 57, m = 12). Their SIF data are
several thousand element coefficients (S2MPJ's `BAmL1SP.py` is about 1 MB) and BA-L1 is not
in S2MPJ at all, so neither can be written as short constants.
They are listed in `DROPPED` with their paper iteration counts.

**Not cross-checked against S2MPJ** (absent there): SINVALNE and HIMMELBE; their formulas
follow the published SIF descriptions (see each problem's `notes`). MANCINONE follows the
May 2024 corrected SIF file; the paper (2023) used the earlier CUTEst version.
"""

import functools as ft
import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from ._problem import ConstrainedProblem, PaperIterations, as_f64

_nan = math.nan
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
    return (x[0] - x[1]) ** 2 + (x[1] + x[2] - 2.0) ** 2 + (x[3] - 1.0) ** 2 + (x[4] - 1.0) ** 2


def _hs51_c(x, args):
    return _stack(x[0] + 3.0 * x[1] - 4.0, x[2] + x[3] - 2.0 * x[4], x[1] - x[4])


def _hs52_f(x, args):
    return (
        (4.0 * x[0] - x[1]) ** 2 + (x[1] + x[2] - 2.0) ** 2 + (x[3] - 1.0) ** 2 + (x[4] - 1.0) ** 2
    )


def _hs52_c(x, args):
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
    return (
        (x[0] - 1.0) ** 2
        + (x[0] - x[1]) ** 2
        + (x[1] - x[2]) ** 2
        + (x[2] - x[3]) ** 4
        + (x[3] - x[4]) ** 4
    )


def _hs79_c(x, args):
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


def _bt3_f(x, args):
    return (x[0] - x[1]) ** 2 + (x[1] + x[2] - 2.0) ** 2 + (x[3] - 1.0) ** 2 + (x[4] - 1.0) ** 2


def _bt3_c(x, args):
    return _stack(x[0] + 3.0 * x[1], x[2] + x[3] - 2.0 * x[4], x[1] - x[4])


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


def _bt11_f(x, args):
    return (
        (x[0] - 1.0) ** 2
        + (x[0] - x[1]) ** 2
        + (x[1] - x[2]) ** 2
        + (x[2] - x[3]) ** 4
        + (x[3] - x[4]) ** 4
    )


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


def _mwright_c(x, args):
    return _stack(
        x[0] + x[1] ** 2 + x[2] ** 3 - 2.0 - 3.0 * _SQ2,
        x[1] - x[2] ** 2 + x[3] + 2.0 - 2.0 * _SQ2,
        x[0] * x[4] - 2.0,
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


def _morebv_grid(n):
    h = 1.0 / (n + 1)
    t = h * np.arange(1, n + 1)
    return h, t


def _morebvne_c(x, args):
    n = x.shape[0]
    h, t = _morebv_grid(n)
    xpad = jnp.pad(x, 1)
    return 2.0 * x - xpad[:-2] - xpad[2:] + 0.5 * h**2 * (x + t + 1.0) ** 3


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
    h = 1.0 / (n_free + 1)
    t = h * np.arange(1, n_free + 1)
    ti, tj = t[:, None], t[None, :]
    w = np.where(tj <= ti, (1.0 - ti) * tj, ti * (1.0 - tj)) * (0.5 * h)
    return t, w


def _inteqne_c(x, args):
    n_free = x.shape[0] - 2
    t, w = _inteq_weights(n_free)
    inner = x[1:-1]
    g = inner + w @ (inner + 1.0 + t) ** 3
    return jnp.concatenate([x[:1], g, x[-1:]])


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
# The registry
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


_P = PaperIterations
_HS_BOOK = "Hock & Schittkowski (1981)"
_S2MPJ_SOLTN = "f* from the SIF file's SOLTN comment (S2MPJ)"

# name -> keyword arguments of `_make` (insertion order = the paper's table order).
_SPECS: dict[str, dict] = {
    "HS6": dict(
        sif_class="QQR2-AN-2-1",
        y0=[-1.2, 1.0],
        m=1,
        objective=_hs6_f,
        constraints=_hs6_c,
        iters=_P(9, 9, 9, 9, 91, 9),
        solution=[1.0, 1.0],
        f_star=0.0,
        notes=_HS_BOOK,
    ),
    "BT5": dict(
        sif_class="QQR2-AN-3-2",
        y0=[2.0, 2.0, 2.0],
        m=2,
        objective=_bt5_f,
        constraints=_bt5_c,
        iters=_P(5, 5, 5, 5, 38, 5),
        solution=[3.512118414, 0.2169881741, 3.552174034],
        f_star=961.71517219,
        notes="HS63 without bounds (x* from the HS book); SIF sign fix of x3^2 in c1.",
    ),
    "BT9": dict(
        sif_class="LOR2-AN-4-2",
        y0=[2.0] * 4,
        m=2,
        objective=_minus_x1,
        constraints=_bt9_c,
        iters=_P(11.5, 10.7, 12, 10, 22, 10),
        solution=[1.0, 1.0, 0.0, 0.0],
        f_star=-1.0,
        notes="SIF sign fix of x2 in c2; lambda* = (-1, -1) (a known sign error of the SIF file).",
    ),
    "HS28": dict(
        sif_class="SLR2-AY-3-1",
        y0=[-4.0, 1.0, 1.0],
        m=1,
        objective=_hs28_f,
        constraints=_hs28_c,
        iters=_P(1, 1, 1, 1, 36, 5),
        solution=[0.5, -0.5, 0.5],
        f_star=0.0,
        notes=_HS_BOOK,
    ),
    "BT10": dict(
        sif_class="LOR2-AN-2-2",
        y0=[2.0, 2.0],
        m=2,
        objective=_minus_x1,
        constraints=_bt10_c,
        iters=_P(7, 7, 7, 7, 613, 7),
        solution=[1.0, 1.0],
        f_star=-1.0,
        notes="SIF sign fix of x2 in c2.",
    ),
    "HIMMELBA": dict(
        sif_class="NLR2-AN-2-2",
        y0=[8.0, 9.0],
        m=2,
        constraints=_himmelba_c,
        iters=_P(1, 1, 1, 1, 8, 4),
        solution=[5.0, 6.0],
        f_star=0.0,
    ),
    "BT12": dict(
        sif_class="QQR2-AN-5-3",
        y0=[15.811, 1.5811, 0.0, 15.083, 3.7164],
        m=3,
        objective=_bt12_f,
        constraints=_bt12_c,
        iters=_P(5, 9, 5, 9, 117, 5),
        f_star=6.18811881,
        notes=_S2MPJ_SOLTN,
    ),
    "HS40": dict(
        sif_class="OOR2-AN-4-3",
        y0=[0.8] * 4,
        m=3,
        objective=_hs40_f,
        constraints=_hs40_c,
        iters=_P(3, 3, 3, 3, 38, 5),
        solution=[2.0 ** (-1 / 3), 2.0 ** (-1 / 2), 2.0 ** (-11 / 12), 2.0 ** (-1 / 4)],
        f_star=-0.25,
        notes=_HS_BOOK,
    ),
    "BT3": dict(
        sif_class="SLR2-AY-5-3",
        y0=[20.0] * 5,
        m=3,
        objective=_bt3_f,
        constraints=_bt3_c,
        iters=_P(1, 1, 1, 1, 29, 4),
        solution=np.array([-33.0, 11.0, 27.0, -5.0, 11.0]) / 43.0,
        f_star=176.0 / 43.0,
        notes="Convex QP; x* from the exact KKT solve (f* = 176/43).",
    ),
    "BT6": dict(
        sif_class="OOR2-AY-5-2",
        y0=[2.0] * 5,
        m=2,
        objective=_hs77_f,
        constraints=_hs77_c,
        iters=_P(9, 8, 9, 8, 183, 10),
        f_star=0.277044924,
        notes="Same closed form as HS77 (whose x* gives f = 0.2415); SOLTN 0.277044924 is "
        "another local solution.",
    ),
    "BT11": dict(
        sif_class="OOR2-AY-5-3",
        y0=[2.0] * 5,
        m=3,
        objective=_bt11_f,
        constraints=_bt11_c,
        iters=_P(7, 7, 7, 7, 27, 8),
        f_star=0.824891647,
        notes=_S2MPJ_SOLTN,
    ),
    "HS7": dict(
        sif_class="OOR2-AN-2-1",
        y0=[2.0, 2.0],
        m=1,
        objective=_hs7_f,
        constraints=_hs7_c,
        iters=_P(10, 10, 10, 10, 10, 7),
        solution=[0.0, math.sqrt(3.0)],
        f_star=-math.sqrt(3.0),
        notes=_HS_BOOK,
    ),
    "GENHS28": dict(
        sif_class="QLR2-AY-10-8",
        y0=[-4.0] + [1.0] * 9,
        m=8,
        objective=_genhs28_f,
        constraints=_genhs28_c,
        iters=_P(1, 1, 1, 1, 97, 6),
        solution=[
            0.16421222513617123,
            -0.05204760944119446,
            0.3132943312487393,
            0.1418196489812385,
            0.13435545692959477,
            0.19648981238652397,
            0.1575549727657859,
            0.16280008069396812,
            0.1722816219487594,
            0.16421222513617106,
        ],
        f_star=0.9271736937663911,
        notes="Convex QP; x* from the exact KKT solve (the SIF SOLTN comment 0.0 is wrong). "
        "The SIF file starts the multipliers at 1; lambda0 = 0 here.",
    ),
    "HS51": dict(
        sif_class="QLR2-AY-5-3",
        y0=[2.5, 0.5, 2.0, -1.0, 0.5],
        m=3,
        objective=_hs51_f,
        constraints=_hs51_c,
        iters=_P(1, 1, 1, 1, 43, 5),
        solution=[1.0] * 5,
        f_star=0.0,
        notes=_HS_BOOK,
    ),
    "SINVALNE": dict(
        sif_class="NOR2-AN-2-2",
        y0=[4.712389, -1.0],
        m=2,
        constraints=_sinvalne_c,
        iters=_P(16, 16, 16, 16, 3533, 11),
        solution=[0.0, 0.0],
        f_star=0.0,
        notes="Not in S2MPJ: residuals of SINEVAL with SINVALNE.SIF's scalings "
        "(10 (x2 - sin x1), x1 / 2) as published for the SIF file; start point as SINEVAL. "
        "Scalings not cross-checked.",
    ),
    "BOOTH": dict(
        sif_class="NLR2-AN-2-2",
        y0=[0.0, 0.0],
        m=2,
        constraints=_booth_c,
        iters=_P(1, 1, 1, 1, 6, 3),
        solution=[1.0, 3.0],
        f_star=0.0,
    ),
    "HS52": dict(
        sif_class="QLR2-AY-5-3",
        y0=[2.0] * 5,
        m=3,
        objective=_hs52_f,
        constraints=_hs52_c,
        iters=_P(2, 1, 2, 1, 14, 3),
        solution=np.array([-33.0, 11.0, 180.0, -158.0, 11.0]) / 349.0,
        f_star=1859.0 / 349.0,
        notes=_HS_BOOK,
    ),
    "HS47": dict(
        sif_class="OOR2-AY-5-3",
        y0=[2.0, _SQ2, -1.0, 2.0 - _SQ2, 0.5],
        m=3,
        objective=_hs47_f,
        constraints=_hs47_c,
        iters=_P(14.5, 14.8, 14, 15, 112, 14),
        solution=[1.0] * 5,
        f_star=0.0,
        notes=_HS_BOOK,
    ),
    "WAYSEA1NE": dict(
        sif_class="NOR2-MN-2-2",
        y0=[1.0, 5.0],
        m=2,
        constraints=_waysea1ne_c,
        iters=_P(7, 7, 7, 7, 550, 9),
        solution=[1.0, 2.0],
        f_star=0.0,
    ),
    "HS48": dict(
        sif_class="SLR2-AY-5-2",
        y0=[3.0, 5.0, -3.0, 2.0, -2.0],
        m=2,
        objective=_hs48_f,
        constraints=_hs48_c,
        iters=_P(1, 1, 1, 1, 26, 5),
        solution=[1.0] * 5,
        f_star=0.0,
        notes=_HS_BOOK,
    ),
    "HS50": dict(
        sif_class="OLR2-AY-5-3",
        y0=[35.0, -31.0, 11.0, 5.0, -5.0],
        m=3,
        objective=_hs50_f,
        constraints=_hs50_c,
        iters=_P(8, 8, 8, 8, 78, 11),
        solution=[1.0] * 5,
        f_star=0.0,
        notes=_HS_BOOK,
    ),
    "RSNBRNE": dict(
        sif_class="NOR2-AN-2-2",
        y0=[-1.2, 1.0],
        m=2,
        constraints=_rsnbrne_c,
        iters=_P(11, 11, 11, 11, 4461, 12),
        solution=[1.0, 1.0],
        f_star=0.0,
    ),
    "CUBENE": dict(
        sif_class="NOR2-AN-2-2",
        y0=[-1.2, 1.0],
        m=2,
        constraints=_cubene_c,
        iters=_P(4, 4, 4, 4, _nan, 11),
        solution=[1.0, 1.0],
        f_star=0.0,
    ),
    "HS77": dict(
        sif_class="OOR2-AY-5-2",
        y0=[2.0] * 5,
        m=2,
        objective=_hs77_f,
        constraints=_hs77_c,
        iters=_P(8, 8, 8, 8, 179, 9),
        solution=[1.166172, 1.182111, 1.380257, 1.506036, 0.6109203],
        f_star=0.24150513,
        notes=_HS_BOOK + "; x* to the book's 7 digits.",
    ),
    "MWRIGHT": dict(
        sif_class="OQR2-AN-5-3",
        y0=[-1.0, 2.0, 1.0, -2.0, -2.0],
        m=3,
        objective=_mwright_f,
        constraints=_mwright_c,
        iters=_P(6, 7, 6, 7, 136, 8),
        f_star=32.851791437,
        notes=_S2MPJ_SOLTN + " (a local solution; others exist).",
    ),
    "ZANGWIL3": dict(
        sif_class="NLR2-AN-3-3",
        y0=[100.0, -1.0, 2.5],
        m=3,
        constraints=_zangwil3_c,
        iters=_P(1, 1, 1, 1, 11, 6),
        solution=[0.0, 0.0, 0.0],
        f_star=0.0,
    ),
    "TRIGON1NE": dict(
        sif_class="NOR2-MN-V-V",
        y0=[0.1] * 10,
        m=10,
        constraints=_trigon1ne_c,
        iters=_P(4, 4, 4, 4, 132, 6),
        solution=[0.0] * 10,
        f_star=0.0,
        notes="Residuals of TRIGON1 (N = 10).",
    ),
    "HS78": dict(
        sif_class="OOR2-AN-5-3",
        y0=[-2.0, 1.5, 2.0, -1.0, -1.0],
        m=3,
        objective=_hs78_f,
        constraints=_hs78_c,
        iters=_P(4, 4, 4, 4, 48, 6),
        solution=[-1.717142, 1.595708, 1.827248, -0.7636429, -0.7636435],
        f_star=-2.91970041,
        notes=_HS_BOOK + "; x* to the book's 7 digits.",
    ),
    "HS56": dict(
        sif_class="OOR2-AN-7-4",
        y0=[1.0, 1.0, 1.0, 0.50973968, 0.50973968, 0.50973968, 0.98511078],
        m=4,
        objective=_hs56_f,
        constraints=_hs56_c,
        iters=_P(5, 5, 5, 5, 74, 5),
        solution=[
            2.4,
            1.2,
            1.2,
            math.asin(math.sqrt(4.0 / 7.0)),
            math.asin(math.sqrt(2.0 / 7.0)),
            math.asin(math.sqrt(2.0 / 7.0)),
            0.5 * math.pi,
        ],
        f_star=-3.456,
        notes=_HS_BOOK,
    ),
    "HELIXNE": dict(
        sif_class="NOR2-AN-3-3",
        y0=[-1.0, 0.0, 0.0],
        m=3,
        constraints=_helixne_c,
        iters=_P(8, 8, 8, 8, 1255, 10),
        solution=[1.0, 0.0, 0.0],
        f_star=0.0,
    ),
    "HS42": dict(
        sif_class="SQR2-AN-4-2",
        y0=[1.0] * 4,
        m=2,
        objective=_hs42_f,
        constraints=_hs42_c,
        iters=_P(4, 4, 4, 4, 9, 5),
        solution=[2.0, 2.0, 0.6 * _SQ2, 0.8 * _SQ2],
        f_star=28.0 - 10.0 * _SQ2,
        notes=_HS_BOOK,
    ),
    "HS79": dict(
        sif_class="OOR2-AY-5-3",
        y0=[2.0] * 5,
        m=3,
        objective=_hs79_f,
        constraints=_hs79_c,
        iters=_P(4, 4, 4, 4, 72, 6),
        solution=[1.191127, 1.362603, 1.472818, 1.635017, 1.679081],
        f_star=0.0787768,
        notes=_HS_BOOK + "; x* to the book's 7 digits.",
    ),
    "ORTHREGB": dict(
        sif_class="QQR2-AN-27-6",
        y0=np.concatenate(
            [[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0], _ORTHREGB_POINTS.ravel()]
        ),
        m=6,
        objective=_orthregb_f,
        constraints=_orthregb_c,
        iters=_P(42, 42, 42, 42, 100, 44),
        solution=_orthregb_solution(),
        f_star=0.0,
        notes="x* in closed form: the ellipsoid through the 6 data points (f = 0).",
    ),
    "HS100LNP": dict(
        sif_class="OOR2-AN-7-2",
        y0=[1.0, 2.0, 0.0, 4.0, 0.0, 1.0, 1.0],
        m=2,
        objective=_hs100lnp_f,
        constraints=_hs100lnp_c,
        iters=_P(9, 8, 9, 8, 131, 9),
        solution=[2.330499, 1.951372, -0.4775414, 4.365726, -0.6244870, 1.038131, 1.594227],
        f_star=680.6300573,
        notes="HS100 with its active inequalities as equalities (x* of HS100, 7 digits). "
        "The SIF file scales (x4 - 11)^2 by 1/0.3333333333; we use the exact factor 3.",
    ),
    "GOTTFR": dict(
        sif_class="NQR2-AN-2-2",
        y0=[0.5, 0.5],
        m=2,
        constraints=_gottfr_c,
        iters=_P(5, 5, _nan, _nan, 12, 4),
    ),
    "HIMMELBE": dict(
        sif_class="NQR2-AY-3-3",
        y0=[-1.2, 2.0, 0.0],
        m=3,
        constraints=_himmelbe_c,
        iters=_P(2, 2, 2, 2, 36, 5),
        solution=[1.0, 1.0, 1.0],
        f_star=0.0,
        notes="Not in S2MPJ: Himmelblau problem 30 as in HIMMELBE.SIF "
        "(0.25 (x1 + x2)^2 - x3, 1 - x1, 1 - x2); not cross-checked.",
    ),
    "MOREBVNE": dict(
        sif_class="NOR2-MN-V-V",
        y0=_morebv_grid(10)[1] * (_morebv_grid(10)[1] - 1.0),
        m=10,
        constraints=_morebvne_c,
        iters=_P(2, 2, 2, 2, 1232, 3),
        notes="Residuals of MOREBV (MGH problem 28, N = 10).",
    ),
    "WAYSEA2NE": dict(
        sif_class="NOR2-MN-2-2",
        y0=[1.0, 5.0],
        m=2,
        constraints=_waysea2ne_c,
        iters=_P(10, 10, 10, 10, 873, 13),
        solution=[(2.5 - math.sqrt(2.5**2 - 16.0 * 0.340125)) / 8.0, 1.0],
        f_star=0.0,
    ),
    "DENSCHNCNE": dict(
        sif_class="NOR2-AN-2-2",
        y0=[2.0, 3.0],
        m=2,
        constraints=_denschncne_c,
        iters=_P(7, 7, 7, 7, 52, 7),
        solution=[1.0, 1.0],
        f_star=0.0,
        notes="Residuals of DENSCHNC.",
    ),
    "DENSCHNFNE": dict(
        sif_class="NOR2-AY-2-2",
        y0=[2.0, 0.0],
        m=2,
        constraints=_denschnfne_c,
        iters=_P(4, 4, 4, 4, 11, 6),
        solution=[1.0, 1.0],
        f_star=0.0,
    ),
    "HIMMELBC": dict(
        sif_class="NQR2-AN-2-2",
        y0=[1.0, 1.0],
        m=2,
        constraints=_himmelbc_c,
        iters=_P(5, 5, 5, 5, 14, 6),
        solution=[3.0, 2.0],
        f_star=0.0,
    ),
    "PRICE4NE": dict(
        sif_class="NOR2-MN-2-2",
        y0=[1.0, 5.0],
        m=2,
        constraints=_price4ne_c,
        iters=_P(12.7, 14, _nan, _nan, 97, 7),
        solution=[2.0, 4.0],
        f_star=0.0,
        notes="Roots include (0, 0) (singular Jacobian) and (2, 4); the latter is stored.",
    ),
    "INTEQNE": dict(
        sif_class="NOR2-AN-V-V",
        y0=np.concatenate([[0.0], _inteq_weights(10)[0] * (_inteq_weights(10)[0] - 1.0), [0.0]]),
        m=12,
        constraints=_inteqne_c,
        iters=_P(2, 2, 2, 2, 5, 2),
        notes="MGH problem 29 with N = 10 interior points; the boundary values are variables.",
    ),
    "MANCINONE": dict(
        sif_class="NOR2-AN-V-V",
        y0=_mancinone_x0(100),
        m=100,
        constraints=_mancinone_c,
        iters=_P(4, 4, 4, 4, 8, 6),
        notes="N = 100, alpha = 5, beta = 14, gamma = 3; s_ij = sin(log v_ij) as in the May 2024 "
        "corrected SIF file (the paper used the earlier CUTEst version). The SIF constant "
        "(i - N/2)^3 is subtracted, so c(x0) is about -2 (i - N/2)^3 (|c(x0)| ~ 1e6); plain "
        "Newton still converges in 4-5 steps.",
    ),
    "BT2": dict(
        sif_class="QQR2-AY-3-1",
        y0=[10.0] * 3,
        m=1,
        objective=_bt2_f,
        constraints=_bt2_c,
        iters=_P(11.5, 10.5, 12, 11, 44, 15),
        f_star=0.0325682,
        notes=_S2MPJ_SOLTN,
    ),
}

DROPPED: dict[str, dict] = {
    "BA-L1SP": dict(
        n=57,
        m=12,
        sif_class="NOR2-MN-57-12",
        iters=_P(4, 4, 4, 4, 67, 8),
        reason="bundle-adjustment data too large to write as constants (S2MPJ file ~1 MB)",
    ),
    "BA-L1": dict(
        n=57,
        m=12,
        sif_class="NE",
        iters=_P(4, 4, 4, 4, 43, 7),
        reason="bundle-adjustment data; not in S2MPJ",
    ),
}
"""The two §11.1 problems not implemented, with the reason and the paper's counts."""

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

    `KeyError` naming the valid problems; a separate message for the dropped BA-L1 problems.
    """
    key = name.upper()
    if key in PROBLEMS:
        return PROBLEMS[key]()
    if key in DROPPED:
        raise KeyError(f"CUTEst problem {name!r} is not implemented: {DROPPED[key]['reason']}.")
    raise KeyError(f"Unknown CUTEst problem {name!r}; valid names are: {', '.join(PROBLEMS)}.")
