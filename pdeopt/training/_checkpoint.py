"""Atomic model files, JSON files, and the training checkpoints that make a run resumable."""

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._files import atomic_write

log = logging.getLogger(__name__)


def save_checkpoint(path: str | os.PathLike, model: eqx.Module) -> Path:
    """Serialise the model's array leaves (`eqx.tree_serialise_leaves`), atomically.

    Load with `load_checkpoint(path, like)`, where `like` is a model built with the same
    configuration (e.g. from the run directory's resolved config). The file gets the umask's
    permissions (`0o644` by default).
    """
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        eqx.tree_serialise_leaves(f, model)
    return path


def load_checkpoint(path: str | os.PathLike, like: eqx.Module) -> eqx.Module:
    """Load a checkpoint written by `save_checkpoint` into a model shaped like `like`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist.")
    try:
        return eqx.tree_deserialise_leaves(path, like)
    except Exception as e:
        raise ValueError(
            f"Checkpoint '{path}' does not match the model built from the config ({e}); build "
            "the model with the configuration the checkpoint was trained with."
        ) from e


def save_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as indented JSON, atomically (with the umask's permissions)."""
    path = Path(path)
    text = json.dumps(obj, indent=2, sort_keys=True)
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return path


class TrainState(eqx.Module):
    """Everything [`pdeopt.training.fit`][] needs to continue a run where it stopped.

    The batch of step `s` and the loss's key of step `s` are pure functions of `key` and `s`
    (`fold_in`), so the state holds no generator state besides `key`.

    **Fields:**

    - `model`: the model being trained.
    - `opt_state`: the optax state (its step count drives the learning-rate schedule).
    - `weights`: the adaptive loss weights of `balanced_train_step`, or `None`.
    - `key`: the run's PRNG key (`fit`'s `key`).
    - `step`: the number of steps taken.
    - `failing`: consecutive steps over `fit`'s `max_failure_rate` so far.
    """

    model: PyTree
    opt_state: PyTree
    weights: dict[str, Float[Array, ""]] | None
    key: PRNGKeyArray
    step: int = 0
    failing: int = 0


class CheckpointMismatchError(ValueError):
    """A checkpoint was written by a run with another configuration or another model."""


class Checkpointer:
    """Periodic checkpoints of a [`pdeopt.training.TrainState`][] and its history, and resume.

    Passed to [`pdeopt.training.fit`][] as `checkpoints=`. Built on orbax-checkpoint's
    `CheckpointManager`: each checkpoint is a folder `directory/<step>` written under a
    temporary name and renamed when complete, so a killed writer leaves no checkpoint that
    looks finished. The state's arrays go to `<step>/state` (orbax's pytree format), the
    step, failure counter, history, `config` and a SHA-256 checksum of the arrays to
    `<step>/meta` (JSON). Writes are synchronous: `save` returns when the checkpoint is
    complete.

    In a multi-process run (`jax.distributed`) every process builds the `Checkpointer` on
    the same `directory` (a file system all processes share) and calls `save` and
    `restore` together, as orbax's `CheckpointManager` expects: process 0 writes the
    metadata and each array once (every replicated array from its first copy), and
    `restore` places every array where the corresponding array of `like` lives (e.g.
    replicated on the mesh). The arrays may be split over processes only if they are
    fully replicated (each process then checks the checksum on its own copy); decisions to
    skip a checkpoint are taken by all processes together, and process 0 moves it aside.

    Restoring tries the newest checkpoint first. One that cannot be read, or whose arrays do
    not match their checksum, is moved to `<directory>.corrupt/<step>-<time>` with a warning
    and the previous one is tried; nothing unreadable is loaded. A checkpoint whose `config` differs
    from this run's (other than in `may_differ`), or whose arrays have other shapes or
    dtypes than this run's state, is refused with `CheckpointMismatchError` naming the
    differences.

    **Arguments:**

    - `directory`: the folder of the checkpoints (created if needed).
    - `every`: save every this many steps, and after the last step (>= 1).
    - `keep`: how many of the newest checkpoints to keep (>= 1).
    - `resume`: `"auto"`: continue from the newest valid checkpoint if there is one, else
        start afresh; `"must"`: continue, and raise `FileNotFoundError` if there is no
        checkpoint; `"never"`: start afresh, and raise `FileExistsError` if `directory`
        already holds checkpoints (they are never overwritten: remove them or use another
        directory).
    - `config`: a JSON-serialisable mapping that identifies the run (e.g. the resolved
        experiment config); stored in every checkpoint and compared on resume.
    - `may_differ`: dotted keys of `config` that may change between the interrupted run and
        its continuation (e.g. `"train.steps"`, to train longer); a key also covers the
        keys below it.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        every: int,
        keep: int = 3,
        resume: Literal["auto", "must", "never"] = "auto",
        config: Mapping | None = None,
        may_differ: Collection[str] = (),
    ):
        import orbax.checkpoint as ocp  # imported here: a second or two, only when used

        for name, value in (("every", every), ("keep", keep)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Checkpointer's `{name}` must be an integer >= 1, got {value!r}.")
        if resume not in ("auto", "must", "never"):
            raise ValueError(
                f"Checkpointer's `resume` must be 'auto', 'must' or 'never', got {resume!r}."
            )
        self.directory = Path(directory).absolute()
        self.every = every
        self.keep = keep
        self.resume = resume
        self.config = None if config is None else json.loads(json.dumps(config))
        self.may_differ = tuple(may_differ)
        self._ocp = ocp
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep,
                create=True,
                enable_async_checkpointing=False,
                cleanup_tmp_directories=True,
            ),
        )
        steps = self.steps()
        if (resume == "never" and steps) or (resume == "must" and not steps):
            self._manager.close()
        if resume == "never" and steps:
            raise FileExistsError(
                f"{self.directory} already holds checkpoints (steps {steps}) and resume is "
                "'never': they are not overwritten. Resume them (resume='auto'), remove the "
                "folder, or write to another one."
            )
        if resume == "must" and not steps:
            raise FileNotFoundError(
                f"resume is 'must' but {self.directory} holds no checkpoint; start the run "
                "with resume='auto' (or 'never'), or point at the run's checkpoint folder."
            )

    def steps(self) -> list[int]:
        """The steps of the finished checkpoints, oldest first."""
        return sorted(self._manager.all_steps())

    def due(self, step: int, steps: int) -> bool:
        """Whether `fit` saves after `step` of `steps`."""
        return step % self.every == 0 or step == steps

    def save(self, state: TrainState, history: list[dict]) -> None:
        """Write a checkpoint of `state` (at `state.step`) and `history`; keep the newest
        `keep`."""
        arrays = _arrays(state)
        meta = {  # the keys of _META_KEYS
            "step": state.step,
            "failing": state.failing,
            "history": history,
            "config": self.config,
            "key_impl": str(jr.key_impl(state.key)),
            "structure": _structure(arrays),
            "checksum": _checksum(arrays),
        }
        ocp = self._ocp
        self._manager.save(
            state.step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        self._manager.wait_until_finished()
        log.info("Checkpoint of step %d written to %s", state.step, self.directory)

    def restore(self, like: TrainState) -> tuple[TrainState, list[dict]] | None:
        """The newest valid checkpoint as a state shaped like `like` (same model config, same
        optimiser, same key) and its history; `None` if there is none (`resume="never"`:
        always `None`).

        Unreadable checkpoints are moved aside with a warning (see the class); a checkpoint
        of another config or model raises `CheckpointMismatchError`; one made with another
        key raises `ValueError`.
        """
        if self.resume == "never":
            return None
        target = _arrays(like)
        # Where each array is restored to: the shape, dtype and sharding of `like`'s.
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
            target,
        )
        for step in reversed(self.steps()):
            error = None
            try:
                meta = self._restore_meta(step)
                missing = set(_META_KEYS) - set(meta)
                if missing:
                    raise ValueError(f"its metadata lacks {sorted(missing)}")
            except Exception as e:
                error = e
            if not _everywhere(error is None):
                self._set_aside(step, error)
                continue
            self._check(step, meta, target)
            try:
                arrays = self._restore_arrays(step, abstract)
                if _checksum(arrays) != meta["checksum"]:
                    raise ValueError("its arrays do not match the checksum written with them")
            except Exception as e:
                error = e
            if not _everywhere(error is None):
                self._set_aside(step, error)
                continue
            arrays = jax.tree.map(_like_weak_type, arrays, target)
            same_key = meta["key_impl"] == str(jr.key_impl(like.key)) and np.array_equal(
                _host(arrays.key), _host(jr.key_data(like.key))
            )
            if not same_key:
                raise ValueError(
                    f"Checkpoint {self.directory / str(step)} was made with another PRNG key "
                    "(seed); resume with the key it was made with, or start afresh in another "
                    "folder."
                )
            restored = eqx.combine(arrays, _non_arrays(like))
            state = TrainState(
                restored.model,
                restored.opt_state,
                restored.weights,
                like.key,
                meta["step"],
                meta["failing"],
            )
            log.info("Resuming from the checkpoint of step %d in %s", step, self.directory)
            return state, meta["history"]
        if self.resume == "must":
            raise FileNotFoundError(
                f"resume is 'must' but no checkpoint in {self.directory} could be read (the "
                f"unreadable ones are in {self._corrupt_dir()})."
            )
        return None

    def close(self) -> None:
        """Finish pending writes and release the manager."""
        self._manager.close()

    def _restore_meta(self, step: int) -> dict:
        ocp = self._ocp
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return restored.meta

    def _restore_arrays(self, step: int, abstract):
        ocp = self._ocp
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
        return restored.state

    def check_config(self) -> None:
        """Raise `CheckpointMismatchError` if the newest readable checkpoint was written with
        another `config` (what `restore` would raise, without reading any array: to refuse a
        run before it does any work). Unreadable checkpoints are left to `restore`."""
        if self.resume == "never":
            return
        for step in reversed(self.steps()):
            try:
                meta = self._restore_meta(step)
            except Exception:
                continue
            self._check_config(step, meta)
            return

    def _check_config(self, step: int, meta: dict) -> None:
        where = self.directory / str(step)
        if self.config is not None and meta.get("config") is not None:
            differing = config_differences(meta["config"], self.config, self.may_differ)
            if differing:
                raise CheckpointMismatchError(
                    f"Checkpoint {where} was written by a run with another config: "
                    + "; ".join(differing)
                    + ". Resume with the config it was written with, or start afresh in "
                    "another folder."
                )

    def _check(self, step: int, meta: dict, target) -> None:
        self._check_config(step, meta)
        where = self.directory / str(step)
        stored, current = meta["structure"], _structure(target)
        if stored != current:
            differing = [
                f"{k}: checkpoint {stored.get(k, 'absent')}, now {current.get(k, 'absent')}"
                for k in sorted(set(stored) | set(current))
                if stored.get(k) != current.get(k)
            ]
            raise CheckpointMismatchError(
                f"Checkpoint {where} holds another model or optimiser state than this run's: "
                + "; ".join(differing[:5])
                + (f" (and {len(differing) - 5} more)" if len(differing) > 5 else "")
                + ". Build the model and optimiser with the config the checkpoint was written "
                "with, or start afresh in another folder."
            )

    def _corrupt_dir(self) -> Path:
        return self.directory.with_name(self.directory.name + ".corrupt")

    def _set_aside(self, step: int, error: Exception | None) -> None:
        """Move checkpoint `step` aside and warn (process 0; the others wait for it).
        `error`: this process's reason, `None` if only another process could not read it."""
        source = self.directory / str(step)
        if jax.process_index() == 0:
            target = self._corrupt_dir() / f"{step}-{time.strftime('%Y%m%dT%H%M%S')}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
            reason = "another process could not read it"
            if error is not None:
                reason = f"{type(error).__name__}: {error}"
            warnings.warn(
                f"Checkpoint {source} cannot be read ({reason}); moved it to {target} and "
                "trying the previous checkpoint.",
                RuntimeWarning,
                stacklevel=3,
            )
        elif error is not None:
            log.warning(
                "Checkpoint %s cannot be read here (%s: %s)", source, type(error).__name__, error
            )
        _barrier(f"pdeopt_checkpoint_set_aside_{step}")
        self._manager.reload()


_META_KEYS = ("step", "failing", "history", "config", "key_impl", "structure", "checksum")


def _arrays(state: TrainState) -> TrainState:
    """The array leaves of `state`, the key as its raw data."""
    state = eqx.tree_at(lambda s: s.key, state, jr.key_data(state.key))
    return eqx.filter(state, eqx.is_array)


def _non_arrays(state: TrainState) -> TrainState:
    return eqx.filter(state, eqx.is_array, inverse=True)


def _structure(arrays) -> dict[str, str]:
    leaves = jax.tree_util.tree_flatten_with_path(arrays)[0]
    return {
        jax.tree_util.keystr(path): f"{jnp.dtype(x.dtype).name}{list(x.shape)}"
        for path, x in leaves
    }


def _host(x) -> np.ndarray:
    """The value of the array `x` as a NumPy array in this process. An array spread over
    several processes must be fully replicated: this process's first copy is its value."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if not x.is_fully_replicated:
            raise ValueError(
                f"Cannot checkpoint a {x.dtype}{list(x.shape)} array split over processes "
                f"({x.sharding}); the training state must be replicated on the mesh."
            )
        x = x.addressable_data(0)
    return np.asarray(jax.device_get(x))


def _checksum(arrays) -> str:
    digest = hashlib.sha256()
    for x in jax.tree.leaves(arrays):
        digest.update(np.ascontiguousarray(_host(x)).tobytes())
    return digest.hexdigest()


def _everywhere(ok: bool) -> bool:
    """Whether `ok` holds in every process (all of them must call this together)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.array(ok, np.int32))))


def _barrier(name: str) -> None:
    """Wait until every process has reached this point."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _like_weak_type(x, like):
    """`x` with the weak type of `like` (orbax restores every array strongly typed; a weak
    scalar must stay weak, or the resumed steps would promote dtypes differently)."""
    if not like.weak_type or x.weak_type:
        return x
    if x.ndim == 0:
        value = _host(x).item()
        weak = jnp.asarray(value)
        if weak.dtype == x.dtype:
            if x.is_fully_addressable:
                return jax.device_put(weak, x.sharding)
            # A weak scalar replicated over the processes: made by every process alike.
            return jax.jit(lambda: jnp.asarray(value), out_shardings=x.sharding)()
    raise NotImplementedError(
        f"Cannot restore a weakly typed {x.dtype}{list(x.shape)} array exactly; give the "
        "training state strongly typed arrays (jnp.asarray(x, dtype))."
    )


def _flatten(config, prefix: str = "") -> dict:
    if isinstance(config, Mapping):
        flat = {}
        for k, v in config.items():
            flat |= _flatten(v, f"{prefix}{k}.")
        return flat or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): config}


def config_differences(
    stored: Mapping, current: Mapping, may_differ: Collection[str] = ()
) -> list[str]:
    """`key (checkpoint a, now b)` for every dotted key of two nested config mappings whose
    values differ (or that only one has), except keys at or under a key of `may_differ`."""
    old, new = _flatten(stored), _flatten(current)

    def free(key: str) -> bool:
        return any(key == k or key.startswith(k + ".") for k in may_differ)

    absent = "<absent>"
    return [
        f"{k} (checkpoint {old.get(k, absent)!r}, now {new.get(k, absent)!r})"
        for k in sorted(set(old) | set(new))
        if not free(k) and old.get(k, absent) != new.get(k, absent)
    ]
