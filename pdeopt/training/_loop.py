"""The jitted train step and the training loop."""

import math
import time
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

from ..constraints import LearningRateAnnealing, SoftConstraint
from ._loss import PhysicsLoss


@eqx.filter_jit
def train_step(model, opt_state, loss_fn, optimizer, batch, key):
    """One optimisation step: value and gradient of `loss_fn`, then an optax update.

    **Arguments:**

    - `model`: the Equinox model (its inexact arrays are trained).
    - `opt_state`: the optimiser state for `eqx.filter(model, eqx.is_inexact_array)`.
    - `loss_fn`: `loss_fn(model, batch, key) -> (loss, aux)`.
    - `optimizer`: an `optax.GradientTransformation`.
    - `batch`, `key`: the batch and a PRNG key for the loss.

    **Returns:** `(model, opt_state, loss, aux)`.
    """
    (loss, aux), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, batch, key)
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, loss, aux


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
    used for the step as `weight_<name>`.
    """
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
    updates, opt_state = optimizer.update(grads, opt_state, params)
    aux = dict(aux) | {f"weight_{name}": w for name, w in weights.items()}
    return eqx.apply_updates(model, updates), opt_state, weights, loss, aux


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
    progress: bool = True,
) -> tuple[eqx.Module, list[dict[str, float]]]:
    """Train `model` on minibatches of `data` and evaluate periodically.

    Each step draws `batch_size` samples without replacement (with replacement only if the
    data set is smaller than the batch). When `loss_fn` is a `PhysicsLoss` with a
    `SoftConstraint` whose `balancing` is set, the loss weights are adapted during training
    (`balanced_train_step`, starting from the constraint's `loss_weights`) and recorded in
    the history as `weight_<name>`; otherwise every step is `train_step`. A non-finite loss
    stops training with `FloatingPointError` naming the step; nothing is silently skipped.

    **Arguments:**

    - `model`, `loss_fn`, `optimizer`: as for `train_step`.
    - `data`: a pytree of arrays with a leading sample axis.
    - `steps`, `batch_size`: number of steps and samples per step.
    - `key`: PRNG key for batches and for the loss.
    - `evaluate`: called with the model every `eval_every` steps and after the last step;
        returns metrics to record.
    - `eval_every`: evaluation period in steps (0: only at the end).
    - `progress`: show a progress bar with the loss and steps/s.

    **Returns:** the trained model and the history (one dict per evaluation, with `step`,
    `loss`, the loss terms and the evaluation metrics).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"train.steps must be a positive integer, got {steps!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"train.batch_size must be a positive integer, got {batch_size!r}.")
    if not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(f"train.eval_every must be an integer >= 0, got {eval_every!r}.")
    num = jax.tree.leaves(data)[0].shape[0]
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    balancing = None
    if isinstance(loss_fn, PhysicsLoss) and isinstance(loss_fn.constraint, SoftConstraint):
        balancing = loss_fn.constraint.balancing
    if balancing is not None:
        weights = balancing.init(loss_fn.constraint.weights_for(loss_fn.pde))
    batch_key, loss_key = jr.split(key)
    rng = np.random.default_rng(np.asarray(jr.key_data(batch_key)).ravel())
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, steps + 1), disable=not progress, unit="step", dynamic_ncols=True)
    start = time.perf_counter()
    for step in bar:
        index = rng.choice(num, size=batch_size, replace=batch_size > num)
        batch = jax.tree.map(lambda a, index=index: a[index], data)
        step_key = jr.fold_in(loss_key, step)
        if balancing is None:
            model, opt_state, loss, aux = train_step(
                model, opt_state, loss_fn, optimizer, batch, step_key
            )
        else:
            update = (step - 1) % balancing.every == 0
            model, opt_state, weights, loss, aux = balanced_train_step(
                model, opt_state, weights, loss_fn, optimizer, batch, step_key, balancing, update
            )
        loss = float(loss)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss} at step {step} (terms: "
                f"{ {k: float(v) for k, v in aux.items()} }). Lower optimizer.learning_rate, "
                "check the data for NaNs, or use float64 (model.dtype=float64)."
            )
        if step == 1:
            start = time.perf_counter()  # Exclude compilation from the throughput.
        rate = (step - 1) / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(loss=f"{loss:.3e}", steps_per_s=f"{rate:.1f}", refresh=False)
        if step == steps or (eval_every and step % eval_every == 0):
            record = {"step": step, "loss": loss, "steps_per_s": rate}
            record.update({k: float(v) for k, v in aux.items()})
            if evaluate is not None:
                record.update(evaluate(model))
            history.append(record)
            bar.write(" ".join(f"{k}={_fmt(v)}" for k, v in record.items()))
    bar.close()
    return model, history


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@eqx.filter_jit
def _apply_batched(fn, model, conditions, keys):
    return jax.vmap(fn, in_axes=(None, 0, 0))(model, conditions, keys)


def predict(
    fn: Callable, model, conditions: PyTree[Array], key: PRNGKeyArray, batch_size: int = 16
) -> PyTree[Array]:
    """Apply `fn(model, condition, key)` to every sample, in jitted batches.

    Sample i gets the key `fold_in(key, i)`, so results do not depend on `batch_size`.
    Returns the outputs stacked along a leading sample axis (any pytree).
    """
    num = jax.tree.leaves(conditions)[0].shape[0]
    keys = jax.vmap(lambda i: jr.fold_in(key, i))(jnp.arange(num))
    chunks = [
        _apply_batched(
            fn,
            model,
            jax.tree.map(lambda a, i=i: a[i : i + batch_size], conditions),
            keys[i : i + batch_size],
        )
        for i in range(0, num, batch_size)
    ]
    return jax.tree.map(lambda *parts: jnp.concatenate(parts), *chunks)
