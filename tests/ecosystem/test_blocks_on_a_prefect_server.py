"""The blocks on a real `prefect server start` process: registered with the CLI, visible in the
API and the UI, saved from code, loaded in a flow that erases through the emulator.

One server for the module (~15 s to start). `tests/blocks/test_register.py` covers registration
and load-back on the test harness; this module covers the path a user takes with a server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import FluxEraseSettings, RunwareCredentials
from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.chromium import Chromium, require_chromium
from tests.fixtures.prefect import prefect_cli, register_blocks

CANARY = "rk-canary-server-7f3a"
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "prefect_flux_erase" / "sample_data"
PAIRS = [
    (str(SAMPLES / "images" / f"{n}.jpg"), str(SAMPLES / "masks" / f"{n}.png"))
    for n in ("chelsea", "coffee")
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env(home: Path, root: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_UI_API_URL=f"{root}/api",  # the UI's browser code calls this, not :4200
        PREFECT_SERVER_LOGGING_LEVEL="WARNING",
    )
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `prefect server start` process on 127.0.0.1 with its own home; yields the root URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    root = f"http://127.0.0.1:{_free_port()}"
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [*prefect_cli(), "server", "start", "--host", "127.0.0.1", "--port", root.rsplit(":")[-1]],
        env=_server_env(home, root),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so its children stop with it
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{root}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prefect server did not become healthy"
            time.sleep(0.25)
        yield root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def registered(server: str) -> str:
    """`prefect block register -m prefect_flux_erase` against the server; returns its output."""
    return register_blocks(f"{server}/api")


@pytest.fixture
def on_server(server: str) -> Iterator[str]:
    """Point this process's Prefect client at the server for one test; yields its API URL.

    Loading a block emits a client-side event; the events worker is drained while the server is
    still up, or it would keep those events and retry them against a stopped server at exit.
    """
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: f"{server}/api"}):
        try:
            yield f"{server}/api"
        finally:
            EventsWorker.drain_all(timeout=30, at_exit=False)


def _block_type(api: str, slug: str) -> dict[str, Any]:
    response = httpx.get(f"{api}/block_types/slug/{slug}", timeout=10)
    assert response.status_code == 200, response.text
    block_type: dict[str, Any] = response.json()
    return block_type


def test_registered_block_types_are_listed_with_the_key_as_a_secret(
    registered: str, server: str
) -> None:
    api = f"{server}/api"
    assert "Successfully registered 2 blocks" in registered

    credentials = _block_type(api, "runware-credentials")
    settings = _block_type(api, "flux-erase-settings")
    schemas = httpx.post(
        f"{api}/block_schemas/filter",
        json={"block_schemas": {"block_type_id": {"any_": [credentials["id"]]}}},
        timeout=10,
    ).json()

    assert (credentials["name"], settings["name"]) == ("Runware Credentials", "FLUX Erase Settings")
    assert schemas[0]["fields"]["secret_fields"] == ["api_key"]
    assert {"api_key", "base_url", "timeout"} <= set(schemas[0]["fields"]["properties"])


def test_blocks_saved_on_the_server_drive_a_flow_through_the_emulator(
    registered: str, on_server: str, emu: EmulatorServer, tmp_path: Path
) -> None:
    emu.configure(api_keys=frozenset({CANARY}))  # only the saved key is accepted
    suffix = uuid.uuid4().hex[:8]
    RunwareCredentials(api_key=CANARY, base_url=emu.url, max_retries=2).save(f"creds-{suffix}")
    FluxEraseSettings(dilate_pixels=18, output_format="PNG", include_cost=True).save(
        f"settings-{suffix}"
    )

    env = {**os.environ, "PREFECT_API_URL": on_server}
    blocks = [f"creds-{suffix}", f"settings-{suffix}"]
    files = [path for pair in PAIRS for path in pair]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ecosystem.saved_blocks_flow", *blocks, str(tmp_path), *files],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = result["summary"]
    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (2, 2, 0)
    outputs = pq.read_table(summary["results_uri"], columns=["output_uri"]).column("output_uri")
    assert [Path(u[0]).suffix for u in outputs.to_pylist()] == [".png", ".png"]
    assert emu.stats()["results_billed"] == 2
    assert CANARY not in proc.stdout + proc.stderr
    # The run is on the server, and the server shows the key obfuscated.
    run = httpx.get(f"{on_server}/flow_runs/{result['flow_run_id']}", timeout=10)
    assert run.json()["state_type"] == "COMPLETED"
    block_id = _block_type(on_server, "runware-credentials")["id"]
    stored = httpx.post(
        f"{on_server}/block_documents/filter",
        json={"block_documents": {"name": {"any_": [f"creds-{suffix}"]}}},
        timeout=10,
    ).json()
    assert [(d["block_type_id"], d["data"]["api_key"]) for d in stored] == [(block_id, "********")]
    assert CANARY not in repr(RunwareCredentials.load(f"creds-{suffix}"))


def test_the_ui_offers_a_create_form_for_the_credentials_block(
    registered: str, server: str
) -> None:
    require_chromium()

    async def form_text() -> str:
        async with Chromium.launch() as browser:
            await browser.open(f"{server}/blocks/catalog/runware-credentials/create")
            deadline = time.monotonic() + 30
            while True:
                text: str = await browser.evaluate("document.body.innerText")
                if "Base Url" in text or time.monotonic() > deadline:
                    return text
                await asyncio.sleep(0.25)

    text = asyncio.run(form_text())

    assert "Runware Credentials" in text
    for label in ("Api Key", "Base Url", "Timeout", "Max Retries"):
        assert label in text
