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
import os
import random
import shutil
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from prefect_flux_erase.emulator.config import EmulatorConfig, EngineFn, RequestKind
from prefect_flux_erase.emulator.counters import Stats
from prefect_flux_erase.emulator.engines import resolve_engine
from prefect_flux_erase.emulator.envelopes import Outcome, envelope, error_object
from prefect_flux_erase.emulator.faults import FaultInjector
from prefect_flux_erase.emulator.inputs import InputResolver
from prefect_flux_erase.emulator.ledger import Ledger
from prefect_flux_erase.emulator.media_tasks import prepare_image_upload, prepare_media_storage
from prefect_flux_erase.emulator.records import Prepared, TaskRecord
from prefect_flux_erase.emulator.request_parsing import (
    TaskRejected,
    check_credentials,
    choose_credentials,
    parse_get_response,
    split_payload_auth,
)
from prefect_flux_erase.emulator.store import Clock, ImageStore, StoredImage
from prefect_flux_erase.emulator.submission import DecodedPair, prepare_inference
from prefect_flux_erase.emulator.webhooks import WebhookSender


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
    """State (tasks, images, ledger, stats) and the rules that answer each task type.

    Example:
        >>> import asyncio
        >>> async def ping():
        ...     backend = EmulatorBackend(EmulatorConfig())
        ...     await backend.start()
        ...     try:
        ...         return await backend.handle([{"taskType": "ping"}], bearer="any-key")
        ...     finally:
        ...         await backend.close()
        >>> asyncio.run(ping())
        (200, {'data': [{'taskType': 'ping', 'pong': True}]})
    """

    def __init__(self, config: EmulatorConfig, clock: Clock | None = None) -> None:
        self.initial_config = config
        self.config = config
        self.clock = clock or Clock()
        # Images past the memory budget spill to files here (removed by close()).
        self._spill_dir = os.path.join(
            tempfile.gettempdir(), f"flux-erase-emulator-{uuid.uuid4().hex}"
        )
        self.store = ImageStore(
            self.clock,
            config.store_max_bytes,
            spill_dir=self._spill_dir if config.store_spill else None,
            max_disk_bytes=config.store_max_disk_bytes,
        )
        self.ledger = Ledger()
        self.stats = Stats()
        self.faults = FaultInjector(config.seed)
        self.resolver = InputResolver(self.store)
        self.tasks: dict[str, TaskRecord] = {}
        self.reserved: set[str] = set()
        self.decoded: OrderedDict[tuple[bytes, bytes, int], DecodedPair] = OrderedDict()
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
        self.store.clear()
        shutil.rmtree(self._spill_dir, ignore_errors=True)

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
        self.store.max_bytes = new.store_max_bytes
        self.store.spill_dir = self._spill_dir if new.store_spill else None
        self.store.max_disk_bytes = new.store_max_disk_bytes
        return new

    async def reset(self) -> None:
        """Forget every task, image, charge, counter and scripted fault; restore the config."""
        await self._cancel_background()
        self.configure(**{n: getattr(self.initial_config, n) for n in EmulatorConfig.model_fields})
        self.tasks.clear()
        self.reserved.clear()
        self.decoded.clear()
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
            "images_stored_bytes": self.store.stored_bytes,
            "images_spilled_bytes": self.store.spilled_bytes,
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
        """Answer one ``POST /v1`` body: authenticate, validate every task, then run them.

        Tasks succeed or fail separately, unless ``batch_rejection`` is ``"whole"``: then one
        rejected task rejects the array, and no other task of it is accepted or billed.
        """
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
        prepared = await asyncio.gather(
            *(self._prepare(raw, dry_run=dry_run, runtime_fault=runtime_fault) for raw in tasks)
        )
        rejected = [p for p in prepared if isinstance(p, Outcome)]
        if rejected and self.config.batch_rejection == "whole":
            for p in prepared:
                if isinstance(p, Prepared):
                    p.release()
            return self._merge(rejected)
        outcomes = await asyncio.gather(*(_commit(p) for p in prepared))
        return self._merge(list(outcomes))

    def _merge(self, outcomes: list[Outcome]) -> tuple[int, dict[str, Any]]:
        merged = Outcome()
        for outcome in outcomes:
            merged.data.extend(outcome.data)
            merged.errors.extend(outcome.errors)
        statuses = {o.status for o in outcomes}
        status = statuses.pop() if len(statuses) == 1 else (200 if 200 in statuses else 400)
        return self.body(status, merged)

    async def _prepare(
        self, raw: Any, *, dry_run: bool, runtime_fault: str | None
    ) -> Prepared | Outcome:
        """Validate one task: a :class:`Prepared` to commit, or the rejection's outcome."""
        if not isinstance(raw, Mapping):
            self.stats.task("invalid")
            err = error_object("invalidTask", "Each task must be a JSON object.")
            return Outcome(400, errors=[err])
        task_type = raw.get("taskType")
        self.stats.task(str(task_type))
        try:
            return await self._prepare_task(raw, task_type, dry_run, runtime_fault)
        except TaskRejected as rej:
            rej.error.setdefault("taskType", str(task_type))
            uuid = raw.get("taskUUID")
            if isinstance(uuid, str):
                rej.error.setdefault("taskUUID", uuid)
            if not self.config.scoped_errors:
                rej.error.pop("taskUUID", None)
            return Outcome(rej.status, errors=[rej.error])

    async def _prepare_task(
        self, raw: Mapping[str, Any], task_type: Any, dry_run: bool, runtime_fault: str | None
    ) -> Prepared:
        if task_type == "imageInference":
            fail_with = None
            if runtime_fault == "timeout_provider":
                fail_with = ("timeoutProvider", "Provider did not answer in time; task ended.")
            return await prepare_inference(self, raw, dry_run=dry_run, fail_with=fail_with)
        if task_type == "getResponse":
            poll = parse_get_response(raw)
            return Prepared(commit=lambda: self._get_response(poll.task_uuid))
        if task_type == "imageUpload":
            return await prepare_image_upload(self, raw, dry_run=dry_run)
        if task_type == "mediaStorage":
            return await prepare_media_storage(self, raw, dry_run=dry_run)
        if task_type in ("ping", "authentication"):
            item: dict[str, Any] = {"taskType": task_type}
            if task_type == "ping":
                item["pong"] = True
            return Prepared(commit=lambda: _ready(Outcome(data=[item])))
        code = "missingTaskType" if task_type is None else "unsupportedTaskType"
        raise TaskRejected(
            400,
            error_object(
                code, f"taskType: {task_type!r} is not a task this API serves", parameter="taskType"
            ),
        )

    def claim(self, task_uuid: str, task_type: str) -> None:
        """Reserve a new taskUUID, or raise ``conflictTaskUUID`` if it was used or is in use."""
        if task_uuid in self.tasks or task_uuid in self.reserved:
            self.stats.conflicts += 1
            raise TaskRejected(
                400,
                error_object(
                    "conflictTaskUUID",
                    f"taskUUID {task_uuid} was already used; poll it with getResponse.",
                    parameter="taskUUID",
                    task_uuid=task_uuid,
                    task_type=task_type,
                ),
            )
        self.reserved.add(task_uuid)

    async def _get_response(self, task_uuid: str) -> Outcome:
        record = self.tasks.get(task_uuid)
        if record is None:
            err = error_object(
                self.config.unknown_task_code,
                f"No task with taskUUID {task_uuid} was found, or it expired.",
                parameter="taskUUID",
                task_uuid=task_uuid,
                task_type="getResponse",
            )
            return Outcome(self.config.unknown_task_status, errors=[err])
        now = asyncio.get_running_loop().time()
        data, errors = record.poll_reply(self.config, now)
        return Outcome(200, data, errors)


async def _ready(outcome: Outcome) -> Outcome:
    return outcome


async def _commit(prepared: Prepared | Outcome) -> Outcome:
    return prepared if isinstance(prepared, Outcome) else await prepared.commit()


def _session_id() -> str:
    # A fresh id per authentication, as a WebSocket session would get; REST ignores it.
    return str(uuid.uuid4())
