"""Hard-constraint layers: PI-HC (one solve per sample) and PI-HC-MoE (one per expert)."""

import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import optimistix as optx
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._results import RESULTS
from ._base import AbstractConstraint, check_weights, rms
from ._partition import Partition, partition
from ._pde import AbstractPDE, merge_coefficients

_DEFAULT_WEIGHTS = {"pde": 1.0, "ic": 1.0, "bc": 1.0}


class _Layer(eqx.Module):
    """The per-sample computation shared by `HardConstraint` and `MoEHardConstraint`."""

    num_basis: int = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    row_weights: dict[str, float] = eqx.field(static=True)
    ridge: float = eqx.field(static=True)
    init_weight: float = eqx.field(static=True)
    solver: optx.AbstractLeastSquaresSolver
    adjoint: optx.AbstractAdjoint
    max_steps: int = eqx.field(static=True)
    throw: bool = eqx.field(static=True)
    parts: tuple[int, ...] | None = eqx.field(static=True)
    global_boundary_rows: bool = eqx.field(static=True)
    interface_sweeps: int = eqx.field(static=True)
    interface_weight: float = eqx.field(static=True)
    interface_derivative_weight: float = eqx.field(static=True)
    vectorize_experts: bool = eqx.field(static=True)

    def partition(self, pde: AbstractPDE) -> Partition:
        shape = pde.grid_shape
        return partition(shape, (1,) * len(shape) if self.parts is None else self.parts)

    # ---- static checks and data -------------------------------------------------------------

    def _boundary_masks(self, pde: AbstractPDE, part: Partition) -> dict[str, np.ndarray]:
        """(K, *rows) masks: which boundary rows each expert fits."""
        masks = {}
        for name, locations in pde.boundary_locations().items():
            owner = part.owner_of(np.asarray(locations))
            experts = np.arange(part.num_experts).reshape((-1,) + (1,) * owner.ndim)
            masks[name] = (
                np.ones_like(experts == owner) if self.global_boundary_rows else (experts == owner)
            )
        return masks

    def _check(self, pde, part, output, masks) -> None:
        shape = pde.grid_shape
        if output.shape != (*shape, self.num_basis):
            raise ValueError(
                f"The hard constraint expects {self.num_basis} basis fields on the grid {shape}, "
                f"i.e. model output of shape {(*shape, self.num_basis)}; got {output.shape}. Set "
                f"the model's out_channels to constraint.num_basis={self.num_basis}."
            )
        block = math.prod(part.block_shape)
        if self.num_points > block:
            raise ValueError(
                f"constraint.num_points={self.num_points} exceeds the {block} grid points of each "
                f"expert's block {part.block_shape}; use at most {block}."
            )
        rows = self.num_points + min(
            int(m.reshape(len(m), -1).sum(1).min()) for m in masks.values()
        )
        if rows < self.num_basis:
            raise ValueError(
                f"Each constraint solve has only {rows} residual rows for {self.num_basis} basis "
                f"weights; raise constraint.num_points to at least {self.num_basis} or lower "
                "constraint.num_basis."
            )
        unknown = set(self.row_weights) - set(masks) - {"pde"}
        missing = (set(masks) | {"pde"}) - set(self.row_weights)
        if unknown or missing:
            raise ValueError(
                f"constraint.row_weights must name exactly the residual blocks "
                f"{sorted(set(masks) | {'pde'})}; missing {sorted(missing)}, unknown "
                f"{sorted(unknown)}."
            )

    # ---- the per-expert least-squares problem -----------------------------------------------

    def _residual(self, pde, omega, args):
        """Weighted residual rows of one expert: PDE, IC/BC, interface, ridge."""
        q_points, c_points, q_boundary, masks, interface, condition = args
        w = _augment(omega)
        rows = []
        q = merge_coefficients({k: v @ w for k, v in q_points.items()}, c_points)
        pde_rows = pde.interior_residual(q, condition)
        if pde_rows.shape != (self.num_points,):
            raise ValueError(
                f"{type(pde).__name__}.interior_residual must return one value per collocation "
                f"point, shape ({self.num_points},); got {pde_rows.shape}."
            )
        rows.append(self.row_weights["pde"] / math.sqrt(self.num_points) * pde_rows)
        boundary = pde.boundary_residuals({k: v @ w for k, v in q_boundary.items()}, condition)
        for name in sorted(masks):
            block, mask = boundary[name], masks[name]
            if block.shape != mask.shape:
                raise ValueError(
                    f"{type(pde).__name__}.boundary_residuals()['{name}'] has shape {block.shape} "
                    f"but boundary_locations()['{name}'] describes {mask.shape} rows."
                )
            weight = self.row_weights[name] / math.sqrt(block.size)
            rows.append(weight * jnp.where(mask, block, 0.0).ravel())
        for value_op, diff_op, exists, value_target, diff_target in interface:
            scale = exists[:, None] / math.sqrt(exists.size * value_op.shape[1])
            rows.append((self.interface_weight * scale * (value_op @ w - value_target)).ravel())
            rows.append(
                (self.interface_derivative_weight * scale * (diff_op @ w - diff_target)).ravel()
            )
        rows.append(self.ridge * omega)
        return jnp.concatenate(rows)

    def _solve(self, pde, omega0, args):
        fn = lambda omega, args: self._residual(pde, omega, args)
        sol = optx.least_squares(
            fn,
            self.solver,
            omega0,
            args,
            max_steps=self.max_steps,
            throw=False,
            adjoint=self.adjoint,
        )
        residual = jnp.linalg.norm(fn(sol.value, args))
        result = RESULTS.promote(sol.result)
        stats = {
            "result": result,
            "converged": result == RESULTS.successful,
            "max_steps_reached": result == RESULTS.nonlinear_max_steps_reached,
            "num_steps": sol.stats["num_steps"],
            "residual_norm": residual,
        }
        return sol.value, stats

    # ---- the layer --------------------------------------------------------------------------

    def setup(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*grid n_basis"],
        condition: PyTree[Array],
        key: PRNGKeyArray,
    ) -> dict:
        """Everything the expert solves need: gathered per-basis quantities and masks.

        Returns a dict with `q_points` ({name: (K, num_points, N)}), `c_points` (the
        coefficient fields at the same points, (K, num_points)), `q_boundary`, `masks`
        ({block: (K, *rows)}), `condition` (float64), `index` (flat grid indices of the
        collocation points, (K, num_points)), `faces` (interface operators) and `finite`.
        `expert_args(setup, k)` gives expert k's `args` of `_residual`.
        """
        part = self.partition(pde)
        masks = self._boundary_masks(pde, part)
        given = _from_output(pde, output)
        self._check(pde, part, output if given is None else given[0], masks)
        if jnp.zeros((), jnp.float64).dtype != jnp.float64:
            raise RuntimeError(
                "Hard-constraint solves run in float64: call "
                'jax.config.update("jax_enable_x64", True) before building arrays.'
            )
        finite = jnp.all(jnp.isfinite(output))
        if self.throw:
            output = eqx.error_if(
                output,
                ~finite,
                "The model emitted non-finite basis values (NaN/inf) before the hard "
                "constraint; check the model and the learning rate.",
            )
        basis = self.fields(pde, output, condition)
        q_flat, q_boundary = _quantities(pde, output, basis)
        flat_basis = basis.reshape(-1, basis.shape[-1])
        block_points = jnp.asarray(part.points)
        choose = lambda k: jr.choice(k, block_points.shape[1], (self.num_points,), replace=False)
        local = jax.vmap(choose)(jr.split(key, part.num_experts))
        index = jnp.take_along_axis(block_points, local, axis=1)
        return {
            "q_points": {k: v[index] for k, v in q_flat.items()},
            "c_points": {k: v[index] for k, v in _coefficients(pde, condition).items()},
            "q_boundary": q_boundary,
            "masks": {k: jnp.asarray(v) for k, v in masks.items()},
            "condition": jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), condition),
            "index": index,
            "faces": _face_operators(part, flat_basis),
            "finite": finite,
        }

    @staticmethod
    def expert_args(setup: dict, k: int, interface=()) -> tuple:
        """`args` of `_residual` for expert k (interface rows given per expert)."""
        take = lambda tree: jax.tree.map(lambda a: a[k], tree)
        return (
            take(setup["q_points"]),
            take(setup["c_points"]),
            setup["q_boundary"],
            take(setup["masks"]),
            list(interface),
            setup["condition"],
        )

    def weights(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*grid n_basis"],
        condition: PyTree[Array],
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, "experts n_basis"], dict[str, Array]]:
        """Solve for every expert's weights; returns them with per-expert statistics."""
        setup = self.setup(pde, output, condition, key)
        faces = setup["faces"]
        num_experts = setup["index"].shape[0]

        def one(omega0, q_points, c_points, masks, interface):
            args = (q_points, c_points, setup["q_boundary"], masks, interface, setup["condition"])
            return self._solve(pde, omega0, args)

        def solve_all(omega0, interface):
            batched = (omega0, setup["q_points"], setup["c_points"], setup["masks"], interface)
            if self.vectorize_experts:
                return jax.vmap(one)(*batched)
            # One expert at a time: the same solves, with 1/K of the solver memory.
            outs = [one(*jax.tree.map(lambda a, k=k: a[k], batched)) for k in range(num_experts)]
            return jax.tree.map(lambda *a: jnp.stack(a), *outs)

        def interface_rows(omega):
            rows = []
            for value_op, diff_op, exists, neighbour in faces:
                own, other = _both_sides(value_op, _augment(omega), neighbour)
                own_d, other_d = _both_sides(diff_op, _augment(omega), neighbour)
                rows.append(
                    (value_op, diff_op, exists, 0.5 * (own + other), 0.5 * (own_d + other_d))
                )
            return rows

        omega0 = jnp.full((num_experts, self.num_basis), self.init_weight, jnp.float64)
        omega, stats = solve_all(omega0, [])
        for _ in range(self.interface_sweeps):
            omega, stats = solve_all(omega, interface_rows(omega))
        stats["converged"] = stats["converged"] & setup["finite"]
        stats["collocation"] = setup["index"]
        stats.update(_seam(faces, _augment(omega)))
        if self.throw:
            omega = eqx.error_if(
                omega,
                ~jnp.all(stats["converged"]),
                "A hard-constraint solve did not converge (see the solver's result). Raise "
                "constraint.max_steps, loosen the solver tolerances, or set "
                "constraint.throw=false to skip and count such samples instead.",
            )
        return omega, stats

    def fields(self, pde, output, condition) -> Float[Array, "*grid n_basis+1"]:
        """The basis of the solve, float64: the ansatz fields f_k and, last, the offset
        (for a PDE with `quantities_from_output`: its basis values and a zero offset)."""
        given = _from_output(pde, output)
        if given is not None:
            return _with_offset(given[0])
        condition = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), condition)
        basis, offset = pde.ansatz(output.astype(jnp.float64), condition)
        return jnp.concatenate([basis, offset[..., None]], axis=-1)

    def assemble(self, pde, fields, omega):
        """u = offset + f · ω_k on each expert's block, from `fields(...)`."""
        owner = jnp.asarray(self.partition(pde).owner)
        flat = fields.reshape(-1, fields.shape[-1])
        return jnp.sum(flat * _augment(omega)[owner], axis=-1).reshape(pde.grid_shape)

    def solution(self, pde, output, condition, omega):
        """The solution field u for solved weights ω."""
        return self.assemble(pde, self.fields(pde, output, condition), omega)

    def expert_terms(self, pde, output, omega, condition) -> dict[str, Array]:
        """Training terms of the experts' fields, each residual with its owner's weights.

        `pde`: mean square of the PDE residual at every grid point, formed from the global
        per-basis quantities with the weights of the expert owning the point (so stencils
        never straddle a seam); the initial/boundary blocks of the assembled u; `seam`: mean
        square of the jumps across expert faces of the value and of the normal derivative
        (the face difference times the axis length, i.e. the derivative in coordinates
        scaled to the unit interval).
        """
        fields = self.fields(pde, output, condition)
        residual, boundary, _ = _owner_fields(pde, self, output, omega, condition)
        terms = {"pde": jnp.mean(jnp.square(residual))}
        terms.update({name: jnp.mean(jnp.square(block)) for name, block in boundary.items()})
        part = self.partition(pde)
        flat_basis = fields.reshape(-1, fields.shape[-1])
        jumps = []
        for f, (value_op, diff_op, exists, neighbour) in zip(
            part.faces, _face_operators(part, flat_basis)
        ):
            for op, scale in ((value_op, 1.0), (diff_op, part.grid_shape[f.axis])):
                own, other = _both_sides(op, _augment(omega), neighbour)
                jump = scale * (own - other) * exists[..., None]
                jumps.append((jnp.sum(jnp.square(jump)), jnp.sum(exists) * op.shape[2]))
        if jumps:
            terms["seam"] = sum(j for j, _ in jumps) / sum(c for _, c in jumps)
        return terms


def _augment(omega: Float[Array, "*experts n_basis"]) -> Float[Array, "*experts n_basis+1"]:
    """ω with the offset's fixed weight 1 appended."""
    return jnp.concatenate([omega, jnp.ones((*omega.shape[:-1], 1), omega.dtype)], axis=-1)


def _coefficients(pde: AbstractPDE, condition) -> dict[str, Float[Array, " points"]]:
    """The PDE's pointwise coefficient fields, float64, flattened over the grid."""
    fields = pde.interior_coefficients(condition)
    return {k: jnp.asarray(v, jnp.float64).reshape(-1) for k, v in fields.items()}


def _face_operators(part: Partition, flat_basis) -> list[tuple[Array, Array, Array, Array]]:
    """Per axis: the basis at every expert face (value, normal difference), and neighbours."""
    return [
        (
            0.5 * (flat_basis[f.lower] + flat_basis[f.upper]),
            flat_basis[f.upper] - flat_basis[f.lower],
            jnp.asarray(f.exists, flat_basis.dtype),
            jnp.asarray(f.neighbour),
        )
        for f in part.faces
    ]


def basis_quantities(
    pde: AbstractPDE, basis: Float[Array, "*grid n_basis"]
) -> tuple[dict[str, Float[Array, "points n_basis"]], dict[str, Float[Array, "... n_basis"]]]:
    """Per-basis linear quantities on the global grid (flattened) and boundary traces."""
    n = basis.shape[-1]
    to_last = lambda f: jax.vmap(f, in_axes=-1, out_axes=-1)(basis)
    interior = {k: v.reshape(-1, n) for k, v in to_last(pde.interior_quantities).items()}
    return interior, to_last(pde.boundary_quantities)


def _both_sides(face_op, omega, neighbour) -> tuple[Array, Array]:
    """A face operator applied with each expert's own weights and with its neighbour's."""
    own = jnp.einsum("ksfn,kn->ksf", face_op, omega)
    other = jnp.einsum("ksfn,ksn->ksf", face_op, omega[neighbour])
    return own, other


def _seam(face_ops, omega) -> dict[str, Array]:
    """Jump of the assembled field across expert interfaces (value at the shared face)."""
    if not face_ops:
        zero = jnp.zeros((), omega.dtype)
        return {"seam_rms": zero, "seam_max": zero}
    squares, counts, maxima = [], [], []
    for value_op, _, exists, neighbour in face_ops:
        own, other = _both_sides(value_op, omega, neighbour)
        jump = jnp.abs(own - other) * exists[..., None]
        squares.append(jnp.sum(jump**2))
        counts.append(jnp.sum(exists) * value_op.shape[2])
        maxima.append(jnp.max(jump))
    return {
        "seam_rms": jnp.sqrt(sum(squares) / sum(counts)),
        "seam_max": jnp.max(jnp.stack(maxima)),
    }


def _from_output(pde: AbstractPDE, output) -> tuple | None:
    """`pde.quantities_from_output` of the float64 output (None: the grid formulation)."""
    return pde.quantities_from_output(output.astype(jnp.float64))


def _with_offset(a: Float[Array, "... n_basis"]) -> Float[Array, "... n_basis+1"]:
    """Per-basis values with the zero offset column of `quantities_from_output` appended."""
    return jnp.concatenate([a, jnp.zeros((*a.shape[:-1], 1), a.dtype)], axis=-1)


def _quantities(pde: AbstractPDE, output, fields) -> tuple[dict, dict]:
    """`basis_quantities` of the solve's fields, or the PDE's own from the model's output."""
    given = _from_output(pde, output)
    if given is None:
        return basis_quantities(pde, fields)
    _, interior, boundary = given
    n = fields.shape[-1]
    interior = {k: _with_offset(v).reshape(-1, n) for k, v in interior.items()}
    return interior, {k: _with_offset(v) for k, v in boundary.items()}


def _owner_fields(pde, layer: _Layer, output, omega, condition) -> tuple[Array, dict, Array]:
    """The PDE residual at every grid point (flat) with its owner's weights, the initial and
    boundary residual blocks of u, and u."""
    fields = layer.fields(pde, output, condition)
    owner_omega = _augment(omega)[jnp.asarray(layer.partition(pde).owner)]
    q_flat, q_boundary = _quantities(pde, output, fields)
    q = {k: jnp.sum(v * owner_omega, axis=-1) for k, v in q_flat.items()}
    q = merge_coefficients(q, _coefficients(pde, condition))
    u = layer.assemble(pde, fields, omega)
    if _from_output(pde, output) is None:
        qb = pde.boundary_quantities(u)
    elif omega.shape[0] == 1:  # The traces of u = b·ω, from the per-basis traces.
        qb = {k: v @ _augment(omega)[0] for k, v in q_boundary.items()}
    else:
        raise ValueError(
            f"{type(pde).__name__} reads its quantities from the model output, whose boundary "
            "traces belong to no expert; use HardConstraint (one solve per sample) with it."
        )
    return pde.interior_residual(q, condition), pde.boundary_residuals(qb, condition), u


def _field_report(pde, layer: _Layer, output, condition, omega, collocation) -> dict[str, Array]:
    """Residuals of the field b·ω_owner, evaluated expert by expert on the global grid."""
    residual, boundary, _ = _owner_fields(pde, layer, output, omega, condition)
    at = jnp.zeros(residual.shape, bool).at[collocation.ravel()].set(True)
    out = {"pde_rms_collocation": rms(residual, at), "pde_rms_heldout": rms(residual, ~at)}
    out.update({f"{name}_rms": rms(block) for name, block in boundary.items()})
    return out


class HardConstraint(AbstractConstraint):
    """PI-HC: per sample, solve for basis weights ω so that u = b·ω satisfies the PDE.

    The model emits N basis fields b on the grid. Per sample, the layer minimises
    ½‖r(ω)‖² over

    - PDE rows at `num_points` collocation points drawn at random (an explicit key) from the
        grid, built from per-basis linear quantities computed once on the global grid
        (`AbstractPDE.interior_quantities` of each basis field) and gathered before the
        residual is formed, so r costs O(num_points · N);
    - every initial/boundary row of `AbstractPDE.boundary_residuals`;
    - a ridge block `ridge · ω`.

    Row weights are explicit: block b's rows are scaled by `row_weights[b] / √(rows in b)`, so
    the objective is Σ_b w_b² · mean_b(r²) + ridge²‖ω‖², the same weighting for PI-HC and
    PI-HC-MoE (the original code counted the diffusion–sorption IC 101 times in PI-HC only).

    The forward solve is any optimistix least-squares solver (default Levenberg–Marquardt on
    the un-squared residual). Gradients with respect to the basis (and through it the model)
    come from the implicit function theorem on the stationarity condition Jᵀr = 0, via
    `optx.ImplicitAdjoint` with an explicit lineax solver: the adjoint matrix is the full
    Hessian of ½‖r‖², whose only regularisation is the ridge (ridge²·I); the default
    `lx.SVD()` solves it as a pseudo-inverse, robust to (near-)singular Hessians. Solver
    iterations are never unrolled.

    Solves run in float64 (the basis and condition are cast); the model may be float32.

    Coordinate-model bases: when the PDE reads the per-basis quantities from the model's
    output (`AbstractPDE.quantities_from_output`, e.g. autodiff derivatives of a DeepONet
    trunk), they replace `interior_quantities`/`boundary_quantities` of the fields in the
    solve, the report and the training loss (the mean squares of the residual blocks of
    b·ω formed from those quantities); everything else is unchanged.

    **Arguments:**

    - `num_basis`: N, the number of basis fields (the model's out_channels).
    - `num_points`: collocation points per solve.
    - `row_weights`: per-block row weights of the solve (`pde` plus the PDE's boundary blocks).
    - `loss_weights`: per-block weights of the training loss on the assembled u.
    - `ridge`: Tikhonov weight on ω (paper: 1e-4).
    - `init_weight`: initial guess ω₀ = init_weight·1 (default 1/N).
    - `solver`: an `optx.AbstractLeastSquaresSolver` instance (any, including pdeopt's).
    - `adjoint_solver`: the lineax solver of the implicit adjoint.
    - `max_steps`: iteration cap of each solve (paper: 50).
    - `throw`: raise on a failed solve or non-finite basis (True), or report it in the
        statistics and let the training loss skip the sample (False).

    ??? cite "References"

        G. Négiar, M. W. Mahoney, A. Krishnapriyan, "Learning differentiable solvers for
        systems with hard constraints", ICLR 2023.
    """

    layer: _Layer
    loss_weights: dict[str, float] = eqx.field(static=True)

    def __init__(
        self,
        num_basis: int = 16,
        num_points: int = 1000,
        *,
        row_weights: Mapping[str, float] | None = None,
        loss_weights: Mapping[str, float] | None = None,
        ridge: float = 1.0e-4,
        init_weight: float | None = None,
        solver: optx.AbstractLeastSquaresSolver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-8),
        adjoint_solver: lx.AbstractLinearSolver = lx.SVD(),
        max_steps: int = 50,
        throw: bool = True,
    ):
        self.layer = _make_layer(
            num_basis=num_basis,
            num_points=num_points,
            row_weights=row_weights,
            ridge=ridge,
            init_weight=init_weight,
            solver=solver,
            adjoint_solver=adjoint_solver,
            max_steps=max_steps,
            throw=throw,
            parts=None,
            global_boundary_rows=True,
            interface_sweeps=0,
            interface_weight=0.0,
            interface_derivative_weight=0.0,
            vectorize_experts=True,
        )
        self.loss_weights = dict(_DEFAULT_WEIGHTS if loss_weights is None else loss_weights)

    def __check_init__(self):
        check_weights("HardConstraint loss", self.loss_weights)

    @property
    def num_outputs(self) -> int:
        return self.layer.num_basis

    def weights(self, pde, output, condition, *, key):
        """The solved weights, shape (1, N), and per-solve statistics."""
        return self.layer.weights(pde, output, condition, key)

    def __call__(self, pde, output, condition, *, key):
        omega, stats = self.layer.weights(pde, output, condition, key)
        return self.layer.solution(pde, output, condition, omega), stats

    def report(self, pde, output, condition, *, key):
        return _report(self.layer, pde, output, condition, key)

    def loss_terms(self, pde, output, condition, *, key):
        if _from_output(pde, output) is None:
            return AbstractConstraint.loss_terms(self, pde, output, condition, key=key)
        # Quantities from the output (autodiff): the terms of b·ω from the same quantities.
        return _expert_loss_terms(self, pde, output, condition, key)


class MoEHardConstraint(AbstractConstraint):
    """PI-HC-MoE: the hard constraint solved independently on K subdomains ("experts").

    The grid is split into K = ∏ `parts` equal blocks along its axes (time first): (1, 4) is
    four spatial experts on a (t, x) grid, (1, 2, 2) four on (t, x, y). Derivative quantities
    are computed on the *global* grid first (interior expert boundaries use interior
    stencils), then each expert draws its own collocation points inside its block and solves
    its own weights ω_k; experts are `vmap`ped (and shard over a mesh axis `experts` under
    `jax.sharding`). The solution is piecewise: u = b·ω_k on block k.

    Initial/boundary rows: as in the paper, every expert fits all of them with its own weights
    (`global_boundary_rows=True`); with False, only the rows that lie in its block.

    Beyond the paper: `interface_sweeps > 0` adds interface rows: after the independent solve,
    each expert re-solves with rows pulling its face value ½(b_j + b_{j+1})·ω_k and normal
    difference (b_{j+1} − b_j)·ω_k on every shared face towards the average of its and its
    neighbour's current values; `seam_rms`/`seam_max` in the statistics measure the jump
    |b_face·(ω_k − ω_l)| across faces either way.

    **Arguments:** those of `HardConstraint`, plus

    - `parts`: experts per grid axis; each must divide its axis.
    - `global_boundary_rows`: give every expert every initial/boundary row (paper) or only
        its own.
    - `interface_sweeps`: number of re-solves with interface rows (0: none, as the paper).
    - `interface_weight`, `interface_derivative_weight`: weights of the interface rows.
    - `vectorize_experts`: `vmap` the expert solves (True) or run them one after another
        (False: the same result with 1/K of the solver memory).
    - `expert_loss`: the training loss. False (the paper): the finite-difference residuals of
        the assembled piecewise u, whose stencils straddle the seams, so that a jump of size
        s shows up as s/h² in the PDE term and dominates it. True (pdeopt's default): each grid
        point's PDE residual is formed with its owner's weights from the global per-basis
        quantities (no stencil sees a seam), plus a `seam` term, the mean square of the
        value and normal-derivative jumps across expert faces (`loss_weights["seam"]`,
        default 1). See `_Layer.expert_terms`.

    ??? cite "References"

        N. Chalapathi, Y. Du, A. Krishnapriyan, "Scaling physics-informed hard constraints
        with mixture-of-experts", ICLR 2024.
    """

    layer: _Layer
    loss_weights: dict[str, float] = eqx.field(static=True)
    expert_loss: bool = eqx.field(static=True)

    def __init__(
        self,
        parts: Sequence[int] = (1, 4),
        num_basis: int = 16,
        num_points: int = 1000,
        *,
        row_weights: Mapping[str, float] | None = None,
        loss_weights: Mapping[str, float] | None = None,
        ridge: float = 1.0e-4,
        init_weight: float | None = None,
        solver: optx.AbstractLeastSquaresSolver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-8),
        adjoint_solver: lx.AbstractLinearSolver = lx.SVD(),
        max_steps: int = 50,
        throw: bool = True,
        global_boundary_rows: bool = True,
        interface_sweeps: int = 0,
        interface_weight: float = 1.0,
        interface_derivative_weight: float = 0.1,
        vectorize_experts: bool = True,
        expert_loss: bool = True,
    ):
        self.layer = _make_layer(
            num_basis=num_basis,
            num_points=num_points,
            row_weights=row_weights,
            ridge=ridge,
            init_weight=init_weight,
            solver=solver,
            adjoint_solver=adjoint_solver,
            max_steps=max_steps,
            throw=throw,
            parts=tuple(parts),
            global_boundary_rows=global_boundary_rows,
            interface_sweeps=interface_sweeps,
            interface_weight=interface_weight,
            interface_derivative_weight=interface_derivative_weight,
            vectorize_experts=vectorize_experts,
        )
        self.expert_loss = expert_loss
        if loss_weights is None:
            loss_weights = {**_DEFAULT_WEIGHTS, "seam": 1.0} if expert_loss else _DEFAULT_WEIGHTS
        self.loss_weights = dict(loss_weights)

    def __check_init__(self):
        check_weights("MoEHardConstraint loss", self.loss_weights)

    @property
    def num_outputs(self) -> int:
        return self.layer.num_basis

    @property
    def num_experts(self) -> int:
        return math.prod(self.layer.parts)

    def weights(self, pde, output, condition, *, key):
        """The solved weights, shape (K, N), and per-expert statistics."""
        return self.layer.weights(pde, output, condition, key)

    def __call__(self, pde, output, condition, *, key):
        omega, stats = self.layer.weights(pde, output, condition, key)
        return self.layer.solution(pde, output, condition, omega), stats

    def report(self, pde, output, condition, *, key):
        return _report(self.layer, pde, output, condition, key)

    def loss_terms(self, pde, output, condition, *, key):
        if not self.expert_loss:
            return AbstractConstraint.loss_terms(self, pde, output, condition, key=key)
        return _expert_loss_terms(self, pde, output, condition, key)


def _expert_loss_terms(constraint, pde, output, condition, key):
    """`loss_terms` from the per-basis quantities with each point's owner's weights."""
    omega, stats = constraint.layer.weights(pde, output, condition, key)
    ok = jnp.all(stats["converged"])
    # A skipped sample's terms are those of a zero field: finite, and left out of the loss.
    zero = lambda a: jnp.where(ok, a, jax.lax.stop_gradient(jnp.zeros_like(a)))
    condition = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), condition)
    terms = constraint.layer.expert_terms(pde, zero(output), zero(omega), condition)
    return constraint.checked(terms), ok, stats


def _make_layer(*, row_weights, init_weight, adjoint_solver, **fields) -> _Layer:
    """Validate the constructor arguments shared by both layers and build the `_Layer`."""
    for name, low in (
        ("num_basis", 1),
        ("num_points", 1),
        ("max_steps", 1),
        ("interface_sweeps", 0),
    ):
        value = fields[name]
        if not isinstance(value, int) or value < low:
            raise ValueError(f"constraint.{name} must be an integer >= {low}, got {value!r}.")
    parts = fields["parts"]
    if parts is not None and (not parts or any(not isinstance(p, int) or p < 1 for p in parts)):
        raise ValueError(f"constraint.parts must be positive integers, got {parts!r}.")
    row_weights = dict(_DEFAULT_WEIGHTS if row_weights is None else row_weights)
    check_weights("constraint row", row_weights)
    floats = ("ridge", "interface_weight", "interface_derivative_weight")
    check_weights("constraint", {name: fields[name] for name in floats})
    fields.update({name: float(fields[name]) for name in floats})
    return _Layer(
        row_weights=row_weights,
        init_weight=1.0 / fields["num_basis"] if init_weight is None else float(init_weight),
        adjoint=optx.ImplicitAdjoint(linear_solver=adjoint_solver),
        **fields,
    )


def _report(layer: _Layer, pde, output, condition, key) -> dict[str, Array]:
    """Constraint satisfaction of the layer's output and of the raw network before it."""
    omega, stats = layer.weights(pde, output, condition, key)
    condition = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), condition)
    hard = _field_report(pde, layer, output, condition, omega, stats["collocation"])
    raw_omega = jnp.full_like(omega, layer.init_weight)
    raw = _field_report(pde, layer, output, condition, raw_omega, stats["collocation"])
    out = {**hard, "seam_rms": stats["seam_rms"], "seam_max": stats["seam_max"]}
    out.update({f"raw_{k}": v for k, v in raw.items()})
    out["converged_fraction"] = jnp.mean(stats["converged"].astype(jnp.float64))
    return out
