"""RunSpec.check(): options every face rejects before anything is read or started."""

from __future__ import annotations

import pytest

from prefect_flux_erase.run import RunConfigError, RunSpec


def test_an_unknown_local_engine_is_an_option_error_before_the_run() -> None:
    with pytest.raises(RunConfigError) as caught:
        RunSpec("m.parquet", "out", local_engine="foo").check()

    assert caught.value.parameter == "local_engine"
    assert "'local', 'echo'" in str(caught.value)
    assert "resume" not in str(caught.value)
