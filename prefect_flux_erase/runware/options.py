"""`EraseOptions`: every option of the FLUX Erase API page, with the page's ranges and defaults.

A plain pydantic model, free of any orchestrator: the Prefect block
:class:`~prefect_flux_erase.blocks.settings.FluxEraseSettings` and the Airflow operators wrap it,
and the pipeline sends every row with one. An invalid value fails at construction with a
message naming the wire field, the allowed range or values, and the value given.

Example:
    >>> EraseOptions(dilate_pixels=15, output_format="PNG").wire_options()
    {'outputFormat': 'PNG', 'settings': {'dilatePixels': 15}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from prefect_flux_erase.runware.models import ImageInferenceTask, build_task

_PLACEHOLDER_UUID = "00000000-0000-4000-8000-000000000000"

#: The enumerated options, by field, in the API's own spelling (any case is accepted).
_ENUMS: dict[str, tuple[str, ...]] = {
    "output_type": ("URL", "base64Data", "dataURI"),
    "output_format": ("JPG", "PNG", "WEBP"),
    "delivery_method": ("sync", "async"),
    "safety_mode": ("none", "fast"),
}


class EraseOptions(BaseModel):
    """The FLUX Erase options, validated with the model page's ranges and defaults.

    Field names are the snake_case of the wire fields (``dilate_pixels`` is
    ``settings.dilatePixels``). Values equal to the API's defaults are not sent. Enumerated
    values accept any case (``"png"`` is ``"PNG"``).

    Example:
        >>> options = EraseOptions(dilate_pixels=15, output_format="PNG")
        >>> task = options.to_task("3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11", image="a", mask="b")
        >>> task.to_wire()["outputFormat"]
        'PNG'
    """

    dilate_pixels: int = Field(
        default=10,
        description=(
            "settings.dilatePixels (0-50): grow the mask outward by this many pixels before "
            "erasing. 10 for SAM-style masks; 15-20 for hair, fur or smoke."
        ),
    )
    output_type: Literal["URL", "base64Data", "dataURI"] = Field(
        default="URL", description="outputType: how results come back (URL, base64Data, dataURI)."
    )
    output_format: Literal["JPG", "PNG", "WEBP"] = Field(
        default="JPG", description="outputFormat: JPG, PNG (keeps alpha) or WEBP (keeps alpha)."
    )
    output_quality: int = Field(
        default=95, description="outputQuality (20-99): compression quality of the output."
    )
    number_results: int = Field(
        default=1, description="numberResults (1-20): results per image, each with its own seed."
    )
    delivery_method: Literal["sync", "async"] | None = Field(
        default=None,
        description=(
            "deliveryMethod: 'sync' or 'async'. Unset, the API's default (sync) applies to single "
            "images and the manifest pipeline uses async delivery with getResponse polling."
        ),
    )
    include_cost: bool = Field(
        default=False, description="includeCost: report each result's cost in USD."
    )
    ttl: int | None = Field(
        default=None,
        description="ttl (>= 60 s): lifetime of result URLs; only with outputType URL.",
    )
    check_content: bool = Field(
        default=False, description="safety.checkContent: enable content safety checking."
    )
    safety_mode: Literal["none", "fast"] | None = Field(
        default=None, description="safety.mode: 'none' or 'fast' (a single check)."
    )
    webhook_url: str | None = Field(
        default=None, description="webhookURL: POST each finished result to this URL."
    )
    upload_endpoint: str | None = Field(
        default=None,
        description="uploadEndpoint: PUT each output's bytes to this (presigned) URL.",
    )

    @field_validator(*_ENUMS, mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        # "png" and "PNG" mean the same to a person; the API wants its own spelling.
        if isinstance(value, str) and info.field_name is not None:
            spelled = {v.lower(): v for v in _ENUMS[info.field_name]}
            return spelled.get(value.strip().lower(), value)
        return value

    @model_validator(mode="after")
    def _validate_as_wire_task(self) -> EraseOptions:
        # One validation path: build the wire task (raises InvalidOptionError, a ValueError).
        self.to_task(_PLACEHOLDER_UUID, image="x", mask="x")
        return self

    def wire_options(self) -> dict[str, Any]:
        """The options as wire fields, omitting those equal to the API's own defaults.

        Example:
            >>> EraseOptions(output_format="PNG").wire_options()
            {'outputFormat': 'PNG'}
        """
        options: dict[str, Any] = {}
        defaults = {
            "outputType": "URL",
            "outputFormat": "JPG",
            "outputQuality": 95,
            "numberResults": 1,
            "includeCost": False,
        }
        values = {
            "outputType": self.output_type,
            "outputFormat": self.output_format,
            "outputQuality": self.output_quality,
            "numberResults": self.number_results,
            "includeCost": self.include_cost,
            "deliveryMethod": self.delivery_method,
            "ttl": self.ttl,
            "webhookURL": self.webhook_url,
            "uploadEndpoint": self.upload_endpoint,
        }
        for key, value in values.items():
            if value is not None and defaults.get(key, object()) != value:
                options[key] = value
        if self.dilate_pixels != 10:
            options["settings"] = {"dilatePixels": self.dilate_pixels}
        safety: dict[str, Any] = {}
        if self.check_content:
            safety["checkContent"] = True
        if self.safety_mode is not None:
            safety["mode"] = self.safety_mode
        if safety:
            options["safety"] = safety
        return options

    def to_task(
        self,
        task_uuid: str,
        *,
        image: str,
        mask: str,
        overrides: dict[str, Any] | None = None,
    ) -> ImageInferenceTask:
        """Build the validated ``imageInference`` task for one image and mask.

        ``overrides`` are wire fields that win over these options (e.g. a row's own
        ``{"settings": {"dilatePixels": 20}}`` or ``{"deliveryMethod": "async"}``).

        Example:
            >>> s = EraseOptions(output_format="WEBP")
            >>> s.to_task("3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11", image="a", mask="b",
            ...           overrides={"settings": {"dilatePixels": 20}}).to_wire()["settings"]
            {'dilatePixels': 20}
        """
        wire: dict[str, Any] = {
            "taskUUID": task_uuid,
            "inputs": {"image": image, "mask": mask},
            **self.wire_options(),
        }
        for key, value in (overrides or {}).items():
            if isinstance(value, dict) and isinstance(wire.get(key), dict):
                wire[key] = {**wire[key], **value}
            else:
                wire[key] = value
        return build_task(wire)
