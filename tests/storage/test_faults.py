"""storage/faults.py: the one classifier of failures, which every orchestrator's stage retries and
every reader (inputs, manifests) use. The real services' faults (GCS 403/425/429/503, Azure
425/503, unreachable endpoints) are in test_gcs.py and test_azure.py; here, the rule itself."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.errors import RunConfigError, is_transient_status
from prefect_flux_erase.manifest.reader import ManifestError, list_manifest_files
from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    RateLimitError,
    TransientError,
    TransportError,
    classify,
)
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.storage.faults import http_status, is_transient_fault, read_fault
from prefect_flux_erase.storage.files import InputReadError

gcsfs_retry = pytest.importorskip("gcsfs.retry")
aiohttp = pytest.importorskip("aiohttp")

#: Every status the rule has an opinion on, and a few it must leave permanent.
STATUSES = (400, 401, 402, 403, 404, 409, 410, 412, 408, 425, 429, 500, 501, 502, 503, 504, 599)


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (TransientError("503", code="serviceUnavailable"), True),
        (RateLimitError("slow down"), True),
        (TransportError("reset", code="connectionError"), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (AuthenticationError("bad key", code="invalidApiKey"), False),
        (RunAborted("insufficientCredits: top up", code="insufficientCredits"), False),
        # the package's own errors are decided: a bad input or manifest fails the same way again
        (InputReadError("s3://b/a.png does not exist", code="inputNotFound"), False),
        (ManifestError("cannot read manifest m.parquet"), False),
        (RunConfigError("shard_size must be >= 1; got 0"), False),
        (KeyError("a bug"), False),
        (ValueError("a bug"), False),
        # what s3fs raises once its own retries of a throttled or failing S3 are spent
        (OSError(errno.EIO, "An error occurred (SlowDown) when calling PutObject"), True),
        (FileNotFoundError(errno.ENOENT, "no such bucket"), False),
        (PermissionError(errno.EACCES, "AccessDenied"), False),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (OSError("Forbidden: bucket/a.png\nno storage.objects.get access"), False),  # gcsfs 403
        (None, False),
    ],
)
def test_only_faults_that_may_pass_are_transient(exc: BaseException | None, retry: bool) -> None:
    assert is_transient_fault(exc) is retry


def _gcsfs_error(status: int) -> BaseException:
    # gcsfs's own exception, as gcsfs.retry.validate_response builds it from an error answer.
    return gcsfs_retry.HttpError({"code": status, "message": f"answered {status}"})


def _fsspec_http_error(status: int) -> BaseException:
    # fsspec's http backend: aiohttp's response error, raised on as the cause of an OSError.
    cause = aiohttp.ClientResponseError(None, (), status=status, message="x")  # type: ignore[arg-type]
    error = OSError(f"HTTP {status} from https://host/a.png")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("status", STATUSES)
def test_the_api_and_every_storage_service_agree_on_each_status(status: int) -> None:
    """One rule: the Runware client's classification, gcsfs's HttpError and an http(s) store's
    error all call a status transient exactly when ``is_transient_status`` does."""
    expected = status in (408, 425, 429) or status >= 500
    assert is_transient_status(status) is expected
    assert classify(None, status).retryable is expected
    assert classify("httpError", status).retryable is expected
    assert is_transient_fault(_gcsfs_error(status)) is expected
    assert is_transient_fault(_fsspec_http_error(status)) is expected
    assert http_status(_gcsfs_error(status)) == status


def test_a_gcsfs_error_wrapped_by_the_caller_keeps_its_status() -> None:
    wrapped = RuntimeError("upload failed")
    wrapped.__cause__ = _gcsfs_error(503)

    assert http_status(wrapped) == 503


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (PermissionError(errno.EACCES, "AccessDenied"), "denied"),
        (OSError("Forbidden: bucket/a.png\nno storage.objects.get access"), "denied"),
        (_fsspec_http_error(401), "denied"),
        (_fsspec_http_error(403), "denied"),
        (FileNotFoundError(errno.ENOENT, "s3://b/a.png"), "notFound"),
        (_fsspec_http_error(404), "notFound"),
        (_fsspec_http_error(410), "notFound"),
        (IsADirectoryError("/data/images"), "directory"),
        (ImportError("Install s3fs to access S3"), "noFilesystem"),
        (_fsspec_http_error(503), "other"),
        (ValueError("bad footer"), "other"),
    ],
)
def test_why_a_read_failed_is_one_answer_for_every_backend(
    exc: BaseException, fault: storage.ReadFault
) -> None:
    assert read_fault(exc) == fault


def test_inputs_and_manifests_name_the_same_fault_with_their_own_codes(tmp_path: Path) -> None:
    missing = f"{tmp_path}/nothing-here.parquet"
    with pytest.raises(InputReadError) as read:
        storage.read_bytes(missing)
    with pytest.raises(ManifestError) as listed:
        list_manifest_files(missing, None)

    assert (read.value.code, listed.value.code) == ("inputNotFound", "manifestNotFound")


def test_the_classifier_needs_no_orchestrator() -> None:
    """A plain asyncio user gets the stage-retry rule: the core module imports without Prefect."""
    code = (
        "import sys\n"
        "sys.modules['prefect'] = None\n"  # any `import prefect` now fails
        "from prefect_flux_erase.storage import is_transient_fault\n"
        "from prefect_flux_erase.runware.errors import RateLimitError\n"
        "assert is_transient_fault(RateLimitError('slow down'))\n"
        "assert not any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules\n"
        "               if sys.modules[m] is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
