"""Train a model on a PDE problem: `python -m experiments.train [overrides]`.

Writes to the Hydra run directory: `config.yaml` (resolved), `metrics.json`, `prediction.png`
and `model.eqx`, and every `train.checkpoint_every` steps a checkpoint under `checkpoints/`;
the last line printed is `test_rel_l2=<mean> ± <std> ...`. Rerunning a command with the same
run directory (`hydra.run.dir=...`) continues from its newest valid checkpoint
(`train.resume`, docs/checkpoints.md). On several devices it trains on the mesh of
`train.mesh`; with `train.distributed.enabled=true` it first joins the other processes:
all of them write the checkpoints together, into process 0's run directory, and only process
0 writes the rest and prints (docs/scaling.md).
"""

import logging
import time
from pathlib import Path

import hydra
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments._common import CONFIG_DIR, instantiate, save_config
from experiments._plots import axis_names, plot_prediction
from experiments._schema import ConfigError, Resume
from experiments._validate import build_mesh, validate

log = logging.getLogger(__name__)

# Config keys a continued run may change: none of them changes the trained parameters.
# `train.steps` may grow, to train on (the history gains the new final evaluation).
RESUMABLE_CHANGES = (
    "train.steps",
    "train.progress",
    "train.resume",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.eval_every",
    "train.eval_batch_size",
    "train.log_every",
    "problem.data_dir",
    # Each process of a multi-process run has its own id, and a requeued run may get
    # another coordinator; process 0's config is the one stored.
    "train.distributed.coordinator_address",
    "train.distributed.process_id",
)


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Run one training experiment from a composed config; returns the metrics."""
    jax.config.update("jax_enable_x64", True)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax's per-file progress messages
    distributed = cfg.train.distributed
    if distributed.enabled:
        from pdeopt.training import initialize_distributed

        initialize_distributed(
            distributed.coordinator_address, distributed.num_processes, distributed.process_id
        )
    # Every config value, before any data are generated; the objects it built are the run's.
    problem, constraint, optimizer = validate(cfg)
    from pdeopt.data import relative_l2
    from pdeopt.models import parameter_count
    from pdeopt.training import (
        CheckpointMismatchError,
        PhysicsLoss,
        TrainingError,
        fit,
        is_main_process,
        predict,
        save_checkpoint,
        save_json,
    )

    wall_start = time.perf_counter()
    mesh = build_mesh(cfg)
    main = is_main_process()  # only process 0 writes logs, metrics, plots and the model
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    # Every process checkpoints together, into process 0's run directory. Refuses a bad
    # resume (another config, `must` without checkpoints, `never` with some) before any
    # work, and before config.yaml is overwritten.
    checkpoints = make_checkpointer(cfg, shared_run_dir(run_dir))
    if main:
        save_config(cfg, run_dir / "config.yaml")
    train_set, test_set = problem.load()
    # A problem whose test split has its own resolution (Navier–Stokes: trained at 64²,
    # tested at 256²) names that PDE `test_pde`; the model and the constraint layer are
    # evaluated on its grid.
    test_pde = getattr(problem, "test_pde", problem.pde)
    if test_set.solutions.shape[1:] != tuple(test_pde.grid_shape):
        raise ValueError(
            f"The test data have grid {test_set.solutions.shape[1:]} but the problem's test "
            f"PDE {tuple(test_pde.grid_shape)}: regenerate the test split, or point "
            "problem.data_dir at data made with this problem config."
        )
    model_key, train_key = jr.split(jr.key(cfg.seed))
    in_channels = problem.pde.inputs(jnp.asarray(train_set.conditions[0])).shape[-1]
    model = build_model(cfg.model, problem.pde, in_channels, constraint, model_key)
    loss = PhysicsLoss(problem.pde, constraint)
    test_loss = PhysicsLoss(test_pde, constraint)
    test_conditions = jnp.asarray(test_set.conditions)
    test_solutions = jnp.asarray(test_set.solutions)
    per_sample_error = jax.jit(jax.vmap(relative_l2))

    # The test predictions' key: recorded in metrics.json (`eval_key`), so that
    # `load_checkpoint` + `predict` reproduce the reported error (docs/checkpoints.md).
    eval_key = jr.fold_in(jr.key(cfg.seed), 1)
    eval_batch = cfg.train.eval_batch_size
    vectorize = constraint.vectorize_samples

    def on_test_set(fn, model, conditions=test_conditions):
        return predict(fn, model, conditions, eval_key, eval_batch, vectorize, mesh=mesh)

    def test_predictions(model):
        pred, stats = on_test_set(test_loss.predict_one, model)
        pred = np.asarray(pred, np.float64)
        errors = np.asarray(per_sample_error(jnp.asarray(pred), test_solutions))
        return pred, test_metrics(errors, _converged(stats, len(errors)))

    log.info("Model: %s with %d parameters", type(model).__name__, parameter_count(model))
    try:
        model, history = fit(
            model,
            loss,
            optimizer,
            jnp.asarray(train_set.conditions),
            steps=cfg.train.steps,
            batch_size=cfg.train.batch_size,
            key=train_key,
            evaluate=lambda model: scalars(test_predictions(model)[1]),
            eval_every=cfg.train.eval_every,
            log_every=cfg.train.log_every,
            max_failure_rate=cfg.train.max_failure_rate,
            failure_patience=cfg.train.failure_patience,
            progress=cfg.train.progress and main,
            checkpoints=checkpoints,
            mesh=mesh,
        )
    except CheckpointMismatchError as error:
        raise _mismatch(error) from None
    except TrainingError as error:
        # A failed run leaves its record, marked failed, and no model.
        if main:
            failed = {"status": "failed", "error": str(error), "step": error.step}
            save_json(run_dir / "metrics.json", failed | {"history": error.history})
        raise
    finally:
        if checkpoints is not None:
            checkpoints.close()

    pred, metrics = test_predictions(model)
    views = {
        name: evaluate_view(view, model, pred, metrics, test_set, constraint, on_test_set)
        for name, view in problem.test_views().items()
    }
    report = on_test_set(test_loss.report_one, model)
    report = {k: float(np.mean(v)) for k, v in report.items()}
    reference = np.asarray(test_solutions)
    batch_level = float(np.linalg.norm(pred - reference) / np.linalg.norm(reference))
    metrics = {
        "status": "ok",
        **metrics,
        "test_rel_l2_batch_level": batch_level,
        "test_seeds": list(test_set.seeds),
        "eval_key": np.asarray(jr.key_data(eval_key)).tolist(),
        "constraint_report": report,
        "views": views,
        "num_parameters": parameter_count(model),
        "steps_per_s": history[-1]["steps_per_s"],
        "wall_time_s": time.perf_counter() - wall_start,
        "history": history,
    }
    if not main:
        return metrics
    names = axis_names(reference.shape[1:], test_set.conditions.shape[1:])
    plot_prediction(
        run_dir / "prediction.png", pred[0], reference[0], test_pde.coordinates(), names
    )
    save_checkpoint(run_dir / "model.eqx", model)
    save_json(run_dir / "metrics.json", metrics)
    print(format_report(report, len(pred)))
    print(f"run_dir={run_dir}")
    for name, view in views.items():
        print(f"test view {name}: {final_line(view, run=False)}")
    print(final_line(metrics))
    return metrics


def make_checkpointer(cfg: DictConfig, run_dir: Path):
    """The run's `pdeopt.training.Checkpointer` in `run_dir/checkpoints`, or `None` when
    `train.checkpoint_every=0`. It stores the resolved config and refuses to continue from a
    checkpoint of another config, except for the keys of `RESUMABLE_CHANGES`."""
    from pdeopt.training import Checkpointer, CheckpointMismatchError

    if cfg.train.checkpoint_every == 0:
        return None
    resume = Resume(cfg.train.resume).value
    try:
        checkpoints = Checkpointer(
            run_dir / "checkpoints",
            every=cfg.train.checkpoint_every,
            keep=cfg.train.keep_checkpoints,
            resume=resume,
            config=OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
            may_differ=RESUMABLE_CHANGES,
        )
    except (FileExistsError, FileNotFoundError) as error:
        fix = (
            "Use another run directory (hydra.run.dir=...) or train.resume=auto."
            if resume == "never"
            else "Check hydra.run.dir, or use train.resume=auto."
        )
        raise ConfigError(f"train.resume={resume}: {error} {fix}") from None
    try:
        checkpoints.check_config()
    except CheckpointMismatchError as error:
        checkpoints.close()
        raise _mismatch(error) from None
    return checkpoints


def shared_run_dir(run_dir: Path) -> Path:
    """Process 0's `run_dir` (absolute), in every process: where the checkpoints of a
    multi-process run go, on a file system all processes share. One process: `run_dir`."""
    if jax.process_count() == 1:
        return run_dir
    from jax.experimental import multihost_utils

    path = str(run_dir.absolute()).encode()
    # A buffer of the same length in every process: the longest of their paths.
    size = int(np.max(multihost_utils.process_allgather(np.array(len(path), np.int32))))
    buffer = np.zeros(size, np.uint8)
    buffer[: len(path)] = np.frombuffer(path, np.uint8)
    shared = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
    return Path(shared.tobytes().rstrip(b"\0").decode())


def _mismatch(error: Exception) -> ConfigError:
    return ConfigError(
        f"{error} To start a new run, choose another run directory (hydra.run.dir=...)."
    )


def evaluate_view(view, model, pred, metrics, test_set, constraint, predict_on) -> dict:
    """The test metrics of one `problems.TestView`: the model predicts on the view's grid
    (unless it is the test grid, whose predictions `pred` and test `metrics` are reused),
    from the conditions and against the solutions subsampled by the view's stride, scored
    over its window."""
    from pdeopt.data import relative_l2
    from pdeopt.training import PhysicsLoss

    solutions = np.asarray(test_set.solutions)[_strided(view.stride)]
    if all(s == 1 for s in view.stride):
        view_pred, converged = pred, np.asarray(metrics["test_converged_per_sample"])
    else:
        conditions = np.asarray(test_set.conditions)
        if conditions.ndim != solutions.ndim - 1:
            raise ValueError(
                f"A test view with stride {view.stride} subsamples the initial slice as the "
                f"condition; this problem's conditions have shape {conditions.shape[1:]}."
            )
        conditions = jnp.asarray(conditions[_strided(view.stride[1:])])
        view_pred, stats = predict_on(
            PhysicsLoss(view.pde, constraint).predict_one, model, conditions
        )
        view_pred, converged = np.asarray(view_pred, np.float64), _converged(stats, len(conditions))
    if view_pred.shape[1:] != solutions.shape[1:]:
        raise ValueError(
            f"Test view on grid {tuple(view.pde.grid_shape)}: the subsampled test data have "
            f"grid {solutions.shape[1:]}; the stride {view.stride} does not map one onto the other."
        )
    window = (slice(None), *(view.window or ()))
    errors = np.asarray(
        jax.vmap(relative_l2)(jnp.asarray(view_pred[window]), jnp.asarray(solutions[window]))
    )
    return test_metrics(errors, converged)


def _strided(stride) -> tuple[slice, ...]:
    return (slice(None), *(slice(None, None, s) for s in stride))


def _converged(stats, num: int) -> np.ndarray:
    """Per sample, whether all its solves (every expert) converged; all, without solves."""
    if stats is None:
        return np.ones(num, bool)
    return np.asarray(stats.converged).reshape(num, -1).all(axis=1)


def test_metrics(errors: np.ndarray, converged: np.ndarray) -> dict:
    """Test-set metrics from per-sample relative L2 errors and whether each sample's solves
    converged: the error over all samples, the fraction of samples with an unconverged
    solve (any expert), and the error over the converged samples only."""
    ok = errors[converged]
    return {
        "test_rel_l2": float(errors.mean()),
        "test_rel_l2_std": float(errors.std()),
        "test_rel_l2_per_sample": errors.tolist(),
        "test_converged_per_sample": converged.tolist(),
        "test_unconverged_fraction": float(1.0 - converged.mean()),
        # None when no test solve converged: there is no such error to report.
        "test_rel_l2_converged": float(ok.mean()) if ok.size else None,
        "test_rel_l2_converged_std": float(ok.std()) if ok.size else None,
    }


def scalars(metrics: dict) -> dict:
    """The scalar entries of `metrics` (what the training history records)."""
    return {k: v for k, v in metrics.items() if isinstance(v, float)}


def final_line(metrics: dict, run: bool = True) -> str:
    """The run's last line: the test error, the unconverged solves and the error without
    them, and (`run`) the throughput and the wall time."""
    num = len(metrics["test_rel_l2_per_sample"])
    unconverged = round(metrics["test_unconverged_fraction"] * num)
    converged = metrics["test_rel_l2_converged"]
    converged = (
        "n/a (no test solve converged)"
        if converged is None
        else f"{converged:.4e} ± {metrics['test_rel_l2_converged_std']:.2e}"
    )
    timing = run and f"; steps/s={metrics['steps_per_s']:.1f}; wall={metrics['wall_time_s']:.0f}s"
    return (
        f"test_rel_l2={metrics['test_rel_l2']:.4e} ± {metrics['test_rel_l2_std']:.2e} "
        f"unconverged={unconverged}/{num} ({metrics['test_unconverged_fraction']:.1%}) "
        f"test_rel_l2_converged={converged} "
        f"(per-sample mean ± std over {num} test samples{timing or ''})"
    )


def build_model(cfg_model: DictConfig, pde, in_channels: int, constraint, key):
    """The model of `cfg_model` for `pde`: `in_channels` inputs, the constraint's outputs, and
    whatever the PDE's quantity source asks of the model (an autodiff basis's orders)."""
    options = pde.derivatives.model_options(pde)
    factory = instantiate(cfg_model)
    try:
        return factory(
            in_channels=in_channels, out_channels=constraint.num_outputs, key=key, **options
        )
    except TypeError as error:
        if not options:
            raise
        raise ValueError(
            f"{type(pde).__name__} takes its quantities from {type(pde.derivatives).__name__}, "
            f"which needs a model that accepts {sorted(options)} ({error}); use "
            "model=deeponet_basis (or another pdeopt.models.autodiff_basis config)."
        ) from None


_LABELS = {
    "pde_rms_collocation": "PDE residual RMS at the constrained collocation points",
    "pde_rms_heldout": "PDE residual RMS at held-out grid points",
    "ic_rms": "initial-condition violation RMS",
    "bc_rms": "boundary-condition violation RMS",
    "seam_rms": "seam (jump across expert interfaces) RMS",
    "seam_max": "seam max",
    "converged_fraction": "fraction of converged solves",
}


def format_report(report: dict[str, float], num: int) -> str:
    """The constraint-satisfaction report as a small table (layer vs raw network): every
    residual block of the PDE, whatever its name, then the seam and the converged fraction."""
    lines = [f"constraint report (mean over {num} test samples)  {'layer':>11}  {'raw net':>11}"]
    keys = [k for k in report if not k.startswith("raw_")]
    order = list(_LABELS)
    keys.sort(key=lambda k: order.index(k) if k in order else order.index("seam_rms") - 0.5)
    for key in keys:
        label = _LABELS.get(key, f"'{key.removesuffix('_rms')}' block violation RMS")
        raw = report.get(f"raw_{key}")
        raw = f"{raw:11.3e}" if raw is not None else f"{'-':>11}"
        lines.append(f"  {label:<52}{report[key]:11.3e}  {raw}")
    return "\n".join(lines)


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
