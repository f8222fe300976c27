"""The jitted train step and the training loop."""

import math
import time
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
from jax.sharding import Mesh
from jaxtyping import Array, Float, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

from ..constraints import LearningRateAnnealing, SoftConstraint
from ._checkpoint import Checkpointer, TrainState
from ._loss import PhysicsLoss
from ._mesh import (
    check_mesh,
    on_each_device,
    predict_sharded,
    replicate,
    shard_batch,
    shard_loss,
)


@eqx.filter_jit
def train_step(model, opt_state, loss_fn, optimizer, batch, key):
    """One optimisation step: value and gradient of `loss_fn`, then an optax update.

    **Arguments:**

    - `model`: the Equinox model (its inexact arrays are trained).
    - `opt_state`: the optimiser state for `eqx.filter(model, eqx.is_inexact_array)`.
    - `loss_fn`: `loss_fn(model, batch, key) -> (loss, aux)`.
    - `optimizer`: an `optax.GradientTransformation`.
    - `batch`, `key`: the batch and a PRNG key for the loss.

    **Returns:** `(model, opt_state, loss, aux)`, with `aux` extended by the gradient's global
    norm `grad_norm`.
    """
    loss, aux, grads = _gradient(model, loss_fn, batch, key)
    model, opt_state, norm = _update(model, opt_state, grads, optimizer)
    return model, opt_state, loss, dict(aux) | {"grad_norm": norm}


@eqx.filter_jit
def balanced_train_step(
    model,
    opt_state,
    weights: dict[str, Float[Array, ""]],
    loss_fn,
    optimizer,
    batch,
    key,
    balancing: LearningRateAnnealing,
    update: bool,
):
    """One optimisation step of the loss `Σ_i weights[i] · aux[i]` with adaptive weights.

    `loss_fn(model, batch, key) -> (loss, aux)` must return every unweighted loss term in
    `aux` under the names of `weights` (as [`pdeopt.training.PhysicsLoss`][] does); its
    `loss` output is not used. With `update=False` this costs one value-and-gradient, like
    `train_step`. With `update=True` it takes the gradient of each term separately (one
    reverse pass per term), updates the weights by `balancing.update` and steps with the
    new weights.

    **Arguments:**

    - `model`, `opt_state`, `loss_fn`, `optimizer`, `batch`, `key`: as for `train_step`.
    - `weights`: the current loss weights (state; from `balancing.init`).
    - `balancing`: the [`pdeopt.constraints.LearningRateAnnealing`][] rule.
    - `update`: whether to update the weights at this step (a Python bool).

    **Returns:** `(model, opt_state, weights, loss, aux)`, with `aux` extended by the weights
    used for the step as `weight_<name>` and the gradient's global norm `grad_norm`.
    """
    weights, loss, aux, grads = _balanced_gradient(
        model, weights, loss_fn, batch, key, balancing, update
    )
    model, opt_state, norm = _update(model, opt_state, grads, optimizer)
    return model, opt_state, weights, loss, dict(aux) | {"grad_norm": norm}


def _gradient(model, loss_fn, batch, key):
    """`(loss, aux, grads)` of `loss_fn` (the first half of `train_step`)."""
    (loss, aux), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, batch, key)
    return loss, aux, grads


def _balanced_gradient(model, weights, loss_fn, batch, key, balancing, update: bool):
    """`(weights, loss, aux, grads)`: the first half of `balanced_train_step`."""
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def terms_fn(params):
        _, aux = loss_fn(eqx.combine(params, static), batch, key)
        return {name: aux[name] for name in weights}, aux

    if update:
        per_term, aux = jax.jacrev(terms_fn, has_aux=True)(params)
        weights = balancing.update(weights, per_term)
        names = list(weights)

        def combine(*g):
            total = sum(weights[name] * gi for name, gi in zip(names, g, strict=True))
            return total.astype(g[0].dtype)  # float64 weights must not promote the gradient

        grads = jax.tree.map(combine, *(per_term[name] for name in names))
    else:

        def weighted(params):
            terms, aux = terms_fn(params)
            return sum(weights[name] * terms[name] for name in weights), aux

        grads, aux = jax.grad(weighted, has_aux=True)(params)
    loss = sum(weights[name] * aux[name] for name in weights)
    aux = dict(aux) | {f"weight_{name}": w for name, w in weights.items()}
    return weights, loss, aux, grads


def _update(model, opt_state, grads, optimizer):
    """The optax update (the second half of `train_step`): `(model, opt_state, grad_norm)`."""
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, optax.tree.norm(grads)


_jit_gradient = eqx.filter_jit(_gradient)
_jit_balanced_gradient = eqx.filter_jit(_balanced_gradient)
_jit_update = eqx.filter_jit(_update)


class TrainingError(RuntimeError):
    """Training stopped because it cannot go on usefully (non-finite loss or gradient, or too
    many failed constraint solves). `step` is the step it stopped at, `history` the records
    logged until then (what `fit` would have returned)."""

    def __init__(self, message: str, step: int, history: list[dict[str, float]]):
        super().__init__(message)
        self.step = step
        self.history = history


class NonFiniteError(TrainingError, FloatingPointError):
    """The training loss or its gradient became NaN or infinite."""


def fit(
    model: eqx.Module,
    loss_fn: Callable,
    optimizer: optax.GradientTransformation,
    data: PyTree[Array],
    *,
    steps: int,
    batch_size: int,
    key: PRNGKeyArray,
    evaluate: Callable[[eqx.Module], Mapping[str, float]] | None = None,
    eval_every: int = 0,
    log_every: int = 10,
    max_failure_rate: float = 0.5,
    failure_patience: int = 10,
    progress: bool = True,
    checkpoints: Checkpointer | None = None,
    mesh: Mesh | None = None,
) -> tuple[eqx.Module, list[dict[str, float]]]:
    """Train `model` on minibatches of `data` and evaluate periodically.

    Each step draws `batch_size` distinct samples (`batch_size` must not exceed the number of
    samples); the samples of step `s` and the loss's key of step `s` are functions of `key` and
    `s` alone. When `loss_fn` is a `PhysicsLoss` with a `SoftConstraint` whose `balancing` is
    set, the loss weights are adapted during training (`balanced_train_step`, starting from
    the constraint's `loss_weights`) and recorded in the history as `weight_<name>`;
    otherwise every step is `train_step`. Each step runs as two jitted programs, the gradient
    and the optimiser update; on a mesh the update is the one-device program run on each
    device's copy of the state, so that it rounds as on one device.

    Nothing fails silently:

    - a non-finite loss or gradient raises `NonFiniteError` naming the step;
    - samples the loss leaves out (the `failed_fraction` term of `PhysicsLoss`: failed or
        non-finite constraint solves) are recorded in the history; when more than
        `max_failure_rate` of a step's samples fail for `failure_patience` consecutive steps,
        `TrainingError` stops the run (a model trained on the few samples that converge, or
        on none, is not a result).

    Both errors carry the history logged so far.

    With `checkpoints`, the run continues from the newest valid checkpoint in its folder (as
    its `resume` setting allows) and saves a [`pdeopt.training.TrainState`][] every
    `checkpoints.every` steps and after the last one. A continued run's model, optimiser
    state, loss weights and history are bitwise those of an uninterrupted run on the same
    devices. In a multi-process run every process passes its `Checkpointer` (on one shared
    folder): they save and restore together.

    **Arguments:**

    - `model`, `loss_fn`, `optimizer`: as for `train_step`.
    - `data`: a pytree of arrays with a leading sample axis.
    - `steps`, `batch_size`: number of steps and samples per step.
    - `key`: PRNG key for batches and for the loss.
    - `evaluate`: called with the model every `eval_every` steps and after the last step;
        returns metrics to record.
    - `eval_every`: evaluation period in steps (0: only at the end).
    - `log_every`: period in steps of the history's records of the loss, its terms and the
        failure statistics (0: only at evaluations and at the end).
    - `max_failure_rate`, `failure_patience`: the stopping rule above (`max_failure_rate=1`
        never stops).
    - `progress`: show a progress bar with the loss and steps/s.
    - `checkpoints`: a [`pdeopt.training.Checkpointer`][], or `None` (no checkpoints).
    - `mesh`: train on a device mesh with axes `data` and `experts`
        ([`pdeopt.training.make_mesh`][]): each batch is split over `data` (`batch_size`
        must be a multiple of its size), a hard constraint's experts over `experts`, the
        model and optimiser state are replicated; `loss_fn` must be a `PhysicsLoss` (see
        [`pdeopt.training.ShardedLoss`][]). `None`: one device.

    **Returns:** the trained model and the history (one dict per logged step, with `step`,
    `loss`, the loss terms, `grad_norm` and, at evaluations, the evaluation metrics).
    """
    for name, value, low in (
        ("steps", steps, 1),
        ("batch_size", batch_size, 1),
        ("eval_every", eval_every, 0),
        ("log_every", log_every, 0),
        ("failure_patience", failure_patience, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"train.{name} must be an integer >= {low}, got {value!r}.")
    if not (isinstance(max_failure_rate, int | float) and 0 <= max_failure_rate <= 1):
        raise ValueError(f"train.max_failure_rate must lie in [0, 1], got {max_failure_rate!r}.")
    num = jax.tree.leaves(data)[0].shape[0]
    if batch_size > num:
        raise ValueError(
            f"train.batch_size={batch_size} exceeds the {num} training samples; lower "
            "train.batch_size or raise problem.n_train."
        )
    if mesh is not None:
        check_mesh(mesh, batch_size, loss_fn)
    balancing = None
    if isinstance(loss_fn, PhysicsLoss) and isinstance(loss_fn.constraint, SoftConstraint):
        balancing = loss_fn.constraint.balancing
    state = TrainState(
        model=model,
        opt_state=optimizer.init(eqx.filter(model, eqx.is_inexact_array)),
        weights=None
        if balancing is None
        else balancing.init(loss_fn.constraint.weights_for(loss_fn.pde)),
        key=key,
    )
    if mesh is not None:
        # The state replicated on the mesh, the key too: what a checkpoint saves (every
        # process its share) and where it restores to.
        state = replicate(state, mesh)
    history: list[dict[str, float]] = []
    if checkpoints is not None:
        restored = checkpoints.restore(state)
        if restored is not None:
            state, history = restored
            if state.step > steps:
                raise ValueError(
                    f"The checkpoint to resume is of step {state.step}, beyond train.steps="
                    f"{steps}; raise train.steps to at least {state.step}."
                )
    model, opt_state, weights, failing = state.model, state.opt_state, state.weights, state.failing
    if mesh is not None:
        loss_fn = shard_loss(loss_fn, mesh)
    batch_key, loss_key = jr.split(key)
    bar = tqdm(
        range(state.step + 1, steps + 1),
        initial=state.step,
        total=steps,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
    )
    first = state.step + 1
    start = time.perf_counter()
    for step in bar:
        batch = _batch(data, jr.fold_in(batch_key, step), num, batch_size)
        if mesh is not None:
            batch = shard_batch(batch, mesh)
        step_key = jr.fold_in(loss_key, step)
        # The gradient and the update are two programs, the update compiled for one device
        # (on a mesh: run on each device's copy), so a mesh run rounds as a one-device run.
        if balancing is None:
            loss, aux, grads = _jit_gradient(model, loss_fn, batch, step_key)
        else:
            update = (step - 1) % balancing.every == 0
            weights, loss, aux, grads = _jit_balanced_gradient(
                model, weights, loss_fn, batch, step_key, balancing, update
            )
        if mesh is None:
            model, opt_state, norm = _jit_update(model, opt_state, grads, optimizer)
        else:
            model, opt_state, norm = on_each_device(
                _jit_update, mesh, model, opt_state, grads, optimizer
            )
        aux = dict(aux) | {"grad_norm": norm}
        loss, aux = jax.device_get((loss, aux))  # one transfer for the loss and every term
        loss, aux = float(loss), {k: float(v) for k, v in aux.items()}
        if not (math.isfinite(loss) and math.isfinite(aux["grad_norm"])):
            what = "loss" if not math.isfinite(loss) else "gradient"
            raise NonFiniteError(
                f"The training {what} became non-finite at step {step} (loss {loss}, terms: "
                f"{aux}). Lower optimizer.learning_rate, check the data for NaNs, or use "
                "float64 (model.dtype=float64).",
                step,
                history,
            )
        failed = aux.get("failed_fraction", 0.0)
        failing = failing + 1 if failed > max_failure_rate else 0
        if step == first:
            start = time.perf_counter()  # Exclude compilation from the throughput.
        rate = (step - first) / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(
            loss=f"{loss:.3e}", failed=f"{failed:.0%}", steps_per_s=f"{rate:.1f}", refresh=False
        )
        evaluating = step == steps or (eval_every and step % eval_every == 0)
        if evaluating or (log_every and step % log_every == 0) or failing >= failure_patience:
            record = {"step": step, "loss": loss, "steps_per_s": rate} | aux
            if evaluating and evaluate is not None:
                record.update(evaluate(model))
            history.append(record)
            if jax.process_index() == 0:  # one log for all processes
                bar.write(" ".join(f"{k}={_fmt(v)}" for k, v in record.items()))
        if failing >= failure_patience:
            bar.close()
            solves = {k: v for k, v in aux.items() if k.startswith("solve_")}
            raise TrainingError(
                f"{failed:.0%} of the samples of step {step} were left out of the loss (failed "
                f"or non-finite constraint solves), above train.max_failure_rate="
                f"{max_failure_rate} for {failing} consecutive steps (train.failure_patience). "
                f"Solver statistics of the step: {solves}. "
                "Raise constraint.max_steps or loosen the constraint solver's tolerances, lower "
                "optimizer.learning_rate, or (knowingly) raise train.max_failure_rate.",
                step,
                history,
            )
        if checkpoints is not None and checkpoints.due(step, steps):
            state = TrainState(model, opt_state, weights, state.key, step, failing)
            checkpoints.save(state, history)
    bar.close()
    return model, history


def _batch(data: PyTree[Array], key: PRNGKeyArray, num: int, batch_size: int) -> PyTree[Array]:
    """`batch_size` distinct samples of `data`, drawn with `key`."""
    index = jr.choice(key, num, (batch_size,), replace=False)
    return jax.tree.map(lambda a: a[index], data)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@eqx.filter_jit
def _apply_batched(fn, model, conditions, keys, vectorize):
    if vectorize:
        return jax.vmap(fn, in_axes=(None, 0, 0))(model, conditions, keys)
    return jax.lax.map(lambda a: fn(model, *a), (conditions, keys))


def predict(
    fn: Callable,
    model,
    conditions: PyTree[Array],
    key: PRNGKeyArray,
    batch_size: int = 16,
    vectorize: bool = True,
    *,
    mesh: Mesh | None = None,
) -> PyTree[Array]:
    """Apply `fn(model, condition, key)` to every sample, in jitted batches.

    Sample i gets the key `fold_in(key, i)`, so results do not depend on `batch_size`. A batch's
    samples are `vmap`ped, or with `vectorize=False` mapped one after another (`lax.map`; for a
    constraint whose `vectorize_samples` is False). Returns the outputs stacked along a leading
    sample axis (any pytree). With a `mesh` (axes `data`, `experts`) each batch, rounded up to
    a multiple of the `data` axis, is split over it with `jax.shard_map` (a hard constraint
    splits its experts over `experts`), and the outputs are replicated, readable by every
    process.
    """
    num = jax.tree.leaves(conditions)[0].shape[0]
    keys = jax.vmap(lambda i: jr.fold_in(key, i))(jnp.arange(num))
    if mesh is not None:
        data = mesh.shape["data"]
        batch_size = -(-batch_size // data) * data
    chunks = []
    for i in range(0, num, batch_size):
        chunk = jax.tree.map(lambda a, i=i: a[i : i + batch_size], conditions)
        if mesh is None:
            chunks.append(_apply_batched(fn, model, chunk, keys[i : i + batch_size], vectorize))
        else:
            chunks.append(predict_sharded(fn, model, chunk, keys[i : i + batch_size], mesh))
    return jax.tree.map(lambda *parts: jnp.concatenate(parts), *chunks)
