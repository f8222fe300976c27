"""Both PDEBench HDF5 layouts: detection, reading PDEBench-shaped files, checksums, errors."""

import h5py
import numpy as np
import pytest

from pdeopt.data import (
    DataFileError,
    read_data_file,
    read_seed_file,
    write_file_digest,
    write_seed_file,
    write_single_file,
)


def _pdebench_1d(path, n=4, nt=5, nx=8):
    """A file shaped like PDEBench's `1D_Advection_Sols_beta0.1.hdf5` (no pdeopt extras)."""
    rng = np.random.default_rng(0)
    tensor = rng.normal(size=(n, nt, nx)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["tensor"] = tensor
        f["x-coordinate"] = np.linspace(0, 1, nx)
        f["t-coordinate"] = np.linspace(0, 2, nt + 1)  # PDEBench stores nt + 1 times
    return tensor


@pytest.mark.parametrize("suffix", [".h5", ".hdf5"])
def test_pdebench_single_file_1d(tmp_path, suffix):
    tensor = _pdebench_1d(tmp_path / f"adv{suffix}")
    out = read_data_file(tmp_path / f"adv{suffix}")
    assert out.layout == "single-file" and out.channels == ("u",)
    np.testing.assert_array_equal(out.data, tensor[..., None])
    assert out.grid["t"].shape == (6,) and out.grid["x"].shape == (8,)
    assert out.seeds == ("0000", "0001", "0002", "0003")
    part = read_data_file(tmp_path / f"adv{suffix}", samples=[3, 1, 3])
    np.testing.assert_array_equal(part.data[..., 0], tensor[[3, 1, 3]])


def test_pdebench_darcy_and_compressible(tmp_path):
    rng = np.random.default_rng(1)
    u, nu = rng.normal(size=(3, 1, 6, 6)), rng.normal(size=(3, 6, 6))
    with h5py.File(tmp_path / "darcy.hdf5", "w") as f:
        f["tensor"], f["nu"] = u, nu
        f["x-coordinate"], f["y-coordinate"] = np.linspace(0, 1, 6), np.linspace(0, 1, 6)
    out = read_data_file(tmp_path / "darcy.hdf5")
    assert out.data.shape == (3, 1, 6, 6, 1)  # one steady frame, one channel
    np.testing.assert_array_equal(out.inputs["nu"], nu)
    fields = {k: rng.normal(size=(2, 4, 5, 5)) for k in ("density", "pressure", "Vx", "Vy")}
    with h5py.File(tmp_path / "cfd.hdf5", "w") as f:
        for k, v in fields.items():
            f[k] = v
        f["x-coordinate"], f["y-coordinate"] = np.arange(5.0), np.arange(5.0)
        f["t-coordinate"] = np.arange(5.0)
    out = read_data_file(tmp_path / "cfd.hdf5")
    assert out.channels == ("density", "pressure", "Vx", "Vy")
    np.testing.assert_array_equal(out.data[..., 2], fields["Vx"])


@pytest.mark.parametrize("suffix", [".h5", ".hdf5"])
@pytest.mark.parametrize("writer", [write_seed_file, write_single_file])
def test_round_trip_both_layouts(tmp_path, suffix, writer):
    rng = np.random.default_rng(2)
    data = rng.normal(size=(3, 4, 5, 6, 1))
    nu = rng.normal(size=(3, 5, 6))
    grid = {"x": np.arange(5.0), "y": np.arange(6.0), "t": np.arange(4.0)}
    path = writer(tmp_path / f"f{suffix}", data, grid, {"n": 3}, inputs={"nu": nu})
    out = read_data_file(path, expected_attrs={"n": 3})
    assert out.layout == ("per-seed" if writer is write_seed_file else "single-file")
    np.testing.assert_array_equal(out.data, data)
    np.testing.assert_array_equal(out.inputs["nu"], nu)
    for k in grid:
        np.testing.assert_array_equal(out.grid[k], grid[k])
    np.testing.assert_array_equal(read_data_file(path, samples=[2, 0]).data, data[[2, 0]])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_multichannel_single_file(tmp_path):
    data = np.random.default_rng(3).normal(size=(2, 3, 7, 2))
    path = write_single_file(tmp_path / "f.hdf5", data, {"x": np.arange(7.0)})
    with h5py.File(path) as f:
        assert f["tensor"].shape == (2, 3, 7, 2)
    np.testing.assert_array_equal(read_data_file(path).data, data)


def test_per_seed_pdebench_shape_and_names(tmp_path):
    data = np.random.default_rng(4).normal(size=(3, 5, 8, 1))
    path = write_seed_file(tmp_path / "ds.h5", data, {"x": np.arange(8.0), "t": np.arange(5.0)})
    out = read_data_file(path, samples=["0002", 0])
    assert out.seeds == ("0002", "0000")
    np.testing.assert_array_equal(out.data, data[[2, 0]])
    with pytest.raises(DataFileError, match="integer position"):
        read_data_file(write_single_file(tmp_path / "s.hdf5", data, {}), samples=["0001"])


@pytest.mark.parametrize("writer", [write_seed_file, write_single_file])
def test_tampered_sample_fails_checksum(tmp_path, writer):
    path = writer(tmp_path / "f.h5", np.ones((2, 3, 4, 1)), {"x": np.arange(4.0)})
    key = "0001/data" if writer is write_seed_file else "tensor"
    with h5py.File(path, "r+") as f:
        f[key][1, 0, 0] += 1.0
    with pytest.raises(DataFileError, match="checksum"):
        read_data_file(path)
    assert read_data_file(path, verify=False).data.shape == (2, 3, 4, 1)


def test_file_digest_sidecar(tmp_path):
    path = write_single_file(tmp_path / "f.hdf5", np.ones((1, 2, 3, 1)), {})
    sidecar = write_file_digest(path)
    read_data_file(path)
    with h5py.File(path, "r+") as f:
        f.attrs["note"] = "edited"
    with pytest.raises(DataFileError, match="file checksum"):
        read_data_file(path)
    write_single_file(path, np.ones((1, 2, 3, 1)), {})  # rewriting drops the stale digest
    assert not sidecar.exists()
    read_data_file(path)


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(DataFileError, match="does not exist.*experiments.generate"):
        read_data_file(tmp_path / "missing.hdf5")
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(DataFileError, match="not a readable HDF5 file.*Delete it"):
        read_data_file(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["weights"] = np.zeros(3)
    with pytest.raises(DataFileError, match=r"no known layout.*\['weights'\]"):
        read_data_file(tmp_path / "other.h5")
    _pdebench_1d(tmp_path / "adv.hdf5")
    with pytest.raises(DataFileError, match="out of range"):
        read_data_file(tmp_path / "adv.hdf5", samples=[4])
    with pytest.raises(DataFileError, match="per-seed layout"):
        read_seed_file(tmp_path / "adv.hdf5")
    path = write_seed_file(tmp_path / "s.h5", np.ones((1, 2, 3, 1)), {}, {"nx": 3})
    with pytest.raises(DataFileError, match="attribute 'nx' is 3"):
        read_data_file(path, expected_attrs={"nx": 4})


def test_truncated_file(tmp_path):
    path = write_single_file(tmp_path / "f.hdf5", np.ones((8, 4, 64, 1)), {"x": np.arange(64.0)})
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataFileError, match="corrupt"):
        read_data_file(path)


def test_train_test_split():
    from pdeopt.data import train_test_split

    u = np.arange(5 * 3, dtype=float).reshape(5, 3)
    seeds = [f"{i:04d}" for i in range(5)]
    train, test = train_test_split(u[:, 0], u, seeds, 2, 2, "f.h5")
    np.testing.assert_array_equal(train.solutions, u[:2])
    np.testing.assert_array_equal(test.conditions, u[3:, 0])
    assert train.seeds == ("0000", "0001") and test.seeds == ("0003", "0004")
    with pytest.raises(DataFileError, match="'f.h5' holds 5 samples but problem.n_train"):
        train_test_split(u[:, 0], u, seeds, 4, 2, "f.h5")
