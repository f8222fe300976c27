"""One unattended accelerator run: every GPU number pdeopt reports, in one JSON file.

```
python -m experiments.gpu_suite [--out FILE.json] [--budget-s 480] [--smoke]
```

Parts, each in its own process (a crash, an out-of-memory error or a hang of one part does
not stop the others, and each starts with the accelerator's memory free):

1. `env`: the devices (`jax.devices()`), their memory, versions, machine and commit.
2. `timing`: the `pihcmoe_timing` reproduction at the paper's grids (`scale=paper`): per-batch
    training and inference time of PI-HC and PI-HC-MoE against the number of collocation
    points, diffusion–sorption 1024 × 101 and Navier–Stokes 64³ at batch 2; the endpoints
    first, so that a stopped part still has the paper's speedups.
3. `training`: paper-scale diffusion–sorption training (`problem=diffusion_sorption_paper
    model=fno_paper train=paper`, 20k points per solve) of PI-HC and PI-HC-MoE for
    `--train-steps` steps on a few generated samples: steps/s (after compilation), test error,
    data-generation time.
4. `scaling`: Poisson control at N = 256, 512, 1024 (`experiments.bench_scaling`), pdeopt
    (practical mode, preconditioned GMRES) on the accelerator against IPOPT on the CPU,
    when casadi is installed (else recorded as missing).
5. `fno`: the FNO training-step time of `experiments.bench_fno`'s rows (pdeopt only).

The budget (`--budget-s`, default 480 s) is shared among the parts after `env` (at most
`ENV_TIMEOUT_S`) in proportion to `WEIGHTS`, what a part leaves unused passing to the later
ones. Within a part, a measurement that would not fit in what is left (judged by the dearest
one so far) is not started, and one that fails is recorded with its error while the others go
on (the part's status is then `failed`). A part that outlives its share is stopped; what it
had measured is kept (every part writes its results as it goes) and its status says
`stopped`. A part whose share is under `MIN_SHARE_S` is `skipped`.
Everything goes under the directory of `--out` (default `outputs/gpu_suite/suite.json`):
the JSON, each part's log, and the `pihcmoe_timing` table, results and figure.
`--smoke` runs every part at tiny sizes, a CPU check of the whole pipeline (the `timing`
part one method, the `training` part PI-HC-MoE only).
"""

import argparse
import datetime
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

WEIGHTS = {"timing": 0.42, "training": 0.33, "scaling": 0.17, "fno": 0.08}
MIN_SHARE_S = 20.0
ENV_TIMEOUT_S = 90.0
# The timing target's methods, most informative first (the paper's endpoints, then the same
# with the original code's PI-HC IC rows).
TIMING_ORDER = ("ds_1e2", "ns_1e2", "ds_1e5", "ns_1e4", "ds_1e2_ic_repeated", "ds_1e5_ic_repeated")
TIMING_ORDER += ("ds_1e3", "ns_1e3", "ds_1e4")
VERSIONS = ("jax", "jaxlib", "equinox", "optimistix", "lineax", "diffrax", "optax", "numpy")
OPTIONAL = ("casadi", "torch", "neuralop")


class Part:
    """A part's results, written to its JSON file after every `record` (atomically), so that
    a stopped part leaves what it had measured."""

    def __init__(self, path: Path, budget_s: float):
        self.path, self.budget_s, self.start = path, budget_s, time.perf_counter()
        self.results: dict = {}
        self.failed: list[str] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def record(self, key: str, value) -> None:
        self.results[key] = value
        _write_json(self.path, self.results)

    def attempt(self, key: str, fn, *args, **kwargs):
        """`record(key, fn(...))`; an exception is recorded as `{"status": "failed", ...}`
        under `key` instead (the part then ends as failed, after its other measurements),
        and `None` returned."""
        start = time.perf_counter()
        try:
            value = fn(*args, **kwargs)
        except Exception as error:
            traceback.print_exc()
            failed = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
            self.record(key, failed | {"wall_s": time.perf_counter() - start})
            self.failed.append(key)
            return None
        self.record(key, value)
        return value


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value):
    try:
        import numpy as np

        if isinstance(value, np.generic | np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)


# ---- the parts (each runs in its own process) -----------------------------------------------


def part_env(part: Part, workdir: Path, smoke: bool) -> None:
    from importlib import import_module

    import jax

    from experiments._report import fingerprint
    from experiments.reproduce import git_state

    devices = []
    for device in jax.devices():
        entry = {"id": device.id, "kind": device.device_kind, "platform": device.platform}
        try:
            stats = device.memory_stats() or {}
            entry["memory_bytes"] = stats.get("bytes_limit")
        except Exception:  # CPU devices may not report memory
            entry["memory_bytes"] = None
        devices.append(entry)
    part.record("devices", devices)
    part.record("default_backend", jax.default_backend())
    versions = {"python": platform.python_version()}
    for name in VERSIONS + OPTIONAL:
        try:
            versions[name] = getattr(import_module(name), "__version__", "installed")
        except Exception as error:  # not installed, or broken
            versions[name] = f"missing ({type(error).__name__})"
    part.record("versions", versions)
    part.record("machine", fingerprint())
    part.record("git", git_state())


def part_timing(part: Part, workdir: Path, smoke: bool) -> None:
    from experiments.reproduce import reproduce

    out = workdir / "pihcmoe_timing"
    scale = "smoke" if smoke else "paper"
    order = TIMING_ORDER[:1] if smoke else TIMING_ORDER
    part.record("out", str(out))
    done, costs = [], []
    for method in order:
        # A method that would not fit is not started (its cost: the dearest one so far).
        if costs and part.left() < 1.2 * max(costs):
            part.record(f"skipped_{method}", f"not started: {part.left():.0f} s left")
            continue
        start = time.perf_counter()
        results = part.attempt(
            f"run_{method}",
            lambda m: _run_summary(reproduce("pihcmoe_timing", _options(scale, out, [m]))),
            method,
        )
        costs.append(time.perf_counter() - start)
        if results is not None and results["status"] == "ok":
            done.append(method)
    if done:  # the table of every measured method, in the target's order (all reused)
        canonical = [m for m in sorted(TIMING_ORDER) if m in done]
        results = reproduce("pihcmoe_timing", _options(scale, out, canonical))
        part.record("table", (out / "table.md").read_text())
        part.record("results_json", str(out / "results.json"))
        part.record("summary", results["summary"])


def _options(scale: str, out: Path, methods: list[str]) -> list[str]:
    return [f"scale={scale}", f"out={out}", f"only=[{','.join(methods)}]"]


def _run_summary(results: dict) -> dict:
    """The status, numbers and metrics of the one run of a `reproduce` call."""
    from experiments._runner import load_metrics

    [run] = results["runs"]
    summary = {"status": "ok" if run["status"] != "failed" else "failed"}
    summary |= {"values": run.get("values"), "error": run.get("error")}
    if summary["status"] == "ok":
        metrics = load_metrics(Path(run["run_dir"]))
        for name in ("hc", "moe"):  # the per-batch samples are in the run's metrics.json
            for kind in ("train_ms", "infer_ms"):
                metrics[name][kind] = {
                    k: v for k, v in metrics[name][kind].items() if k != "samples"
                }
        summary["metrics"] = metrics
    return summary


def training_overrides(workdir: Path, smoke: bool, steps: int) -> dict[str, list[str]]:
    """The `experiments.train` overrides of the `training` part, per constraint."""
    if smoke:  # one tiny PI-HC-MoE run: the pipeline, in seconds
        common = ["problem=diffusion_sorption", "model=fno", "problem.nx=16", "problem.nt=9"]
        common += ["problem.n_train=4", "problem.n_test=2", "model.width=8", "model.modes=[4,4]"]
        common += ["model.depth=2", "model.projection_channels=16", "train.batch_size=2"]
        common += ["train.steps=3"]
        per_constraint = {"moe": ["constraint.num_points=16"]}
    else:
        # The paper's problem, model and schedule (batch 6) on 12/6 generated samples instead
        # of 8000/1000; 20k points per solve; the experts vmapped, as on the paper's GPUs.
        common = ["problem=diffusion_sorption_paper", "model=fno_paper", "train=paper"]
        common += ["problem.n_train=12", "problem.n_test=6", f"train.steps={steps}"]
        per_constraint = {
            "hard": ["constraint.num_points=20000"],
            "moe": ["constraint.num_points=20000", "constraint.vectorize_experts=true"],
        }
    common += [f"problem.data_dir={workdir / 'data'}", "train.progress=false"]
    common += ["train.eval_every=0", "train.checkpoint_every=0"]
    return {c: [*common, f"constraint={c}", *extra] for c, extra in per_constraint.items()}


def part_training(part: Part, workdir: Path, smoke: bool, steps: int) -> None:
    from experiments._common import compose, instantiate
    from experiments.train import run

    configs = {c: compose(o) for c, o in training_overrides(workdir, smoke, steps).items()}
    part.record("overrides", training_overrides(workdir, smoke, steps))

    def generate(cfg):
        start = time.perf_counter()
        instantiate(cfg.problem).load()
        return {"status": "ok", "wall_s": time.perf_counter() - start}

    if part.attempt("data", generate, next(iter(configs.values()))) is None:
        return
    costs = []
    for constraint, cfg in configs.items():
        if costs and part.left() < 1.2 * max(costs):
            part.record(constraint, {"status": "skipped", "error": f"{part.left():.0f} s left"})
            continue
        start = time.perf_counter()
        run_dir = workdir / f"training_{constraint}"
        part.attempt(constraint, lambda cfg, d: _train_summary(run(cfg, d)), cfg, run_dir)
        costs.append(time.perf_counter() - start)


def _train_summary(metrics: dict) -> dict:
    keys = ("test_rel_l2", "test_rel_l2_std", "test_unconverged_fraction", "steps_per_s")
    keys += ("wall_time_s", "num_parameters", "test_rel_l2_batch_level")
    summary = {"status": metrics.get("status", "ok"), **{k: metrics.get(k) for k in keys}}
    summary["steps"] = metrics["history"][-1]["step"] if metrics.get("history") else None
    summary["final_loss"] = metrics["history"][-1]["loss"] if metrics.get("history") else None
    return summary


def part_scaling(part: Part, workdir: Path, smoke: bool) -> None:
    import jax

    from experiments import _baselines as B, bench_scaling

    sizes = (8, 16) if smoke else (256, 512, 1024)
    label = "GMRES+P"
    have_ipopt = B.has("casadi")
    part.record("pdeopt_device", str(jax.devices()[0]))
    part.record("solver", f"pdeopt {label} (practical mode) against IPOPT (casadi, MUMPS, CPU)")
    if not have_ipopt:
        part.record("ipopt", f"skipped: casadi is not installed ({B.INSTALL_HINT})")
    ipopt_failed = False
    for n in sizes:
        problem = bench_scaling.make_problem("poisson", n)
        entry = {"N": n, "n": problem.n, "m": problem.m}
        cap = max(min(120.0, 0.4 * part.left()), 1.0)  # IPOPT's max_wall_time at this N
        args = bench_scaling.parser().parse_args(["--ipopt-time-cap", f"{cap:.0f}"])
        entry["pdeopt"] = _solve_summary(bench_scaling.solve, "poisson", n, problem, label, args)
        if have_ipopt and not ipopt_failed:
            entry["ipopt"] = _solve_summary(bench_scaling.run_ipopt, "poisson", n, problem, args)
            entry["ipopt"]["time_cap_s"] = cap
            ipopt_failed = entry["ipopt"].get("status") != "ok"
            ipopt_time, bound = bench_scaling.ipopt_reference(entry["ipopt"].get("result"))
            if entry["pdeopt"].get("time_s") and math.isfinite(ipopt_time):
                entry["pdeopt_over_ipopt"] = f"{bound}{entry['pdeopt']['time_s'] / ipopt_time:.4g}"
            entry["ipopt"].pop("result", None)
        elif have_ipopt:
            entry["ipopt"] = {
                "status": "skipped",
                "error": "IPOPT failed or hit its cap at a smaller N",
            }
        entry["pdeopt"].pop("result", None)
        part.record(f"N{n}", entry)


def _solve_summary(solve, *args) -> dict:
    """Status, time, iterations and KKT residual of the `BaselineResult` of `solve(*args)`
    (or its failure)."""
    start = time.perf_counter()
    try:
        result = solve(*args)
    except Exception as error:
        traceback.print_exc()
        return {"status": "failed", "error": f"{type(error).__name__}: {error}"}
    wall = time.perf_counter() - start
    if isinstance(result, str):  # IPOPT's failure, as `run_ipopt` reports it
        return {"status": "failed", "error": result, "wall_s": wall}
    return {
        "status": "ok" if result.success else "not converged",
        "time_s": result.time,
        "iterations": result.iterations,
        "kkt": result.kkt,
        "compile_s": result.extra.get("compile_time"),
        "inner_steps": _number(result.extra.get("num_inner_steps")),
        "return_status": result.extra.get("return_status"),
        "wall_s": wall,
        "result": result,
    }


def _number(value):
    return None if value is None else float(value)


def part_fno(part: Part, workdir: Path, smoke: bool) -> None:
    from experiments import bench_fno

    rows = {"tiny": ((64,), 2, 8, (4,), 2)} if smoke else bench_fno.ROWS
    repeats = 3 if smoke else 20
    part.record(
        "setup", f"pdeopt FNO step (forward + backward + Adam), float32, median of {repeats}"
    )
    for name, row in rows.items():
        part.attempt(name, _fno_row, row, repeats)


def _fno_row(row, repeats: int) -> dict:
    import numpy as np

    from experiments import bench_fno
    from experiments._report import time_alternating

    spatial, in_channels, width, modes, batch = row
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *spatial, in_channels), dtype=np.float32)
    y = rng.standard_normal((batch, *spatial, bench_fno.OUT_CHANNELS), dtype=np.float32)
    step, params, peak = bench_fno._ours(spatial, in_channels, width, modes, x, y)
    timing = time_alternating({"step": step}, repeats)["step"]
    return {
        "grid": list(spatial),
        "batch": batch,
        "in_channels": in_channels,
        "width": width,
        "modes": list(modes),
        "parameters": params,
        "step_ms": 1e3 * timing.median,
        "step_ms_min": 1e3 * timing.min,
        "peak_mib": peak / 2**20,
    }


PARTS = {
    "env": part_env,
    "timing": part_timing,
    "training": part_training,
    "scaling": part_scaling,
    "fno": part_fno,
}


# ---- the orchestration --------------------------------------------------------------------


def _child(args) -> int:
    """Run one part in this process (the parent's `--part` call)."""
    import jax

    jax.config.update("jax_enable_x64", True)  # before any array: the data, the solves
    part = Part(Path(args.part_out), args.part_budget_s)
    workdir = Path(args.out).parent
    extra = {"training": {"steps": args.train_steps}}.get(args.part, {})
    try:
        PARTS[args.part](part, workdir, args.smoke, **extra)
    except Exception as error:
        traceback.print_exc()
        part.record("error", f"{type(error).__name__}: {error}")
        return 1
    if part.failed:
        part.record("error", f"failed measurements: {', '.join(part.failed)} (see each)")
        return 1
    return 0


def _run_part(name: str, args, share: float, workdir: Path) -> dict:
    """Run part `name` in a child process stopped after `share` seconds; its record."""
    part_out = workdir / f"part_{name}.json"
    log = workdir / f"part_{name}.log"
    part_out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "experiments.gpu_suite", "--part", name]
    command += ["--part-out", str(part_out), "--part-budget-s", f"{share:.1f}"]
    command += ["--out", args.out, "--train-steps", str(args.train_steps)]
    command += ["--smoke"] * args.smoke
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(log, "w") as stream:
        process = subprocess.Popen(
            command, stdout=stream, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=share)
            status = "ok" if returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the part and anything it started
            process.wait()
            returncode, status = None, "stopped"
    record = {"status": status, "share_s": share, "wall_s": time.perf_counter() - start}
    record |= {"returncode": returncode, "log": str(log)}
    try:
        record["results"] = json.loads(part_out.read_text())
    except (OSError, ValueError):
        record["results"] = {}
    if status == "stopped":
        record["error"] = f"stopped after its share of the budget ({share:.0f} s)"
    elif status == "failed":
        record["error"] = record["results"].get("error") or _tail(log)
    if status != "ok":
        record["log_tail"] = _tail(log)
    return record


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def suite(args) -> dict:
    """Run every part within the budget; the suite's JSON (also written to `args.out`)."""
    out = Path(args.out)
    workdir = out.parent
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report = {
        "suite": "pdeopt GPU suite",
        "command": " ".join(["python -m experiments.gpu_suite", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "budget_s": args.budget_s,
        "smoke": args.smoke,
        "weights": WEIGHTS,
        "parts": {},
    }
    names = [name for name in PARTS if name in args.parts]
    for i, name in enumerate(names):
        left = args.budget_s - (time.perf_counter() - start)
        if name == "env":  # a timeout, not a share: it takes seconds
            share = min(ENV_TIMEOUT_S, left)
        else:
            share = left * WEIGHTS[name] / sum(WEIGHTS[n] for n in names[i:] if n != "env")
        minimum = 1.0 if args.smoke else MIN_SHARE_S
        if share < minimum:
            record = {"status": "skipped", "share_s": share, "error": "the budget is spent"}
        else:
            print(f"[{i + 1}/{len(names)}] {name}: up to {share:.0f} s", flush=True)
            record = _run_part(name, args, share, workdir)
        report["parts"][name] = record
        if name == "env" and record.get("results"):
            env = record["results"]
            report["devices"] = env.get("devices")
            report["versions"] = env.get("versions")
        report["wall_s"] = time.perf_counter() - start
        _write_json(out, report)
        print(f"    {record['status']} ({record.get('wall_s', 0.0):.0f} s)", flush=True)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/gpu_suite/suite.json")
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CPU check")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--part-out", help=argparse.SUPPRESS)
    parser.add_argument("--part-budget-s", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        return _child(args)
    report = suite(args)
    statuses = {name: record["status"] for name, record in report["parts"].items()}
    print(f"{args.out}: {statuses}")
    return 0 if all(s == "ok" for s in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
