"""The emulator's configuration: engine, latency, faults, and one switch per unsettled point.

Every point that Runware's public sources leave open (RUNWARE_API §11) is a field here, with
the suggested default, so a client can be tested against each option. The model is validated,
so a runtime change through ``POST /_emulator/config`` with a bad value is refused, not half
applied.

Example:
    >>> cfg = EmulatorConfig(latency=(0.1, 0.3), faults={"http_429": 0.05})
    >>> cfg.failure_form, cfg.default_ttl
    ('A', 604800)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: An engine callable: (rgb uint8 HxWx3, mask bool HxW, dilate_pixels, seed) -> rgb uint8 HxWx3.
EngineFn = Callable[[NDArray[np.uint8], NDArray[np.bool_], int, int], NDArray[np.uint8]]

#: Faults that can be injected, in the order a random draw walks them.
FAULT_KINDS: Final[tuple[str, ...]] = (
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "reset_before",
    "reset_after",
    "slow",
    "malformed_json",
    "timeout_provider",
)
#: Request kinds that faults may target.
REQUEST_KINDS: Final[tuple[str, ...]] = ("submit", "getResponse", "download")

RequestKind = Literal["submit", "getResponse", "download"]


class EmulatorConfig(BaseModel):
    """Everything that shapes the emulator's behaviour; change it at runtime with ``configure``.

    Example:
        >>> EmulatorConfig(api_keys={"k1"}).accepts_key("k1"), EmulatorConfig().accepts_key("")
        (True, False)
        >>> "k1" in repr(EmulatorConfig(api_keys={"k1"}))
        False
    """

    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, validate_assignment=True
    )

    # --- engine and timing -------------------------------------------------------------------
    seed: int = Field(default=0, description="Seeds every random choice (latency, faults, jitter).")
    engine: str | EngineFn = Field(
        default="echo", description="'echo', 'local', or a callable (rgb, mask, dilate, seed)."
    )
    latency: float | tuple[float, float] = Field(
        default=0.0, description="Seconds per generation: fixed, or a (min, max) random range."
    )
    engine_workers: int = Field(default=4, ge=1, description="Threads for engine work.")

    # --- authentication (§1, §11 #20) --------------------------------------------------------
    api_keys: frozenset[str] | None = Field(
        default=None,
        repr=False,  # keys never appear in a repr, a log line or an error message
        description="Accepted keys; None accepts any non-empty key.",
    )
    auth_precedence: Literal["bearer", "payload"] = Field(
        default="bearer", description="Which key wins when both auth forms are sent (§11 #20)."
    )
    auth_error_body: Literal["json", "html"] = Field(
        default="json", description="401 body: the API's JSON, or a proxy's HTML page."
    )

    # --- envelopes (§11 #1-#5, #14) ----------------------------------------------------------
    failure_form: Literal["A", "B"] = Field(
        default="A", description="Runtime failures: A = top-level errors[]; B = data[] item."
    )
    error_key: Literal["errors", "error"] = Field(
        default="errors", description="Key of error objects in an envelope (§11 #2)."
    )
    error_envelope_data: bool = Field(
        default=True, description="Add an empty 'data': [] next to errors (§11 #2)."
    )
    ack_status: bool = Field(
        default=False, description="Add status 'processing' to async acks (§11 #3)."
    )
    poll_task_type: Literal["original", "getResponse"] = Field(
        default="original", description="taskType of getResponse items (§11 #4)."
    )
    unknown_task_status: int = Field(
        default=200, description="HTTP status of getResponse for an unknown taskUUID (§11 #5)."
    )
    unknown_task_code: str = Field(
        default="taskFailedOrNotFound", description="Error code for an unknown taskUUID (§11 #5)."
    )
    emit_seed: bool = Field(default=False, description="Add 'seed' to result items (§11 #14).")
    emit_progress: bool = Field(
        default=True, description="Add 'progress' to processing items (§11 #14)."
    )
    emit_result_index: bool = Field(
        default=False, description="Add 'resultIndex' to result items (§11 #14)."
    )

    # --- validation (§11 #6, #7, #17, #19, #21) ----------------------------------------------
    batch_rejection: Literal["per_task", "whole"] = Field(
        default="per_task",
        description="One invalid task rejects only itself, or the whole array (nothing runs).",
    )
    scoped_errors: bool = Field(
        default=True, description="Validation and conflict errors name their taskUUID."
    )
    unsupported_parameters: Literal["reject", "ignore"] = Field(
        default="reject", description="Undeclared keys: 400 unsupportedParameter, or drop (#7)."
    )
    min_side: int = Field(default=256, ge=0, description="Minimum image side; 0 disables (#17).")
    accept_media_uuid: bool = Field(
        default=True, description="Accept a mediaUUID directly as an input (§11 #21)."
    )
    input_fetch_timeout: float = Field(default=10.0, gt=0, description="Seconds per input URL.")

    # --- delivery (§11 #8-#11, #13, #15) -----------------------------------------------------
    sync_timeout: float = Field(
        default=120.0, gt=0, description="Sync wait window, then 504 + timeoutProvider (#8)."
    )
    webhook_body: Literal["flat", "wrapped"] = Field(
        default="flat", description="Webhook body: the item, or {'data': [item]} (§11 #9)."
    )
    webhook_timeout: float = Field(default=5.0, gt=0, description="Seconds per webhook attempt.")
    webhook_backoff: float = Field(default=0.25, ge=0, description="First retry delay, seconds.")
    webhook_backoff_max: float = Field(default=8.0, ge=0, description="Retry delay cap, seconds.")
    webhook_attempts: int = Field(default=6, ge=1, description="Webhook attempts in total.")
    upload_timeout: float = Field(default=30.0, gt=0, description="Seconds per uploadEndpoint PUT.")
    upload_failure: Literal["error", "ignore"] = Field(
        default="error", description="A failed uploadEndpoint PUT fails the result, or not (#11)."
    )
    conflict_mode: Literal["reject", "ack"] = Field(
        default="reject", description="Reused taskUUID: 400 conflictTaskUUID, or ack (§11 #13)."
    )
    default_ttl: int = Field(
        default=7 * 24 * 3600, ge=1, description="URL lifetime without 'ttl', seconds (#15)."
    )
    store_max_bytes: int = Field(
        default=128 << 20,
        ge=1,
        description="Bytes of stored images kept in memory; past it the oldest spill to disk "
        "(store_spill) or are evicted.",
    )
    keep_task_specs: bool = Field(
        default=False,
        description="Keep each task as parsed once it is done (for tests to inspect; its "
        "inline inputs then stay in memory).",
    )
    store_spill: bool = Field(
        default=True,
        description="Spill images past store_max_bytes to a temporary directory, not evict them.",
    )
    store_max_disk_bytes: int = Field(
        default=8 << 30, ge=1, description="Bytes of spilled images; past it the oldest go."
    )

    # --- billing (§11 #12, #16, #18) ---------------------------------------------------------
    charge_reference_image: bool = Field(
        default=False, description="Charge the input as a reference image, $0.004/MP (#16)."
    )
    balance_usd: float | None = Field(
        default=None, description="Account balance; None is unlimited (§11 #12)."
    )
    insufficient_credits_status: int = Field(
        default=402, description="HTTP status of insufficientCredits (§11 #12)."
    )
    dry_run_supported: bool = Field(
        default=True, description="Honour 'X-Runware-Dry-Run: 1' (§11 #18)."
    )

    # --- faults ------------------------------------------------------------------------------
    faults: dict[str, float] = Field(
        default_factory=dict, description="Fault kind -> probability per eligible request."
    )
    fault_targets: frozenset[RequestKind] = Field(
        default=frozenset({"submit", "getResponse"}),
        description="Request kinds faults may hit: submit, getResponse, download.",
    )
    retry_after: float = Field(
        default=1.0, ge=0, description="Retry-After of injected 429s, seconds (may be fractional)."
    )
    slow_delay: float = Field(default=30.0, ge=0, description="Delay of the 'slow' fault, seconds.")

    @field_validator("latency")
    @classmethod
    def _check_latency(cls, value: float | tuple[float, float]) -> float | tuple[float, float]:
        low, high = (value, value) if isinstance(value, int | float) else value
        if low < 0 or high < low:
            raise ValueError("latency must be >= 0, or a (min, max) range with 0 <= min <= max")
        return value

    @field_validator("faults")
    @classmethod
    def _check_faults(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        if any(not 0 <= rate <= 1 for rate in value.values()) or sum(value.values()) > 1:
            raise ValueError("fault rates must be in [0, 1] and sum to at most 1")
        return value

    @field_validator("engine")
    @classmethod
    def _check_engine(cls, value: str | EngineFn) -> str | EngineFn:
        if isinstance(value, str) and value not in ("echo", "local"):
            raise ValueError(f"engine must be 'echo', 'local' or a callable; got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_webhook_backoff(self) -> EmulatorConfig:
        if self.webhook_backoff_max < self.webhook_backoff:
            raise ValueError("webhook_backoff_max must be >= webhook_backoff")
        return self

    def accepts_key(self, key: str) -> bool:
        """Whether an API key is accepted: any non-empty key, or one of ``api_keys``."""
        if not key:
            return False
        return self.api_keys is None or key in self.api_keys

    def retry_after_header(self) -> str:
        """``Retry-After`` value: an integer when whole, else the fractional seconds.

        Example:
            >>> EmulatorConfig(retry_after=2).retry_after_header()
            '2'
            >>> EmulatorConfig(retry_after=0.1).retry_after_header()
            '0.1'
        """
        value = float(self.retry_after)
        return str(int(value)) if value.is_integer() else repr(value)

    def updated(self, **changes: Any) -> EmulatorConfig:
        """Return a validated copy with ``changes`` applied (the original is unchanged).

        Example:
            >>> EmulatorConfig().updated(latency=0.2).latency
            0.2
        """
        current = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**current, **changes})

    def public_dict(self) -> dict[str, Any]:
        """A JSON-ready view (a callable engine is shown by name; key values are never shown).

        Example:
            >>> EmulatorConfig(api_keys={"secret"}).public_dict()["api_keys"]
            '1 key(s)'
        """
        data = self.model_dump(mode="python")
        data["engine"] = (
            self.engine if isinstance(self.engine, str) else getattr(self.engine, "__name__", "fn")
        )
        data["api_keys"] = None if self.api_keys is None else f"{len(self.api_keys)} key(s)"
        data["fault_targets"] = sorted(self.fault_targets)
        data["latency"] = list(self.latency) if isinstance(self.latency, tuple) else self.latency
        return data
