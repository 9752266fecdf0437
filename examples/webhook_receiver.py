"""A webhook receiver for Runware results: push instead of polling.

Runware POSTs each finished result to ``webhookURL``, one request per result, and retries when
the receiver does not answer 2xx. This Starlette app:

- checks a shared secret in the query string (Runware signs nothing: the URL is the secret);
- accepts the flat result item, ``{"data": [item, ...]}``, or a bare list;
- deduplicates on ``(taskUUID, imageUUID)``, since redeliveries happen and one task can have
  several results; failed generations (``status: "error"``) are kept apart;
- answers at once, so Runware never times out on it.

Run (then use ``http://HOST:8787/runware?token=s3cret`` as the webhookURL):
    python examples/webhook_receiver.py --port 8787 --token s3cret
"""

from __future__ import annotations

import argparse
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class ReceivedResults:
    """What the receiver has seen: results by (taskUUID, imageUUID), errors by taskUUID."""

    results: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: int = 0
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: dict[str, Any]) -> bool:
        """Record one item; return whether it was new."""
        with self.lock:
            task_uuid = str(item.get("taskUUID", ""))
            if item.get("status") == "error" or "code" in item or "error" in item:
                new = task_uuid not in self.errors
                self.errors.setdefault(task_uuid, item)
            else:
                key = (task_uuid, str(item.get("imageUUID", "")))
                new = key not in self.results
                self.results.setdefault(key, item)
            self.duplicates += 0 if new else 1
            return new


def items_of(body: Any) -> list[dict[str, Any]]:
    """The result items in a webhook body: flat, wrapped in ``data`` (list or object), or a list."""
    if isinstance(body, dict) and "data" in body and "taskUUID" not in body:
        body = body["data"]
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    return []


def create_app(token: str, store: ReceivedResults | None = None) -> Starlette:
    """The receiver as an ASGI app; results land in ``store`` (``app.state.results``)."""
    received = store if store is not None else ReceivedResults()

    async def runware(request: Request) -> JSONResponse:
        if not hmac.compare_digest(request.query_params.get("token", ""), token):
            return JSONResponse({"error": "unknown token"}, status_code=403)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        items = items_of(body)
        with received.lock:
            received.deliveries += 1
        new = sum(received.add(item) for item in items)
        # 2xx even for a duplicate: it was delivered; a non-2xx would make Runware retry it.
        return JSONResponse({"received": len(items), "new": new})

    app = Starlette(routes=[Route("/runware", runware, methods=["POST"])])
    app.state.results = received
    return app


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 behind ingress)")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--token", required=True, help="the secret expected as ?token=")
    args = parser.parse_args()
    uvicorn.run(create_app(args.token), host=args.host, port=args.port)
