"""The documentation's Python examples run as written, and the API pages list the exports."""

import importlib
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)

# Executes the blocks of one page in order, in one namespace, as a reader pasting them into
# one session would; stops at the first failure and names the block.
_RUNNER = """
import json, sys, time, traceback

blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for i, block in enumerate(blocks):
    start = time.perf_counter()
    try:
        exec(compile(block, f"<block {i}>", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"block {i} failed:\\n{block}", flush=True)
        sys.exit(1)
    print(f"block {i} ran in {time.perf_counter() - start:.1f} s", flush=True)
"""


def python_blocks(page: str) -> list[str]:
    """The ```python blocks of a docs page, in order."""
    blocks = _FENCE.findall((DOCS / page).read_text())
    assert blocks, f"docs/{page} has no python blocks"
    return blocks


def run_blocks(blocks: list[str], tmp_path: Path, timeout: float) -> None:
    """Run the blocks in a fresh interpreter, in an empty folder, with the repository
    checkout importable (as `problems` is for a reader who runs from the checkout)."""
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(tmp_path / "blocks.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(proc.stdout)  # the examples' own output, shown by `pytest -rA`
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert proc.stdout.count(" ran in ") == len(blocks), proc.stdout


def _trains(block: str) -> bool:
    return "fit(" in block or "train_and_test(" in block


@pytest.mark.parametrize("page", ["data.md", "failure_modes.md"])
def test_page_examples_run(page, tmp_path):
    """The examples of the data and failure-mode pages, as written (less those that read a
    PDEBench file the reader has and CI does not)."""
    blocks = [b for b in python_blocks(page) if '.h5")' not in b]
    run_blocks(blocks, tmp_path, timeout=300)


@pytest.mark.slow  # two tiny trainings: about 35 s on a 2-core CPU
def test_checkpoints_page_runs(tmp_path):
    """The checkpoints page: a run, the test error reproduced from its files, and a fit that
    continues from its checkpoint."""
    run_blocks(python_blocks("checkpoints.md"), tmp_path, timeout=300)


def test_quickstart_runs(tmp_path):
    """The quickstart as written (about a minute on a 2-core CPU, mostly compilation)."""
    run_blocks(python_blocks("quickstart.md"), tmp_path, timeout=300)


def test_new_pde_definition_runs(tmp_path):
    """The fast part of "Adding a PDE": the PDE class, its blocks and its residuals.

    Each training block compiles its own train step (a hard-constraint one its solve and
    implicit adjoint too: about 30 s on a 2-core CPU); they run in the slow test below, and
    the quickstart trains with a hard constraint here.
    """
    blocks = [b for b in python_blocks("new_pde.md") if not _trains(b)]
    assert len(blocks) >= 2 and "class Advection(AbstractPDE)" in blocks[0]
    run_blocks(blocks, tmp_path, timeout=300)


@pytest.mark.slow  # 2 to 3 minutes on a 2-core CPU
def test_new_pde_runs(tmp_path):
    """Every block of "Adding a PDE": soft, hard, MoE and Autodiff training."""
    run_blocks(python_blocks("new_pde.md"), tmp_path, timeout=900)


def _exports(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("page", sorted(p.name for p in (DOCS / "api").glob("*.md")))
def test_api_page_lists_exactly_the_exports(page):
    module = importlib.import_module("pdeopt" if page == "index.md" else f"pdeopt.{page[:-3]}")
    listed = re.findall(r"^::: (\S+)", (DOCS / "api" / page).read_text(), re.MULTILINE)
    assert all(name.startswith(module.__name__ + ".") for name in listed), listed
    names = {name.rsplit(".", 1)[1] for name in listed}
    exports = _exports(module)
    assert names == exports, (
        f"docs/api/{page}: missing {sorted(exports - names)}, "
        f"not exported {sorted(names - exports)}"
    )


@pytest.mark.slow  # about 25 s on a 2-core CPU (8 emulated devices)
def test_scaling_example_runs(tmp_path):
    """The mesh example of "Scaling out" (not the XLA crash reproducer, which crashes)."""
    blocks = [b for b in python_blocks("scaling.md") if "RET_CHECK" not in b]
    assert len(blocks) == 1 and "make_mesh(data=2, experts=4)" in blocks[0]
    run_blocks(blocks, tmp_path, timeout=600)
