"""PI-SC vs PI-HC vs PI-HC-MoE on one problem, several seeds, one table.

`python -m experiments.compare_constraints --seeds 0 1 2 [--out DIR] [overrides...]`

Runs `experiments.train` once per (constraint, seed) with identical problem, data, model size
(only the output head differs: 1 channel for PI-SC, N basis fields for the hard constraints),
optimiser and steps, then prints a markdown table of the per-sample test relative L2
(mean ± std over seeds of the per-run means; and the pooled per-sample std) and the
constraint-satisfaction report, and writes it to `DIR/comparison.md` and `.json`.
For the paper's diffusion–sorption table, with the paper's numbers beside ours, resume and a
record of how it was made, use `python -m experiments.reproduce pihcmoe_ds` (docs/reproduce.md).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from experiments._common import compose
from experiments._report import markdown_table
from experiments._validate import validate
from experiments.train import run

CONSTRAINTS = ("soft", "hard", "moe")
COLUMNS = (
    ("pde_rms_collocation", "PDE RMS (colloc.)"),
    ("pde_rms_heldout", "PDE RMS (held-out)"),
    ("ic_rms", "IC RMS"),
    ("bc_rms", "BC RMS"),
    ("seam_rms", "seam RMS"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--constraints", nargs="+", default=list(CONSTRAINTS))
    parser.add_argument("--out", type=Path, default=Path("outputs/compare_constraints"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    runs = {
        (constraint, seed): compose([*args.overrides, f"constraint={constraint}", f"seed={seed}"])
        for constraint in args.constraints
        for seed in args.seeds
    }
    for cfg in runs.values():  # Every run's config, before the first one trains.
        validate(cfg)
    results = {}
    for (constraint, seed), cfg in runs.items():
        metrics = run(cfg, args.out / f"{constraint}_seed{seed}")
        results.setdefault(constraint, []).append(metrics)
    table = format_table(results, args)
    print(table)
    (args.out / "comparison.md").write_text(table + "\n")
    summary = {
        c: [
            {
                k: m[k]
                for k in (
                    "test_rel_l2",
                    "test_rel_l2_std",
                    "test_unconverged_fraction",
                    "test_rel_l2_converged",
                    "constraint_report",
                    "steps_per_s",
                    "wall_time_s",
                )
            }
            for m in runs
        ]
        for c, runs in results.items()
    }
    (args.out / "comparison.json").write_text(json.dumps(summary, indent=2))


def format_table(results: dict, args) -> str:
    header = ["method", "test rel. L2 (mean ± std over seeds)", "pooled per-sample std"]
    header += ["unconverged test solves"] + [label for _, label in COLUMNS] + ["steps/s"]
    names = {"soft": "PI-SC", "hard": "PI-HC", "moe": "PI-HC-MoE"}
    rows = []
    for constraint, runs in results.items():
        means = np.array([m["test_rel_l2"] for m in runs])
        pooled = np.concatenate([m["test_rel_l2_per_sample"] for m in runs])
        row = [names.get(constraint, constraint), f"{means.mean():.4f} ± {means.std():.4f}"]
        row.append(f"{pooled.std():.4f}")
        row.append(f"{np.mean([m['test_unconverged_fraction'] for m in runs]):.1%}")
        for key, _ in COLUMNS:
            values = [m["constraint_report"].get(key) for m in runs]
            row.append("–" if None in values else f"{np.mean(values):.2e}")
        row.append(f"{np.mean([m['steps_per_s'] for m in runs]):.1f}")
        rows.append(row)
    note = (
        f"Seeds {args.seeds}; overrides {args.overrides or 'none'}; relative L2 is per sample "
        "over the whole (t, x) field, test split = the last problem.n_test seeds."
    )
    return markdown_table(header, rows) + "\n\n" + note


if __name__ == "__main__":
    main()
