"""The one coded-error base of the package, and the one rule for transient HTTP statuses.

Every error the package raises on purpose derives from :class:`FluxEraseError`, built the same
way: ``SomeError(message, *, code=..., **extra)``. ``code`` is stable (camelCase, like the
Runware API's; listed in ``docs/concepts/error-codes.md``), ``message`` says what to fix and is
also ``str(error)``, and any extra keyword (``parameter``, ``http_status``, ``task_uuid``, ...)
becomes an attribute. Each survives ``pickle`` whole (Dask and Ray workers, Prefect results and
Airflow's XCom move exceptions between processes).

```
FluxEraseError
├── RunConfigError     an invalid run option (also a ValueError)      here
├── InputReadError     an image or mask that cannot be read           storage/files.py
├── ImageInputError    an image or mask that cannot be used           engine/imageio.py
├── ManifestError      a manifest that cannot be used                 manifest/reader.py
├── PairingError       image and mask folders that cannot be paired   manifest/pairing.py
├── ResultsError       results that do not add up                     results/assemble.py
├── RunAborted         a fault of the whole run (bad key, no credit)  shards/api_backend.py
└── RunwareError       what the Runware API can do wrong              runware/errors.py
    ├── TransientError ...  (``retryable``: a retry may succeed)
    └── PermanentError ...
```

Which failures may pass is decided in two places, each once: :func:`is_transient_status` for an
HTTP status (the Runware client, the storage services), and
:func:`prefect_flux_erase.storage.faults.is_transient_fault` for any exception (what a stage
retry of any orchestrator asks).

Example:
    >>> import pickle
    >>> err = RunConfigError("shard_size must be >= 1; got 0", parameter="shard_size")
    >>> err.code, err.parameter, str(err)
    ('invalidRunOption', 'shard_size', 'shard_size must be >= 1; got 0')
    >>> clone = pickle.loads(pickle.dumps(err))
    >>> (clone.code, clone.parameter, str(clone)) == (err.code, err.parameter, str(err))
    True
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "TRANSIENT_STATUSES",
    "FluxEraseError",
    "RunConfigError",
    "is_transient_status",
]

#: The 4xx statuses that say "not now" rather than "not this": 408 Request Timeout,
#: 425 Too Early and 429 Too Many Requests. Every 5xx is transient too
#: (:func:`is_transient_status`). 425 is in because RFC 8470 (section 5.2) defines it as "retry
#: this request later, without early data": the request itself was fine, which is what transient
#: means here. It is not among the statuses gcsfs or the Azure SDK retry themselves, so a storage
#: 425 reaches the stage retry, which then retries it as the Runware client does.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def is_transient_status(status: int | None) -> bool:
    """Whether an HTTP status may pass on retry: 408, 425, 429 and every 5xx.

    The one rule for every service the package talks to: the Runware API (the client's request
    retries and :func:`~prefect_flux_erase.runware.classify`) and the storage services (the
    stage retries, through :func:`~prefect_flux_erase.storage.faults.is_transient_fault`).

    Example:
        >>> tuple(s for s in (400, 403, 404, 408, 425, 429, 500, 503) if is_transient_status(s))
        (408, 425, 429, 500, 503)
        >>> is_transient_status(None)
        False
    """
    return status is not None and (status in TRANSIENT_STATUSES or status >= 500)


def _rebuild(cls: type[FluxEraseError], args: tuple[Any, ...]) -> FluxEraseError:
    # Unpickling: make the object without calling __init__ (subclasses differ in what they
    # require); pickle then restores every attribute from the state __reduce__ returned.
    error = cls.__new__(cls)
    error.args = args
    return error


class FluxEraseError(Exception):
    """Base of every error the package raises on purpose: a stable ``code`` and a ``message``.

    Built as ``FluxEraseError(message, *, code=..., **extra)``: every extra keyword becomes an
    attribute (``parameter``, ``http_status``, ``task_uuid``, ...). ``str(error)`` is the
    message. A subclass may give a ``default_code`` used when none is passed. ``retryable``
    says whether the same work may succeed if retried (only the Runware tree's transient
    branch says yes). The error pickles with every attribute.

    Example:
        >>> err = FluxEraseError("no such file", code="inputNotFound", parameter="inputs.image")
        >>> err.code, err.message, err.parameter, str(err), err.retryable
        ('inputNotFound', 'no such file', 'inputs.image', 'no such file', False)
    """

    #: The code when none is given.
    default_code: ClassVar[str | None] = None
    #: Whether retrying the same work may succeed.
    retryable: ClassVar[bool] = False

    code: str | None
    message: str

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        for name, value in extra.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}"
            for name, value in vars(self).items()
            if name != "message" and not name.startswith("_")
        )
        return f"{type(self).__name__}({self.message!r}, {fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        # (callable, its args, state): state is every attribute, restored by
        # BaseException.__setstate__, so no subclass needs a __reduce__ of its own.
        return (_rebuild, (type(self), self.args), dict(vars(self)))


class RunConfigError(FluxEraseError, ValueError):
    """An option of the run is invalid; the message says which and what to use instead.

    ``parameter`` names the option when one is to blame. Raised before any row is read.

    Codes: ``invalidRunOption``.

    Example:
        >>> err = RunConfigError("shard_size must be >= 1; got 0", parameter="shard_size")
        >>> str(err), err.code, err.parameter, isinstance(err, ValueError)
        ('shard_size must be >= 1; got 0', 'invalidRunOption', 'shard_size', True)
    """

    default_code = "invalidRunOption"
    code: str
    parameter: str | None

    def __init__(
        self, message: str, *, code: str | None = None, parameter: str | None = None
    ) -> None:
        super().__init__(message, code=code, parameter=parameter)
