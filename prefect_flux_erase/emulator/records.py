"""What the emulator remembers about a task, and the reply items it renders from that memory.

A :class:`TaskRecord` exists from the moment a task is accepted, so a resubmission meets
``conflictTaskUUID`` even while the task is still processing. Items are rendered from the record
on demand: ``getResponse`` replies are cumulative because they are rebuilt from the same record
every time.

Example:
    >>> from prefect_flux_erase.emulator.config import EmulatorConfig
    >>> rec = TaskRecord(task_uuid="u", task_type="imageUpload", final_items=[{"taskUUID": "u"}])
    >>> rec.done.set(); rec.poll_reply(EmulatorConfig(), now=0.0)
    ([{'taskUUID': 'u', 'status': 'success'}], [])
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.emulator.config import EmulatorConfig
from prefect_flux_erase.emulator.envelopes import Outcome, runtime_failure
from prefect_flux_erase.engine.imageio import DecodedImage
from prefect_flux_erase.runware.models import ImageInferenceTask


def _nothing() -> None:
    return None


#: The done event of every finished task (set once; awaiting it returns at once).
_FINISHED = asyncio.Event()
_FINISHED.set()


@dataclass
class Prepared:
    """A task that passed validation but is not accepted yet.

    ``commit()`` accepts it and returns its part of the reply; ``release()`` forgets it (its
    taskUUID reservation) when the whole batch is rejected.

    Example:
        >>> import asyncio
        >>> async def accept() -> Outcome:
        ...     return Outcome(data=[{"taskType": "ping", "pong": True}])
        >>> asyncio.run(Prepared(commit=accept).commit()).data
        [{'taskType': 'ping', 'pong': True}]
    """

    commit: Callable[[], Awaitable[Outcome]]
    release: Callable[[], None] = _nothing


@dataclass(slots=True)
class Generation:
    """One of the ``numberResults`` results of a task: its seed, output UUID and outcome.

    Example:
        >>> Generation(index=0, seed=7, image_uuid="i", latency=2.0).progress(now=1.0)
        50
    """

    index: int
    seed: int
    image_uuid: str
    latency: float
    started_at: float = 0.0
    status: str = "processing"
    item: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    #: For an inline output, (item field, data URI mime or None): the item holds no bytes,
    #: they are read from the image store when a reply is rendered (memory stays bounded).
    inline: tuple[str, str | None] | None = None

    def progress(self, now: float) -> int:
        """Percent done, 0-99, from the time spent against the drawn latency."""
        if self.latency <= 0:
            return 0
        return max(0, min(99, int((now - self.started_at) / self.latency * 100)))


@dataclass(slots=True)
class TaskRecord:
    """An accepted task: inference generations, or the finished items of an upload task.

    Example:
        >>> from prefect_flux_erase.emulator.config import EmulatorConfig
        >>> TaskRecord(task_uuid="u", task_type="imageInference").ack(EmulatorConfig())
        {'taskType': 'imageInference', 'taskUUID': 'u'}
    """

    task_uuid: str
    task_type: str
    spec: ImageInferenceTask | None = None
    generations: list[Generation] = field(default_factory=list)
    image: DecodedImage | None = None
    mask: NDArray[np.bool_] | None = None
    cost_each: float = 0.0
    fail_with: tuple[str, str] | None = None
    final_items: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: Reads a stored output's bytes by image UUID (``None`` once it expired or was evicted).
    read_output: Callable[[str], bytes | None] | None = None

    def finish(self) -> None:
        """Mark the task done: wake its waiters, then share one done event with every finished
        task (an event of its own cost ~740 bytes a task, on a 100,000-task run ~74 MB)."""
        self.done.set()
        self.done = _FINISHED

    def release_inputs(self, *, keep_spec: bool = False) -> None:
        """Drop the inputs once every generation is finished: the decoded pixels and, unless
        ``keep_spec``, the task (whose inline inputs are the bulk of it)."""
        self.image = None
        self.mask = None
        if not keep_spec:
            self.spec = None

    def _reply_type(self, config: EmulatorConfig, *, poll: bool) -> str:
        return "getResponse" if poll and config.poll_task_type == "getResponse" else self.task_type

    def _finished(
        self, config: EmulatorConfig, *, poll: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        task_type = self._reply_type(config, poll=poll)
        for item in self.final_items:
            data.append({**item, "status": "success"} if poll else dict(item))
        for gen in self.generations:
            if gen.status == "success" and gen.item is not None:
                item = {**gen.item, "taskType": task_type}
                if gen.inline is not None:
                    item.update(self._inline(gen, *gen.inline))
                data.append({**item, "status": "success"} if poll else item)
            elif gen.status == "error" and gen.error is not None:
                failed, err = runtime_failure(config, self.task_uuid, task_type, *gen.error)
                if failed is not None:
                    data.append(failed)
                if err is not None:
                    errors.append(err)
        return data, errors

    def _inline(self, gen: Generation, name: str, mime: str | None) -> dict[str, str]:
        data = self.read_output(gen.image_uuid) if self.read_output is not None else None
        if data is None:
            return {}  # expired or evicted: the result is reported without its bytes
        encoded = base64.b64encode(data).decode("ascii")
        return {name: f"data:{mime};base64,{encoded}" if mime else encoded}

    def poll_reply(
        self, config: EmulatorConfig, now: float
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``getResponse`` items: every finished result so far, plus one processing item."""
        data, errors = self._finished(config, poll=True)
        pending = [g for g in self.generations if g.status == "processing"]
        if pending or (not self.done.is_set() and not self.generations):
            item: dict[str, Any] = {
                "taskType": self._reply_type(config, poll=True),
                "taskUUID": self.task_uuid,
                "status": "processing",
            }
            if config.emit_progress:
                item["progress"] = min((g.progress(now) for g in pending), default=0)
            data.append(item)
        return data, errors

    def sync_reply(
        self, config: EmulatorConfig
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The items of a finished task as a sync reply carries them (no ``status``)."""
        return self._finished(config, poll=False)

    def ack(self, config: EmulatorConfig) -> dict[str, Any]:
        """The async acknowledgement: one placeholder item whatever ``numberResults`` is."""
        item: dict[str, Any] = {"taskType": self.task_type, "taskUUID": self.task_uuid}
        if config.ack_status:
            item["status"] = "processing"
        return item
