"""The smoke scale of further training targets (see tests/test_reproduce_smoke.py)."""

import pytest
from test_reproduce_smoke import check_smoke, data_dir  # noqa: F401 (a fixture)

SMOKE_TARGETS = ["pihcmoe_ns", "negiar_burgers"]


@pytest.mark.parametrize("target", SMOKE_TARGETS)
def test_smoke_scale_runs(target, tmp_path, data_dir):  # noqa: F811
    check_smoke(target, tmp_path)
