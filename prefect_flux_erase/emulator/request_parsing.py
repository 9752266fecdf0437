"""Reading request bodies: authentication, task validation and the API error code of each fault.

``imageInference`` tasks are validated by the very models the client uses
(:func:`prefect_flux_erase.runware.models.build_task`), so the client and the emulator cannot
disagree on ranges or defaults. This module turns their
:class:`~prefect_flux_erase.runware.errors.InvalidOptionError` into the API's error object:
``unsupportedParameter`` for undeclared keys, ``missing<Path>`` for absent required keys and
``invalid<Field>`` for bad values.

Example:
    >>> try:
    ...     parse_inference({"taskType": "imageInference",
    ...                      "taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
    ...                      "model": "bfl:flux@erase", "inputs": {"image": "a", "mask": "b"},
    ...                      "settings": {"dilatePixels": 99}}, EmulatorConfig())
    ... except TaskRejected as rej:
    ...     rej.status, rej.error["code"], rej.error["parameter"]
    (400, 'invalidDilatePixels', 'settings.dilatePixels')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from prefect_flux_erase.emulator.config import EmulatorConfig
from prefect_flux_erase.emulator.envelopes import error_object
from prefect_flux_erase.runware.errors import InvalidOptionError
from prefect_flux_erase.runware.ids import is_uuid4
from prefect_flux_erase.runware.models import (
    ALLOWED,
    DELIVERY_METHODS,
    OUTPUT_FORMATS,
    OUTPUT_TYPES,
    SAFETY_MODES,
    EraseInputs,
    EraseSettings,
    GetResponseTask,
    ImageInferenceTask,
    ImageUploadTask,
    Safety,
    build_task,
    raise_option_error,
)

_ALLOWED_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "outputType": OUTPUT_TYPES,
    "outputFormat": OUTPUT_FORMATS,
    "deliveryMethod": DELIVERY_METHODS,
    "safety.mode": SAFETY_MODES,
}
# Nested objects whose keys are declared by a model: used to drop undeclared keys on request.
_NESTED: Final[dict[str, type[BaseModel]]] = {
    "inputs": EraseInputs,
    "settings": EraseSettings,
    "safety": Safety,
}


class TaskRejected(Exception):
    """A task (or the whole request) answered with an HTTP status and one API error object.

    Example:
        >>> TaskRejected(400, {"code": "invalidTask", "message": "bad"}).status
        400
    """

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error


@dataclass(frozen=True)
class Credentials:
    """The API key a request carries, and which form carried it (``bearer`` or ``payload``).

    Example:
        >>> Credentials(key=None, form=None).key is None
        True
    """

    key: str | None
    form: str | None


def _camel(path: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in path.split("."))


def _present(raw: Mapping[str, Any], path: str) -> bool:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def option_error_code(parameter: str | None, raw: Mapping[str, Any]) -> str:
    """The API code for a rejected option: unsupported, missing or invalid (§8.3).

    Example:
        >>> option_error_code("positivePrompt", {"positivePrompt": "x"})
        'unsupportedParameter'
        >>> option_error_code("inputs.mask", {"inputs": {"image": "a"}})
        'missingInputsMask'
        >>> option_error_code("outputQuality", {"outputQuality": 5})
        'invalidOutputQuality'
    """
    if not parameter:
        return "invalidRequest"
    if parameter not in ALLOWED:
        return "unsupportedParameter"
    if not _present(raw, parameter):
        return "missing" + _camel(parameter)
    # Settings are the model's own knobs: their codes name the knob alone (invalidDilatePixels).
    return "invalid" + _camel(parameter.removeprefix("settings."))


def _declared_only(raw: Mapping[str, Any]) -> dict[str, Any]:
    top = {f.alias or name for name, f in ImageInferenceTask.model_fields.items()}
    kept: dict[str, Any] = {k: v for k, v in raw.items() if k in top}
    for key, model in _NESTED.items():
        value = kept.get(key)
        if isinstance(value, Mapping):
            names = {f.alias or n for n, f in model.model_fields.items()}
            kept[key] = {k: v for k, v in value.items() if k in names}
    return kept


def parse_inference(raw: Mapping[str, Any], config: EmulatorConfig) -> ImageInferenceTask:
    """Validate one ``imageInference`` task, or raise :class:`TaskRejected` (400).

    Example:
        >>> parse_inference({"taskType": "imageInference",
        ...     "taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11", "model": "bfl:flux@erase",
        ...     "inputs": {"image": "a", "mask": "b"}, "seed": 3},
        ...     EmulatorConfig(unsupported_parameters="ignore")).inputs.mask
        'b'
    """
    source = _declared_only(raw) if config.unsupported_parameters == "ignore" else raw
    try:
        return build_task(source)
    except InvalidOptionError as exc:
        raise _rejection(exc, raw) from None


def _rejection(exc: InvalidOptionError, raw: Mapping[str, Any]) -> TaskRejected:
    parameter = exc.parameter
    task_uuid = raw.get("taskUUID")
    error = error_object(
        option_error_code(parameter, raw),
        exc.message,
        parameter=parameter,
        task_uuid=task_uuid if isinstance(task_uuid, str) else None,
        task_type=str(raw.get("taskType", "imageInference")),
        allowedValues=list(_ALLOWED_VALUES[parameter]) if parameter in _ALLOWED_VALUES else None,
    )
    return TaskRejected(400, error)


def _simple(model: type[BaseModel], raw: Mapping[str, Any]) -> BaseModel:
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        option = raise_option_error(exc)
        parameter = option.parameter
        declared = {f.alias or n for n, f in model.model_fields.items()}
        if parameter and parameter not in declared:
            code = "unsupportedParameter"
        elif parameter and parameter not in raw:
            code = "missing" + _camel(parameter)
        else:
            code = "invalid" + _camel(parameter or "Request")
        task_uuid = raw.get("taskUUID")
        raise TaskRejected(
            400,
            error_object(
                code,
                option.message,
                parameter=parameter,
                task_uuid=task_uuid if isinstance(task_uuid, str) else None,
                task_type=str(raw.get("taskType")),
            ),
        ) from None


def parse_get_response(raw: Mapping[str, Any]) -> GetResponseTask:
    """Validate a ``getResponse`` poll: exactly ``taskType`` and ``taskUUID`` (§4.3).

    Example:
        >>> parse_get_response({"taskType": "getResponse", "taskUUID": "abc"}).task_uuid
        'abc'
    """
    task = _simple(GetResponseTask, raw)
    assert isinstance(task, GetResponseTask)
    return task


def parse_image_upload(raw: Mapping[str, Any]) -> ImageUploadTask:
    """Validate an ``imageUpload`` task (taskUUID v4 + image).

    Example:
        >>> parse_image_upload({"taskType": "imageUpload",
        ...     "taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11", "image": "AAAA"}).image
        'AAAA'
    """
    task = _simple(ImageUploadTask, raw)
    assert isinstance(task, ImageUploadTask)
    _require_uuid4(task.task_uuid, raw)
    return task


@dataclass(frozen=True)
class MediaStorageRequest:
    """A ``mediaStorage`` task: ``upload`` (media = URL, data URI or base64) or ``delete``.

    Example:
        >>> MediaStorageRequest(task_uuid="u", operation="delete", media="m").operation
        'delete'
    """

    task_uuid: str
    operation: str
    media: str


def parse_media_storage(raw: Mapping[str, Any]) -> MediaStorageRequest:
    """Validate a ``mediaStorage`` task (§7); the SDK's shape, not a documented one.

    Example:
        >>> parse_media_storage({"taskType": "mediaStorage", "operation": "delete",
        ...     "taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11", "media": "m"}).operation
        'delete'
    """
    task_uuid = raw.get("taskUUID")
    _require_uuid4(task_uuid, raw)
    assert isinstance(task_uuid, str)
    extra = sorted(set(raw) - {"taskType", "taskUUID", "operation", "media"})
    if extra:
        raise _task_error(
            "unsupportedParameter", f"{extra[0]}: not a mediaStorage option", extra[0], raw
        )
    operation = raw.get("operation", "upload")
    if operation not in ("upload", "delete"):
        raise _task_error(
            "invalidOperation", "operation: must be 'upload' or 'delete'", "operation", raw
        )
    media = raw.get("media")
    if not isinstance(media, str) or not media:
        code = "missingMedia" if media is None else "invalidMedia"
        raise _task_error(code, "media: required, a URL, data URI or base64 string", "media", raw)
    return MediaStorageRequest(task_uuid=task_uuid, operation=operation, media=media)


def _require_uuid4(value: Any, raw: Mapping[str, Any]) -> None:
    if value is None:
        raise _task_error("missingTaskUUID", "taskUUID: required", "taskUUID", raw)
    if not is_uuid4(value):
        raise _task_error("invalidTaskUUID", "taskUUID: must be a UUID v4 string", "taskUUID", raw)


def _task_error(code: str, message: str, parameter: str, raw: Mapping[str, Any]) -> TaskRejected:
    task_uuid = raw.get("taskUUID")
    return TaskRejected(
        400,
        error_object(
            code,
            message,
            parameter=parameter,
            task_uuid=task_uuid if isinstance(task_uuid, str) else None,
            task_type=str(raw.get("taskType")),
        ),
    )


def split_payload_auth(
    tasks: list[Any],
) -> tuple[str | None, list[Any]]:
    """Take a leading ``authentication`` task off the list; return (its apiKey, the rest).

    Example:
        >>> split_payload_auth([{"taskType": "authentication", "apiKey": "k"}, {"taskType": "x"}])
        ('k', [{'taskType': 'x'}])
    """
    if tasks and isinstance(tasks[0], Mapping) and tasks[0].get("taskType") == "authentication":
        key = tasks[0].get("apiKey")
        return (key if isinstance(key, str) else ""), tasks[1:]
    return None, tasks


def choose_credentials(
    bearer: str | None, payload: str | None, config: EmulatorConfig
) -> Credentials:
    """Pick the key to check when one or both auth forms are present (§11 #20).

    Example:
        >>> choose_credentials("a", "b", EmulatorConfig()).form
        'bearer'
    """
    forms = [("bearer", bearer), ("payload", payload)]
    if config.auth_precedence == "payload":
        forms.reverse()
    for form, key in forms:
        if key is not None:
            return Credentials(key=key, form=form)
    return Credentials(key=None, form=None)


def check_credentials(credentials: Credentials, config: EmulatorConfig) -> None:
    """Raise :class:`TaskRejected` (401) unless the key is accepted. The key is never echoed.

    Example:
        >>> try:
        ...     check_credentials(Credentials(key=None, form=None), EmulatorConfig())
        ... except TaskRejected as rej:
        ...     rej.status, rej.error["code"]
        (401, 'missingApiKey')
    """
    if not credentials.key:
        code, message = "missingApiKey", "No API key was sent: use 'Authorization: Bearer <key>'."
    elif not config.accepts_key(credentials.key):
        code, message = "invalidApiKey", "Invalid API key."
    else:
        return
    error = error_object(code, message, parameter="apiKey", task_type="authentication")
    raise TaskRejected(401, error)
