"""The HTTP face of the emulator: a thin Starlette app over :class:`EmulatorBackend`.

Routes:

- ``POST /v1``: the Runware API (JSON array of tasks, or a lone task object).
- ``GET /image/<uuid>.<ext>``, ``GET /media/<uuid>.<ext>``: stored outputs and uploads.
- ``GET /_emulator/stats``, ``POST /_emulator/reset``, ``GET|POST /_emulator/config``,
  ``POST /_emulator/faults`` (``{"script": [...]}``), ``POST /_emulator/clock``
  (``{"advance": seconds}``): introspection and control for tests.

Transport faults (status codes, resets, slow and malformed replies) are applied here, because
they are about bytes on the wire; the backend never knows about them.

Example:
    ```python
    app = create_app(EmulatorBackend(EmulatorConfig()))
    uvicorn.run(app, host="127.0.0.1", port=0)  # serve() in server.py adds resets' plumbing
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from typing import Any, Final

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from prefect_flux_erase.emulator.backend import EmulatorBackend, request_kind
from prefect_flux_erase.emulator.config import RequestKind
from prefect_flux_erase.emulator.counters import Stats
from prefect_flux_erase.emulator.envelopes import Outcome, error_object
from prefect_flux_erase.emulator.http_protocols import TRANSPORT_KEY

logger = logging.getLogger(__name__)


_STATUS_FAULTS: Final[dict[str, tuple[int, str | None, str]]] = {
    # kind: (status, JSON error code or None for a proxy's HTML page, message)
    "http_429": (429, "rateLimitExceeded", "Queue capacity exceeded; retry later."),
    "http_500": (500, "internalServerError", "Internal server error."),
    "http_502": (502, None, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "http_503": (503, "serviceUnavailable", "Temporary capacity limit; retry later."),
    "http_504": (504, "gatewayTimeout", "Maximum queue wait exceeded."),
}
_HTML_401: Final = "<html><body><h1>401 Unauthorized</h1></body></html>"
_MALFORMED: Final = b'{"data": [{"taskType": "imageInference", "taskUUID": '


def bearer_key(request: Request) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header (None when the header is absent).

    Example:
        >>> from starlette.requests import Request
        >>> bearer_key(Request({"type": "http", "headers": [(b"authorization", b"Bearer k1")]}))
        'k1'
    """
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else header.strip()


async def reset_connection(request: Request) -> None:
    """Close the client's connection abruptly (TCP RST), without any HTTP response.

    Example:
        ```python
        await reset_connection(request)  # the client's httpx raises ReadError
        return Response(status_code=204)  # never sent: the connection is gone
        ```
    """
    transport = request.scope.get("extensions", {}).get(TRANSPORT_KEY)
    if transport is None:
        raise RuntimeError("connection resets need the emulator's server (emulator.server)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0 turns close() into a reset, so the client sees ECONNRESET, not a clean EOF.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server notice the loss, so that it does not try to answer on the dead socket.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            while (await request.receive())["type"] != "http.disconnect":
                pass


def _json(stats: Stats, status: int, body: dict[str, Any], **headers: str) -> Response:
    stats.request(status)
    return JSONResponse(body, status_code=status, headers=headers or None)


def _status_fault(backend: EmulatorBackend, stats: Stats, fault: str) -> Response:
    status, code, message = _STATUS_FAULTS[fault]
    headers = {"Retry-After": backend.config.retry_after_header()} if status == 429 else {}
    if code is None:
        stats.request(status)
        return Response(message, status_code=status, media_type="text/html")
    _, body = backend.body(status, Outcome(status, errors=[error_object(code, message)]))
    return _json(stats, status, body, **headers)


async def _pre_fault(
    backend: EmulatorBackend, stats: Stats, request: Request, fault: str | None
) -> Response | None:
    """Faults that strike before the request is processed; a Response ends the request."""
    if fault in _STATUS_FAULTS:
        return _status_fault(backend, stats, fault)
    if fault == "reset_before" or (fault == "reset_after" and request.method == "GET"):
        await reset_connection(request)
        stats.request("reset")
        return Response(status_code=204)  # never sent: the connection is gone
    return None


async def _post_fault(
    backend: EmulatorBackend, stats: Stats, request: Request, fault: str | None, response: Response
) -> Response:
    """Faults that strike after the request was processed (the task exists and is billed)."""
    if fault == "reset_after":
        await reset_connection(request)
        stats.request("reset")
        return Response(status_code=204)
    if fault == "slow":
        await asyncio.sleep(backend.config.slow_delay)
    if fault == "malformed_json":
        stats.request(200)
        return Response(_MALFORMED, status_code=200, media_type="application/json")
    stats.request(response.status_code)
    return response


def create_app(backend: EmulatorBackend) -> Starlette:
    """Build the Starlette app that serves ``backend``.

    Example:
        >>> from prefect_flux_erase.emulator.config import EmulatorConfig
        >>> app = create_app(EmulatorBackend(EmulatorConfig()))
        >>> sorted({r.path for r in app.routes})[:3]
        ['/_emulator/clock', '/_emulator/config', '/_emulator/faults']
    """

    async def v1(request: Request) -> Response:
        # Count into the stats of the moment the request arrived: a reset during a slow or
        # sync request must not leak its count into the next test's fresh stats.
        stats = backend.stats
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            err = error_object("invalidJSON", "The request body is not valid JSON.")
            return _json(stats, 400, backend.body(400, Outcome(400, errors=[err]))[1])
        kind: RequestKind = request_kind(body)
        fault = backend.draw_fault(kind)
        early = await _pre_fault(backend, stats, request, fault)
        if early is not None:
            return early
        if not isinstance(body, list | dict):
            err = error_object("invalidRequestBody", "The body must be a JSON array of tasks.")
            _, envelope_body = backend.body(400, Outcome(400, errors=[err]))
            return await _post_fault(
                backend, stats, request, fault, JSONResponse(envelope_body, 400)
            )
        dry_run = backend.config.dry_run_supported and request.headers.get(
            "x-runware-dry-run", ""
        ).strip().lower() in ("1", "true")
        status, reply = await backend.handle(
            body, bearer=bearer_key(request), dry_run=dry_run, runtime_fault=fault
        )
        response: Response = JSONResponse(reply, status_code=status)
        if status == 401 and backend.config.auth_error_body == "html":
            # As a proxy or CDN in front of the API would answer: no JSON at all.
            response = Response(_HTML_401, status_code=401, media_type="text/html")
        return await _post_fault(backend, stats, request, fault, response)

    async def download(request: Request) -> Response:
        stats = backend.stats
        name: str = request.path_params["name"]
        fault = backend.draw_fault("download")
        early = await _pre_fault(backend, stats, request, fault)
        if early is not None:
            return early
        stored = backend.get_image(name.rsplit(".", 1)[0])
        if stored is None:
            response = Response("Not Found", status_code=404, media_type="text/plain")
        else:
            response = Response(stored.data, media_type=stored.mime)
        return await _post_fault(backend, stats, request, fault, response)

    async def stats(request: Request) -> Response:
        return JSONResponse(backend.snapshot())

    async def reset(request: Request) -> Response:
        await backend.reset()
        return JSONResponse({"reset": True})

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object of config fields")
                backend.configure(**changes)
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(backend.config.public_dict())

    async def faults(request: Request) -> Response:
        try:
            payload = await request.json()
            backend.faults.script(payload.get("script", []))
        except (ValueError, AttributeError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"scripted": backend.faults.scripted})

    async def clock(request: Request) -> Response:
        try:
            payload = await request.json()
            backend.clock.advance(float(payload.get("advance", 0)))
        except (ValueError, AttributeError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"now": backend.clock.now()})

    routes = [
        Route("/v1", v1, methods=["POST"]),
        Route("/v1/", v1, methods=["POST"]),
        Route("/image/{name}", download, methods=["GET"]),
        Route("/media/{name}", download, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
        Route("/_emulator/faults", faults, methods=["POST"]),
        Route("/_emulator/clock", clock, methods=["POST"]),
    ]
    return Starlette(routes=routes)
