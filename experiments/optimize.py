"""Solve one equality-constrained problem with AdaSketch-Newton:
`python -m experiments.optimize [overrides]`.

    python -m experiments.optimize problem_name=BT9 constrained_solver=practical \
        linear_solver=gaussian_sketch

Prints the per-iteration history (iteration, ‖∇L‖, α, inner steps), the result, x*, λ* and,
where the paper (Hong et al., ICML 2023) reports one, its outer iteration count beside ours.
The config is `configs/optimize.yaml`; `--help` lists the
groups (`constrained_solver`: faithful, practical; `linear_solver`: lu, gmres,
gaussian_sketch, kaczmarz, block_sketch, nystrom_pcg).
"""

import math
import time

import hydra
from omegaconf import DictConfig

from experiments._common import CONFIG_DIR, instantiate
from experiments._validate import check_config

APPLICATIONS = ("poisson_control", "semilinear_control", "logistic_regression")

# Paper outer iterations (GV / RK, May runs) for the application problems.
_POISSON_PAPER = {"gv": 4, "rk": 3}
_LOGREG_PAPER = {  # real LIBSVM data; ours is a synthetic stand-in of the same (N, d)
    "ionosphere_scale": (8, 9),
    "mushrooms": (8, 8),
    "phishing": (7, 7),
    "sonar_scale": (10, 10),
    "splice_scale": (9, 9),
    "a9a": (8, 9),
    "w8a": (9, 9),
}


def make_problem(cfg: DictConfig):
    """The `ConstrainedProblem` named by `cfg.problem_name`, and the paper's (GV, RK) counts."""
    from problems import cutest

    name = str(cfg.problem_name)
    if name == "poisson_control":
        paper = (_POISSON_PAPER["gv"], _POISSON_PAPER["rk"]) if cfg.size == 3 else None
        return cutest.poisson_control(int(cfg.size)), paper
    if name == "semilinear_control":
        return cutest.semilinear_control(int(cfg.size)), None
    if name == "logistic_regression":
        if cfg.dataset == "breast_cancer":
            return cutest.breast_cancer_logistic_regression(), None
        return cutest.synthetic_logistic_regression(str(cfg.dataset)), _LOGREG_PAPER.get(
            str(cfg.dataset)
        )
    try:
        problem = cutest.get_problem(name)
    except KeyError as e:
        raise ValueError(f"{e.args[0]} Or one of: {', '.join(APPLICATIONS)}.") from None
    paper = problem.paper_iterations
    return problem, (paper.gv, paper.rk)


def _format(value: float) -> str:
    return "fail" if math.isnan(value) else f"{value:g}"


def run(cfg: DictConfig) -> dict:
    """Solve the configured problem, print the report, and return a summary."""
    check_config(cfg, ("linear_solver", "constrained_solver"))  # The first is in the second.
    import equinox as eqx
    import jax
    import jax.random as jr
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from pdeopt import RESULTS

    problem, paper = make_problem(cfg)
    solver = instantiate(cfg.constrained_solver)
    cap = cfg.max_inner_steps
    if cap is None:
        cap = 1_000_000 if cfg.problem_name in APPLICATIONS else 100_000
    solver = eqx.tree_at(lambda s: s.max_inner_steps, solver, int(cap))
    preconditioner = problem.preconditioner(cfg.preconditioned)

    @eqx.filter_jit
    def solve(problem, key):
        return problem.minimise(
            solver,
            max_steps=int(cfg.max_steps),
            key=key,
            throw=False,
            preconditioner=preconditioner,
        )

    start = time.perf_counter()
    sol = jax.block_until_ready(solve(problem, jr.key(int(cfg.seed))))
    wall = time.perf_counter() - start
    stats = sol.stats
    steps = int(stats["num_steps"])
    kkt = np.asarray(stats["kkt_history"])
    alpha = np.asarray(stats["alpha_history"])
    inner = np.asarray(stats["inner_steps_history"])

    print(
        f"problem {problem.name} (n={problem.n}, m={problem.m}); "
        f"{type(solver.kkt_solver.linear_solver).__name__} inner solver"
        f"{' (block-preconditioned)' if preconditioner else ''}, "
        f"{type(solver.safeguards).__name__}"
    )
    print(f"{'iter':>4}  {'KKT':>10}  {'alpha':>8}  {'inner':>8}")
    print(f"{0:4d}  {kkt[0]:10.3e}  {'':>8}  {'':>8}")
    for t in range(steps):
        print(f"{t + 1:4d}  {kkt[t + 1]:10.3e}  {alpha[t]:8.4g}  {int(inner[t]):8d}")
    if steps < int(cfg.max_steps) and inner[steps] >= 0:  # a failed final iteration
        print(f"{'fail':>4}  {'':>10}  {'':>8}  {int(inner[steps]):8d}")
    success = bool(sol.result == RESULTS.successful)
    result = "successful" if success else RESULTS[sol.result]
    print(f"result: {result} (wall {wall:.2f} s, compile included)")
    print(
        f"outer iterations {steps}, inner steps {int(stats['num_inner_steps'])}, "
        f"fn evals {int(stats['num_fn_evals'])}, flops {float(stats['flops']):.3g}, "
        f"penalty updates {int(stats['num_penalty_updates'])}, "
        f"Hessian shifts {int(stats['num_hessian_shifts'])}, "
        f"inner cap hits {int(stats['num_inner_cap_hits'])}"
    )
    with np.printoptions(precision=8, threshold=20, edgeitems=5):
        print(f"x*      = {np.asarray(sol.value)}")
        print(f"lambda* = {np.asarray(sol.multipliers)}")
    if paper is None:
        print("paper: no reported iteration count for this problem")
    else:
        print(
            f"outer iterations: ours {steps}, paper GV {_format(paper[0])}, RK {_format(paper[1])}"
        )
    return {
        "problem": problem.name,
        "success": success,
        "result": result,
        "num_steps": steps,
        "kkt": float(kkt[steps]),
        "paper": paper,
    }


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="optimize")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
