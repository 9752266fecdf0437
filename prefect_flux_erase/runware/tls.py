"""The process's one TLS context for the client's connections.

Example:
    >>> shared_ssl_context() is shared_ssl_context()
    True
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The process's TLS context for API and output requests, built once.

    Building one loads the CA bundle (~20 ms of CPU); a pipeline opens a client per shard
    stage, so building it per client cost more CPU than the requests themselves. An
    ``SSLContext`` may be shared by any number of connections and threads. It honours
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` as httpx's own default does.

    Example:
        >>> shared_ssl_context() is shared_ssl_context()
        True
    """
    return httpx.create_ssl_context(trust_env=True)
