"""experiments.basis_floor: the best shared-basis error of a problem's test solutions."""

import numpy as np
import pytest

from experiments._common import compose
from experiments._schema import ConfigError
from experiments.basis_floor import floor, run


def test_floor_is_zero_in_the_span_and_the_residual_outside():
    rng = np.random.default_rng(0)
    modes = np.linalg.qr(rng.normal(size=(40, 3)))[0].T  # 3 orthonormal fields of 40 values
    train = rng.normal(size=(20, 3)) @ modes
    inside = rng.normal(size=(5, 3)) @ modes
    result = floor(train.reshape(20, 4, 10), inside.reshape(5, 4, 10), [3])
    assert result[3][0] < 1e-12 and result[3][1] < 1e-12
    # A test field with a part orthogonal to the span: the error is that part's share.
    outside = rng.normal(size=40)
    outside -= modes.T @ (modes @ outside)
    test = inside[:1] + outside
    want = np.linalg.norm(outside) / np.linalg.norm(test[0])
    mean, worst = floor(train, test, [3])[3]
    np.testing.assert_allclose([mean, worst], [want, want], rtol=1e-10)
    # Fewer directions: the error cannot fall as N shrinks.
    errors = floor(train, inside, [1, 2, 3])
    assert errors[1][0] >= errors[2][0] >= errors[3][0]


def test_floor_refuses_other_grids_and_too_many_directions():
    train = np.ones((4, 10))
    with pytest.raises(ConfigError, match="different grids"):
        floor(train, np.ones((2, 12)), [2])
    with pytest.raises(ConfigError, match="raise problem.n_train"):
        floor(train, np.ones((2, 10)), [5])


def test_basis_floor_command_on_generated_burgers(tmp_path, capsys):
    """The command generates the problem's data and prints one line per N, falling with N."""
    cfg = compose(
        [
            "problem=burgers_autodiff",
            "problem.nx=16",
            "problem.nt=5",
            "problem.n_train=12",
            "problem.n_test=4",
            f"problem.data_dir={tmp_path}",
            "num_basis=[2,8]",
        ],
        config_name="basis_floor",
    )
    result = run(cfg)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "BurgersProblem: 12 training, 4 test solutions"
    assert [line.split()[0] for line in lines[1:]] == ["N=2", "N=8"]
    assert 0 < result[8][0] < result[2][0] < 1
