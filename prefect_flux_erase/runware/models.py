"""Typed wire models of the Runware tasks this project sends for FLUX Erase (`bfl:flux@erase`).

Every option of the model's API page is here with its documented range and default. Python
attributes are snake_case; the wire names (camelCase) are the aliases. Serialisation with
:meth:`ImageInferenceTask.to_wire` omits every option the caller did not set, so the server
applies its own defaults.

Invalid values never reach the network: :func:`build_task` turns pydantic's validation errors
into one :class:`~prefect_flux_erase.runware.errors.InvalidOptionError` that names the field
(its wire path), the allowed range or values, and the value given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefect_flux_erase.runware.errors import InvalidOptionError

MODEL_ID: Final = "bfl:flux@erase"

OutputType = Literal["URL", "base64Data", "dataURI"]
OutputFormat = Literal["JPG", "PNG", "WEBP"]
DeliveryMethod = Literal["sync", "async"]
SafetyMode = Literal["none", "fast"]

OUTPUT_TYPES: tuple[str, ...] = ("URL", "base64Data", "dataURI")
OUTPUT_FORMATS: tuple[str, ...] = ("JPG", "PNG", "WEBP")
DELIVERY_METHODS: tuple[str, ...] = ("sync", "async")
SAFETY_MODES: tuple[str, ...] = ("none", "fast")

#: The seed page's documented defaults (what the server applies when an option is omitted).
SEED_DEFAULTS: dict[str, Any] = {
    "outputType": "URL",
    "outputFormat": "JPG",
    "outputQuality": 95,
    "deliveryMethod": "sync",
    "includeCost": False,
    "numberResults": 1,
    "settings.dilatePixels": 10,
    "safety.checkContent": False,
    "safety.mode": "none",
}

#: What each option allows, in words, keyed by wire path; used in every validation message.
ALLOWED: dict[str, str] = {
    "taskType": "'imageInference'",
    "taskUUID": "a UUID v4 string",
    "model": f"'{MODEL_ID}'",
    "outputType": "one of 'URL', 'base64Data', 'dataURI' (default 'URL')",
    "outputFormat": "one of 'JPG', 'PNG', 'WEBP' (default 'JPG')",
    "outputQuality": "an integer from 20 to 99 (default 95)",
    "webhookURL": "an http(s) URL",
    "deliveryMethod": "one of 'sync', 'async' (default 'sync')",
    "uploadEndpoint": "an http(s) URL",
    "safety": "an object with 'checkContent' and/or 'mode'",
    "safety.checkContent": "true or false (default false)",
    "safety.mode": "one of 'none', 'fast' (default 'none')",
    "ttl": "an integer number of seconds >= 60 (only with outputType 'URL')",
    "includeCost": "true or false (default false)",
    "numberResults": "an integer from 1 to 20 (default 1)",
    "inputs": "an object with 'image' and 'mask'",
    "inputs.image": "a URL, data URI, base64 string or image UUID",
    "inputs.mask": "a URL, data URI, base64 string or image UUID",
    "settings": "an object with 'dilatePixels'",
    "settings.dilatePixels": "an integer from 0 to 50 (default 10)",
    "routing": "an object",
    "advancedFeatures": "an object",
}


def _is_http_url(value: str) -> bool:
    return value.startswith(("http://", "https://")) and len(value) > len("https://")


class _Wire(BaseModel):
    """Base for wire models: aliases are the wire names, unknown keys are rejected."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        strict=True,
        frozen=True,
    )


class EraseInputs(_Wire):
    """The `inputs` object: the source image and the mask (white = erase, black = keep).

    Example:
        >>> EraseInputs(image="https://example.com/a.jpg", mask="data:image/png;base64,iVBO").image
        'https://example.com/a.jpg'
    """

    image: str = Field(min_length=1, description="Source image: URL, data URI, base64 or UUID.")
    mask: str = Field(min_length=1, description="Mask image of the same size: white = erase.")


class EraseSettings(_Wire):
    """The `settings` object of FLUX Erase.

    Example:
        >>> EraseSettings(dilate_pixels=15).to_wire()
        {'dilatePixels': 15}
    """

    dilate_pixels: int | None = Field(
        default=None,
        alias="dilatePixels",
        ge=0,
        le=50,
        description="Grow the mask outward by this many pixels before erasing (0-50, default 10).",
    )

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict, without unset options."""
        return self.model_dump(by_alias=True, exclude_none=True)


class Safety(_Wire):
    """The `safety` object: content checking.

    Example:
        >>> Safety(check_content=True).to_wire()
        {'checkContent': True}
    """

    check_content: bool | None = Field(default=None, alias="checkContent")
    mode: SafetyMode | None = Field(default=None)

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict, without unset options."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ImageInferenceTask(_Wire):
    """One `imageInference` task for `bfl:flux@erase`, with every option of the model's page.

    Build it through :func:`build_task` to get field-naming error messages.

    Example:
        >>> t = ImageInferenceTask(
        ...     task_uuid="3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
        ...     inputs=EraseInputs(image="https://x/a.png", mask="https://x/m.png"),
        ...     output_format="PNG",
        ... )
        >>> t.to_wire()["outputFormat"]
        'PNG'
    """

    task_type: Literal["imageInference"] = Field(default="imageInference", alias="taskType")
    task_uuid: str = Field(alias="taskUUID")
    model: Literal["bfl:flux@erase"] = Field(default=MODEL_ID)
    inputs: EraseInputs
    settings: EraseSettings | None = None
    output_type: OutputType | None = Field(default=None, alias="outputType")
    output_format: OutputFormat | None = Field(default=None, alias="outputFormat")
    output_quality: int | None = Field(default=None, alias="outputQuality", ge=20, le=99)
    webhook_url: str | None = Field(default=None, alias="webhookURL")
    delivery_method: DeliveryMethod | None = Field(default=None, alias="deliveryMethod")
    upload_endpoint: str | None = Field(default=None, alias="uploadEndpoint")
    safety: Safety | None = None
    ttl: int | None = Field(default=None, ge=60)
    include_cost: bool | None = Field(default=None, alias="includeCost")
    number_results: int | None = Field(default=None, alias="numberResults", ge=1, le=20)
    routing: dict[str, Any] | None = None
    advanced_features: dict[str, Any] | None = Field(default=None, alias="advancedFeatures")

    @field_validator("task_uuid")
    @classmethod
    def _uuid_v4(cls, value: str) -> str:
        from prefect_flux_erase.runware.ids import is_uuid4

        if not is_uuid4(value):
            raise ValueError("not a UUID v4")
        return value

    @field_validator("webhook_url", "upload_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError("not an http(s) URL")
        return value

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready task object, omitting every option that was not set.

        Example:
            >>> build_task({"taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
            ...             "inputs": {"image": "a", "mask": "b"}}).to_wire()["model"]
            'bfl:flux@erase'
        """
        wire = self.model_dump(by_alias=True, exclude_none=True)
        for key in ("settings", "safety"):
            if key in wire and not wire[key]:
                del wire[key]
        return wire

    @property
    def effective_number_results(self) -> int:
        """`numberResults` as the server will apply it (default 1)."""
        return self.number_results if self.number_results is not None else 1

    @property
    def effective_output_type(self) -> str:
        """`outputType` as the server will apply it (default `URL`)."""
        return self.output_type or "URL"

    @property
    def effective_output_format(self) -> str:
        """`outputFormat` as the server will apply it (default `JPG`)."""
        return self.output_format or "JPG"


class GetResponseTask(_Wire):
    """A `getResponse` poll for one earlier task.

    Example:
        >>> GetResponseTask(task_uuid="3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11").to_wire()["taskType"]
        'getResponse'
    """

    task_type: Literal["getResponse"] = Field(default="getResponse", alias="taskType")
    task_uuid: str = Field(alias="taskUUID")

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready task object."""
        return self.model_dump(by_alias=True)


class ImageUploadTask(_Wire):
    """An `imageUpload` task: store an image server-side and get a reusable `imageUUID`.

    Example:
        >>> ImageUploadTask(task_uuid="3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
        ...                 image="data:image/png;base64,iVBO").to_wire()["taskType"]
        'imageUpload'
    """

    task_type: Literal["imageUpload"] = Field(default="imageUpload", alias="taskType")
    task_uuid: str = Field(alias="taskUUID")
    image: str = Field(min_length=1)

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready task object."""
        return self.model_dump(by_alias=True)


_PY_TO_WIRE: dict[str, str] = {}
for _model in (ImageInferenceTask, EraseSettings, Safety, EraseInputs):
    for _name, _field in _model.model_fields.items():
        _PY_TO_WIRE[_name] = _field.alias or _name


def wire_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into the dotted wire path (`settings.dilatePixels`).

    Example:
        >>> wire_path(("settings", "dilate_pixels"))
        'settings.dilatePixels'
    """
    parts = [_PY_TO_WIRE.get(str(p), str(p)) for p in loc if not isinstance(p, int)]
    # pydantic adds the literal/union member tag to some locations; drop what is not a field.
    parts = [p for p in parts if not p.startswith(("literal[", "function-"))]
    return ".".join(parts)


def _describe_error(err: Mapping[str, Any]) -> tuple[str, str]:
    path = wire_path(tuple(err.get("loc", ())))
    given = err.get("input")
    if err.get("type") == "extra_forbidden":
        allowed = ", ".join(sorted(k for k in ALLOWED if "." not in k))
        return path, (
            f"{path}: unsupported parameter for {MODEL_ID} (given {given!r}); "
            f"the options are: {allowed}"
        )
    if err.get("type") == "missing":
        return path, f"{path}: required, expected {ALLOWED.get(path, 'a value')}"
    allowed = ALLOWED.get(path, err.get("msg", "a valid value"))
    return path, f"{path}: must be {allowed}; got {given!r}"


def raise_option_error(exc: ValidationError) -> InvalidOptionError:
    """Convert a pydantic ``ValidationError`` into one :class:`InvalidOptionError`.

    The message lists every bad field as ``path: must be <allowed>; got <value>``; the first
    bad field's path is the error's ``parameter``.

    Example:
        >>> try:
        ...     build_task({"taskUUID": "x", "inputs": {"image": "a", "mask": "b"}})
        ... except InvalidOptionError as e:
        ...     e.parameter
        'taskUUID'
    """
    described = [_describe_error(e) for e in exc.errors()]
    params = [p for p, _ in described]
    return InvalidOptionError(
        "; ".join(msg for _, msg in described),
        parameter=params[0] if params else None,
        parameters=params,
    )


def build_task(options: Mapping[str, Any]) -> ImageInferenceTask:
    """Validate a task given as a mapping (wire names or Python names) and return the model.

    Raises :class:`InvalidOptionError` naming the field, the allowed values and the value given.

    Example:
        >>> build_task({"taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
        ...             "inputs": {"image": "a", "mask": "b"},
        ...             "settings": {"dilatePixels": 15}}).settings.dilate_pixels
        15
        >>> build_task({"taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",  # doctest: +ELLIPSIS
        ...             "inputs": {"image": "a", "mask": "b"}, "outputQuality": 150})
        Traceback (most recent call last):
        ...
        prefect_flux_erase.runware.errors.InvalidOptionError: outputQuality: must be an ...; got 150
    """
    try:
        task = ImageInferenceTask.model_validate(dict(options))
    except ValidationError as exc:
        raise raise_option_error(exc) from None
    _check_combinations(task)
    return task


def _check_combinations(task: ImageInferenceTask) -> None:
    """Options valid alone that make no sense together (the API would ignore or misapply one).

    Example:
        >>> build_task({"taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",  # doctest: +ELLIPSIS
        ...             "inputs": {"image": "a", "mask": "b"}, "ttl": 3600,
        ...             "outputType": "base64Data"})
        Traceback (most recent call last):
        ...
        prefect_flux_erase.runware.errors.InvalidOptionError: ttl: only applies with outputType 'URL' ...
    """  # noqa: E501
    output_type = task.effective_output_type
    if task.ttl is not None and output_type != "URL":
        raise InvalidOptionError(
            f"ttl: only applies with outputType 'URL' (it is how long result URLs live); got "
            f"outputType {output_type!r}. Drop ttl, or use outputType 'URL'",
            parameter="ttl",
        )
    n = task.effective_number_results
    if task.upload_endpoint is not None and n > 1:
        raise InvalidOptionError(
            f"uploadEndpoint: one upload URL receives one result, but numberResults is {n}, "
            "so every result would overwrite the one before. Use numberResults 1 with an "
            "upload URL (uploadEndpoint, or a manifest's upload_url column), or drop the "
            "upload URL to have each result written under the output folder",
            parameter="uploadEndpoint",
        )
