"""2-D incompressible Navier–Stokes in vorticity form on the unit torus: residuals, mollifier."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from pdeopt.constraints import (
    AbstractGridDerivatives,
    AbstractPDE,
    Boundary,
    Spectral,
    check_parameters,
    initial_condition,
)
from pdeopt.discretizations import Axis, Grid, velocity_from_vorticity

VISCOSITY = 1.0e-4
T_FINAL = 5.0
MOLLIFIER_SCALE = 0.005


class NavierStokes2D(AbstractPDE):
    """Unforced 2-D Navier–Stokes, w_t + v·∇w = ν Δw, on (0, 1)² periodic, t ∈ (0, T].

    `w` is the vorticity and `v = (v_x, v_y)` the velocity recovered from it by the
    Biot–Savart law (`velocity_from_vorticity`: v_x = ∂_y ψ, v_y = −∂_x ψ, Δψ = −w). Fields
    live on the grid `(t, x, y)` of shape `(nt, nx, nx)`: `nt` equally spaced times including
    t = 0 and t = T, and `nx` periodic points `i/nx` per space axis (no duplicated end point).

    **Linear quantities** (`linear_quantities`, each on the whole grid): `w`, `w_t` (finite
    differences along t, one-sided at t = 0 and t = T), `w_x`, `w_y`, `w_xx`, `w_yy` and `v_x`,
    `v_y` (Fourier pseudo-spectral in space). All are linear in `w`, so they can be computed
    once per basis field; the residual `w_t + v_x w_x + v_y w_y − ν (w_xx + w_yy)` is then
    *bilinear* in the basis weights.

    **Initial condition**: the rows `ic = w(0) − w0`, one per spatial point; no boundary rows
    (periodic). With the mollifier of `mollify` the initial condition holds by construction.

    **Arguments:**

    - `nx`: points per space axis.
    - `nt`: number of saved times (paper: 64).
    - `viscosity`: ν (paper: 1e-4, "Re = 1e4").
    - `t_final`: T (paper: 5).
    - `mollifier`: the scale s of the initial-condition mollifier used as the solution
        ansatz (`ansatz`: u = w0 + Σ_k ω_k s·(t/T)·(f_k − mean f_k), so u(0) = w0 for soft
        and hard constraints alike; paper: 0.005), or `None` for no ansatz (u = the model's
        field, the initial condition then a residual block only).
    - `squared_residual`: `True` makes each interior row the square r² of the residual, as
        the original PI-HC-MoE code did (a Gauss–Newton solve of such rows degenerates as r →
        0, and the implicit gradient with it); only for comparing with that code. Default
        `False`: rows r.
    - `derivatives`: a grid source, `Spectral(accuracy=2)` by default (`accuracy`: order of
        the time finite differences).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    viscosity: float = eqx.field(static=True, default=VISCOSITY)
    t_final: float = eqx.field(static=True, default=T_FINAL)
    mollifier: float | None = eqx.field(static=True, default=MOLLIFIER_SCALE)
    squared_residual: bool = eqx.field(static=True, default=False)
    derivatives: AbstractGridDerivatives = Spectral()

    quantities: ClassVar = {
        "w": (0, 0, 0),
        "w_t": (1, 0, 0),
        "w_x": (0, 1, 0),
        "w_y": (0, 0, 1),
        "w_xx": (0, 2, 0),
        "w_yy": (0, 0, 2),
    }

    def __check_init__(self):
        check_parameters(self, sizes={"nx": 4, "nt": 4}, positive=("viscosity", "t_final"))

    @property
    def space_grid(self) -> Grid:
        """The periodic `(x, y)` grid on the unit square."""
        axis = Axis(self.nx, 0.0, 1.0, periodic=True)
        return Grid((axis, axis))

    @property
    def t_axis(self) -> Axis:
        return Axis(self.nt, 0.0, self.t_final)

    @property
    def grid(self) -> Grid:
        return Grid((self.t_axis, *self.space_grid.axes))

    def linear_quantities(self, u: Float[Array, "nt nx nx"]) -> dict[str, Float[Array, "..."]]:
        """The derivatives of `quantities`, and the velocity (v_x, v_y) of the vorticity."""
        v_x, v_y = velocity_from_vorticity(u, self.space_grid)
        derivatives = self.derivatives.apply(self.grid, u, self.quantities)
        return derivatives | {"v_x": v_x, "v_y": v_y}

    def ansatz(self, fields, condition):
        """The mollifier: fields s·(t/T)·(f_k − mean f_k) and offset w0 (see `mollify`)."""
        if self.mollifier is None:
            return super().ansatz(fields, condition)
        damp = lambda f: mollify(self, f, scale=self.mollifier)
        basis = jax.vmap(damp, in_axes=-1, out_axes=-1)(fields)
        w0 = jnp.asarray(condition, fields.dtype)
        offset = jnp.broadcast_to(w0 - jnp.mean(w0), self.grid_shape)
        return basis, offset

    def interior_residual(self, q, condition):
        advection = q["v_x"] * q["w_x"] + q["v_y"] * q["w_y"]
        r = q["w_t"] + advection - self.viscosity * (q["w_xx"] + q["w_yy"])
        return r**2 if self.squared_residual else r

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        return (initial_condition(),)

    def enstrophy(self, w: Float[Array, "*batch nx nx"]) -> Float[Array, "*batch"]:
        """½ ∫ w² over the unit square (the grid mean of w²/2)."""
        return 0.5 * jnp.mean(w**2, axis=(-2, -1))


def mollify(
    pde: NavierStokes2D,
    field: Float[Array, "nt nx nx"],
    w0: Float[Array, "nx nx"] | None = None,
    *,
    scale: float = MOLLIFIER_SCALE,
) -> Float[Array, "nt nx nx"]:
    """The PI-HC-MoE initial-condition mollifier: u = w0 + s·(t/T)·(f − mean_xy f), zero-mean.

    The network output `f` (a basis field, or the combination B·ω) is damped to zero at
    t = 0, so u(0) = w0 whatever f is: the initial condition is a hard constraint
    (as in the PI-HC-MoE paper; its reference code uses s = 0.005 for both hard- and
    soft-constraint models). The spatial mean of the result is removed (w0 is zero-mean in
    the data, so this changes nothing for consistent inputs).

    With `w0=None` the function returns only the part that is linear in `f`,
    `s·(t/T)·(f − mean f)`. That is what per-basis quantities are computed from: since
    `linear_quantities` is linear, the quantities of u are
    `pde.linear_quantities(broadcast(w0)) + Σ_k ω_k · pde.linear_quantities(mollify(pde,
    b_k))`, with the first term (the initial condition's constant offsets; its `w_t` is zero)
    computed once per sample.

    **Arguments:**

    - `pde`: the PDE (its grid and T).
    - `field`: f on the `(t, x, y)` grid.
    - `w0`: the initial vorticity, or `None` for the linear part only.
    - `scale`: s (keyword-only).

    **Returns:**

    u on the `(t, x, y)` grid.
    """
    t = jnp.asarray(pde.coordinates()[0] / pde.t_final, dtype=field.dtype)
    centred = field - jnp.mean(field, axis=(-2, -1), keepdims=True)
    u = scale * t[:, None, None] * centred
    if w0 is None:
        return u
    u = u + w0
    return u - jnp.mean(u, axis=(-2, -1), keepdims=True)
