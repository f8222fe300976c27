"""Only `pdeopt` is installed: the repository's `problems` and `experiments` neither shadow a
user's packages of the same names nor are shadowed by them."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fake_packages(where: Path) -> None:
    for name in ("problems", "experiments"):
        (where / name).mkdir()
        (where / name / "__init__.py").write_text(f"OWNER = 'user:{name}'\n")


def _python(code: str, cwd: Path, pythonpath: Path | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_only_the_library_is_installed():
    try:
        top = importlib.metadata.distribution("pdeopt").read_text("top_level.txt")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("pdeopt is not installed")
    if top is None:
        pytest.skip("the installer wrote no top_level.txt")
    assert top.split() == ["pdeopt"]


def test_user_packages_are_not_shadowed(tmp_path):
    """In a user's project, `problems` and `experiments` are the user's, next to pdeopt."""
    _fake_packages(tmp_path)
    code = "import pdeopt, problems, experiments; print(problems.OWNER, experiments.OWNER)"
    assert _python(code, cwd=tmp_path) == "user:problems user:experiments"


def test_repository_packages_are_not_shadowed(tmp_path):
    """From the checkout, the repository's own packages win over a user's on PYTHONPATH."""
    _fake_packages(tmp_path)
    code = (
        "import problems.burgers, experiments.train, pathlib; "
        "print(pathlib.Path(problems.__file__).parent.parent, "
        "pathlib.Path(experiments.__file__).parent.parent)"
    )
    assert _python(code, cwd=ROOT, pythonpath=tmp_path).split() == [str(ROOT)] * 2
