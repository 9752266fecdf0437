"""Storage: everything the pipeline reads or writes, addressed by URI plus fsspec options.

- :mod:`~prefect_flux_erase.storage.files`: reading, writing (atomically), listing and joining
  URIs on any fsspec backend, and the error a failed read becomes.
- :mod:`~prefect_flux_erase.storage.faults`: what a failure means, decided once for every
  caller: why a read failed (:func:`read_fault`) and whether a fault may pass on retry
  (:func:`is_transient_fault`, the stage-retry rule of every orchestrator).
- :mod:`~prefect_flux_erase.storage.safe_keys`: safe file stems for row keys, "is this URI inside
  the output root", and whether a URL is one a remote API may fetch.

The names below are the storage API; ``from prefect_flux_erase import storage`` and
``storage.read_bytes(...)`` is how the rest of the package uses it.

Example:
    >>> from prefect_flux_erase import storage
    >>> storage.write_bytes("memory://doc/storage-pkg/a.bin", b"abc")
    >>> storage.read_bytes("memory://doc/storage-pkg/a.bin")
    b'abc'
"""

from prefect_flux_erase.storage.faults import (
    ReadFault,
    http_status,
    is_gcsfs_http_error,
    is_transient_fault,
    read_fault,
)
from prefect_flux_erase.storage.files import (
    DEFAULT_MAX_BYTES,
    MAX_KEY_BYTES,
    InputReadError,
    atomic_writer,
    exists,
    is_local,
    is_public_http,
    is_within,
    iter_bytes,
    join,
    listed_uri,
    read_bytes,
    redact_url,
    resolve,
    safe_key,
    write_bytes,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_KEY_BYTES",
    "InputReadError",
    "ReadFault",
    "atomic_writer",
    "exists",
    "http_status",
    "is_gcsfs_http_error",
    "is_local",
    "is_public_http",
    "is_transient_fault",
    "is_within",
    "iter_bytes",
    "join",
    "listed_uri",
    "read_bytes",
    "read_fault",
    "redact_url",
    "resolve",
    "safe_key",
    "write_bytes",
]
