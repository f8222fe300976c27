"""Reproduce one table of a paper: every method × seed a run, then a table beside the paper's.

```
python -m experiments.reproduce <target> [scale=smoke|small|paper] [seeds=[0,1,2]] [out=DIR]
                                [only=[method,...]]
python -m experiments.reproduce report [dir=outputs/reproduce] [page=docs/results.md]
```

A target is `configs/reproduce/<target>.yaml` (its schema: `experiments._schema.ReproduceTarget`):
its methods (each a list of the runner's overrides), the metric and the paper's number per
method, and the sizes of each scale. Every run's config is checked before the first one
trains. Each (method, seed) run has its own directory `OUT/<method>/seed<seed>`; a run whose
`metrics.json` is complete is reused, so a killed reproduction reruns only the missing runs.
`OUT` (default `outputs/reproduce/<target>/<scale>`) receives `table.md`, `results.json` and
`figure.png`. A failed run is recorded as failed (in both) and makes the command exit with 1.
`report` writes docs/results.md from every `results.json` under a directory, kept in docs/results/.
"""

import dataclasses
import datetime
import json
import math
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import jax
import numpy as np
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from experiments._common import CONFIG_DIR, compose
from experiments._report import fingerprint, fmt, markdown_table
from experiments._reproduce_adasketch import RUNNERS as ADASKETCH_RUNNERS
from experiments._reproduce_timing import RUNNERS as TIMING_RUNNERS
from experiments._runner import Runner, stored_differences
from experiments._schema import ConfigError
from pdeopt._files import atomic_write
from pdeopt.training import save_json

TARGETS_DIR = Path(CONFIG_DIR) / "reproduce"
DEFAULT_OUT = Path("outputs/reproduce")
DEFAULT_PAGE = Path("docs/results.md")


# Keys of a training config that do not change a run's result.
_COSMETIC = ("train.progress", "problem.data_dir", "train.distributed")


def _prepare_train(overrides: list[str]) -> DictConfig:
    from experiments._validate import validate

    cfg = compose(overrides)
    validate(cfg)
    return cfg


def _run_train(cfg: DictConfig, run_dir: Path) -> dict:
    from experiments.train import run

    return run(cfg, run_dir)


def _train_differences(cfg: DictConfig, run_dir: Path) -> list[str]:
    return stored_differences(cfg, run_dir, _COSMETIC)


def _train_dtype(cfg: DictConfig) -> str | None:
    return OmegaConf.select(cfg, "model.dtype") or OmegaConf.select(cfg, "model.model.dtype")


# `runner:` of a target config. Another benchmark (a CUTEst table, a timing figure) adds its
# own entry, whose `run` writes a metrics.json with `status: ok`.
RUNNERS = {
    "train": Runner(_prepare_train, _run_train, _train_differences, _train_dtype),
    **ADASKETCH_RUNNERS,
    **TIMING_RUNNERS,
}


@dataclasses.dataclass(frozen=True)
class Run:
    """One (method, seed) run of a target: its config and its directory."""

    method: str
    seed: int
    overrides: tuple[str, ...]
    directory: Path
    cfg: DictConfig


def targets() -> list[str]:
    """The target names: the options of the config group `reproduce`."""
    return sorted(p.stem for p in TARGETS_DIR.glob("*.yaml"))


def load(target: str, overrides: list[str] = ()) -> DictConfig:
    """The composed `reproduce.yaml` for `target` and the command-line `overrides`; raises
    `ConfigError` for an unknown target, scale or runner, naming the valid ones."""
    if target not in targets():
        raise ConfigError(
            f"Unknown target {target!r}; the targets are {', '.join(targets())} "
            f"(configs/reproduce/*.yaml), or `report`."
        )
    cfg = compose([f"reproduce={target}", *overrides], config_name="reproduce")
    spec = cfg.reproduce
    if cfg.scale not in spec.scales:
        raise ConfigError(
            f"scale={cfg.scale} is not a scale of target {target}; use one of "
            f"{', '.join(spec.scales)}."
        )
    if spec.runner not in RUNNERS:
        raise ConfigError(
            f"reproduce.runner={spec.runner} (target {target}) is not a runner; use one of "
            f"{', '.join(RUNNERS)}."
        )
    if spec.scales[cfg.scale].columns is not None:
        spec.columns = spec.scales[cfg.scale].columns
    for method in [*spec.scales[cfg.scale].methods, *(cfg.only or [])]:
        if method not in spec.methods:
            raise ConfigError(
                f"Method {method} (in only=... or reproduce.scales.{cfg.scale}.methods) is not "
                f"a method of target {target}; its methods are {', '.join(spec.methods)}."
            )
    return cfg


def plan(cfg: DictConfig, target: str) -> tuple[Path, list[Run]]:
    """The output directory and every run of the composed `cfg`, each config checked by the
    runner before any of them runs."""
    spec = cfg.reproduce
    scale = spec.scales[cfg.scale]
    seeds = list(cfg.seeds if cfg.seeds is not None else scale.seeds)
    out = Path(cfg.out) if cfg.out is not None else DEFAULT_OUT / target / cfg.scale
    runs = []
    methods = list(spec.methods) if cfg.only is None else list(cfg.only)
    for method in methods:
        entry = spec.methods[method]
        for seed in seeds:
            overrides = (
                *spec.overrides,
                *scale.overrides,
                *entry.overrides,
                *scale.methods.get(method, []),
                f"seed={seed}",
            )
            try:
                run_cfg = RUNNERS[spec.runner].prepare(list(overrides))
            except Exception as error:
                raise ConfigError(
                    f"Target {target}, method {method}, seed {seed}: {error}"
                ) from error
            directory = out / method / f"seed{seed}"
            differing = RUNNERS[spec.runner].differences(run_cfg, directory)
            if differing:
                raise ConfigError(
                    f"{directory} holds a run of another config ({'; '.join(differing[:3])}); "
                    "choose another out=..., or delete that directory to rerun it."
                )
            runs.append(Run(method, seed, overrides, directory, run_cfg))
    return out, runs


def completed(directory: Path) -> dict | None:
    """The metrics of a complete run in `directory` (`metrics.json` with `status: ok`), or
    `None`: no run, a killed one, or a failed one (all run again)."""
    try:
        metrics = json.loads((directory / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("status") == "ok" else None


def lookup(metrics: dict, key: str) -> float | None:
    """The number at the dotted `key` of `metrics`, or `None` where it has none."""
    value = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def execute(spec: DictConfig, runs: list[Run]) -> list[dict]:
    """Run (or reuse) every run; one record per run: status (`ok`, `reused`, `failed`), the
    metric and the columns, the run's directory and, for a failed run, its error."""
    runner = RUNNERS[spec.runner]
    keys = [spec.metric.key, *(column.key for column in spec.columns)]
    records = []
    for i, run in enumerate(runs):
        record = {"method": run.method, "seed": run.seed, "run_dir": str(run.directory)}
        metrics = completed(run.directory)
        if metrics is not None:
            record["status"] = "reused"
        else:
            print(f"[{i + 1}/{len(runs)}] {run.method} seed {run.seed}", flush=True)
            try:
                metrics = runner.run(run.cfg, run.directory)
                record["status"] = "ok"
            except Exception as error:
                traceback.print_exc()
                record |= {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        if metrics is not None:
            record["values"] = {key: lookup(metrics, key) for key in keys}
            value = record["values"][spec.metric.key]
            if value is None or not math.isfinite(value):
                error = f"metrics.json has no finite {spec.metric.key} ({value})"
                record |= {"status": "failed", "error": error}
        record["overrides"] = list(run.overrides)
        record["model_dtype"] = runner.model_dtype(run.cfg)
        records.append(record)
    return records


def summarize(spec: DictConfig, records: list[dict]) -> list[dict]:
    """Per method: the label, the paper's number, and the mean and std over the seeds that
    did not fail of the metric and of each column, in their display units."""
    rows = []
    for method in dict.fromkeys(r["method"] for r in records):
        entry = spec.methods[method]
        good = [r for r in records if r["method"] == method and r["status"] != "failed"]
        row = {"method": method, "label": entry.label, "paper": entry.paper}
        row["runs"] = sum(r["method"] == method for r in records)
        row["failed"] = row["runs"] - len(good)
        for metric in [spec.metric, *spec.columns]:
            values = [r["values"][metric.key] for r in good]
            values = [metric.scale * v for v in values if v is not None]
            row[metric.key] = (
                {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}
                if values
                else None
            )
        rows.append(row)
    return rows


def format_table(results: dict) -> str:
    """The markdown table of a `results.json`: ours (mean ± std over seeds) beside the paper's
    number and the ratio, the failed runs, then the columns; a footnote defines the metric."""
    metric, columns = results["metric"], results["columns"]
    unit = lambda m: f" ({m['unit']})" if m["unit"] else ""
    headers = ["method", f"ours: {metric['label']}{unit(metric)}"]
    has_paper = results["paper_metric"] is not None
    if has_paper:
        headers += [f"paper{unit(metric)}", "ours / paper"]
    headers += ["runs ok"] + [f"{c['label']}{unit(c)}" for c in columns]
    rows = []
    for row in results["summary"]:
        ours = row[metric["key"]]
        cells = [row["label"], _mean_std(ours)]
        if has_paper:
            ratio = ours["mean"] / row["paper"] if ours and row["paper"] else None
            cells += [fmt(row["paper"], ".3g"), fmt(ratio, ".3g")]
        ok = f"{row['runs'] - row['failed']}/{row['runs']}"
        cells += [ok if not row["failed"] else f"**{ok} ({row['failed']} failed)**"]
        cells += [_mean_std(row[c["key"]]) for c in columns]
        rows.append(cells)
    notes = [
        f"Seeds {results['seeds']}, scale `{results['scale']}`; mean ± std over the seeds whose "
        f"run succeeded. {metric['label'][0].upper()}{metric['label'][1:]}: {metric['definition']}."
    ]
    if has_paper:
        notes.append(f"The paper's numbers ({results['source']}): {results['paper_metric']}.")
    failed = [r for r in results["runs"] if r["status"] == "failed"]
    notes += [f"**Failed**: {r['method']} seed {r['seed']}: {r['error']}" for r in failed]
    notes += comparison(results)
    notes += [results["details"]] if results.get("details") else []
    return markdown_table(headers, rows) + "\n\n" + "\n\n".join(notes)


def comparison(results: dict) -> list[str]:
    """Notes on ours against the paper: each method whose mean lies more than 2 standard
    deviations of our seeds from the paper's number (without spread: more than 10 % off),
    whether the paper's ordering of the methods holds and by how many standard errors, and
    the target's notes on causes."""
    key = results["metric"]["key"]
    rows = {r["method"]: r for r in results["summary"] if r[key] is not None}
    notes, differing = [], []
    for row in rows.values():
        ours, paper = row[key], row["paper"]
        if paper is None:
            continue
        ratio = ours["mean"] / paper
        if ours["n"] < 2 or ours["std"] == 0:  # no spread: more than 10 % off
            if abs(ratio - 1) <= 0.1:
                continue
            spread = f"{ours['n']} seed{'s' * (ours['n'] != 1)} without spread"
        elif abs(ours["mean"] - paper) <= 2 * ours["std"]:
            continue
        else:
            spread = f"{abs(ours['mean'] - paper) / ours['std']:.1f} std of our seeds"
        differing.append(
            f"{row['label']} {ours['mean']:.3g} vs {paper:.3g} ({ratio:.3g}×, {spread})"
        )
    if differing:
        notes.append(
            "**Differs from the paper** beyond the seed spread: " + "; ".join(differing) + "."
        )
    order = [m for m in results.get("ordering") or [] if m in rows]
    if len(order) > 1:
        pairs, holds = [], True
        for a, b in zip(order, order[1:]):
            sa, sb = rows[a][key], rows[b][key]
            holds &= sa["mean"] < sb["mean"]
            pair = (
                f"{rows[a]['label']} {'<' if sa['mean'] < sb['mean'] else '≥'} {rows[b]['label']}"
            )
            error = math.sqrt(sa["std"] ** 2 / sa["n"] + sb["std"] ** 2 / sb["n"])
            if error > 0:
                pair += f" by {abs(sb['mean'] - sa['mean']) / error:.1f} standard errors"
            pairs.append(pair)
        labels = " < ".join(rows[m]["label"] for m in order)
        verdict = "holds" if holds else "does **not** hold"
        notes.append(
            f"The paper's ordering {labels} {verdict} here: {'; '.join(pairs)} (standard error of "
            "the difference of two means: √(s₁²/n₁ + s₂²/n₂), s the std over n seeds)."
        )
    if results.get("notes"):
        notes.append(results["notes"].strip())
    return notes


def _mean_std(summary: dict | None) -> str:
    if summary is None:
        return "—"
    return f"{summary['mean']:.3g} ± {summary['std']:.2g}"


def plot(results: dict, path: Path) -> None:
    """Bar chart of the metric per method (error bars: std over seeds), the paper's numbers
    as markers; log scale when the bars span more than a factor 20."""
    from experiments._plots import plt, save_figure

    metric = results["metric"]
    rows = results["summary"]
    means = [r[metric["key"]]["mean"] if r[metric["key"]] else np.nan for r in rows]
    stds = [r[metric["key"]]["std"] if r[metric["key"]] else 0.0 for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 3.5))
    ax.bar(x, means, yerr=stds, capsize=4, label="ours (mean ± std over seeds)")
    paper = [r["paper"] if r["paper"] is not None else np.nan for r in rows]
    if not np.all(np.isnan(paper)):
        ax.plot(x, paper, "k_", markersize=28, markeredgewidth=2, label="paper")
    shown = [v for v in means + paper if np.isfinite(v) and v > 0]
    if shown and max(shown) > 20 * min(shown):
        ax.set_yscale("log")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=15)
    ax.set_ylabel(metric["label"] + (f" ({metric['unit']})" if metric["unit"] else ""))
    ax.set_title(f"{results['target']} ({results['scale']})")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def git_state() -> dict:
    """The commit of the working tree and whether it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


_PROVENANCE = ("date", "machine", "git", "wall_time_s")


def _provenance(out: Path, records: list[dict], wall: float) -> dict:
    """When and where the runs were made: `date`, `machine`, `git`, `wall_time_s` (seconds of
    the call) and `runs_reused`. A call that reuses every run keeps those of the earlier call
    that made them (its `results.json` in `out`), so rewriting a table does not date it anew."""
    reused = sum(r["status"] == "reused" for r in records)
    now = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": fingerprint(),
        "git": git_state(),
        "wall_time_s": wall,
        "runs_reused": reused,
    }
    earlier = out / "results.json"
    if reused < len(records) or not earlier.is_file():
        return now
    kept = {k: v for k, v in json.loads(earlier.read_text()).items() if k in _PROVENANCE}
    now.pop("wall_time_s")  # this call's seconds are not the runs'
    return now | kept | {"rewritten": now["date"]}


def reproduce(target: str, overrides: list[str] = ()) -> dict:
    """Run `target` (see the module docstring); returns the `results.json` contents."""
    jax.config.update("jax_enable_x64", True)
    cfg = load(target, list(overrides))
    spec = cfg.reproduce
    out, runs = plan(cfg, target)
    print(f"{target} scale={cfg.scale}: {len(runs)} runs in {out}", flush=True)
    start = time.perf_counter()
    records = execute(spec, runs)
    spec_dict = OmegaConf.to_container(spec, resolve=True)
    results = {
        "target": target,
        "title": spec.title,
        "source": spec.source,
        "scale": cfg.scale,
        "seeds": sorted({r.seed for r in runs}),
        "command": shlex.join(["python", "-m", "experiments.reproduce", target, *overrides]),
        **_provenance(out, records, time.perf_counter() - start),
        "precision": {
            "x64": bool(jax.config.read("jax_enable_x64")),
            "model_dtype": {r["method"]: r["model_dtype"] for r in records},
        },
        "metric": spec_dict["metric"],
        "paper_metric": spec.paper_metric,
        "columns": spec_dict["columns"],
        "methods": spec_dict["methods"],
        "ordering": spec_dict["ordering"],
        "notes": spec_dict["notes"],
        "runs": records,
    }
    results["summary"] = summarize(spec, records)
    runner = RUNNERS[spec.runner]
    results["details"] = runner.details(results) if runner.details else None
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(results)
    with atomic_write(out / "table.md") as tmp:
        tmp.write_text(f"# {spec.title}\n\n{table}\n")
    save_json(out / "results.json", results)
    (runner.plot or plot)(results, out / "figure.png")
    print(table)
    print(f"results={out / 'results.json'}")
    return results


_SCALES = ("paper", "small", "smoke")


def report(directory: Path = DEFAULT_OUT, page: Path = DEFAULT_PAGE) -> str:
    """Write one markdown page of every reproduced table; returns the page.

    Every `results.json` under `directory` (with its `figure.png`) is first copied into the
    page's archive, `<page folder>/results/<target>/<scale>/`, replacing the one of the same
    target and scale; the page is then written from everything in the archive, so it keeps
    the tables of targets not rerun, and `report dir=<page folder>/results` rewrites it from
    the archive alone. Each table comes with its command, machine, date and commit.
    """
    found = sorted(directory.rglob("results.json"))
    if not found:
        raise FileNotFoundError(
            f"No results.json under {directory}; run `python -m experiments.reproduce "
            f"<target>` first (targets: {', '.join(targets())})."
        )
    archive = page.parent / "results"
    for path in found:
        results = json.loads(path.read_text())
        into = archive / results["target"] / results["scale"]
        if into.resolve() == path.parent.resolve():
            continue
        into.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "figure.png"):
            if (path.parent / name).is_file():
                with atomic_write(into / name) as tmp:
                    shutil.copyfile(path.parent / name, tmp)
    archived = [json.loads(p.read_text()) for p in archive.rglob("results.json")]
    archived.sort(key=lambda r: (r["target"], _SCALES.index(r["scale"])))
    sections = [
        "# Reproduced tables\n",
        "<!-- Generated by `python -m experiments.reproduce report`; do not edit. -->\n",
        "Every table below was written by `python -m experiments.reproduce <target>` (see "
        "[Reproducing the papers](reproduce.md)) and this page by `python -m "
        "experiments.reproduce report`, from the `results.json` files kept in `docs/results/`. "
        "Each gives the command, machine, date and commit of its runs. The `smoke` scale "
        "checks the pipeline only: its numbers say nothing about accuracy. "
        "[Measurements](measurements.md) holds the other measurements and their history.\n",
    ]
    for results in archived:
        git = results["git"]
        dirty = " (with uncommitted changes)" if git["dirty"] else ""
        machine = results["machine"]
        where = f"results/{results['target']}/{results['scale']}"
        sections += [
            f"## {results['title']} — `{results['target']}`, scale `{results['scale']}`\n",
            f"```bash\n{results['command']}\n```\n",
            f"Run {results['date']} at commit `{git['commit']}`{dirty}; machine: "
            f"{machine['cpu']}, {machine['cores']} cores, {machine['devices']}, jax "
            f"{machine['jax']}, x64 {results['precision']['x64']}; load average when it "
            f"ended {machine['load']} (times grow with the load).{_call_time(results)}\n",
            format_table(results) + "\n",
        ]
        if (page.parent / where / "figure.png").is_file():
            sections.append(f"![{results['target']} ({results['scale']})]({where}/figure.png)\n")
    text = "\n".join(sections)
    page.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(page) as tmp:
        tmp.write_text(text)
    print(f"{page}: {len(archived)} tables ({len(found)} from {directory})")
    return text


def _call_time(results: dict) -> str:
    """The report's sentences on how long the command took and whether the table was
    rewritten from runs an earlier call made, where `results.json` says."""
    wall, rewritten = results.get("wall_time_s"), results.get("rewritten")
    parts = []
    if wall is not None:
        reused = 0 if rewritten else results.get("runs_reused", 0)
        made = "that made the runs " if rewritten else ""
        but = f", {reused} of {len(results['runs'])} runs reused from an earlier call"
        parts.append(f"The command {made}took {wall / 60:.1f} min{but if reused else ''}.")
    if rewritten:
        parts.append(f"Table rewritten from those runs {rewritten}.")
    return "".join(" " + part for part in parts)


def _options(argv: list[str], allowed: set[str]) -> dict[str, str]:
    options = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    unknown = [arg for arg in argv if "=" not in arg or arg.split("=", 1)[0] not in allowed]
    if unknown:
        raise ConfigError(f"`report` takes {' and '.join(sorted(allowed))}=...; got {unknown}.")
    return options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__ + f"\nTargets: {', '.join(targets())}.")
        return 0 if argv else 2
    try:
        if argv[0] == "report":
            options = _options(argv[1:], {"dir", "page"})
            report(Path(options.get("dir", DEFAULT_OUT)), Path(options.get("page", DEFAULT_PAGE)))
            return 0
        results = reproduce(argv[0], argv[1:])
    except (ConfigError, HydraException, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = sum(r["status"] == "failed" for r in results["runs"])
    if failed:
        print(f"{failed} of {len(results['runs'])} runs failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
