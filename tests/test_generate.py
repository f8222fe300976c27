"""Resumable data generation: chunks, interruption, resume without recomputation, CLI."""

import h5py
import numpy as np
import pytest

from experiments._common import compose, instantiate
from pdeopt.data import (
    DataFileError,
    Samples,
    generate_file,
    parts_dir,
    read_data_file,
    read_seed_file,
)
from problems.diffusion_sorption import DiffusionSorptionProblem


class Interrupted(RuntimeError):
    pass


class Counting:
    """A `SampleGenerator` that records every call and can fail on call `fail_on`; `inner` is
    a problem (its one data file's generator is wrapped)."""

    def __init__(self, problem, fail_on=None):
        (inner,) = problem.splits()
        self.inner, self.fail_on, self.calls = inner, fail_on, []
        self.num_samples, self.data_layout = inner.num_samples, inner.data_layout
        self.data_grid, self.data_attrs = inner.data_grid, inner.data_attrs

    def generate_samples(self, seeds):
        self.calls.append(list(seeds))
        if len(self.calls) == self.fail_on:
            raise Interrupted("simulated interruption")
        return self.inner.generate_samples(seeds)


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return DiffusionSorptionProblem(nx=16, nt=6, n_train=3, n_test=2, data_dir=str(folder))


@pytest.fixture(scope="module")
def reference(problem, tmp_path_factory):
    """The data set generated in one uninterrupted run."""
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    generator = Counting(problem)
    generate_file(generator, path, chunk_size=2, progress=False)
    assert generator.calls == [[0, 1], [2, 3], [4]]
    return read_data_file(path).data


def test_matches_one_shot_generation(problem, reference):
    pde = problem.pde
    one_shot = problem.solve(pde, problem.sample_inputs(pde, np.arange(problem.num_samples)))
    np.testing.assert_allclose(reference[..., 0], one_shot, rtol=1e-12, atol=1e-14)


def test_resume_after_interruption(problem, reference, tmp_path):
    path = tmp_path / "data.h5"
    first = Counting(problem, fail_on=3)
    with pytest.raises(Interrupted):
        generate_file(first, path, chunk_size=2, progress=False)
    assert not path.exists()
    assert sorted(p.name for p in parts_dir(path).iterdir()) == [
        "000000-000002.h5",
        "000002-000004.h5",
    ]
    resumed = Counting(problem)
    generate_file(resumed, path, chunk_size=2, progress=False)
    assert resumed.calls == [[4]]  # only the unfinished chunk is solved again
    assert not parts_dir(path).exists()
    assert path.with_name("data.h5.sha256").exists()
    np.testing.assert_array_equal(read_data_file(path).data, reference)
    again = Counting(problem)
    generate_file(again, path, chunk_size=2, progress=False)
    assert again.calls == []  # a complete file is kept


def test_corrupt_or_foreign_chunk_is_recomputed(problem, reference, tmp_path):
    path = tmp_path / "data.h5"
    with pytest.raises(Interrupted):
        generate_file(Counting(problem, fail_on=3), path, chunk_size=2, progress=False)
    chunk0, chunk1 = sorted(parts_dir(path).iterdir())
    chunk0.write_bytes(chunk0.read_bytes()[:100])  # truncated by a crash
    with h5py.File(chunk1, "r+") as f:
        f.attrs["seed"] = 99  # left over from another configuration
    resumed = Counting(problem)
    generate_file(resumed, path, chunk_size=2, progress=False)
    assert resumed.calls == [[0, 1], [2, 3], [4]]
    np.testing.assert_array_equal(read_data_file(path).data, reference)


def test_problem_load_reuses_generated_file(problem, reference):
    assert problem.generate(chunk_size=2, progress=False) == [problem.cache_path]
    mtime = problem.cache_path.stat().st_mtime_ns
    train, test = problem.load()
    assert problem.cache_path.stat().st_mtime_ns == mtime  # read, not regenerated
    np.testing.assert_array_equal(train.solutions, reference[:3, ..., 0])
    data, _, _ = read_seed_file(problem.cache_path)  # the per-seed layout of the cache
    assert data.shape == (5, 6, 16, 1)


def test_bad_generators(tmp_path):
    with pytest.raises(TypeError, match="SampleGenerator"):
        generate_file(object(), tmp_path / "x.h5")
    with pytest.raises(TypeError, match="SampleGenerator"):  # A problem has one per file.
        generate_file(DiffusionSorptionProblem(), tmp_path / "x.h5")

    class Broken(Counting):
        def generate_samples(self, seeds):
            return Samples(data=np.full((len(seeds), 6, 16, 1), np.nan))

    problem = DiffusionSorptionProblem(nx=16, nt=6, n_train=1, n_test=1)
    with pytest.raises(FloatingPointError, match="non-finite"):
        generate_file(Broken(problem), tmp_path / "x.h5", progress=False)
    with pytest.raises(DataFileError, match="does not exist"):
        read_data_file(tmp_path / "x.h5")


def test_command(tmp_path, capsys):
    from experiments.generate import run

    out = tmp_path / "ds.hdf5"
    overrides = [
        "problem.nx=16",
        "problem.nt=6",
        "problem.n_train=2",
        "problem.n_test=1",
        f"output={out}",
        "chunk_size=2",
        "progress=false",
    ]
    run(compose(overrides, config_name="generate"))
    assert "wrote" in capsys.readouterr().out.splitlines()[-1]
    assert read_data_file(out).data.shape == (3, 6, 16, 1)


# Every problem config, at a tiny size: `python -m experiments.generate problem=<p>` works.
TINY = {
    "advection": ["problem.nx=8", "problem.nt=5"],
    "allen_cahn": ["problem.nx=8", "problem.nt=4"],
    "burgers": ["problem.nx=16", "problem.nt=5"],
    "burgers_autodiff": ["problem.nx=16", "problem.nt=5"],
    "darcy": ["problem.n=8"],
    "diffusion_reaction": ["problem.nx=8", "problem.nt=5"],
    "diffusion_sorption": ["problem.nx=8", "problem.nt=5"],
    "diffusion_sorption_paper": ["problem.nx=8", "problem.nt=5"],
    "heat": ["problem.nx=8", "problem.nt=5"],
    "navier_stokes": ["problem.nx=8", "problem.nx_test=8", "problem.nt=4", "problem.t_final=0.1"],
    "navier_stokes_paper": [
        "problem.nx=8",
        "problem.nx_test=16",
        "problem.eval_nx=[8]",
        "problem.nt=4",
        "problem.t_final=0.1",
    ],
    "poisson": ["problem.n=8"],
    "porous_medium": ["problem.nx=8", "problem.nt=5"],
}


def test_every_problem_has_a_tiny_case():
    from pathlib import Path

    names = {p.stem for p in (Path(__file__).parent.parent / "configs" / "problem").glob("*.yaml")}
    assert names == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_command_generates_every_problem(name, tmp_path, capsys):
    from experiments.generate import run

    sizes = ["problem.n_train=2", "problem.n_test=1", "problem.batch_size=2"]
    overrides = [f"problem={name}", *TINY[name], *sizes, f"problem.data_dir={tmp_path}"]
    paths = run(compose([*overrides, "progress=false"], config_name="generate"))
    lines = capsys.readouterr().out.splitlines()
    assert len(paths) == len([line for line in lines if line.startswith("wrote ")]) >= 1
    assert all(path.exists() and path.parent == tmp_path for path in paths)
    problem = instantiate(compose(overrides, config_name="generate").problem)
    train, test = problem.load()  # Reads what the command wrote, without regenerating.
    assert [path.stat().st_mtime_ns for path in paths] == [p.stat().st_mtime_ns for p in paths]
    assert len(train) == 2 and len(test) == 1
    assert train.solutions.shape[1:] == problem.pde.grid_shape
    assert test.solutions.shape[1:] == problem.test_pde.grid_shape
    assert np.all(np.isfinite(train.solutions)) and np.all(np.isfinite(test.solutions))
