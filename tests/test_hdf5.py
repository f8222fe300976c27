"""HDF5 per-seed layout: round trip, atomicity, corruption."""

import numpy as np
import pytest

from pdeopt.data import DataFileError, read_seed_file, write_seed_file


@pytest.mark.parametrize("suffix", [".h5", ".hdf5"])
def test_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 5, 7, 1))
    grid = {"x": np.linspace(0, 1, 7), "t": np.linspace(0, 2, 5)}
    path = write_seed_file(tmp_path / f"f{suffix}", data, grid, {"nx": 7, "name": "demo"})
    read, read_grid, attrs = read_seed_file(path, expected_attrs={"nx": 7, "name": "demo"})
    np.testing.assert_array_equal(read, data)
    np.testing.assert_array_equal(read_grid["x"], grid["x"])
    assert attrs["name"] == "demo"
    subset, _, _ = read_seed_file(path, seeds=["0002", "0000"])
    np.testing.assert_array_equal(subset, data[[2, 0]])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # No temporary file left.


def test_mismatch_and_missing(tmp_path):
    path = write_seed_file(tmp_path / "f.h5", np.zeros((1, 2, 3, 1)), {"x": np.arange(3)})
    with pytest.raises(DataFileError, match="attribute 'nx'"):
        read_seed_file(path, expected_attrs={"nx": 4})
    with pytest.raises(DataFileError, match="no sample group '0005/data'"):
        read_seed_file(path, seeds=["0005"])
    with pytest.raises(DataFileError, match="does not exist"):
        read_seed_file(tmp_path / "g.h5")


def test_interrupted_write_leaves_nothing(tmp_path):
    class Boom(np.ndarray):
        pass

    good = write_seed_file(tmp_path / "f.h5", np.ones((1, 2, 3, 1)), {})
    before = good.read_bytes()
    with pytest.raises(TypeError):
        write_seed_file(good, np.ones((2, 2, 3, 1)), {"x": object()})
    assert good.read_bytes() == before  # The old file is intact; no temp files remain.
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]


def test_not_hdf5(tmp_path):
    path = tmp_path / "f.h5"
    path.write_text("not hdf5")
    with pytest.raises(DataFileError, match="not a readable HDF5 file"):
        read_seed_file(path)
