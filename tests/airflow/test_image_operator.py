"""`FluxEraseImageOperator` in real DAG runs (``dag.test()``, triggers run inline) against the
emulator over HTTP: one bill per image whatever reruns, codes for bad input, no key in logs."""

from __future__ import annotations

import asyncio
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from PIL import Image

from prefect_flux_erase.airflow.operators import FluxEraseImageOperator
from tests.airflow.conftest import AIRFLOW_HOME, CANARY_KEY, run_dag, task_states, xcom
from tests.fixtures.builders import mask_bytes, photo_bytes

JPEG = b"\xff\xd8\xff"
DAGS = "flux_erase_test_dags"


def _inputs(root: Path, *, empty_mask: bool = False) -> dict[str, str]:
    (root / "in").mkdir(parents=True, exist_ok=True)
    image, mask = root / "in" / "photo.png", root / "in" / "mask.png"
    image.write_bytes(photo_bytes(7))
    mask.write_bytes(mask_bytes())
    if empty_mask:  # all black: nothing to erase
        buf = BytesIO()
        Image.new("L", (256, 256), 0).save(buf, "PNG")
        mask.write_bytes(buf.getvalue())
    return {"image": str(image), "mask": str(mask)}


def _logs(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged: task logs (printed by dag.test), Airflow's own log records, and any
    log file under AIRFLOW_HOME."""
    out, err = capfd.readouterr()
    files = [
        p.read_text(errors="replace") for p in (AIRFLOW_HOME / "logs").rglob("*") if p.is_file()
    ]
    return out + err + caplog.text + "".join(files)


def test_a_dag_run_bills_one_result_and_a_second_run_bills_nothing_new(
    tmp_path: Path,
    emu: Any,
    flux_conn: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    emu.configure(latency=0.2)
    inputs = _inputs(tmp_path)
    first_out, second_out = tmp_path / "out" / "a.jpg", tmp_path / "out" / "b.jpg"

    first = run_dag(
        "flux_erase_test_dags",
        "flux_erase_image",
        {**inputs, "output": str(first_out)},
        monkeypatch,
    )
    billed_after_first = emu.stats()["results_billed"]
    second = run_dag(
        "flux_erase_test_dags",
        "flux_erase_image",
        {**inputs, "output": str(second_out)},
        monkeypatch,
    )

    assert (str(first.state), str(second.state)) == ("success", "success")
    one, two = xcom(first, "erase"), xcom(second, "erase")
    assert one["output_uri"] == str(first_out)
    assert one["cost"] > 0
    assert set(one) == {"task_uuid", "attempt", "output_uri", "image_uuid", "cost"}
    assert two["task_uuid"] == one["task_uuid"]  # same inputs and options, same task
    assert first_out.read_bytes()[:3] == JPEG
    assert second_out.read_bytes() == first_out.read_bytes()
    stats = emu.stats()
    assert billed_after_first == 1
    assert stats["results_billed"] == 1  # the second run was answered from the first task
    assert stats["tasks_accepted"] == 1
    assert stats["conflicts"] == 1
    logs = _logs(capfd, caplog)
    assert "Pausing task as DEFERRED" in logs  # the wait was the triggerer's
    assert CANARY_KEY not in logs


def test_non_deferrable_mode_waits_on_the_worker(
    tmp_path: Path, emu: Any, flux_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.configure(latency=0.2)
    config = {**_inputs(tmp_path), "output": str(tmp_path / "out.jpg"), "deferrable": False}

    run = run_dag(DAGS, "flux_erase_image", config, monkeypatch)

    assert str(run.state) == "success"
    assert (tmp_path / "out.jpg").read_bytes()[:3] == JPEG
    assert emu.stats()["results_billed"] == 1


def test_an_empty_mask_fails_with_the_manifest_rows_code_and_sends_nothing(
    tmp_path: Path,
    emu: Any,
    flux_conn: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {
        **_inputs(tmp_path, empty_mask=True),
        "output": str(tmp_path / "out.jpg"),
        "retries": 2,
    }

    run = run_dag(DAGS, "flux_erase_image", config, monkeypatch)

    assert str(run.state) == "failed"
    assert task_states(run)[("erase", -1)] == "failed"  # AirflowFailException: no retries
    assert "[emptyMask] inputs.mask: the mask is all black" in _logs(capfd, caplog)
    assert emu.stats()["requests_total"] == 0
    assert not (tmp_path / "out.jpg").exists()


def test_a_task_failed_by_the_provider_moves_to_the_next_uuid_and_is_billed_once(
    tmp_path: Path, emu: Any, flux_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.script_faults(["timeout_provider"])
    config = {**_inputs(tmp_path), "output": str(tmp_path / "out.jpg")}

    run = run_dag(DAGS, "flux_erase_image", config, monkeypatch)

    assert str(run.state) == "success"
    assert xcom(run, "erase")["attempt"] == 2
    stats = emu.stats()
    assert stats["tasks_accepted"] == 2
    assert stats["results_billed"] == 1


def _drive(operator: FluxEraseImageOperator) -> tuple[dict[str, Any] | None, int]:
    """execute → defer → trigger → execute_complete, as the task runner and the triggerer do;
    returns the result and how many times the operator deferred."""

    async def fire(trigger: Any) -> dict[str, Any]:
        (event,) = [e async for e in trigger.run()]  # a trigger fires exactly one event
        return event.payload

    deferrals = 0
    try:
        return operator.execute({}), deferrals
    except TaskDeferred as deferred:
        task: TaskDeferred | None = deferred
        while task is not None:
            deferrals += 1
            event = asyncio.run(fire(task.trigger))
            try:
                return getattr(operator, task.method_name)({}, event=event), deferrals
            except TaskDeferred as again:
                task = again
    return None, deferrals


def test_a_try_killed_while_deferred_is_collected_by_the_retry_without_a_second_charge(
    tmp_path: Path, emu: Any, flux_conn: str
) -> None:
    emu.configure(latency=0.5)
    inputs = _inputs(tmp_path)
    kwargs = {
        "image_uri": inputs["image"],
        "mask_uri": inputs["mask"],
        "output_uri": str(tmp_path / "out.jpg"),
        "poll_interval": 0.05,
    }
    killed = FluxEraseImageOperator(task_id="erase", **kwargs)
    with pytest.raises(TaskDeferred):
        killed.execute({})  # submitted, then the worker let go: the trigger never ran
    killed.on_kill()

    result, deferrals = _drive(FluxEraseImageOperator(task_id="erase", **kwargs))

    assert result is not None
    assert result["output_uri"] == str(tmp_path / "out.jpg")
    assert deferrals <= 1
    stats = emu.stats()
    assert (stats["tasks_accepted"], stats["conflicts"], stats["results_billed"]) == (1, 1, 1)


def test_bad_arguments_fail_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match=r"options\.number_results must be 1"):
        FluxEraseImageOperator(
            task_id="x", image_uri="a", mask_uri="b", output_uri="c", options={"number_results": 2}
        )
    with pytest.raises(ValueError, match="dilatePixels"):
        FluxEraseImageOperator(
            task_id="x", image_uri="a", mask_uri="b", output_uri="c", options={"dilate_pixels": 99}
        )
