"""The hard-constraint layer: PI-HC (one solve per sample) and its partitioned case PI-HC-MoE."""

import contextlib
import contextvars
import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import optimistix as optx
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from .._ordered import at_least_two, repeat
from .._results import RESULTS
from ..solvers import (
    ExactAugmentedLagrangianNewton,
    LevenbergMarquardt,
    PracticalSafeguards,
    constrained_minimise,
)
from ._base import (
    AbstractConstraint,
    SolveStats,
    all_finite,
    assemble,
    augment,
    check_names,
    check_weights,
    field_residuals,
    flat_coefficients,
    rms,
)
from ._derivatives import BasisQuantities
from ._partition import Partition, partition
from ._pde import AbstractPDE, merge_coefficients


class Interface(eqx.Module):
    """The interface rows of one expert on the faces normal to one grid axis.

    `value` and `normal` are the per-basis face value ½(b_lower + b_upper) and normal
    difference b_upper − b_lower at every face point, for the expert's lower and upper side;
    the rows pull them towards the targets (the average of both experts' current values);
    `exists` is 1 where the expert has a neighbour on that side.
    """

    value: Float[Array, "*experts 2 face n1"]
    normal: Float[Array, "*experts 2 face n1"]
    exists: Float[Array, "*experts 2"]
    value_target: Float[Array, "*experts 2 face"]
    normal_target: Float[Array, "*experts 2 face"]


class ExpertProblem(eqx.Module):
    """The least-squares problem of one expert (a leading expert axis when batched).

    - `interior`: the per-basis quantities at the expert's collocation points.
    - `coefficients`: the PDE's coefficient fields at the same points.
    - `masks`: per residual block, which of its rows the expert fits.
    - `interface`: interface rows, one `Interface` per partitioned axis (empty: none).
    """

    interior: dict[str, Float[Array, "*experts points n1"]]
    coefficients: dict[str, Float[Array, "*experts points"]]
    masks: tuple[Bool[Array, "..."], ...]
    interface: tuple[Interface, ...] = ()


class _Shared(eqx.Module):
    """What every expert's residual shares: the block traces and the condition."""

    traces: tuple[Float[Array, "..."], ...]
    condition: PyTree[Array]


class _Faces(eqx.Module):
    """Per partitioned axis, the per-basis face operators of every expert (see `Interface`)."""

    value: tuple[Float[Array, "experts 2 face n1"], ...]
    normal: tuple[Float[Array, "experts 2 face n1"], ...]
    exists: tuple[Float[Array, "experts 2"], ...]
    neighbour: tuple[Int[Array, "experts 2"], ...]

    def both_sides(self, ops, w):
        """Per axis: the operator applied with each expert's own weights and its neighbour's."""
        own = [jnp.einsum("ksfn,kn->ksf", op, w) for op in ops]
        other = [jnp.einsum("ksfn,ksn->ksf", op, w[nb]) for op, nb in zip(ops, self.neighbour)]
        return own, other

    def interface(self, w) -> tuple[Interface, ...]:
        """Interface rows towards the average of both sides' current face values."""
        own, other = self.both_sides(self.value, w)
        own_d, other_d = self.both_sides(self.normal, w)
        return tuple(
            Interface(v, d, e, 0.5 * (a + b), 0.5 * (ad + bd))
            for v, d, e, a, b, ad, bd in zip(
                self.value, self.normal, self.exists, own, other, own_d, other_d
            )
        )

    def seam(self, w) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """RMS and max of the value jump across expert faces."""
        if not self.value:
            zero = jnp.zeros((), w.dtype)
            return zero, zero
        own, other = self.both_sides(self.value, w)
        jumps = [jnp.abs(a - b) * e[..., None] for a, b, e in zip(own, other, self.exists)]
        count = sum(jnp.sum(e) * op.shape[2] for e, op in zip(self.exists, self.value))
        rms_ = jnp.sqrt(sum(jnp.sum(j**2) for j in jumps) / count)
        return rms_, jnp.max(jnp.stack([jnp.max(j) for j in jumps]))


def _faces(part: Partition, fields: Float[Array, "*grid n1"]) -> _Faces:
    flat = fields.reshape(-1, fields.shape[-1])
    return _Faces(
        tuple(0.5 * (flat[f.lower] + flat[f.upper]) for f in part.faces),
        tuple(flat[f.upper] - flat[f.lower] for f in part.faces),
        tuple(jnp.asarray(f.exists, flat.dtype) for f in part.faces),
        tuple(jnp.asarray(f.neighbour) for f in part.faces),
    )


class HardConstraint(AbstractConstraint):
    """PI-HC and PI-HC-MoE: per sample (and per expert), solve for the basis weights ω.

    The model emits N basis fields b. The grid is split into K = ∏ `parts` equal blocks
    ("experts"; `parts=None` is one expert, PI-HC). Each expert draws `num_points`
    collocation points inside its block (an explicit key) and minimises ½‖r(ω_k)‖² over

    - PDE rows at its collocation points, from the per-basis quantities of the PDE's
        `derivatives`, computed once per sample on the global grid (interior expert faces
        use interior stencils) and gathered before the residual is formed, so r costs
        O(num_points · N);
    - the rows of every initial/boundary block (`global_boundary_rows=True`, the paper: all
        of them; False: the rows that lie in its block);
    - optional interface rows (`interface_sweeps > 0`, below);
    - a ridge block `ridge · ω`.

    Row weights are explicit: block b's rows are scaled by `row_weights[b] / √(rows in b)`,
    so the objective is Σ_b w_b² · mean_b(r²) + ridge²‖ω‖². The solution is u = b·ω_k on
    block k (plus the PDE's ansatz offset).

    The forward solve is any optimistix least-squares solver; the default is pdeopt's
    [`pdeopt.solvers.LevenbergMarquardt`][] (damped Gauss–Newton on the N×N normal equations,
    sketch-preconditioned CG for large N). Gradients with respect to the basis come from the
    implicit function theorem on the stationarity condition Jᵀr = 0, by `adjoint`
    (`None`: `optx.ImplicitAdjoint(lx.SVD())`, a pseudo-inverse of the exact Hessian of
    ½‖r‖², robust to near-singular Hessians). Solver iterations are never unrolled. Solves run
    in float64; the model may be float32.

    Experts are an array axis: `vmap`ped (`vectorize_experts=True`, one batched solve that runs
    until the slowest expert has converged; for accelerators) or solved one after another with
    `lax.map` (the same result with 1/K of the solver memory, and on one CPU device faster:
    each expert stops when it has converged). Likewise the samples of a batch:
    `vectorize_samples=False` has [`pdeopt.training.PhysicsLoss`][] and
    [`pdeopt.training.predict`][] solve them one after another (the model still runs on the
    whole batch), so a sample that converges in a few steps does not wait for a slow one.
    On a device mesh (`fit(mesh=...)`, which traces the layer under `split_experts`) each
    device solves its K / (mesh's `experts` size) experts, by the same `vmap` or `lax.map`,
    and only the weights are gathered.

    **Interface rows** (beyond the paper): with `interface_sweeps > 0`, after the independent
    solves each expert re-solves, `interface_sweeps` times (`lax.scan`), with rows pulling its
    face value ½(b_j + b_{j+1})·ω_k and normal difference (b_{j+1} − b_j)·ω_k on every shared
    face towards the average of its and its neighbour's current values. Faces across the
    wrap-around of a periodic axis are faces like any other.

    **Training loss.** With `expert_loss=True` (default), every grid point's PDE residual is
    formed from the per-basis quantities with its owner's weights (no stencil sees a seam),
    every block row likewise, and with several experts a `seam` term (mean square of the
    value and normal-derivative jumps across faces, the latter scaled by the axis length)
    is added. With one expert this is exactly the residual of u. `expert_loss=False` (the
    paper's MoE) takes the grid residuals of the assembled piecewise u instead, whose
    stencils straddle the seams.

    **Arguments:**

    - `num_basis`: N, the number of basis fields (the model's out_channels).
    - `num_points`: collocation points per solve (per expert).
    - `parts`: experts per grid axis, time first (e.g. `(1, 4)`); `None` for one expert.
    - `row_weights`: per-block row weights of the solve, or `None` for 1 on every block.
    - `loss_weights`: per-term weights of the training loss, or `None` for 1 on every term.
    - `ridge`: Tikhonov weight on ω (paper: 1e-4).
    - `init_weight`: initial guess ω₀ = init_weight·1 (default 1/N).
    - `solver`: an `optx.AbstractLeastSquaresSolver` instance.
    - `adjoint`: the implicit adjoint (`optx.AbstractAdjoint`), or `None` (see above).
    - `max_steps`: iteration cap of each solve (paper: 50).
    - `throw`: raise on a failed solve or non-finite basis (True), or report it in the
        statistics and let the training loss skip the sample (False).
    - `global_boundary_rows`, `interface_sweeps`, `interface_weight`,
        `interface_derivative_weight`, `vectorize_experts`, `vectorize_samples`,
        `expert_loss`: see above.
    - `exact_rows`: `{block name: number of rows}` held exactly: that many evenly spaced rows
        of the named blocks become equality constraints, and each solve minimises ½‖r‖²
        subject to them with [`pdeopt.solvers.constrained_minimise`][] (warm-started from the
        least-squares weights; gradients through the KKT conditions). At most `num_basis`
        rows in all; with several experts, `global_boundary_rows` must be True.
    - `exact_solver`: the [`pdeopt.solvers.ExactAugmentedLagrangianNewton`][] of those solves.

    ??? cite "References"

        G. Négiar, M. W. Mahoney, A. Krishnapriyan, "Learning differentiable solvers for
        systems with hard constraints", ICLR 2023.

        N. Chalapathi, Y. Du, A. Krishnapriyan, "Scaling physics-informed hard constraints
        with mixture-of-experts", ICLR 2024.
    """

    num_basis: int = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    parts: tuple[int, ...] | None = eqx.field(static=True)
    row_weights: dict[str, float] | None = eqx.field(static=True)
    loss_weights: dict[str, float] | None = eqx.field(static=True)
    ridge: float = eqx.field(static=True)
    init_weight: float = eqx.field(static=True)
    solver: optx.AbstractLeastSquaresSolver
    adjoint: optx.AbstractAdjoint
    max_steps: int = eqx.field(static=True)
    throw: bool = eqx.field(static=True)
    global_boundary_rows: bool = eqx.field(static=True)
    interface_sweeps: int = eqx.field(static=True)
    interface_weight: float = eqx.field(static=True)
    interface_derivative_weight: float = eqx.field(static=True)
    vectorize_experts: bool = eqx.field(static=True)
    vectorize_samples: bool = eqx.field(static=True, default=True)  # overrides the property
    expert_loss: bool = eqx.field(static=True)
    exact_rows: dict[str, int] | None = eqx.field(static=True)
    exact_solver: ExactAugmentedLagrangianNewton

    def __init__(
        self,
        num_basis: int = 16,
        num_points: int = 1000,
        *,
        parts: Sequence[int] | None = None,
        row_weights: Mapping[str, float] | None = None,
        loss_weights: Mapping[str, float] | None = None,
        ridge: float = 1.0e-4,
        init_weight: float | None = None,
        solver: optx.AbstractLeastSquaresSolver = LevenbergMarquardt(rtol=1e-6, atol=1e-8),
        adjoint: optx.AbstractAdjoint | None = None,
        max_steps: int = 50,
        throw: bool = True,
        global_boundary_rows: bool = True,
        interface_sweeps: int = 0,
        interface_weight: float = 1.0,
        interface_derivative_weight: float = 0.1,
        vectorize_experts: bool = True,
        vectorize_samples: bool = True,
        expert_loss: bool = True,
        exact_rows: Mapping[str, int] | None = None,
        exact_solver: ExactAugmentedLagrangianNewton = ExactAugmentedLagrangianNewton(
            rtol=0.0, atol=1e-6, safeguards=PracticalSafeguards()
        ),
    ):
        for name, value, low in (
            ("num_basis", num_basis, 1),
            ("num_points", num_points, 1),
            ("max_steps", max_steps, 1),
            ("interface_sweeps", interface_sweeps, 0),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"constraint.{name} must be an integer >= {low}, got {value!r}.")
        if parts is not None:
            parts = tuple(parts)
            if not parts or any(not isinstance(p, int) or p < 1 for p in parts):
                raise ValueError(f"constraint.parts must be positive integers, got {parts!r}.")
        self.num_basis = num_basis
        self.num_points = num_points
        self.parts = parts
        self.row_weights = None if row_weights is None else dict(row_weights)
        self.loss_weights = None if loss_weights is None else dict(loss_weights)
        self.ridge = float(ridge)
        self.init_weight = 1.0 / num_basis if init_weight is None else float(init_weight)
        self.solver = solver
        self.adjoint = optx.ImplicitAdjoint(lx.SVD()) if adjoint is None else adjoint
        self.max_steps = max_steps
        self.throw = throw
        self.global_boundary_rows = global_boundary_rows
        self.interface_sweeps = interface_sweeps
        self.interface_weight = float(interface_weight)
        self.interface_derivative_weight = float(interface_derivative_weight)
        self.vectorize_experts = vectorize_experts
        self.vectorize_samples = vectorize_samples
        self.expert_loss = expert_loss
        if exact_rows is not None:
            exact_rows = dict(exact_rows)
            for name, count in exact_rows.items():
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    raise ValueError(
                        f"constraint.exact_rows[{name!r}] must be a positive number of rows, "
                        f"got {count!r}."
                    )
        self.exact_rows = exact_rows
        self.exact_solver = exact_solver

    def __check_init__(self):
        check_weights("constraint row", self.row_weights)
        check_weights("constraint loss", self.loss_weights)
        check_weights(
            "constraint",
            {
                "ridge": self.ridge,
                "interface_weight": self.interface_weight,
                "interface_derivative_weight": self.interface_derivative_weight,
            },
        )

    @property
    def num_outputs(self) -> int:
        return self.num_basis

    @property
    def skips_failures(self) -> bool:
        return not self.throw

    def partition(self, pde: AbstractPDE) -> Partition:
        """The partition of the PDE's grid into experts (one block when `parts` is None)."""
        grid = pde.grid
        parts = (1,) * grid.ndim if self.parts is None else self.parts
        try:
            return partition(grid.shape, parts, tuple(a.periodic for a in grid.axes))
        except ValueError as error:
            raise ValueError(f"constraint.parts={list(parts)}: {error}") from None

    def check(self, pde: AbstractPDE) -> None:
        """Raise now what a solve on `pde` would raise at trace time: `parts` that do not
        divide the grid, more `num_points` than an expert's block has, fewer residual rows
        per solve than `num_basis`, `row_weights` or `loss_weights` naming other blocks
        than the PDE's, and `exact_rows` that name other blocks, ask for more rows than a
        block has, or for more equality rows than basis weights."""
        self._exact_indices(pde)
        self._row_weights(pde)
        self.weights_for(pde)

    def term_names(self, pde: AbstractPDE) -> tuple[str, ...]:
        names = pde.block_names()
        seam = self.expert_loss and bool(self.partition(pde).faces)
        return (*names, "seam") if seam else names

    def _row_weights(self, pde: AbstractPDE) -> dict[str, float]:
        names = pde.block_names()
        if self.row_weights is None:
            return {name: 1.0 for name in names}
        return check_names("constraint.row_weights", self.row_weights, names)

    # ---- the per-sample solve -------------------------------------------------------------

    def _basis(self, pde, output, condition) -> tuple[BasisQuantities, PyTree[Array], Array]:
        if jnp.zeros((), jnp.float64).dtype != jnp.float64:
            raise RuntimeError(
                "Hard-constraint solves run in float64: call "
                'jax.config.update("jax_enable_x64", True) before building arrays.'
            )
        condition = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), condition)
        finite = all_finite((output, condition))
        if self.throw:
            output = eqx.error_if(
                output,
                ~finite,
                "The model emitted non-finite basis values (NaN/inf), or the condition is "
                "non-finite, before the hard constraint; check the data, the model and the "
                "learning rate, or set constraint.throw=false to skip and count such samples.",
            )
        else:
            # Masked before the solve and its implicit adjoint: a zero basis and condition pose a
            # well-conditioned (ridge) problem, whose weights are discarded (`finite` is False).
            output = jnp.where(finite, output, 0.0)
            condition = jax.tree.map(lambda a: jnp.where(finite, a, 0.0), condition)
        basis = pde.derivatives.basis(pde, output.astype(jnp.float64), condition)
        if basis.num_basis != self.num_basis:
            raise ValueError(
                f"The hard constraint expects {self.num_basis} basis fields; the model's output "
                f"{output.shape} gives {basis.num_basis}. Set the model's out_channels to "
                f"constraint.num_basis={self.num_basis}."
            )
        return basis, condition, finite

    def _masks(self, pde: AbstractPDE, part: Partition) -> list[np.ndarray]:
        """Per residual block, which of its rows each expert fits (leading expert axis),
        after checking that every expert's block holds `num_points` collocation points and
        every solve has at least `num_basis` rows."""
        block = math.prod(part.block_shape)
        if self.num_points > block:
            raise ValueError(
                f"constraint.num_points={self.num_points} exceeds the {block} grid points of each "
                f"expert's block {part.block_shape}; use at most {block}."
            )
        masks = []
        for b in pde.residual_blocks():
            owner = part.owner_of(b.locations(pde.grid))
            experts = np.arange(part.num_experts).reshape((-1,) + (1,) * owner.ndim)
            mask = experts == owner
            masks.append(np.ones_like(mask) if self.global_boundary_rows else mask)
        rows = self.num_points + sum(int(m.reshape(len(m), -1).sum(1).min()) for m in masks)
        if rows < self.num_basis:
            raise ValueError(
                f"Each constraint solve has only {rows} residual rows for {self.num_basis} basis "
                f"weights; raise constraint.num_points to at least {self.num_basis} or lower "
                "constraint.num_basis."
            )
        return masks

    def _problems(
        self, pde, part, basis, condition, key
    ) -> tuple[ExpertProblem, Int[Array, "experts points"]]:
        """Every expert's problem (leading expert axis) and its collocation indices."""
        masks = self._masks(pde, part)
        points = jnp.asarray(part.points)
        choose = lambda k: jr.choice(k, points.shape[1], (self.num_points,), replace=False)
        index = jnp.take_along_axis(points, jax.vmap(choose)(jr.split(key, part.num_experts)), 1)
        n1 = basis.fields.shape[-1]
        interior = {k: v.reshape(-1, n1)[index] for k, v in basis.interior.items()}
        coefficients = flat_coefficients(pde, condition, basis.fields.dtype)
        coefficients = {k: v[index] for k, v in coefficients.items()}
        problem = ExpertProblem(interior, coefficients, tuple(jnp.asarray(m) for m in masks))
        return problem, index

    def _exact_indices(self, pde: AbstractPDE) -> dict[str, np.ndarray]:
        """Per block name in `exact_rows`, the evenly spaced rows (of the name's blocks'
        rows, flattened in block order) that every solve enforces exactly."""
        part = self.partition(pde)
        masks = self._masks(pde, part)
        if self.exact_rows is None:
            return {}
        sizes = _rows_per_name(pde.residual_blocks(), [m.shape[1:] for m in masks])
        unknown = sorted(set(self.exact_rows) - set(sizes))
        if unknown:
            raise ValueError(
                f"constraint.exact_rows names {unknown}, which are not blocks of "
                f"{type(pde).__name__}; its blocks are {list(sizes)}."
            )
        total = sum(self.exact_rows.values())
        if total > self.num_basis:
            raise ValueError(
                f"constraint.exact_rows asks for {total} equality rows per solve, but there are "
                f"only num_basis={self.num_basis} weights: at most {self.num_basis} rows can "
                "hold exactly (fewer leave freedom for the least-squares fit)."
            )
        if not self.global_boundary_rows and part.num_experts > 1:
            raise ValueError(
                "constraint.exact_rows needs constraint.global_boundary_rows=true with several "
                "experts: every expert enforces the same rows."
            )
        indices = {}
        for name, count in self.exact_rows.items():
            if count > sizes[name]:
                raise ValueError(
                    f"constraint.exact_rows[{name!r}]={count} exceeds the {sizes[name]} rows of "
                    f"block {name!r}; use at most {sizes[name]}."
                )
            indices[name] = np.linspace(0, sizes[name], count, endpoint=False).astype(int)
        return indices

    def _exact(self, pde: AbstractPDE, indices, omega, args):
        """The unweighted residuals of the rows held exactly (the equality constraints)."""
        _, shared = args
        rows: dict[str, list] = {}
        for block, r in _block_rows(pde, augment(omega), shared):
            if block.name in indices:
                rows.setdefault(block.name, []).append(r.ravel())
        return jnp.concatenate([jnp.concatenate(rows[n])[i] for n, i in indices.items()])

    def _pde_rows(self, pde: AbstractPDE, weights: dict[str, float], problem, shared):
        """The weighted PDE rows as a function of the quantities at the collocation points."""

        def rows(q):
            interior = pde.interior_residual(
                merge_coefficients(q, problem.coefficients), shared.condition
            )
            if interior.shape != (self.num_points,):
                raise ValueError(
                    f"{type(pde).__name__}.interior_residual must return one value per "
                    f"collocation point, shape ({self.num_points},); got {interior.shape}."
                )
            return weights["pde"] / math.sqrt(self.num_points) * interior

        return rows

    def _other_rows(self, pde: AbstractPDE, weights: dict[str, float], omega, problem, shared):
        """The weighted block, interface and ridge rows of one expert."""
        w = augment(omega)
        rows = []
        sizes = _rows_per_name(pde.residual_blocks(), [t.shape[1:-1] for t in shared.traces])
        for (block, r), trace, mask in zip(
            _block_rows(pde, w, shared), shared.traces, problem.masks
        ):
            if r.shape != mask.shape:
                raise ValueError(
                    f"{type(pde).__name__}: block {block.name!r} returns rows of shape {r.shape}"
                    f" for traces of shape {trace.shape[1:-1]}; return one row per trace point."
                )
            scale = weights[block.name] / math.sqrt(sizes[block.name])
            rows.append(scale * jnp.where(mask, r, 0.0).ravel())
        for face in problem.interface:
            scale = face.exists[:, None] / math.sqrt(face.exists.size * face.value.shape[1])
            rows.append(
                (self.interface_weight * scale * (face.value @ w - face.value_target)).ravel()
            )
            rows.append(
                (
                    self.interface_derivative_weight
                    * scale
                    * (face.normal @ w - face.normal_target)
                ).ravel()
            )
        rows.append(self.ridge * omega)
        return jnp.concatenate(rows)

    def _residual(self, pde: AbstractPDE, weights: dict[str, float], omega, args):
        """The weighted residual rows of one expert: PDE, blocks, interface, ridge."""
        problem, shared = args
        w = augment(omega)
        q = {k: v @ w for k, v in problem.interior.items()}
        pde_rows = self._pde_rows(pde, weights, problem, shared)(q)
        return jnp.concatenate([pde_rows, self._other_rows(pde, weights, omega, problem, shared)])

    def _jacobian(self, pde: AbstractPDE, weights: dict[str, float], omega, args):
        """The residual and its Jacobian, the PDE rows from their pointwise structure: row i
        depends on ω only through the quantities q_k(x_i) = A_k[i]·ω, so its Jacobian is
        Σ_k (∂r_i/∂q_k) A_k[i], one linearisation of the residual per quantity instead of N
        forward-mode passes through the quantity products. The other rows (a few thousand)
        are differentiated by one linearisation and N tangents."""
        problem, shared = args
        w, n = augment(omega), omega.shape[-1]
        q = {k: v @ w for k, v in problem.interior.items()}
        pde_rows, linear = jax.linearize(self._pde_rows(pde, weights, problem, shared), q)
        zeros = {k: jnp.zeros_like(v) for k, v in q.items()}
        pde_jac = sum(
            linear(zeros | {k: jnp.ones_like(v)})[:, None] * problem.interior[k][:, :n]
            for k, v in q.items()
        )
        other = lambda omega: self._other_rows(pde, weights, omega, problem, shared)
        other_rows, other_linear = jax.linearize(other, omega)
        other_jac = jax.vmap(other_linear, out_axes=1)(jnp.eye(n, dtype=omega.dtype))
        return (
            jnp.concatenate([pde_rows, other_rows]),
            jnp.concatenate([pde_jac, other_jac]),
        )

    def _solve_experts(self, pde, problem, shared, omega0):
        weights = self._row_weights(pde)
        fn = lambda omega, args: self._residual(pde, weights, omega, args)
        jacobian = lambda omega, args: self._jacobian(pde, weights, omega, args)
        indices = self._exact_indices(pde)

        def exact(omega0, problem, shared):
            args = (problem, shared)
            constraint = lambda omega, args: self._exact(pde, indices, omega, args)
            objective = lambda omega, args: 0.5 * jnp.sum(fn(omega, args) ** 2)
            # The constrained solution does not depend on its starting point: no gradient
            # flows through the warm start.
            omega0, lambda0 = jax.lax.stop_gradient(
                _restricted_start(self, fn, jacobian, constraint, omega0, args)
            )
            sol = constrained_minimise(
                objective,
                constraint,
                self.exact_solver,
                omega0,
                args,
                lambda0=lambda0,
                max_steps=self.max_steps,
                throw=False,
            )
            residual = jnp.linalg.norm(fn(sol.value, args))
            return sol.value, (sol.result, sol.stats["num_steps"], residual)

        def one(omega0, problem, shared):
            args = (problem, shared)
            sol = optx.least_squares(
                fn,
                self.solver,
                omega0,
                args,
                options={"jacobian": jacobian},
                max_steps=self.max_steps,
                throw=False,
                adjoint=self.adjoint,
            )
            residual = jnp.linalg.norm(fn(sol.value, args))
            return sol.value, (RESULTS.promote(sol.result), sol.stats["num_steps"], residual)

        solve = exact if indices else one
        if self.vectorize_experts:
            run = jax.vmap(solve)
        else:
            run = lambda *args: jax.lax.map(lambda a: solve(*a), args)
        # Each expert differentiates its own copy of the shared quantities, and the copies'
        # cotangents are summed in expert order, however the experts are split over devices.
        args = (omega0, problem, repeat(shared, omega0.shape[0]))
        devices = expert_devices()
        return run(*args) if devices == 1 else _own_experts(run, devices)(*args)

    def solve(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*points channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ) -> tuple[BasisQuantities, Float[Array, "experts n_basis"], SolveStats]:
        """Solve every expert's weights for one sample.

        **Returns:** the per-basis quantities (float64, offset column last), the weights ω,
        shape `(K, N)`, and the statistics.
        """
        basis, condition, finite = self._basis(pde, output, condition)
        part = self.partition(pde)
        problem, index = self._problems(pde, part, basis, condition, key)
        shared = _Shared(basis.traces, condition)
        faces = _faces(part, basis.fields)
        omega0 = jnp.full((part.num_experts, self.num_basis), self.init_weight, jnp.float64)
        omega, info = self._solve_experts(pde, problem, shared, omega0)
        if self.interface_sweeps:

            def sweep(carry, _):
                omega, _ = carry
                interface = faces.interface(augment(omega))
                with_rows = ExpertProblem(
                    problem.interior, problem.coefficients, problem.masks, interface
                )
                return self._solve_experts(pde, with_rows, shared, omega), None

            (omega, info), _ = jax.lax.scan(sweep, (omega, info), None, self.interface_sweeps)
        result, num_steps, residual = info
        seam_rms, seam_max = faces.seam(augment(omega))
        stats = SolveStats(result, num_steps, residual, finite, index, seam_rms, seam_max)
        if self.throw:
            omega = eqx.error_if(
                omega,
                ~jnp.all(stats.converged),
                "A hard-constraint solve did not converge (see the solver's result). Raise "
                "constraint.max_steps, loosen the solver tolerances, or set "
                "constraint.throw=false to skip and count such samples instead.",
            )
        return basis, omega, stats

    def objective(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*points channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ):
        """The weighted residual rows of every expert as a function of the weights (without
        interface rows): `omega (K, N) -> rows (K, M)`, the function whose half squared norm
        each expert's solve minimises. For inspection and for testing other solvers."""
        basis, condition, _ = self._basis(pde, output, condition)
        problem, _ = self._problems(pde, self.partition(pde), basis, condition, key)
        shared, weights = _Shared(basis.traces, condition), self._row_weights(pde)
        one = lambda w, p: self._residual(pde, weights, w, (p, shared))
        return lambda omega: jax.vmap(one)(omega, problem)

    def assemble(
        self,
        pde: AbstractPDE,
        basis: BasisQuantities,
        omega: Float[Array, "experts n_basis"],
    ) -> Float[Array, "*grid"]:
        """The solution u = b·ω_k (plus the offset) on each expert k's block."""
        return assemble(basis, augment(omega), self.partition(pde))

    def terms(
        self,
        pde: AbstractPDE,
        basis: BasisQuantities,
        omega: Float[Array, "experts n_basis"],
        condition: PyTree[Array],
    ) -> dict[str, Float[Array, ""]]:
        """The unweighted training terms of the weights ω (see `expert_loss`)."""
        condition = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), condition)
        part, w = self.partition(pde), augment(omega)
        if not self.expert_loss:
            return self.mean_squares(pde, pde.residuals(assemble(basis, w, part), condition))
        interior, blocks = field_residuals(pde, basis, w, part, condition)
        terms = self.mean_squares(pde, {"pde": interior, **blocks})
        return terms | ({"seam": _seam_term(part, basis, w)} if part.faces else {})

    # ---- the constraint interface ---------------------------------------------------------

    def __call__(self, pde, output, condition, *, key):
        basis, omega, stats = self.solve(pde, output, condition, key=key)
        return self.assemble(pde, basis, omega), stats

    def loss_terms(self, pde, output, condition, *, key):
        basis, omega, stats = self.solve(pde, output, condition, key=key)
        ok = jnp.all(stats.converged)
        # A skipped sample's terms are those of a zero field: finite, and left out of the loss.
        zero = lambda a: jnp.where(ok, a, jax.lax.stop_gradient(jnp.zeros_like(a)))
        basis, omega = jax.tree.map(zero, (basis, omega))
        return self.terms(pde, basis, omega, condition), ok, stats

    def report(self, pde, output, condition, *, key):
        """Constraint satisfaction of the layer's output and of the raw network before it.

        Residuals are those of the field with every point's owner's weights: the PDE RMS at
        the collocation points and at the held-out points, each block's RMS; then the seam
        (`seam_rms`, `seam_max`), the converged fraction, and the same residuals of the raw
        network (weights `init_weight`), prefixed `raw_`.
        """
        basis, omega, stats = self.solve(pde, output, condition, key=key)
        condition = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), condition)
        part = self.partition(pde)

        def residual_rms(omega):
            interior, blocks = field_residuals(pde, basis, augment(omega), part, condition)
            at = jnp.zeros(interior.shape, bool).at[stats.collocation.ravel()].set(True)
            out = {"pde_rms_collocation": rms(interior, at), "pde_rms_heldout": rms(interior, ~at)}
            return out | {f"{name}_rms": rms(rows) for name, rows in blocks.items()}

        out = residual_rms(omega) | {"seam_rms": stats.seam_rms, "seam_max": stats.seam_max}
        raw = residual_rms(jnp.full_like(omega, self.init_weight))
        out.update({f"raw_{k}": v for k, v in raw.items()})
        out["converged_fraction"] = jnp.mean(stats.converged.astype(jnp.float64))
        return out


def _restricted_start(layer: HardConstraint, fn, jacobian, constraint, omega0, args):
    """A start for the equality-constrained solve from which it has little left to do: least
    squares (the layer's solver) on the affine set where the equality rows, linearised at ω₀,
    hold, ω = ω_p + Zθ with Z a basis of their null space (exact for rows linear in ω, as
    IC/BC, interface and integral rows are), and the least-squares multipliers λ = −R⁻¹Q₁ᵀ∇f
    of Cᵀλ = −∇f."""
    c0, linear = jax.linearize(lambda omega: constraint(omega, args), omega0)
    rows = jax.vmap(linear, out_axes=1)(jnp.eye(omega0.size, dtype=omega0.dtype))
    q, r = jnp.linalg.qr(rows.T, mode="complete")  # Cᵀ = Q R
    m = c0.size
    lower = jax.scipy.linalg.solve_triangular(r[:m].T, c0, lower=True)
    start, null = omega0 - q[:, :m] @ lower, q[:, m:]

    def restricted(theta, restricted_args):
        args, start, null = restricted_args
        return fn(start + null @ theta, args)

    def restricted_jacobian(theta, restricted_args):
        args, start, null = restricted_args
        f, jac = jacobian(start + null @ theta, args)
        return f, jac @ null

    sol = optx.least_squares(
        restricted,
        layer.solver,
        jnp.zeros(null.shape[1], omega0.dtype),
        (args, start, null),
        options={"jacobian": restricted_jacobian},
        max_steps=layer.max_steps,
        throw=False,
    )
    omega = start + null @ sol.value
    gradient = jax.grad(lambda omega: 0.5 * jnp.sum(fn(omega, args) ** 2))(omega)
    upper = jax.scipy.linalg.solve_triangular(r[:m], q[:, :m].T @ gradient, lower=False)
    return omega, -upper


EXPERT_AXIS = "experts"
"""The mesh axis over which `HardConstraint` splits its experts (see `split_experts`)."""

_EXPERT_DEVICES: contextvars.ContextVar[int] = contextvars.ContextVar("experts", default=1)


@contextlib.contextmanager
def split_experts(devices: int):
    """Within this context, `HardConstraint` solves traced under a named axis `EXPERT_AXIS`
    of size `devices` (a `jax.shard_map` over a mesh with that axis) split their experts
    over it: each device solves K / `devices` experts and the weights are gathered."""
    token = _EXPERT_DEVICES.set(devices)
    try:
        yield
    finally:
        _EXPERT_DEVICES.reset(token)


def expert_devices() -> int:
    """The number of devices the experts are split over (`split_experts`; 1 outside)."""
    return _EXPERT_DEVICES.get()


def _own_experts(run, devices: int):
    """`run` (over a leading expert axis) under the named mesh axis `EXPERT_AXIS`: this device
    runs its own contiguous slice of the experts (their Jacobians never leave it) and
    the outputs are gathered. In the vector–Jacobian product the cotangent, the same on
    every device, is sliced to this device's experts, and their input cotangents are
    gathered: every device gets the whole, exactly as one device computes it, rather than
    partial cotangents summed in an order that depends on the mesh."""

    def take(tree):
        local = _local_experts(jax.tree.leaves(tree)[0].shape[0], devices)
        start = jax.lax.axis_index(EXPERT_AXIS) * local

        def one(a):
            if a.dtype == jax.dtypes.float0:  # the cotangent of an integer output
                return np.zeros((local, *a.shape[1:]), a.dtype)
            return jax.lax.dynamic_slice_in_dim(a, start, local)

        return jax.tree.map(one, tree)

    def gather(tree):
        def one(a):
            if a.dtype == jax.dtypes.float0:
                return np.zeros((a.shape[0] * devices, *a.shape[1:]), a.dtype)
            return jax.lax.all_gather(a, EXPERT_AXIS, tiled=True)

        return jax.tree.map(one, tree)

    local = at_least_two(run)  # one expert per device: bitwise as beside others

    @jax.custom_vjp
    def own(*args):
        return gather(local(*take(args)))

    def forward(*args):
        out, pullback = jax.vjp(local, *take(args))
        return gather(out), pullback

    def backward(pullback, cotangent):
        return gather(pullback(take(cotangent)))

    own.defvjp(forward, backward)
    return own


def _local_experts(num_experts: int, devices: int) -> int:
    if num_experts % devices:
        raise ValueError(
            f"{num_experts} experts cannot be split evenly over the {devices} devices of the "
            f"mesh axis {EXPERT_AXIS!r}; use a mesh whose {EXPERT_AXIS!r} size divides "
            f"{num_experts} (train.mesh.experts), or change constraint.parts."
        )
    return num_experts // devices


def _rows_per_name(blocks, shapes) -> dict[str, int]:
    """Rows per block name (blocks may share a name), from each block's row shape."""
    sizes: dict[str, int] = {}
    for block, shape in zip(blocks, shapes):
        sizes[block.name] = sizes.get(block.name, 0) + math.prod(shape)
    return sizes


def _block_rows(pde: AbstractPDE, w, shared: _Shared):
    """Each initial/boundary block with its unweighted residual rows at the weights w."""
    for block, trace in zip(pde.residual_blocks(), shared.traces):
        x = jnp.asarray(block.coordinates(pde.grid))
        yield block, block.residual(trace @ w, shared.condition, x)


def _seam_term(part: Partition, basis: BasisQuantities, w) -> Float[Array, ""]:
    """Mean square of the value and normal-derivative jumps across expert faces; the normal
    difference is scaled by the axis length (a derivative on the unit interval)."""
    faces = _faces(part, basis.fields)
    squares, count = 0.0, 0.0
    for ops, scale in ((faces.value, None), (faces.normal, True)):
        own, other = faces.both_sides(ops, w)
        for f, a, b, e, op in zip(part.faces, own, other, faces.exists, ops):
            jump = (part.grid_shape[f.axis] if scale else 1.0) * (a - b) * e[..., None]
            squares = squares + jnp.sum(jnp.square(jump))
            count = count + jnp.sum(e) * op.shape[2]
    return squares / count


def MoEHardConstraint(parts: Sequence[int] = (1, 4), **kwargs) -> HardConstraint:
    """PI-HC-MoE: [`pdeopt.constraints.HardConstraint`][] on K = ∏ `parts` experts.

    The same layer with a partition, `(1, 4)` by default: four spatial experts on a `(t, x)`
    grid; `(1, 2, 2)` four on `(t, x, y)`. Every other argument is `HardConstraint`'s.
    """
    return HardConstraint(parts=parts, **kwargs)
