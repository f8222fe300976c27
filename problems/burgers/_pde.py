"""1-D viscous Burgers (PDEBench convention): residuals on grid fields or autodiff quantities."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from pdeopt.constraints import AbstractPDE
from pdeopt.discretizations import Axis, derivative, spectral_derivative

VISCOSITIES = (0.001, 0.01, 0.1, 1.0)
T_FINAL = 2.0


class Burgers(AbstractPDE):
    """Viscous Burgers, u_t + (u²/2)_x = (ν/π) u_xx, on x ∈ (0, 1) periodic, t ∈ (0, T].

    PDEBench's convention: the configured viscosity ν is divided by π (PDEBench's data sets
    use ν ∈ {0.001, 0.01, 0.1, 1.0}, T = 2, 1024 cells, 201 saved times). The grid is PDEBench's:
    `nx` periodic cell centres `(i + 1/2)/nx` and `nt` equally spaced times including t = 0 and
    t = T.

    **Linear quantities** (`interior_quantities`): `u`, `u_t` (finite differences along t,
    one-sided at the ends), `u_x`, `u_xx` (Fourier pseudo-spectral). The residual
    `u_t + u u_x − (ν/π) u_xx` is bilinear in the basis weights. **Initial condition**: the
    rows `ic = u(0) − u0`; no boundary rows (periodic).

    **Arguments:**

    - `nx`, `nt`: grid sizes.
    - `viscosity`: PDEBench's ν (the diffusion coefficient is ν/π).
    - `t_final`: T.
    - `accuracy`: order of the time finite differences, 2 or 4.
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    viscosity: float = eqx.field(static=True, default=0.01)
    t_final: float = eqx.field(static=True, default=T_FINAL)
    accuracy: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        if not isinstance(self.nx, int) or self.nx < 4:
            raise ValueError(f"problem.nx must be an integer >= 4, got {self.nx!r}.")
        if not isinstance(self.nt, int) or self.nt < self.accuracy + 2:
            raise ValueError(
                f"problem.nt must be an integer >= {self.accuracy + 2} (accuracy "
                f"{self.accuracy} time differences), got {self.nt!r}."
            )
        for name in ("viscosity", "t_final"):
            if not getattr(self, name) > 0:
                raise ValueError(f"problem.{name} must be > 0, got {getattr(self, name)!r}.")

    @property
    def diffusivity(self) -> float:
        """The coefficient ν/π of u_xx."""
        return self.viscosity / np.pi

    @property
    def x_axis(self) -> Axis:
        return Axis(self.nx, 0.0, 1.0, centering="cell", periodic=True)

    @property
    def t_axis(self) -> Axis:
        return Axis(self.nt, 0.0, self.t_final)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.nt, self.nx)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """`(t, x)` coordinate vectors of the grid."""
        return self.t_axis.points, self.x_axis.points

    def inputs(self, condition: Float[Array, " nx"]) -> Float[Array, "nt nx 3"]:
        """Channels `(t/T, x, u0)`."""
        t, x = self.coordinates()
        tt, xx = jnp.meshgrid(t / self.t_final, x, indexing="ij")
        u0 = jnp.broadcast_to(condition, self.grid_shape).astype(tt.dtype)
        return jnp.stack([tt, xx, u0], axis=-1)

    def interior_quantities(self, u: Float[Array, "nt nx"]) -> dict[str, Float[Array, "nt nx"]]:
        return {
            "u": u,
            "u_t": derivative(u, self.t_axis, 1, dim=0, accuracy=self.accuracy),
            "u_x": spectral_derivative(u, self.x_axis, 1),
            "u_xx": spectral_derivative(u, self.x_axis, 2),
        }

    def interior_residual(self, q, condition):
        return q["u_t"] + q["u"] * q["u_x"] - self.diffusivity * q["u_xx"]

    def boundary_quantities(self, u: Float[Array, "nt nx"]) -> dict[str, Array]:
        return {"initial": u[0]}

    def boundary_residuals(self, qb, condition):
        return {"ic": qb["initial"] - condition}

    def boundary_locations(self) -> dict[str, np.ndarray]:
        x = np.arange(self.nx)
        return {"ic": np.stack([np.zeros_like(x), x], axis=-1)}


class BurgersAutodiff(AbstractPDE):
    """Viscous Burgers for coordinate-model bases, with autodiff derivatives (Négiar et al.).

    The PDE of [`Burgers`][problems.burgers.Burgers] on the same `(t, x)` grid, but its
    per-basis quantities are not computed from grid fields: the model, an
    [`pdeopt.models.AutodiffBasis`][] around a pointwise basis network (a DeepONet trunk in
    basis mode, or a PINN MLP), evaluates the N basis functions and their coordinate
    derivatives at the points of `inputs`, and `quantities_from_output` reads them.

    - **Model input** (`inputs`): `(nt, nx + 2, 3)`, channels `(t/T, x, u0)`: the grid, then
        two boundary columns at x = 0 and x = 1 (every grid time; the u0 channel there is
        ½(u0[0] + u0[-1])).
    - **Model output**: `(nt, nx + 2, 4 N)`, derivatives with respect to `(t/T, x)` in the
        order `ORDERS`: value, ∂/∂(t/T), ∂x, ∂xx (channel `q N + n`); u_t is ∂/∂(t/T) / T.
    - **Rows**: the residual `u_t + u u_x − (ν/π) u_xx` at collocation points; `ic`:
        `u(0, x_i) − u0_i` on the grid; `bc`: the periodic rows `u(t, 0) − u(t, 1)` and
        `u_x(t, 0) − u_x(t, 1)` at every grid time, shape `(2, nt)`.

    Grid fields carry no derivatives here, so the grid-field methods (`interior_quantities`,
    `boundary_quantities`, `ansatz`) refuse: use it with `HardConstraint`, or `Burgers` for
    finite-difference residuals.

    **Arguments:**

    - `nx`, `nt`: grid sizes.
    - `viscosity`: PDEBench's ν (the diffusion coefficient is ν/π).
    - `t_final`: T.

    ??? cite "References"

        G. Négiar, M. W. Mahoney, A. Krishnapriyan, "Learning differentiable solvers for
        systems with hard constraints", ICLR 2023.
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    viscosity: float = eqx.field(static=True, default=0.01)
    t_final: float = eqx.field(static=True, default=T_FINAL)

    ORDERS: ClassVar[tuple[tuple[int, int], ...]] = ((0, 0), (1, 0), (0, 1), (0, 2))

    def __check_init__(self):
        _ = self.burgers  # Validates the grid and constants.

    @property
    def burgers(self) -> Burgers:
        """The grid formulation of the same PDE (its grid, coordinates and diffusivity)."""
        return Burgers(nx=self.nx, nt=self.nt, viscosity=self.viscosity, t_final=self.t_final)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.nt, self.nx)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """`(t, x)` coordinate vectors of the grid."""
        return self.burgers.coordinates()

    def inputs(self, condition: Float[Array, " nx"]) -> Float[Array, "nt nx+2 3"]:
        """Channels `(t/T, x, u0)` on the grid and on the boundary columns x = 0, x = 1."""
        t, x = self.coordinates()
        u0 = jnp.asarray(condition)
        edge = 0.5 * (u0[0] + u0[-1])
        xs = jnp.concatenate([jnp.asarray(x), jnp.array([0.0, 1.0])])
        tt, xx = jnp.meshgrid(jnp.asarray(t) / self.t_final, xs, indexing="ij")
        u0 = jnp.broadcast_to(jnp.concatenate([u0, jnp.stack([edge, edge])]), tt.shape)
        return jnp.stack([tt, xx, u0.astype(tt.dtype)], axis=-1)

    def quantities_from_output(self, output):
        q = len(self.ORDERS)
        points = (self.nt, self.nx + 2)
        if output.shape[:-1] != points or output.shape[-1] % q:
            raise ValueError(
                f"BurgersAutodiff expects the model output (nt, nx + 2, 4 N) = ({points[0]}, "
                f"{points[1]}, 4 N): u and its derivatives {self.ORDERS} of N basis functions "
                f"at the points of `inputs`; got {output.shape}. Wrap the basis network in "
                "pdeopt.models.AutodiffBasis with orders=BurgersAutodiff.ORDERS."
            )
        jet = output.reshape(*points, q, -1)
        u, u_tau, u_x, u_xx = (jet[..., k, :] for k in range(q))
        u_t = u_tau / self.t_final
        grid = slice(0, self.nx)
        interior = {"u": u[:, grid], "u_t": u_t[:, grid], "u_x": u_x[:, grid]}
        interior["u_xx"] = u_xx[:, grid]
        left, right = self.nx, self.nx + 1
        boundary = {
            "initial": u[0, grid],
            "left": jnp.stack([u[:, left], u_x[:, left]]),
            "right": jnp.stack([u[:, right], u_x[:, right]]),
        }
        return u[:, grid], interior, boundary

    def interior_residual(self, q, condition):
        return q["u_t"] + q["u"] * q["u_x"] - self.burgers.diffusivity * q["u_xx"]

    def boundary_residuals(self, qb, condition):
        return {"ic": qb["initial"] - condition, "bc": qb["left"] - qb["right"]}

    def boundary_locations(self) -> dict[str, np.ndarray]:
        x, t = np.arange(self.nx), np.arange(self.nt)
        ic = np.stack([np.zeros_like(x), x], axis=-1)
        bc = np.stack([t, np.zeros_like(t)], axis=-1)
        return {"ic": ic, "bc": np.stack([bc, bc])}

    def interior_quantities(self, u):
        raise TypeError(_GRID_FIELDS.format("interior_quantities"))

    def boundary_quantities(self, u):
        raise TypeError(_GRID_FIELDS.format("boundary_quantities"))

    def ansatz(self, fields, condition):
        raise TypeError(_GRID_FIELDS.format("ansatz"))


_GRID_FIELDS = (
    "BurgersAutodiff.{} is not defined: BurgersAutodiff reads its quantities from the model "
    "output (autodiff derivatives of a coordinate model) and grid fields carry none. Use it "
    "with pdeopt.constraints.HardConstraint (problem=burgers_autodiff constraint=hard), or "
    "problems.burgers.Burgers for finite-difference residuals of grid fields."
)
