"""Each example's own command line, exactly as its docstring gives it, in a fresh process.

The other tests here call the examples' functions with test doubles (the echo engine, the
session's servers); these run ``python examples/<file>.py ...`` as a reader would, with the
servers the example starts itself, and check what it prints and writes. Only the Prefect API is
the test harness's (``PREFECT_API_URL``), so no run touches a user's Prefect home.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.examples import EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_harness")
SAMPLES = ["astronaut", "chelsea", "coffee", "rocket"]
JPEG = b"\xff\xd8\xff"
PNG = b"\x89PNG"
CANARY = "rk-example-canary-5c1e"


def _env(**extra: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNWARE_", "AWS_"))}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # the harness's server
    env.update(extra)
    return env


def run_example(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python examples/<args...>`` in ``cwd``; fails the test on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / args[0]), *args[1:]],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def test_manifest_on_s3_runs_on_its_own_local_s3_server(tmp_path: Path) -> None:
    proc = run_example("manifest_on_s3.py", cwd=tmp_path)

    root = "s3://flux-erase-example/batch-1/erased"
    assert f"4 of 4 rows succeeded, 0 failed, $0.0000 spent; results: {root}/results.parquet" in (
        proc.stdout
    )
    for name in SAMPLES:
        assert f"  {name}: succeeded -> {root}/images/{name}.jpg" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # everything went to the bucket


def test_upload_endpoint_dry_run_puts_results_in_the_bucket_and_hides_signatures(
    tmp_path: Path,
) -> None:
    proc = run_example("upload_endpoint_presigned.py", cwd=tmp_path)

    assert "4 of 4 rows succeeded, 0 failed" in proc.stdout
    listed = re.findall(r"s3://flux-erase-example/(\S+) \((\d+) bytes\)", proc.stdout)
    assert sorted(key for key, _ in listed) == [f"flux-erase/erased/{n}.jpg" for n in SAMPLES]
    assert all(int(size) > 1000 for _, size in listed)
    work = tmp_path / "flux-erase-upload"
    signatures = [
        url.split("X-Amz-Signature=")[1].split("&")[0]
        for url in pq.read_table(work / "manifest.parquet").column("upload_url").to_pylist()
    ]
    shown = pq.read_table(work / "output" / "results.parquet").to_pylist()
    assert [r["status"] for r in shown] == ["succeeded"] * 4
    assert all("X-Amz-Signature=REDACTED" in r["upload_url"] for r in shown)
    visible = proc.stdout + proc.stderr + (work / "output" / "report.html").read_text()
    assert not [s for s in signatures if s in visible]


def test_dask_example_erases_the_samples_on_a_local_cluster(tmp_path: Path) -> None:
    proc = run_example(
        "dask_cluster.py", "--samples", "--workers", "2", cwd=tmp_path, TMPDIR=str(tmp_path)
    )

    assert re.search(
        r"4 of 4 rows succeeded, 0 failed, .*\(4 shards on 2 Dask workers\)", proc.stdout
    )
    (root,) = tmp_path.glob("flux-erase-dask-*")
    images = sorted((root / "output" / "images").iterdir())
    assert [p.name for p in images] == [f"{n}.jpg" for n in SAMPLES]
    assert all(p.read_bytes()[:3] == JPEG for p in images)


def test_runware_example_with_the_key_in_the_environment_against_the_emulator(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    env = {"RUNWARE_API_KEY": CANARY, "RUNWARE_BASE_URL": emu.url}

    flow = run_example("runware_api.py", "--samples", "--out", "erased", cwd=tmp_path, **env)
    client = run_example(
        "runware_api.py", "--samples", "--client", "--out", "one", cwd=tmp_path, **env
    )

    assert "4 of 4 rows succeeded, 0 failed" in flow.stdout
    images = sorted((tmp_path / "erased" / "images").iterdir())  # erase_images keys by position
    assert [p.name for p in images] == [f"{i:06d}.png" for i in range(4)]
    assert all(p.read_bytes()[:4] == PNG for p in images)
    assert re.search(r"erased: image \S+, cost \$\d+\.\d{4}", client.stdout)
    assert (tmp_path / "one" / "erased.png").read_bytes()[:4] == PNG
    assert emu.stats()["results_billed"] == 5
    assert CANARY not in flow.stdout + flow.stderr + client.stdout + client.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_webhook_receiver_serves_from_its_command_line(tmp_path: Path) -> None:
    port = _free_port()
    script = str(EXAMPLES / "webhook_receiver.py")
    proc = subprocess.Popen(
        [sys.executable, script, "--port", str(port), "--token", "s3cret"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/runware"
    item = {"taskType": "imageInference", "taskUUID": "t-1", "imageUUID": "i-1"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                first = httpx.post(f"{url}?token=s3cret", json=item, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.1)
        again = httpx.post(f"{url}?token=s3cret", json={"data": [item]}, timeout=5)
        wrong = httpx.post(f"{url}?token=guess", json=item, timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    assert (first.status_code, first.json()) == (200, {"received": 1, "new": 1})
    assert (again.status_code, again.json()) == (200, {"received": 1, "new": 0})
    assert wrong.status_code == 403


def readme_python_example() -> str:
    """The README's "From Python" example (the flow), exactly as the README shows it."""
    text = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- readme-example: prefect-flow -->\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow  # the real local engine on the four sample photos
@pytest.mark.parametrize("failing", [False, True], ids=["all-good", "too-many-failed"])
def test_the_readmes_python_example_runs_as_written(failing: bool, tmp_path: Path) -> None:
    from prefect_flux_erase.manifest.samples import prepare_demo_inputs
    from tests.fixtures.builders import mask_bytes

    inputs = prepare_demo_inputs(str(tmp_path / "flux-erase-demo"))  # what `make demo` leaves
    if failing:  # 1 of 4 rows fails: over the example's max_failed_fraction of 1 %
        (Path(inputs.masks) / "chelsea.png").write_bytes(mask_bytes((64, 64)))
    (tmp_path / "readme_example.py").write_text(readme_python_example(), encoding="utf-8")

    proc = subprocess.run(
        [sys.executable, "readme_example.py"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = "erased/report.html"  # the output as given: the Python API keeps it relative
    if failing:
        assert "3 of 4 rows succeeded, 1 failed" in proc.stdout
        assert f"{report} {{'invalidMaskDimensions': 1}}" in proc.stdout
    else:
        assert "4 of 4 rows succeeded, 0 failed" in proc.stdout
        assert f"{report} {{}}" in proc.stdout
    assert "TypeError" not in proc.stderr
