"""Training on a device mesh: the batch over `data`, hard-constraint experts over `experts`."""

import math
from collections.abc import Callable, Sequence
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P
from jaxtyping import Array, Key, PRNGKeyArray, PyTree

from .._ordered import at_least_two, repeat, sum_in_order
from ..constraints import EXPERT_AXIS, HardConstraint, split_experts
from ._loss import PhysicsLoss

DATA_AXIS = "data"
"""The mesh axis over which the batch is split."""


def make_mesh(data: int = -1, experts: int = 1, *, devices: Sequence | None = None) -> Mesh:
    """A mesh with axes `("data", "experts")` over `devices` (default: every device of every
    process, `jax.devices()`).

    **Arguments:**

    - `data`: devices along the batch axis; -1 for all the devices that `experts` leaves.
    - `experts`: devices along the hard constraint's expert axis; -1 likewise.
    - `devices`: the devices to use.

    **Returns:** a `jax.sharding.Mesh` (axis types `Auto`); raises `ValueError` when
    `data · experts` is not the number of devices.
    """
    devices = jax.devices() if devices is None else list(devices)
    count = len(devices)
    sizes = {"data": data, "experts": experts}
    for name, size in sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or (size < 1 and size != -1):
            raise ValueError(f"train.mesh.{name} must be a positive integer or -1, got {size!r}.")
    if data == -1 and experts == -1:
        raise ValueError("train.mesh.data and train.mesh.experts cannot both be -1; fix one.")
    if -1 in (data, experts):
        known = experts if data == -1 else data
        if count % known:
            other = "data" if data == -1 else "experts"
            raise ValueError(
                f"train.mesh: {count} devices cannot be split into "
                f"{'experts' if other == 'data' else 'data'}={known} times a whole number of "
                f"{other} devices; use a divisor of {count}."
            )
        data, experts = (count // known, known) if data == -1 else (known, count // known)
    if data * experts != count:
        raise ValueError(
            f"train.mesh.data={data} times train.mesh.experts={experts} is {data * experts}, "
            f"but there are {count} devices; make the product {count} (or set one of them to "
            "-1, all the devices the other leaves)."
        )
    return jax.make_mesh(
        (data, experts),
        (DATA_AXIS, EXPERT_AXIS),
        axis_types=(AxisType.Auto, AxisType.Auto),
        devices=devices,
    )


def check_mesh(mesh: Mesh, batch_size: int, loss_fn: Callable | None = None) -> None:
    """Raise `ValueError` now for a mesh that training on it would reject: missing axes,
    a `data` axis that does not divide `batch_size`, or (for a `PhysicsLoss` with a
    `HardConstraint`) an `experts` axis that does not divide the number of experts."""
    if set(mesh.axis_names) != {DATA_AXIS, EXPERT_AXIS}:
        raise ValueError(
            f"The mesh has axes {mesh.axis_names}; training needs exactly "
            f"({DATA_AXIS!r}, {EXPERT_AXIS!r}) (pdeopt.training.make_mesh)."
        )
    data, experts = mesh.shape[DATA_AXIS], mesh.shape[EXPERT_AXIS]
    if batch_size % data:
        raise ValueError(
            f"train.batch_size={batch_size} is not divisible by the mesh's data axis "
            f"(train.mesh.data={data}); use a batch size that is a multiple of {data}."
        )
    if isinstance(loss_fn, PhysicsLoss) and isinstance(loss_fn.constraint, HardConstraint):
        num = loss_fn.constraint.partition(loss_fn.pde).num_experts
        if num % experts:
            raise ValueError(
                f"The hard constraint has {num} experts, not divisible by the mesh's experts "
                f"axis (train.mesh.experts={experts}); use a train.mesh.experts that divides "
                f"{num}, or change constraint.parts."
            )
    elif experts > 1:
        raise ValueError(
            f"train.mesh.experts={experts}, but the loss has no hard-constraint experts to "
            "split; set train.mesh.experts=1 (and train.mesh.data to the device count)."
        )


def _global(x, sharding: NamedSharding):
    """A global array of `sharding` from the host value `x`, which every process holds in
    full: each process places the shards of its own devices."""
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_batch(batch: PyTree[Array], mesh: Mesh) -> PyTree[Array]:
    """Every leaf split along its leading (sample) axis over the mesh's `data` axis."""
    sharding = NamedSharding(mesh, P(DATA_AXIS))
    return jax.tree.map(lambda a: _global(a, sharding), batch)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Every array leaf of `tree` (a model, an optimiser state) replicated on every device
    of the mesh; other leaves unchanged."""
    sharding = NamedSharding(mesh, P())

    def put(a):
        if not eqx.is_array(a):
            return a
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(_global(jr.key_data(a), sharding), impl=jr.key_impl(a))
        return _global(a, sharding)

    return jax.tree.map(put, tree)


def on_each_device(fn: Callable, mesh: Mesh, *args) -> PyTree:
    """`fn(*args)` (a jitted one-device function) on each of this process's devices of
    `mesh`, with that device's copy of every replicated array in `args`; the outputs are
    reassembled as arrays replicated on the mesh.

    Unlike the same function jitted for the mesh, whose multi-device compilation may round
    differently (it does for optax's Adam on CPU), this runs the one-device program: a
    replicated update on a mesh is bitwise the update of a one-device run."""
    arrays, static = eqx.partition(args, eqx.is_array)
    devices = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]

    def on(device):
        local = jax.tree.map(
            lambda a: next(s.data for s in a.addressable_shards if s.device == device), arrays
        )
        return fn(*eqx.combine(local, static))

    outputs = [eqx.partition(on(device), eqx.is_array) for device in devices]
    sharding = NamedSharding(mesh, P())
    out = jax.tree.map(
        lambda *copies: jax.make_array_from_single_device_arrays(
            copies[0].shape, sharding, list(copies)
        ),
        *(arrays for arrays, _ in outputs),
    )
    return eqx.combine(out, outputs[0][1])


def _gather(tree):
    """The per-sample values of every device along `data`, the same on every device."""
    return jax.tree.map(lambda a: jax.lax.all_gather(a, DATA_AXIS, tiled=True), tree)


class ShardedLoss(eqx.Module):
    """A [`pdeopt.training.PhysicsLoss`][] evaluated on a mesh with `jax.shard_map`, with the
    same loss and, bitwise, the same gradient as on one device.

    Each device computes the per-sample terms of its slice of the batch (the model, the
    PDE's FFTs and stencils, the constraint's solves, all on local data); inside, a
    `HardConstraint` splits its experts over the `experts` axis. The per-sample terms are
    gathered and reduced exactly as `PhysicsLoss` reduces them on one device. The gradient
    is computed per sample, gathered over `data` and summed in sample order
    (`pdeopt.training.sum_in_order`), as `PhysicsLoss` sums it on one device; the expert
    split gathers the per-expert cotangents instead of summing partial ones. So no sum
    depends on the layout, and training on a mesh follows the one-device run step for step.
    Sample i gets the key `split(key, batch)[i]`, as on one device.

    The forward pass and the gradient are two `shard_map`s joined by a `jax.custom_vjp`,
    so nothing is differentiated through a `shard_map`. They run with `check_vma=False`
    (the least-squares solvers' loops mix replicated and per-device values, which the
    varying-axes check refuses). Both per-device functions are traced outside the map, from
    shapes, and evaluated inside it: the hard constraint's implicit adjoint does not trace
    inside a `shard_map` (see `docs/scaling.md`).

    **Arguments:**

    - `loss`: the `PhysicsLoss`.
    - `mesh`: a mesh with axes `data` and `experts` (`make_mesh`).
    """

    loss: PhysicsLoss
    mesh: Mesh = eqx.field(static=True)

    def __call__(self, model, conditions: PyTree[Array], key: PRNGKeyArray):
        num = jax.tree.leaves(conditions)[0].shape[0]
        params, static = eqx.partition(model, eqx.is_inexact_array)
        experts = self.mesh.shape[EXPERT_AXIS]

        # A device's samples, never just one (`at_least_two`: bitwise as on one device).
        def local_terms(params, conditions, keys):
            model = eqx.combine(params, static)
            return at_least_two(partial(self.loss.sample_terms, model))(conditions, keys)

        def local_grads(params, conditions, keys, cotangent):
            """The per-sample gradients of this device's samples."""

            def grads(conditions, keys, cotangent):
                stacked = repeat(params, jax.tree.leaves(conditions)[0].shape[0])
                terms = lambda s: _inexact(self.loss.stacked_terms(s, static, conditions, keys))
                return jax.vjp(terms, stacked)[1](cotangent)[0]

            return at_least_two(grads)(conditions, keys, cotangent)

        def mapped(fn, in_specs, finish):
            def body(*args):
                closed, shape = _trace(fn, args, experts)
                out = jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *jax.tree.leaves(args))
                return finish(_gather(jax.tree.unflatten(jax.tree.structure(shape), out)))

            return jax.shard_map(
                body, mesh=self.mesh, in_specs=in_specs, out_specs=P(), check_vma=False
            )

        batch = (P(), P(DATA_AXIS), P(DATA_AXIS))

        @jax.custom_vjp
        def terms(params, conditions, keys):
            return mapped(local_terms, batch, lambda out: out)(params, conditions, keys)

        def forward(params, conditions, keys):
            return terms(params, conditions, keys), (params, conditions, keys)

        def backward(residuals, cotangent):
            grads = mapped(local_grads, (*batch, P(DATA_AXIS)), sum_in_order)(
                *residuals, _inexact(cotangent)
            )
            return grads, None, None

        terms.defvjp(forward, backward)
        return self.loss.reduce(*terms(params, conditions, jr.split(key, num)))


def _inexact(tree) -> list[Array]:
    """The floating-point leaves of `tree`: the differentiable outputs."""
    return [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)]


def _trace(fn, args, experts: int):
    """The closed jaxpr of `fn(*args)` and its output tree, traced from shapes alone, outside
    the `shard_map`'s manual mesh context: inside it every array type carries the manual
    mesh, and equinox's closure conversion and lineax's structure checks, which compare
    shapes with shardings, refuse the mix of those types with the mesh-free ones they build
    (the implicit adjoints of the hard constraint fail to trace)."""
    leaves, tree = jax.tree.flatten(args)
    structs = [jax.ShapeDtypeStruct(np.shape(x), x.dtype) for x in leaves]
    flat = lambda *leaves: fn(*jax.tree.unflatten(tree, leaves))
    with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((), ())), split_experts(experts):
        return jax.make_jaxpr(flat, return_shape=True)(*structs)


def shard_loss(loss_fn: Callable, mesh: Mesh) -> ShardedLoss:
    """`loss_fn` on `mesh`: a `ShardedLoss` for a `PhysicsLoss`; other losses raise
    `TypeError` (their reduction over the batch is unknown, so they cannot be split)."""
    if not isinstance(loss_fn, PhysicsLoss):
        raise TypeError(
            f"Training on a mesh needs a pdeopt.training.PhysicsLoss, got "
            f"{type(loss_fn).__name__}; train without a mesh (mesh=None) instead."
        )
    return ShardedLoss(loss_fn, mesh)


@eqx.filter_jit
def _apply_sharded(fn, mesh, model, conditions, keys):
    params, static = eqx.partition(model, eqx.is_array)

    def local(params, conditions, keys):
        model = eqx.combine(params, static)
        with split_experts(mesh.shape[EXPERT_AXIS]):  # forward only: no adjoint to stage
            out = jax.vmap(fn, in_axes=(None, 0, 0))(model, conditions, keys)
        return _gather(out)

    spec = P(DATA_AXIS)
    mapped = jax.shard_map(
        local, mesh=mesh, in_specs=(P(), spec, spec), out_specs=P(), check_vma=False
    )
    return mapped(params, conditions, keys)


def predict_sharded(
    fn: Callable, model, conditions: PyTree[Array], keys: Key[Array, " batch"], mesh: Mesh
) -> PyTree[Array]:
    """`vmap(fn)` over the samples split along the mesh's `data` axis, padded to a multiple
    of it (the padding's outputs are dropped); the outputs are replicated on every device,
    so every process can read them."""
    num = jax.tree.leaves(conditions)[0].shape[0]
    size = math.ceil(num / mesh.shape[DATA_AXIS]) * mesh.shape[DATA_AXIS]
    pad = lambda a: np.concatenate([a, np.repeat(a[-1:], size - num, axis=0)])
    conditions = jax.tree.map(lambda a: pad(np.asarray(a)), conditions)
    key_data = pad(np.asarray(jr.key_data(keys)))
    sharding = NamedSharding(mesh, P(DATA_AXIS))
    keys = jr.wrap_key_data(_global(key_data, sharding), impl=jr.key_impl(keys))
    out = _apply_sharded(fn, mesh, replicate(model, mesh), shard_batch(conditions, mesh), keys)
    return jax.tree.map(lambda a: a[:num], out)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join the processes of a multi-host run (`jax.distributed.initialize`); call it
    before any other JAX call. With no arguments JAX detects the cluster (SLURM, Open MPI,
    ...); otherwise pass all three. CPU processes exchange data with gloo, JAX's default
    CPU collectives."""
    given = [a is not None for a in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError(
            "train.distributed: set coordinator_address, num_processes and process_id "
            f"together, or none of them (auto-detection); got coordinator_address="
            f"{coordinator_address!r}, num_processes={num_processes!r}, "
            f"process_id={process_id!r}."
        )
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def is_main_process() -> bool:
    """Whether this is process 0, the one that writes logs, metrics and the model."""
    return jax.process_index() == 0
