"""A catalogue of bad configs: each fails when composed or validated, before any data exist,
with an error that names its key; good configs still pass."""

import math

import pytest
from hydra.errors import ConfigCompositionException

from experiments._common import compose
from experiments._schema import ConfigError
from experiments._validate import validate

NS = ["problem=navier_stokes", "model=fno3d"]
AUTODIFF = ["problem=burgers_autodiff", "constraint=hard", "model=deeponet_basis"]

# id: (overrides, error type, what the message must name). The default config is PI-HC-MoE
# (parts [1, 4], 300 points per expert) with an FNO on diffusion–sorption, grid (26, 64),
# n_train 64.
CATALOGUE = {
    # Non-finite values, anywhere: named by their full key, not by a check they upset.
    "learning_rate_nan": (["optimizer.learning_rate=nan"], ConfigError, "optimizer.learning_rate"),
    "learning_rate_inf": (["optimizer.learning_rate=inf"], ConfigError, "optimizer.learning_rate"),
    "ridge_nan": (["constraint.ridge=nan"], ConfigError, "constraint.ridge"),
    "solver_atol_inf": (["constraint.solver.atol=inf"], ConfigError, "constraint.solver.atol"),
    "row_weight_nan": (
        ["constraint.row_weights={pde:nan,ic:1.0,bc:1.0}"],
        ConfigError,
        "constraint.row_weights.pde",
    ),
    # train.* before any data: formerly after generation, or after training.
    "eval_batch_size_zero": (["train.eval_batch_size=0"], ConfigError, "train.eval_batch_size"),
    "steps_zero": (["train.steps=0"], ConfigError, "train.steps"),
    "log_every_zero": (["train.log_every=0"], ConfigError, "train.log_every"),
    "failure_patience_zero": (["train.failure_patience=0"], ConfigError, "train.failure_patience"),
    "max_failure_rate_above_one": (
        ["train.max_failure_rate=1.5"],
        ConfigError,
        "train.max_failure_rate",
    ),
    "batch_larger_than_training_set": (
        ["train.batch_size=100"],
        ConfigError,
        "train.batch_size=100 exceeds problem.n_train=64",
    ),
    "missing_data_path": (
        ["problem.data_path=/nonexistent/1D_diff-sorp_NA_NA.h5"],
        ConfigError,
        "problem.data_path=/nonexistent/1D_diff-sorp_NA_NA.h5",
    ),
    # Unknown keys: Hydra refuses `train.stepz=50`; its suggested `+train.stepz=50` too.
    "unknown_train_key": (["train.stepz=50"], ConfigCompositionException, "train.stepz"),
    "added_train_key": (["+train.stepz=50"], ConfigError, "train.stepz"),
    "added_top_level_key": (["+stepz=50"], ConfigError, "stepz"),
    "unknown_model_key": (["model.widht=3"], ConfigCompositionException, "model.widht"),
    "added_model_key": (["+model.widht=3"], ConfigError, "model.widht"),
    "added_nested_key": (
        ["+constraint.solver.rtoll=1.0e-6"],
        ConfigError,
        "constraint.solver.rtoll",
    ),
    "added_key_of_a_factory": (["+constraint.num_pionts=10"], ConfigError, "constraint.num_pionts"),
    "added_problem_solver_key": (
        ["+problem.solver.rtoll=1.0e-6"],
        ConfigError,
        "problem.solver.rtoll",
    ),
    # Wrong types: the schema refuses them at composition; constructors refuse the rest.
    "steps_not_an_integer": (["train.steps=abc"], ConfigCompositionException, "train.steps"),
    "seed_not_an_integer": (["seed=1.5"], ConfigCompositionException, "seed"),
    "progress_not_a_bool": (["train.progress=maybe"], ConfigCompositionException, "train.progress"),
    "max_failure_rate_not_a_number": (
        ["train.max_failure_rate=high"],
        ConfigCompositionException,
        "train.max_failure_rate",
    ),
    "width_not_an_integer": (["model.width=abc"], ConfigError, "model.width"),
    # Models refuse the dtypes they cannot run.
    "fno_float16": (["model.dtype=float16"], ConfigError, "model.dtype"),
    "fno_bfloat16": (["model.dtype=bfloat16"], ConfigError, "model.dtype"),
    "mlp_float16": (["model=mlp", "model.dtype=float16"], ConfigError, "model.dtype"),
    "deeponet_float8": (
        [*AUTODIFF, "model.model.dtype=float8_e4m3fn"],
        ConfigError,
        "model.model.dtype",
    ),
    "autodiff_needs_a_basis_model": (
        ["problem=burgers_autodiff", "constraint=hard"],
        ConfigError,
        "model=deeponet_basis",
    ),
    # Constraint sizes against the problem's grid, formerly at the first compile.
    "parts_not_dividing": (["constraint.parts=[1,3]"], ConfigError, "constraint.parts"),
    "parts_not_dividing_the_test_grid": (
        [*NS, "problem.nx=24", "problem.nx_test=32", "constraint.parts=[1,1,3]"],
        ConfigError,
        "constraint.parts",
    ),
    "parts_of_another_dimension": (["constraint.parts=[1,2,2]"], ConfigError, "constraint.parts"),
    "num_points_above_block": (
        ["constraint.num_points=2000"],
        ConfigError,
        "constraint.num_points",
    ),
    "too_few_rows_for_num_basis": (
        [
            "constraint.num_points=10",
            "constraint.num_basis=40",
            "constraint.global_boundary_rows=false",
        ],
        ConfigError,
        "constraint.num_points",
    ),
    "row_weights_unknown_block": (
        ["constraint=hard", "constraint.row_weights={pde:1.0,icc:1.0}"],
        ConfigError,
        "constraint.row_weights",
    ),
    "annealing_reference_unknown": (
        ["constraint=soft_annealed", "constraint.balancing.reference=pdf"],
        ConfigError,
        "reference='pdf'",
    ),
    # Constructor checks, reported with the node.
    "grid_too_small": (["problem.nt=0"], ConfigError, "problem.nt"),
    "min_learning_rate_above_learning_rate": (
        ["optimizer.min_learning_rate=1.0e-2"],
        ConfigError,
        "optimizer.min_learning_rate",
    ),
}


def _messages(error: BaseException | None) -> str:
    """The message of `error` and of every exception it was raised from."""
    out = []
    while error is not None:
        out.append(str(error))
        error = error.__cause__
    return "\n".join(out)


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_bad_config_fails_before_data(case, tmp_path):
    overrides, error_type, key = CATALOGUE[case]
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(error_type) as info:
        validate(compose([*overrides, f"problem.data_dir={data}"]))
    assert key in _messages(info.value), _messages(info.value)
    assert not any(data.iterdir())


GOOD = {
    "default": [],
    "paper_schedule": ["train=paper"],
    "short_run": ["train.steps=2", "train.eval_every=1"],
    "no_evaluation": ["train.eval_every=0"],
    "batch_equal_to_training_set": ["train.batch_size=64"],
    "never_stop_for_failures": ["train.max_failure_rate=1.0"],
    "new_seed": ["seed=3"],
    "mlp_bfloat16": ["model=mlp", "model.dtype=bfloat16", "constraint=soft"],
    "modified_mlp_bfloat16": ["model=modified_mlp", "model.dtype=bfloat16", "constraint=hard"],
    "deeponet": ["model=deeponet"],
    "autodiff_basis": AUTODIFF,
    "navier_stokes_moe": [*NS, "constraint.parts=[1,2,2]", "problem.nx_test=64"],
    "allen_cahn_moe": ["problem=allen_cahn", "model=fno3d", "constraint.parts=[1,2,2]"],
    "darcy_soft": ["problem=darcy", "constraint=soft"],
    "poisson_mlp": ["problem=poisson", "model=mlp", "constraint=soft"],
    "porous_medium_hard": ["problem=porous_medium", "constraint=hard"],
    "annealed_weights": ["constraint=soft_annealed"],
    "row_weights": ["constraint=hard", "constraint.row_weights={pde:1.0,ic:3.0,bc:1.0}"],
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_config_passes(case, tmp_path):
    validate(compose([*GOOD[case], f"problem.data_dir={tmp_path}"]))
    assert not any(tmp_path.iterdir())


def test_train_run_validates_first(tmp_path):
    """`experiments.train.run` refuses a bad value before it generates data or writes the run
    directory (`train.eval_batch_size=0` used to fail after the last training step)."""
    from experiments.train import run

    data = tmp_path / "data"
    data.mkdir()
    cfg = compose(["train.eval_batch_size=0", f"problem.data_dir={data}"])
    with pytest.raises(ConfigError, match="train.eval_batch_size"):
        run(cfg, tmp_path / "run")
    assert not any(data.iterdir()) and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "config_name,override,key",
    [
        ("generate", "problem.outflow_sign=nan", "problem.outflow_sign"),
        ("generate", "+problem.n_trian=4", "problem.n_trian"),
        ("generate", "+chunksize=4", "chunksize"),
        ("optimize", "constrained_solver.mu0=inf", "constrained_solver.mu0"),
        (
            "optimize",
            "+linear_solver.linear_solver.pivot=true",
            "linear_solver.linear_solver.pivot",
        ),
    ],
)
def test_other_entry_points_check_first(config_name, override, key, tmp_path):
    from experiments import generate, optimize

    run = {"generate": generate.run, "optimize": optimize.run}[config_name]
    overrides = [override] + (
        ["output=" + str(tmp_path / "out.h5")] if config_name == "generate" else []
    )
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        run(compose(overrides, config_name=config_name))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["learning_rate", "decay_rate", "min_learning_rate", "clip_norm"])
def test_make_optimizer_refuses_non_finite(name, value):
    from pdeopt.training import make_optimizer

    with pytest.raises(ValueError, match=rf"^optimizer\.{name} must be a finite number"):
        make_optimizer(**{name: value})


def test_hard_constraint_checks_in_one_place(getkey):
    """`check(pde)` raises the errors that a solve raises at trace time, with one message."""
    import jax.numpy as jnp

    from pdeopt.constraints import MoEHardConstraint
    from problems.diffusion_sorption import DiffusionSorption

    pde = DiffusionSorption(nx=16, nt=9)
    output = jnp.zeros((*pde.grid_shape, 5))
    condition = jnp.zeros(pde.grid_shape[1:])
    for constraint, match in [
        (MoEHardConstraint(parts=(1, 3), num_basis=5, num_points=4), "constraint.parts"),
        (MoEHardConstraint(parts=(1, 4), num_basis=5, num_points=100), "constraint.num_points"),
        (MoEHardConstraint(num_basis=5, num_points=4, row_weights={"pde": 1.0}), "row_weights"),
    ]:
        with pytest.raises(ValueError, match=match) as checked:
            constraint.check(pde)
        with pytest.raises(ValueError, match=match) as solved:
            constraint.solve(pde, output, condition, key=getkey())
        assert str(checked.value) == str(solved.value)
    MoEHardConstraint(parts=(1, 4), num_basis=5, num_points=20).check(pde)
