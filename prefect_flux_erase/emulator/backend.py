"""The emulator's in-memory backend: state and rules of the Runware API, with no HTTP in it.

:meth:`EmulatorBackend.handle` takes a decoded request body (plus the Bearer key and the
dry-run flag) and returns the HTTP status and JSON body a Runware server would send. The HTTP
layer (:mod:`prefect_flux_erase.emulator.app`) only moves bytes and applies transport faults.
Everything runs on one event loop; engine work goes to a thread pool.

Example:
    ```python
    backend = EmulatorBackend(EmulatorConfig(latency=0.0))
    await backend.start()
    status, body = await backend.handle([{"taskType": "ping"}], bearer="key")
    assert status == 200 and body == {"data": [{"taskType": "ping", "pong": True}]}
    ```
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import httpx
from PIL import Image

from prefect_flux_erase.emulator.config import EmulatorConfig, EngineFn, RequestKind
from prefect_flux_erase.emulator.engines import resolve_engine
from prefect_flux_erase.emulator.envelopes import Outcome, envelope, error_object
from prefect_flux_erase.emulator.faults import FaultInjector
from prefect_flux_erase.emulator.inputs import InputResolver
from prefect_flux_erase.emulator.ledger import Ledger
from prefect_flux_erase.emulator.protocol import (
    TaskRejected,
    check_credentials,
    choose_credentials,
    parse_get_response,
    parse_image_upload,
    parse_media_storage,
    split_payload_auth,
)
from prefect_flux_erase.emulator.records import TaskRecord
from prefect_flux_erase.emulator.stats import Stats
from prefect_flux_erase.emulator.store import Clock, ImageStore, StoredImage
from prefect_flux_erase.emulator.submission import submit_inference
from prefect_flux_erase.emulator.webhooks import WebhookSender
from prefect_flux_erase.engine.imageio import ImageInputError, decode_image
from prefect_flux_erase.runware.ids import deterministic_uuid4
from prefect_flux_erase.runware.media import ext_for_format, mime_for_format, sniff_mime

#: Uploaded images live this long (the docs: deleted 30 days after last use).
UPLOAD_TTL: Final = 30 * 24 * 3600
#: Uploaded images are capped at this many pixels on the long side (documented for imageUpload).
UPLOAD_MAX_SIDE: Final = 2048
_EXT_BY_MIME: Final = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def request_kind(body: Any) -> RequestKind:
    """``getResponse`` when every task of the body is a poll, else ``submit``.

    Example:
        >>> request_kind([{"taskType": "getResponse", "taskUUID": "u"}])
        'getResponse'
    """
    tasks = body if isinstance(body, list) else [body]
    types = {t.get("taskType") for t in tasks if isinstance(t, Mapping)} - {"authentication"}
    return "getResponse" if types == {"getResponse"} else "submit"


class EmulatorBackend:
    """State (tasks, images, ledger, stats) and the rules that answer each task type."""

    def __init__(self, config: EmulatorConfig, clock: Clock | None = None) -> None:
        self.initial_config = config
        self.config = config
        self.clock = clock or Clock()
        self.store = ImageStore(self.clock)
        self.ledger = Ledger()
        self.stats = Stats()
        self.faults = FaultInjector(config.seed)
        self.resolver = InputResolver(self.store)
        self.tasks: dict[str, TaskRecord] = {}
        self.reserved: set[str] = set()
        self.rng = random.Random(config.seed)
        self._background: set[asyncio.Task[Any]] = set()
        self._engine: tuple[object, EngineFn] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._client: httpx.AsyncClient | None = None
        self._webhooks: WebhookSender | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the HTTP client and thread pool (call on the loop that will serve)."""
        # trust_env=False: loopback receivers must not be routed through a proxy from the env.
        self._client = httpx.AsyncClient(
            trust_env=False,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )
        self._executor = ThreadPoolExecutor(
            self.config.engine_workers, thread_name_prefix="emulator-engine"
        )
        self._webhooks = WebhookSender(self._client, self.stats, seed=self.config.seed)

    async def close(self) -> None:
        """Cancel background work and release the client and the pool."""
        await self._cancel_background()
        if self._client is not None:
            await self._client.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared outgoing HTTP client (inputs, uploads, webhooks)."""
        assert self._client is not None, "EmulatorBackend.start() was not called"
        return self._client

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The thread pool for decoding, the engine and encoding."""
        assert self._executor is not None, "EmulatorBackend.start() was not called"
        return self._executor

    @property
    def webhooks(self) -> WebhookSender:
        """The webhook sender (retries, backoff, counting)."""
        assert self._webhooks is not None, "EmulatorBackend.start() was not called"
        return self._webhooks

    def set_root(self, root: str) -> None:
        """The server's public root (``http://host:port``), used in image URLs."""
        self.resolver.root = root.rstrip("/")

    @property
    def root(self) -> str:
        """The server's public root URL (empty until :meth:`set_root`)."""
        return self.resolver.root or ""

    def image_url(self, uuid: str, ext: str, prefix: str = "image") -> str:
        """Where the emulator serves a stored image."""
        return f"{self.resolver.root or ''}/{prefix}/{uuid}.{ext}"

    def engine(self) -> EngineFn:
        """The configured engine, resolved once per configuration."""
        spec = self.config.engine
        if self._engine is None or self._engine[0] is not spec:
            self._engine = (spec, resolve_engine(spec))
        return self._engine[1]

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; :meth:`reset` cancels it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait until no task, webhook or upload is running in the background."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _cancel_background(self) -> None:
        pending = list(self._background)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # --- control -----------------------------------------------------------------------------
    def configure(self, **changes: Any) -> EmulatorConfig:
        """Apply validated config changes now (a bad value raises and changes nothing)."""
        new = self.config.updated(**changes)
        if new.engine_workers != self.config.engine_workers and self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = ThreadPoolExecutor(
                new.engine_workers, thread_name_prefix="emulator-engine"
            )
        if new.seed != self.config.seed:
            self.faults.reseed(new.seed)
            self.rng = random.Random(new.seed)
        self.config = new
        return new

    async def reset(self) -> None:
        """Forget every task, image, charge, counter and scripted fault; restore the config."""
        await self._cancel_background()
        self.configure(**{n: getattr(self.initial_config, n) for n in EmulatorConfig.model_fields})
        self.tasks.clear()
        self.reserved.clear()
        self.store.clear()
        self.clock.reset()
        self.ledger = Ledger()
        self.stats = Stats()
        self.faults.reseed(self.config.seed)
        self.rng = random.Random(self.config.seed)
        if self._webhooks is not None:
            self._webhooks.reset(self.stats, self.config.seed)

    def draw_fault(self, kind: RequestKind) -> str | None:
        """Decide the fault for one request, and count it."""
        fault = self.faults.draw(kind, self.config.faults, self.config.fault_targets)
        if fault is not None:
            self.stats.fault(fault)
        return fault

    def snapshot(self) -> dict[str, Any]:
        """Everything ``GET /_emulator/stats`` reports."""
        return {
            **self.stats.snapshot(),
            **self.ledger.snapshot(),
            "tasks_known": len(self.tasks),
            "images_stored": len(self.store),
            "scripted_faults_pending": self.faults.scripted,
        }

    def get_image(self, uuid: str) -> StoredImage | None:
        """A stored image by UUID, or None once unknown or expired."""
        return self.store.get(uuid.lower())

    # --- requests ----------------------------------------------------------------------------
    def body(self, status: int, outcome: Outcome) -> tuple[int, dict[str, Any]]:
        """A (status, envelope) pair from one outcome."""
        return status, envelope(self.config, outcome.data, outcome.errors)

    async def handle(
        self,
        body: Any,
        *,
        bearer: str | None,
        dry_run: bool = False,
        runtime_fault: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Answer one ``POST /v1`` body: authenticate, then run each task independently."""
        tasks = body if isinstance(body, list) else [body]
        payload_key, tasks = split_payload_auth(tasks)
        try:
            check_credentials(choose_credentials(bearer, payload_key, self.config), self.config)
        except TaskRejected as rej:
            self.stats.task("authentication")
            return self.body(rej.status, Outcome(rej.status, errors=[rej.error]))
        if payload_key is not None:
            self.stats.task("authentication")
            if not tasks:
                session = {"taskType": "authentication", "connectionSessionUUID": _session_id()}
                return self.body(200, Outcome(data=[session]))
        outcomes = await asyncio.gather(
            *(self._dispatch(raw, dry_run=dry_run, runtime_fault=runtime_fault) for raw in tasks)
        )
        merged = Outcome()
        for outcome in outcomes:
            merged.data.extend(outcome.data)
            merged.errors.extend(outcome.errors)
        statuses = {o.status for o in outcomes}
        status = statuses.pop() if len(statuses) == 1 else (200 if 200 in statuses else 400)
        return self.body(status, merged)

    async def _dispatch(self, raw: Any, *, dry_run: bool, runtime_fault: str | None) -> Outcome:
        if not isinstance(raw, Mapping):
            self.stats.task("invalid")
            return _rejected(
                TaskRejected(400, error_object("invalidTask", "Each task must be a JSON object."))
            )
        task_type = raw.get("taskType")
        self.stats.task(str(task_type))
        try:
            if task_type == "imageInference":
                fail_with = None
                if runtime_fault == "timeout_provider":
                    fail_with = ("timeoutProvider", "Provider did not answer in time; task ended.")
                return await submit_inference(self, raw, dry_run=dry_run, fail_with=fail_with)
            if task_type == "getResponse":
                return self._get_response(raw)
            if task_type == "imageUpload":
                return await self._image_upload(raw, dry_run=dry_run)
            if task_type == "mediaStorage":
                return await self._media_storage(raw, dry_run=dry_run)
            if task_type == "ping":
                return Outcome(data=[{"taskType": "ping", "pong": True}])
            if task_type == "authentication":
                return Outcome(data=[{"taskType": "authentication"}])
            code = "missingTaskType" if task_type is None else "unsupportedTaskType"
            raise TaskRejected(
                400,
                error_object(
                    code,
                    f"taskType: {task_type!r} is not a task this API serves",
                    parameter="taskType",
                    task_uuid=raw.get("taskUUID") if isinstance(raw.get("taskUUID"), str) else None,
                ),
            )
        except TaskRejected as rej:
            rej.error.setdefault("taskType", str(task_type))
            uuid = raw.get("taskUUID")
            if isinstance(uuid, str):
                rej.error.setdefault("taskUUID", uuid)
            return _rejected(rej)

    def conflict(self, task_uuid: str, task_type: str) -> TaskRejected:
        """The ``conflictTaskUUID`` rejection (and count it)."""
        self.stats.conflicts += 1
        return TaskRejected(
            400,
            error_object(
                "conflictTaskUUID",
                f"taskUUID {task_uuid} was already used; poll it with getResponse.",
                parameter="taskUUID",
                task_uuid=task_uuid,
                task_type=task_type,
            ),
        )

    def _get_response(self, raw: Mapping[str, Any]) -> Outcome:
        poll = parse_get_response(raw)
        record = self.tasks.get(poll.task_uuid)
        if record is None:
            err = error_object(
                self.config.unknown_task_code,
                f"No task with taskUUID {poll.task_uuid} was found, or it expired.",
                parameter="taskUUID",
                task_uuid=poll.task_uuid,
                task_type="getResponse",
            )
            return Outcome(self.config.unknown_task_status, errors=[err])
        now = asyncio.get_running_loop().time()
        data, errors = record.poll_reply(self.config, now)
        return Outcome(200, data, errors)

    async def _stored_upload(
        self, value: str, parameter: str, task_uuid: str
    ) -> tuple[bytes, str, str]:
        data = await self.resolver.resolve(
            value, parameter, self.client, fetch_timeout=self.config.input_fetch_timeout
        )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, _normalise_upload, data, parameter)
        except ImageInputError as exc:
            raise TaskRejected(
                400, error_object(exc.code, exc.message, parameter=exc.parameter)
            ) from None

    def _claim(self, task_uuid: str, task_type: str) -> None:
        if task_uuid in self.tasks or task_uuid in self.reserved:
            raise self.conflict(task_uuid, task_type)
        self.reserved.add(task_uuid)

    async def _image_upload(self, raw: Mapping[str, Any], *, dry_run: bool) -> Outcome:
        task = parse_image_upload(raw)
        uuid = task.task_uuid
        self._claim(uuid, "imageUpload")
        try:
            data, mime, ext = await self._stored_upload(task.image, "image", uuid)
            if dry_run:
                self.stats.dry_runs += 1
                return Outcome(data=[{"taskType": "imageUpload", "taskUUID": uuid, "cost": 0.0}])
            image_uuid = deterministic_uuid4("emulator-upload", str(self.config.seed), uuid)
            self.store.put(image_uuid, data, mime, ext, ttl=UPLOAD_TTL, kind="upload")
            item = {
                "taskType": "imageUpload",
                "taskUUID": uuid,
                "imageUUID": image_uuid,
                "imageURL": self.image_url(image_uuid, ext),
            }
            record = TaskRecord(task_uuid=uuid, task_type="imageUpload", final_items=[item])
            record.done.set()
            self.tasks[uuid] = record
            self.stats.uploads["image_upload"] += 1
            return Outcome(data=[item])
        finally:
            self.reserved.discard(uuid)

    async def _media_storage(self, raw: Mapping[str, Any], *, dry_run: bool) -> Outcome:
        req = parse_media_storage(raw)
        uuid = req.task_uuid
        self._claim(uuid, "mediaStorage")
        try:
            base = {"taskType": "mediaStorage", "taskUUID": uuid, "operation": req.operation}
            if req.operation == "delete":
                stored = self.store.get(req.media.lower())
                if stored is None or stored.kind != "media":
                    raise TaskRejected(
                        404,
                        error_object(
                            "mediaNotFound", f"No media with UUID {req.media}.", parameter="media"
                        ),
                    )
                if not dry_run:
                    self.store.delete(stored.uuid)
                item = {**base, "mediaUUID": stored.uuid}
            else:
                data, mime, ext = await self._stored_upload(req.media, "media", uuid)
                if dry_run:
                    self.stats.dry_runs += 1
                    return Outcome(data=[{**base, "cost": 0.0}])
                media_uuid = deterministic_uuid4("emulator-media", str(self.config.seed), uuid)
                self.store.put(media_uuid, data, mime, ext, ttl=UPLOAD_TTL, kind="media")
                item = {
                    **base,
                    "mediaUUID": media_uuid,
                    "mediaURL": self.image_url(media_uuid, ext, "media"),
                }
                self.stats.uploads["media_storage"] += 1
            if not dry_run:
                record = TaskRecord(task_uuid=uuid, task_type="mediaStorage", final_items=[item])
                record.done.set()
                self.tasks[uuid] = record
            return Outcome(data=[item])
        finally:
            self.reserved.discard(uuid)


def _rejected(rej: TaskRejected) -> Outcome:
    return Outcome(rej.status, errors=[rej.error])


def _session_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _normalise_upload(data: bytes, parameter: str) -> tuple[bytes, str, str]:
    """Check an uploaded file is an image; cap it at 2048 px on the long side (runs in a thread)."""
    image = decode_image(data, parameter=parameter)
    mime = sniff_mime(data)
    width, height = image.size
    if max(width, height) <= UPLOAD_MAX_SIDE and mime in _EXT_BY_MIME:
        return data, mime, _EXT_BY_MIME[mime]
    # Re-encode: too large, or a format (GIF, BMP) that the outputs never use.
    img = Image.open(io.BytesIO(data))
    img.thumbnail((UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE))
    buf = io.BytesIO()
    img.convert("RGBA" if image.alpha is not None else "RGB").save(buf, "PNG")
    return buf.getvalue(), mime_for_format("PNG"), ext_for_format("PNG")
