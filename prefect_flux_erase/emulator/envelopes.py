"""Reply shapes: error objects, envelopes, result items and runtime failures, per the switches.

Everything the emulator sends is built here, so one switch (for example the failure form or the
``errors`` key) changes every place that shape appears.

Example:
    >>> from prefect_flux_erase.emulator.config import EmulatorConfig
    >>> envelope(EmulatorConfig(), [], [error_object("x", "bad")])
    {'data': [], 'errors': [{'code': 'x', 'message': 'bad', 'documentation': 'https://runware.ai/docs/models/bfl-flux-erase'}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from prefect_flux_erase.emulator.config import EmulatorConfig

DOCS_URL: Final = "https://runware.ai/docs/models/bfl-flux-erase"


@dataclass
class Outcome:
    """What one task contributes to a reply: an HTTP status, data items and error objects.

    Example:
        >>> Outcome(400, errors=[{"code": "x"}]).status
        400
    """

    status: int = 200
    data: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def documentation_url(parameter: str | None) -> str:
    """The error's documentation link: the model page, anchored at the parameter (§8.2).

    Example:
        >>> documentation_url("settings.dilatePixels")
        'https://runware.ai/docs/models/bfl-flux-erase#request-settings-dilatepixels'
    """
    if not parameter:
        return DOCS_URL
    return f"{DOCS_URL}#request-{parameter.lower().replace('.', '-')}"


def error_object(
    code: str,
    message: str,
    *,
    parameter: str | None = None,
    task_uuid: str | None = None,
    task_type: str | None = None,
    status: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An API error object with only the keys that apply (§8.2).

    Example:
        >>> error_object("invalidOutputQuality", "bad", parameter="outputQuality")["documentation"]
        'https://runware.ai/docs/models/bfl-flux-erase#request-outputquality'
    """
    obj: dict[str, Any] = {"code": code, "message": message}
    if parameter is not None:
        obj["parameter"] = parameter
    obj.update({k: v for k, v in extra.items() if v is not None})
    obj["documentation"] = documentation_url(parameter)
    if task_uuid is not None:
        obj["taskUUID"] = task_uuid
    if task_type is not None:
        obj["taskType"] = task_type
    if status is not None:
        obj["status"] = status
    return obj


def envelope(
    config: EmulatorConfig, data: list[dict[str, Any]], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """The response body: ``data`` and, only when there are errors, the errors key (§1).

    The errors key is omitted when empty because the Python SDK treats its mere presence as
    a failure.

    Example:
        >>> envelope(EmulatorConfig(error_key="error", error_envelope_data=False), [],
        ...          [{"code": "x"}])
        {'error': {'code': 'x'}}
    """
    body: dict[str, Any] = {}
    if data or not errors or config.error_envelope_data:
        body["data"] = data
    if errors:
        if config.error_key == "errors":
            body["errors"] = errors
        else:
            body["error"] = errors[0] if len(errors) == 1 else errors
    return body


def runtime_failure(
    config: EmulatorConfig, task_uuid: str, task_type: str, code: str, message: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A failed generation as (data item, error object): form B fills the first, form A the second.

    Example:
        >>> item, err = runtime_failure(EmulatorConfig(failure_form="B"), "u", "imageInference",
        ...                             "timeoutProvider", "late")
        >>> item["error"]["code"], err
        ('timeoutProvider', None)
    """
    if config.failure_form == "B":
        item = {
            "taskType": task_type,
            "taskUUID": task_uuid,
            "status": "error",
            "error": {"code": code, "message": message},
        }
        return item, None
    err = error_object(code, message, task_uuid=task_uuid, task_type=task_type, status="error")
    return None, err


def webhook_body(config: EmulatorConfig, item: dict[str, Any], *, failed: bool) -> dict[str, Any]:
    """The body of one webhook POST: flat, or wrapped as ``{"data": [item]}`` (§11 #9).

    A failed generation is posted as its error object (wrapped: ``{"errors": [object]}``).

    Example:
        >>> webhook_body(EmulatorConfig(webhook_body="wrapped"), {"taskUUID": "u"}, failed=False)
        {'data': [{'taskUUID': 'u'}]}
    """
    if config.webhook_body == "flat":
        return item
    return {"errors": [item]} if failed else {"data": [item]}
