"""`flux-erase run | manifest | demo`: real flows on the Prefect test harness, exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.cli import main
from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.builders import (
    mask_bytes,
    photo_bytes,
    write_bad_inputs,
    write_inputs,
    write_manifest,
)
from tests.fixtures.jobs import TEST_KEY


@pytest.fixture
def manifest(tmp_path: Path) -> str:
    return write_manifest(f"{tmp_path}/m.parquet", write_inputs(str(tmp_path), 3))


def _echo_run(manifest: str, output: str, *options: str) -> list[str]:
    """`flux-erase run` arguments: the offline echo engine, keys from ``row_key``, no report."""
    return [
        "run",
        manifest,
        "--output",
        output,
        "--engine",
        "echo",
        "--key-column",
        "row_key",
        *options,
        "--no-report",
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_run_completes_and_prints_the_summary(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_echo_run(manifest, f"{tmp_path}/out", "--output-format", "PNG"))

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "3 of 3 rows succeeded" in out
    assert "backend local (offline)" in err
    assert "3/3 rows" in err  # plain progress lines when stderr is not a terminal
    table = pq.read_table(f"{tmp_path}/out/results.parquet")
    assert table.column("status").to_pylist() == ["succeeded"] * 3
    assert (tmp_path / "out" / "images" / "img000.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.usefixtures("prefect_harness")
def test_run_exits_1_when_rows_fail_beyond_the_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = write_inputs(str(tmp_path), 2) + write_bad_inputs(str(tmp_path))[:1]
    manifest = write_manifest(f"{tmp_path}/m.parquet", rows)

    code = main(_echo_run(manifest, f"{tmp_path}/out"))

    _, err = capsys.readouterr()
    assert code == 1
    assert "1 of 3 rows failed" in err
    assert main(_echo_run(manifest, f"{tmp_path}/out2", "--max-failed-fraction", "0.5")) == 0


@pytest.mark.usefixtures("prefect_harness")
def test_run_against_the_emulator_with_a_base_url(
    manifest: str,
    tmp_path: Path,
    emu: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNWARE_API_KEY", TEST_KEY)

    code = main(
        [
            "run",
            manifest,
            "--output",
            f"{tmp_path}/out",
            "--backend",
            "runware",
            "--base-url",
            emu.url,
            "--key-column",
            "row_key",
            "--dilate-pixels",
            "20",
            "--no-report",
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "$0.0900 spent" in out
    assert emu.stats()["results_billed"] == 3
    assert TEST_KEY not in out + err


@pytest.mark.usefixtures("prefect_harness")
def test_run_on_s3_through_storage_options_applies_shard_size_and_output_quality(
    tmp_path: Path, s3_options: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    from PIL import Image

    from prefect_flux_erase import storage
    from tests.fixtures.builders import make_bucket

    root = f"s3://{make_bucket(s3_options)}/batch"
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 3, s3_options), s3_options)

    options = ["--storage-options", json.dumps(s3_options)]
    tuning = ["--shard-size", "2", "--concurrency", "2", "--output-quality", "30"]
    code = main(_echo_run(manifest, f"{root}/out", *options, *tuning))

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "3 of 3 rows succeeded" in out
    fs, path = storage.resolve(f"{root}/out/_parts", s3_options)
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, refresh=True)) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
    ]
    written = storage.read_bytes(f"{root}/out/images/img000.jpg", s3_options)
    reference = io.BytesIO()
    Image.new("RGB", (8, 8)).save(reference, "JPEG", quality=30)
    tables = Image.open(io.BytesIO(written)).quantization  # type: ignore[attr-defined]
    assert tables == Image.open(reference).quantization  # type: ignore[attr-defined]


@pytest.mark.usefixtures("prefect_harness")
def test_manifest_and_run_on_gcs_through_storage_options(
    gcs_options: dict[str, Any], gcs_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from prefect_flux_erase import storage

    root = f"gs://{gcs_bucket}/batch"
    for i in range(2):
        storage.write_bytes(f"{root}/photos/p{i}.png", photo_bytes(i), gcs_options)
        storage.write_bytes(f"{root}/masks/p{i}.png", mask_bytes(), gcs_options)
    options = ["--storage-options", json.dumps(gcs_options)]

    made = main(
        [
            "manifest",
            "--images",
            f"{root}/photos",
            "--masks",
            f"{root}/masks",
            "--out",
            f"{root}/m.parquet",
            *options,
        ]
    )
    code = main(
        ["run", f"{root}/m.parquet", "--output", f"{root}/out", "--engine", "echo", *options]
    )

    out, err = capsys.readouterr()
    assert (made, code) == (0, 0), err
    assert "wrote 2 rows" in out
    assert "2 of 2 rows succeeded" in out
    fs, path = storage.resolve(f"{root}/out/results.parquet", gcs_options)
    with fs.open(path, "rb") as f:
        rows = pq.read_table(f).to_pylist()
    assert [(r["row_key"], r["status"], r["output_uri"]) for r in rows] == [
        ("p0", "succeeded", [f"{root}/out/images/p0.jpg"]),
        ("p1", "succeeded", [f"{root}/out/images/p1.jpg"]),
    ]
    assert storage.read_bytes(f"{root}/out/images/p1.jpg", gcs_options)[:3] == b"\xff\xd8\xff"
    assert b"<html" in storage.read_bytes(f"{root}/out/report.html", gcs_options)


@pytest.mark.usefixtures("prefect_harness")
def test_run_draws_a_live_progress_bar_on_a_terminal(
    manifest: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    code = main(_echo_run(manifest, f"{tmp_path}/out"))

    shown = terminal.getvalue()
    assert code == 0, shown
    assert "erasing (0 failed)" in shown
    assert "3/3" in shown  # the bar's rows done / total
    assert "erasing: 3/3 rows" not in shown  # not the plain lines of a pipe


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "m.parquet"], "--output"),
        (["run", "m.parquet", "--output", "o", "--storage-options", "{bad"], "not valid JSON"),
        (["run", "m.parquet", "--output", "o", "--base-url", "http://x/v1"], "--backend runware"),
        (["run", "m.parquet", "--output", "o", "--dilate-pixels", "99"], "dilatePixels"),
        (["run", "m.parquet", "--output", "o", "--concurrency", "0"], "--concurrency must be"),
        (["run", "m.parquet", "--output", "o", "--poll-timeout", "0"], "--poll-timeout must be"),
        (["run", "m.parquet", "--output", "o", "--backend", "runware"], "RUNWARE_API_KEY"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_a_clear_message(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)

    assert main(args) == 2

    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_missing_manifest_column_exits_2(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            manifest,
            "--output",
            f"{tmp_path}/out",
            "--image-column",
            "photo",
            "--engine",
            "echo",
            "--no-report",
        ]
    )

    assert code == 2
    assert "photo" in capsys.readouterr().err


def test_manifest_pairs_images_and_masks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("a", "b"):
        (tmp_path / "images" / f"{name}.png").write_bytes(photo_bytes(1))
        (tmp_path / "masks" / f"{name}.png").write_bytes(mask_bytes())
    command = ["manifest", "--images", f"{tmp_path}/images", "--masks", f"{tmp_path}/masks"]

    code = main([*command, "--out", f"{tmp_path}/m.parquet"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "wrote 2 rows" in out
    assert pq.read_table(f"{tmp_path}/m.parquet").num_rows == 2
    assert main(["manifest", "--images", f"{tmp_path}/masks", "--masks", f"{tmp_path}/none",
                 "--out", f"{tmp_path}/m2.parquet"]) == 2  # fmt: skip


def test_manifest_fails_on_unpaired_files_unless_told_to_skip_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("a", "b"):
        (tmp_path / "images" / f"{name}.png").write_bytes(photo_bytes(1))
        (tmp_path / "masks" / f"{name}.png").write_bytes(mask_bytes())
    (tmp_path / "images" / "lonely.png").write_bytes(photo_bytes(2))
    (tmp_path / "masks" / "stray.png").write_bytes(mask_bytes())
    command = ["manifest", "--images", f"{tmp_path}/images", "--masks", f"{tmp_path}/masks"]

    code = main([*command, "--out", f"{tmp_path}/m.parquet"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "lonely.png" in err
    assert "stray.png" in err
    assert "--skip-unpaired" in err
    assert "unpaired='skip'" not in err  # the flag, not the Python parameter
    assert not (tmp_path / "m.parquet").exists()

    assert main([*command, "--out", f"{tmp_path}/m.parquet", "--skip-unpaired"]) == 0
    out, err = capsys.readouterr()
    assert "wrote 2 rows" in out
    assert "skipped 1 image without a mask: " in err
    assert "lonely.png" in err
    assert pq.read_table(f"{tmp_path}/m.parquet").num_rows == 2


@pytest.mark.usefixtures("prefect_harness")
def test_demo_runs_offline_and_says_where_everything_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--out", str(tmp_path / "demo"), "--engine", "echo"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "backend local" in err
    assert "4 of 4 rows succeeded" in out
    assert f"images:  {tmp_path}/demo/output/images" in out
    assert f"results: {tmp_path}/demo/output/results.parquet" in out
    assert "report: " in out
    assert len(list((tmp_path / "demo" / "output" / "images").glob("*.jpg"))) == 4
    assert (tmp_path / "demo" / "output" / "report.html").exists()


@pytest.mark.parametrize("command", ["run", "emulator"])
def test_every_option_explains_itself_in_help(command: str) -> None:
    from prefect_flux_erase.cli import run_parser
    from prefect_flux_erase.emulator.command import parser as emulator_parser

    parser = run_parser() if command == "run" else emulator_parser()
    undocumented = [
        action.dest
        for action in parser._actions
        if action.dest != "help" and not (action.help or "").strip()
    ]
    assert undocumented == []


def test_a_cold_temporary_prefect_server_gets_time_to_start_unless_the_user_said_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    name = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    monkeypatch.delenv(name, raising=False)
    assert main(["run", "--help"]) == 0
    assert os.environ[name] == "180"
    monkeypatch.setenv(name, "42")
    assert main(["run", "--help"]) == 0
    assert os.environ[name] == "42"
    assert "--poll-timeout" in capsys.readouterr().out


def test_demo_keeps_to_a_prefect_home_of_its_own(tmp_path: Path) -> None:
    """A user's ~/.prefect (profiles, a database of another Prefect version) stays untouched."""
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    (home / ".prefect").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    env["HOME"] = str(home)
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect_flux_erase.cli",
            "demo",
            "--out",
            str(out),
            "--engine",
            "echo",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 of 4 rows succeeded" in proc.stdout
    assert (out / ".prefect").is_dir()
    assert list((home / ".prefect").iterdir()) == []
    assert "Warning" not in proc.stderr  # e.g. "Failed to create the Prefect home directory"
    assert "Traceback" not in proc.stderr
    assert f"Prefect: state in {out / '.prefect'}" in proc.stderr


# --------------------------------------------------------------------------- the first ten minutes


def _cli_in_a_fresh_process(
    args: list[str], home: Path, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """``main(args)`` in a new process (Prefect not yet imported, a fresh ``HOME``); prints
    whether Prefect got imported and how long the command took."""
    script = (
        "import sys, time; t = time.monotonic(); from prefect_flux_erase.cli import main; "
        "code = main(sys.argv[1:]); "
        "print(f'prefect imported: {\"prefect\" in sys.modules}; {time.monotonic() - t:.2f} s'); "
        "sys.exit(code)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNWARE_"))}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**base, "HOME": str(home), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "manifest nope/manifest.parquet does not exist"),
        ("csv", "convert it with python -c"),
        ("column", "Pass --image-column naming the right column"),
        ("engine", "--engine must be one of 'local', 'echo'; got 'foo'"),
        ("shard-size", "--shard-size must be an integer >= 1; got 0"),
        ("no-key", "--backend runware needs an API key: set RUNWARE_API_KEY"),
        ("dilate", "--dilate-pixels (settings.dilatePixels): must be an integer from 0 to 50"),
    ],
)
def test_mistakes_are_reported_once_in_flags_before_prefect_starts(
    case: str, expected: str, tmp_path: Path, manifest: str
) -> None:
    (tmp_path / "m.csv").write_text("image_uri,mask_uri\na.png,b.png\n")
    given = {
        "missing": ["nope/manifest.parquet"],
        "csv": ["m.csv"],
        "column": [manifest, "--image-column", "photo"],
        "engine": [manifest, "--engine", "foo"],
        "shard-size": [manifest, "--shard-size", "0"],
        "no-key": [manifest, "--backend", "runware"],
        "dilate": [manifest, "--dilate-pixels", "99"],
    }[case]
    home = tmp_path / "home"
    home.mkdir()

    proc = _cli_in_a_fresh_process(["run", *given, "--output", "out"], home, tmp_path)

    print(proc.stdout.strip().splitlines()[-1])  # the time it took (not asserted)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # once, no traceback
    assert expected in lines[0]
    assert "_column=" not in lines[0]
    assert "backend='local'" not in lines[0]
    assert "prefect imported: False" in proc.stdout
    assert not (home / ".prefect").exists()
    if case == "csv":
        command = lines[0].split('python -c "', 1)[1].split('"', 1)[0]
        subprocess.run([sys.executable, "-c", command], cwd=tmp_path, check=True, timeout=60)
        assert pq.read_table(tmp_path / "m.parquet").column_names == ["image_uri", "mask_uri"]


def test_version_and_defaults_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    from prefect_flux_erase import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"flux-erase {__version__}\n"
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for option, default in [
        ("--concurrency", "16"),
        ("--shard-size", "100"),
        ("--image-column", "image_uri"),
        ("--max-shards-in-flight", "4"),
        ("--output-format", "JPG"),
        ("--engine", "local"),
    ]:
        assert re.search(rf"{option} \S+ .*?\(default: {default}\)", text), option


@pytest.mark.usefixtures("prefect_harness")
def test_enum_options_take_any_case_and_a_relative_output_is_recorded_absolute(
    manifest: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    code = main(_echo_run(manifest, "erased", "--output-format", "png", "--backend", "LOCAL"))

    assert code == 0
    table = pq.read_table(tmp_path / "erased" / "results.parquet")
    outputs = [uris[0] for uris in table.column("output_uri").to_pylist()]
    assert outputs == [f"{tmp_path}/erased/images/img00{i}.png" for i in range(3)]
    assert (tmp_path / "erased" / "images" / "img000.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.usefixtures("prefect_harness")
def test_run_takes_saved_credentials_and_settings_blocks(
    manifest: str, tmp_path: Path, emu: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect_flux_erase.blocks import FluxEraseSettings, RunwareCredentials

    RunwareCredentials(api_key=TEST_KEY, base_url=emu.url).save("cli-emulator", overwrite=True)
    FluxEraseSettings(output_format="WEBP", dilate_pixels=20).save("cli-webp", overwrite=True)
    blocks = ["--backend", "runware", "--credentials-block", "cli-emulator"]

    code = main(_echo_run(manifest, f"{tmp_path}/out", *blocks, "--settings-block", "cli-webp"))
    missing = main(
        _echo_run(manifest, f"{tmp_path}/o2", *blocks[:2], "--credentials-block", "nope")
    )

    err = capsys.readouterr().err
    assert code == 0, err
    assert f"backend runware at {emu.url}" in err
    assert (tmp_path / "out" / "images" / "img000.webp").read_bytes()[8:12] == b"WEBP"
    assert emu.stats()["results_billed"] == 3
    assert missing == 2
    assert "--credentials-block: no runware-credentials block named 'nope'" in err


def _pty_run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``command`` on a pseudo-terminal (stdin, stdout, stderr); its exit code and output."""
    import pty
    import select

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        command, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=cwd,
        preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(controller)
    code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_a_run_in_a_real_terminal_shows_the_bar_and_the_summary_and_no_traceback(
    tmp_path: Path,
) -> None:
    rows = write_inputs(str(tmp_path), 3) + write_bad_inputs(str(tmp_path))[2:3]
    manifest = write_manifest(f"{tmp_path}/m.parquet", rows)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNWARE_"))}
    env.update(HOME=str(home), TERM="xterm-256color", COLUMNS="100")
    command = [sys.executable, "-m", "prefect_flux_erase.cli", "run", manifest, "--output", "out"]

    code, shown = _pty_run([*command, "--engine", "echo", "--key-column", "row_key"], env, tmp_path)

    assert code == 1, shown  # 1 of 4 rows failed, over the default --max-failed-fraction 0
    assert "erasing (1 failed)" in shown
    assert "━" in shown  # the bar itself
    assert "4/4" in shown
    assert "3 of 4 rows succeeded, 1 failed" in shown
    assert "1 x invalidMaskDimensions" in shown
    assert "1 of 4 rows failed (25.0% > --max-failed-fraction 0.0%)" in shown
    assert shown.count("1 of 4 rows failed") == 1  # said once
    assert "Traceback" not in shown
    assert "Warning" not in shown
    assert "telemetry" not in shown.lower()
    cache = home / ".cache" / "flux-erase" / "prefect"
    assert f"Prefect: state in {cache}" in shown
    assert not (home / ".prefect").exists()  # the user's Prefect home is untouched
    for written in [tmp_path / "out" / "results.parquet", tmp_path / "out" / "report.html",
                    *(tmp_path / "out" / "images").iterdir()]:  # fmt: skip
        assert written.stat().st_mode & 0o777 == 0o644, written
