"""Tolerant parsing of every reply shape the Runware API is known to send.

:func:`parse_reply` is the one function that reads a response body. It accepts (RUNWARE_API §9):
``{"data": [...]}``, ``{"data": {...}}``, a bare list, ``errors`` (list) or ``error`` (dict or
list, with ``taskUUID``/``taskType`` possibly at the top level), ``data`` and ``errors`` together,
failed generations inside ``data`` (``status: "error"`` plus a nested ``error``), ``parameter`` as
a list, and unknown fields anywhere. It never raises on shape: whatever cannot be understood is
reported in :attr:`Reply.problems` so the caller can treat it as a transient parse fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TERMINAL_STATUSES = frozenset({"success", "error"})


class ErrorObject(BaseModel):
    """An API error object; unknown keys are kept in ``model_extra``.

    Example:
        >>> ErrorObject.model_validate({"code": "x", "parameter": ["a", "b"]}).first_parameter
        'a'
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    code: str | None = None
    message: str | None = None
    parameter: str | list[str] | None = None
    task_type: str | None = Field(default=None, alias="taskType")
    task_uuid: str | None = Field(default=None, alias="taskUUID")
    documentation: str | None = None
    status: str | None = None
    type: str | None = None
    allowed_values: list[Any] | None = Field(default=None, alias="allowedValues")

    @property
    def first_parameter(self) -> str | None:
        """The parameter to show: the first entry when the API sent a list."""
        if isinstance(self.parameter, list):
            return self.parameter[0] if self.parameter else None
        return self.parameter

    @property
    def parameters(self) -> list[str]:
        """Every parameter named, as a list."""
        if isinstance(self.parameter, list):
            return list(self.parameter)
        return [self.parameter] if self.parameter else []


class ResultItem(BaseModel):
    """One item of ``data``: an ack, a ``processing`` poll item, or a finished result.

    Example:
        >>> item = ResultItem.model_validate({"taskType": "imageInference", "taskUUID": "u",
        ...     "imageUUID": "i", "imageURL": "https://x/i.jpg", "cost": 0.03, "seed": 7})
        >>> item.is_final, item.cost
        (True, 0.03)
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    task_type: str | None = Field(default=None, alias="taskType")
    task_uuid: str | None = Field(default=None, alias="taskUUID")
    image_uuid: str | None = Field(default=None, alias="imageUUID")
    image_url: str | None = Field(default=None, alias="imageURL")
    image_base64_data: str | None = Field(default=None, alias="imageBase64Data")
    image_data_uri: str | None = Field(default=None, alias="imageDataURI")
    media_uuid: str | None = Field(default=None, alias="mediaUUID")
    media_url: str | None = Field(default=None, alias="mediaURL")
    seed: int | None = None
    nsfw_content: bool | None = Field(default=None, alias="NSFWContent")
    cost: float | None = None
    status: str | None = None
    progress: float | None = None
    result_index: int | None = Field(default=None, alias="resultIndex")

    @property
    def has_output(self) -> bool:
        """Whether the item carries an output (URL, base64 or data URI)."""
        return bool(self.image_url or self.image_base64_data or self.image_data_uri)

    @property
    def is_final(self) -> bool:
        """A finished success: ``status == "success"`` or an output present."""
        return self.status == "success" or self.has_output

    @property
    def dedupe_key(self) -> str:
        """Identity of a result within its task: resultIndex, else imageUUID, else taskUUID."""
        if self.result_index is not None:
            return f"idx:{self.result_index}"
        if self.image_uuid:
            return f"img:{self.image_uuid}"
        return f"task:{self.task_uuid}"


@dataclass
class Reply:
    """A parsed response: result items, error objects, and anything that could not be read."""

    items: list[ResultItem] = field(default_factory=list)
    errors: list[ErrorObject] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def for_task(self, task_uuid: str) -> tuple[list[ResultItem], list[ErrorObject]]:
        """Items and errors that belong to one task (matched by taskUUID, never by position)."""
        return (
            [i for i in self.items if i.task_uuid == task_uuid],
            [e for e in self.errors if e.task_uuid == task_uuid],
        )

    @property
    def unscoped_errors(self) -> list[ErrorObject]:
        """Errors without a taskUUID: they apply to the whole request."""
        return [e for e in self.errors if not e.task_uuid]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _parse_error(raw: Any, reply: Reply, defaults: Mapping[str, Any]) -> None:
    if isinstance(raw, str):
        raw = {"message": raw}
    if not isinstance(raw, Mapping):
        reply.problems.append(f"error entry is not an object: {type(raw).__name__}")
        return
    merged = {**{k: v for k, v in defaults.items() if v is not None}, **raw}
    try:
        reply.errors.append(ErrorObject.model_validate(merged))
    except ValidationError as exc:
        # A field of an unexpected type: keep what is readable rather than losing the error.
        safe = {k: v for k, v in merged.items() if isinstance(v, str | int | float | bool)}
        safe["message"] = str(merged.get("message") or exc.errors()[0]["msg"])
        reply.errors.append(
            ErrorObject.model_validate(
                {k: v for k, v in safe.items() if k != "parameter" or isinstance(v, str)}
            )
        )


def _parse_item(raw: Any, reply: Reply) -> None:
    if not isinstance(raw, Mapping):
        reply.problems.append(f"data entry is not an object: {type(raw).__name__}")
        return
    if raw.get("status") == "error" or (
        "error" in raw and raw.get("error") and not _has_output(raw)
    ):
        # Form B: a failed generation stays in data with a nested error object.
        nested = raw.get("error")
        base = {k: raw.get(k) for k in ("taskUUID", "taskType")}
        if isinstance(nested, Mapping):
            _parse_error({**nested, "status": "error"}, reply, base)
        else:
            flat = {k: v for k, v in raw.items() if k != "error"}
            if isinstance(nested, str):
                flat.setdefault("message", nested)
            _parse_error(flat, reply, base)
        return
    try:
        reply.items.append(ResultItem.model_validate(raw))
    except ValidationError as exc:
        reply.problems.append(f"unreadable data item: {exc.errors()[0]['msg']}")


def _has_output(raw: Mapping[str, Any]) -> bool:
    return any(raw.get(k) for k in ("imageURL", "imageBase64Data", "imageDataURI"))


def parse_reply(body: Any) -> Reply:
    """Normalise any known response body into a :class:`Reply`.

    Example:
        >>> r = parse_reply({"data": [{"taskUUID": "a", "status": "error",
        ...                            "error": {"code": "timeoutProvider", "message": "late"}}]})
        >>> r.errors[0].code, r.errors[0].task_uuid, r.items
        ('timeoutProvider', 'a', [])
        >>> parse_reply([{"taskUUID": "b", "imageURL": "https://x"}]).items[0].task_uuid
        'b'
    """
    reply = Reply()
    if isinstance(body, list):
        for raw in body:
            _parse_item(raw, reply)
        return reply
    if not isinstance(body, Mapping):
        reply.problems.append(f"body is not a JSON object or array: {type(body).__name__}")
        return reply
    top = {k: body.get(k) for k in ("taskUUID", "taskType")}
    for raw in _as_list(body.get("data")):
        _parse_item(raw, reply)
    for key in ("errors", "error"):
        for raw in _as_list(body.get(key)):
            _parse_error(raw, reply, top)
    if "data" not in body and "errors" not in body and "error" not in body:
        if body.get("taskUUID"):
            # A flat item (webhook bodies): no envelope at all.
            _parse_item(body, reply)
        else:
            reply.problems.append("body has neither 'data' nor 'errors'")
    return reply


def dedupe(items: Iterable[ResultItem]) -> list[ResultItem]:
    """Drop repeated finished items of cumulative poll replies, keeping first-seen order.

    Example:
        >>> a = ResultItem.model_validate({"taskUUID": "t", "imageUUID": "i", "imageURL": "u"})
        >>> len(dedupe([a, a]))
        1
    """
    seen: dict[str, ResultItem] = {}
    for item in items:
        seen.setdefault(item.dedupe_key, item)
    return list(seen.values())
