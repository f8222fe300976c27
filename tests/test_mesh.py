"""Training on a device mesh: 8 emulated CPU devices in a subprocess (this process keeps its
one device) give the parameters of one device; two processes give those of one; bad meshes
fail with both numbers in the message."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments._common import compose
from experiments._schema import ConfigError
from experiments._validate import validate
from pdeopt.training import make_mesh

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, devices: int, timeout: int = 900) -> str:
    """`tests/<script> args` (or `python -m <module> args` for `script="-m module"`) in a
    subprocess with `devices` emulated CPU devices; its stdout."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = script.split() if script.startswith("-m ") else [str(ROOT / "tests" / script)]
    done = subprocess.run(
        [sys.executable, *command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _differences(cases: list[str]) -> dict[str, dict[str, float]]:
    out = _run("_mesh_equality.py", ",".join(cases), devices=8)
    print(out)  # the differences, shown by `pytest -rA`
    found = {}
    for line in out.splitlines():
        if "max_rel=" in line:
            case, *values = line.split()
            found[case] = {k: float(v) for k, v in (value.split("=") for value in values)}
    assert set(found) == set(cases), out
    return found


def _check(found, cases):
    for case in cases:
        # Parameters after 2 SGD steps and the last loss; `predict` runs the solves forward
        # once more, whose rounding (a device with one sample runs other kernels there) the
        # LM iterations amplify up to the solves' conditioning.
        assert found[case]["max_rel"] < 1e-10, (case, found[case])
        assert found[case]["loss_rel"] < 1e-8, (case, found[case])
        assert found[case]["predict_rel"] < 1e-7, (case, found[case])


def test_mesh_matches_one_device():
    """A hard constraint on a spectral PDE (Burgers: FFTs in the model and the PDE, the case
    that crashed XLA's CPU FFT when the batch was sharded by the partitioner) split over
    data, and 8 experts (diffusion–sorption) split over data × experts."""
    cases = ["burgers:hard:8x1", "sorption:moe:2x4"]
    _check(_differences(cases), cases)


@pytest.mark.slow  # ~12 min on a 2-core CPU
def test_mesh_matches_one_device_all_meshes():
    """Every mesh of 8 devices for PI-HC-MoE (8 experts), and data-parallel PI-SC and PI-HC,
    on diffusion–sorption and Burgers."""
    cases = [
        f"{p}:{c}:{m}"
        for p in ("sorption", "burgers")
        for c, meshes in (
            ("soft", ["8x1"]),
            ("hard", ["8x1"]),
            ("moe", ["8x1", "4x2", "2x4", "1x8"]),
        )
        for m in meshes
    ]
    _check(_differences(cases), cases)


@pytest.mark.slow  # ~1.5 min on a 2-core CPU
def test_default_experiment_mesh_is_bitwise(tmp_path):
    """The default experiment (float32 FNO, Adam, PI-HC-MoE with 4 experts) on the mesh
    data=4 × experts=2 writes the one-device run's `model.eqx`, byte for byte: the gradient
    is summed per sample in sample order and the update runs as the one-device program."""
    common = [
        "train.steps=12",
        "train.progress=false",
        f"problem.data_dir={tmp_path / 'data'}",
    ]
    _run("-m experiments.train", *common, f"hydra.run.dir={tmp_path / 'one'}", devices=1)
    mesh = ["train.mesh.data=4", "train.mesh.experts=2", f"hydra.run.dir={tmp_path / 'mesh'}"]
    _run("-m experiments.train", *common, *mesh, devices=8)
    one, mesh = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "mesh"))
    assert one["test_rel_l2"] == mesh["test_rel_l2"], (one, mesh)
    model = lambda d: (tmp_path / d / "model.eqx").read_bytes()
    assert model("one") == model("mesh")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _two_processes(out, *args: str) -> list[str]:
    """`tests/_distributed.py` in two processes with 2 CPU devices each; their stdouts."""
    port = str(_free_port())
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    script = str(ROOT / "tests" / "_distributed.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script, port, "2", str(i), str(out), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    return [stdout for stdout, _ in outs]


@pytest.mark.slow  # ~1.5 min on a 2-core CPU
def test_two_processes_match_one(tmp_path):
    """Two processes with 2 CPU devices each (gloo collectives, localhost coordinator) train
    as one process with 4 devices, on the mesh data=2 × experts=2, bit for bit."""
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    _run("_distributed.py", "0", "1", "0", str(one), devices=4)
    outs = _two_processes(two)
    assert "process 1 of 2: 4 devices" in outs[1]
    a, b = np.load(one), np.load(two)
    assert set(a.files) == set(b.files) and len(a.files) > 2
    # The collectives across processes move values without rounding them, and every sum is
    # in a fixed order: bit for bit, as a mesh against one device.
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_make_mesh_errors():
    with pytest.raises(ValueError, match=r"train.mesh.data=3 times train.mesh.experts=1 is 3"):
        make_mesh(3, 1)
    with pytest.raises(ValueError, match="both be -1"):
        make_mesh(-1, -1)
    with pytest.raises(ValueError, match="positive integer or -1"):
        make_mesh(0, 1)
    assert dict(make_mesh(-1, 1).shape) == {"data": 1, "experts": 1}


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            ["train.mesh.data=2"],
            "train.mesh.data=2 times train.mesh.experts=1 is 2, but there are 1",
        ),
        (["train.mesh.experts=3", "train.mesh.data=1"], "experts=3 is 3, but there are 1 devices"),
    ],
)
def test_bad_mesh_config(overrides, match, tmp_path):
    cfg = compose([*overrides, f"problem.data_dir={tmp_path}", "problem.n_train=8"])
    with pytest.raises(ConfigError, match=re.escape(match)):
        validate(cfg)


@pytest.mark.slow  # ~2 min on a 2-core CPU (three two-process runs)
def test_two_processes_resume(tmp_path):
    """Two processes checkpoint together (every step, into one folder) and a second
    two-process run continues from the newest checkpoint: its parameters are bitwise those
    of an uninterrupted two-process run."""
    whole, resumed, folder = tmp_path / "whole.npz", tmp_path / "resumed.npz", tmp_path / "ckpt"
    _two_processes(whole, "3")
    _two_processes(tmp_path / "first.npz", "2", str(folder))  # "interrupted" after step 2
    assert sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) == [1, 2]
    outs = _two_processes(resumed, "3", str(folder))  # train.steps grows: 2 -> 3
    for i, out in enumerate(outs):
        assert f"process {i}: checkpoints [1, 2]" in out, out
        assert "steps [2, 3]" in out, out  # the restored history, then step 3
    assert sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) == [1, 2, 3]
    a, b = np.load(whole), np.load(resumed)
    assert set(a.files) == set(b.files) and len(a.files) > 2
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
