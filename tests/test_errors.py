"""errors.py: one coded-error base for the whole package (one argument order, picklable with
every attribute), and the one rule for transient HTTP statuses."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

from prefect_flux_erase.costs.budget import BudgetExhausted
from prefect_flux_erase.engine.imageio import ImageInputError
from prefect_flux_erase.errors import (
    TRANSIENT_STATUSES,
    FluxEraseError,
    RunConfigError,
    is_transient_status,
)
from prefect_flux_erase.manifest.pairing import PairingError
from prefect_flux_erase.manifest.reader import ManifestError
from prefect_flux_erase.results.assemble import ResultsError
from prefect_flux_erase.results.summary import EraseSummary
from prefect_flux_erase.run.executor import ShardFailure
from prefect_flux_erase.run.manifest_run import RunStopped, ShardsFailed, TooManyFailedRows
from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    ConflictTaskUUIDError,
    ContentPolicyError,
    InsufficientCreditsError,
    InvalidOptionError,
    PermanentError,
    RateLimitError,
    RunwareError,
    TaskNotFoundError,
    TransientError,
    TransportError,
)
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.storage.files import InputReadError

T = "5f3a7c9e-1b2d-4e6f-8a9b-0c1d2e3f4a5b"

#: One of every coded error class, built the one way: (message, *, code=..., **extra).
EVERY_ERROR: list[FluxEraseError] = [
    FluxEraseError("plain", code="someCode", parameter="p"),
    RunConfigError("shard_size must be an integer >= 1; got 0", parameter="shard_size"),
    InputReadError("s3://b/a.png does not exist", code="inputNotFound"),
    ImageInputError("inputs.image: the file is empty", code="emptyInput", parameter="inputs.image"),
    ManifestError("manifest m.parquet does not exist", code="manifestNotFound"),
    PairingError("no image has a mask", code="nothingPaired"),
    ResultsError("shard 3 has no part", code="missingParts"),
    RunAborted("invalidApiKey: the key was rejected", code="invalidApiKey"),
    # The run's own three are built from what they carry; the message is made from it.
    RunStopped(
        RunAborted("apiUnreachable: check the base URL", code="apiUnreachable"),
        done_rows=40,
        total_rows=100,
    ),
    TooManyFailedRows(
        EraseSummary(rows=4, succeeded=3, failed=1, results_uri="out/r.parquet"), 0.0
    ),
    ShardsFailed([ShardFailure(3, "poll", "TransientError: 503")], shards=10, committed=9),
    BudgetExhausted(
        EraseSummary(
            rows=4,
            succeeded=2,
            failed=2,
            results_uri="out/r.parquet",
            budget_exhausted=2,
            max_cost_usd=0.06,
            total_cost=0.06,
        )
    ),
    RunwareError("boom", code="unknownError", http_status=500, task_uuid=T),
    TransientError("busy", code="serviceUnavailable", http_status=503, retry_after=1.5),
    RateLimitError("slow down", code="rateLimitExceeded", http_status=429, retry_after=0.5),
    TransportError("connection reset", code="connectionError"),
    PermanentError("bad mask", code="invalidMaskDimensions", parameters=["inputs.mask", "x"]),
    InvalidOptionError("outputQuality: 20..99; got 150", parameter="settings.outputQuality"),
    AuthenticationError("The API key was rejected", code="invalidApiKey", http_status=401),
    InsufficientCreditsError("top up", code="insufficientCredits", http_status=402),
    ContentPolicyError("blocked", code="providerContentPolicyViolation", task_uuid=T),
    TaskNotFoundError("gone", code="taskFailedOrNotFound", task_uuid=T),
    ConflictTaskUUIDError("submitted before", code="conflictTaskUUID", task_uuid=T),
]


def _ids(error: FluxEraseError) -> str:
    return type(error).__name__


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


def test_every_coded_error_of_the_package_is_checked_here() -> None:
    # A new error class must join EVERY_ERROR (and so the round trips below).
    assert _all_subclasses(FluxEraseError) == {type(e) for e in EVERY_ERROR} - {FluxEraseError}


@pytest.mark.parametrize("error", EVERY_ERROR, ids=_ids)
def test_one_shape_code_message_and_str(error: FluxEraseError) -> None:
    assert isinstance(error, FluxEraseError)
    assert isinstance(error.code, str)
    assert str(error) == error.message
    assert error.args == (error.message,)


@pytest.mark.parametrize("error", EVERY_ERROR, ids=_ids)
def test_every_coded_error_survives_pickling_whole(error: FluxEraseError) -> None:
    clone = pickle.loads(pickle.dumps(error))

    assert type(clone) is type(error)
    assert (clone.code, clone.message, str(clone)) == (error.code, error.message, str(error))
    assert vars(clone) == vars(error)  # parameter, http_status, task_uuid, retry_after...
    assert clone.retryable is error.retryable


def _raise(error: BaseException) -> None:
    raise error


def test_coded_errors_cross_a_process_boundary_both_ways() -> None:
    """What Dask/Ray workers and Prefect's process pools do: the error is pickled into a worker,
    raised there, and pickled back to the caller."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for error in EVERY_ERROR:
            with pytest.raises(type(error)) as caught:
                pool.submit(_raise, error).result(timeout=60)
            assert (caught.value.code, str(caught.value)) == (error.code, str(error))
            assert vars(caught.value) == vars(error)


def test_later_attributes_survive_pickling_too() -> None:
    error = ManifestError("cannot read manifest m.parquet")
    error.row = 7  # type: ignore[attr-defined]

    clone = pickle.loads(pickle.dumps(error))

    assert (clone.code, clone.row) == ("manifestUnreadable", 7)


@pytest.mark.parametrize(
    "cls", [RunConfigError, ImageInputError, ManifestError, PairingError, ResultsError]
)
def test_errors_callers_catch_as_value_errors_stay_value_errors(cls: type) -> None:
    assert issubclass(cls, ValueError)
    assert issubclass(InvalidOptionError, ValueError)


def test_default_codes_fill_in_only_when_none_is_given() -> None:
    assert RunConfigError("x").code == "invalidRunOption"
    assert ManifestError("x").code == "manifestUnreadable"
    assert InvalidOptionError("x").code == "invalidOption"
    assert InvalidOptionError("x", code=None).code == "invalidOption"
    assert ManifestError("x", code="manifestEmpty").code == "manifestEmpty"
    assert RunwareError("x").code is None  # the API may send an error object without a code


def test_the_run_abort_message_starts_with_its_code() -> None:
    error = RunAborted("insufficientCredits: top up", code="insufficientCredits")
    assert f"{type(error).__name__}: {error}".startswith("RunAborted: insufficientCredits")


def test_only_the_runware_transient_branch_is_retryable() -> None:
    retryable = {type(e).__name__ for e in EVERY_ERROR if e.retryable}
    assert retryable == {"TransientError", "RateLimitError", "TransportError"}


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (408, True),
        # RFC 8470: "Too Early" asks the client to retry later; the three rules disagreed here.
        (425, True),
        (429, True),
        (500, True),
        (501, True),
        (503, True),
        (599, True),
        (None, False),
    ],
)
def test_one_transient_status_rule(status: int | None, transient: bool) -> None:
    assert is_transient_status(status) is transient


def test_the_transient_4xx_statuses_are_exactly_these() -> None:
    assert frozenset({408, 425, 429}) == TRANSIENT_STATUSES
