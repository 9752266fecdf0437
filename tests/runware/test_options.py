"""EraseOptions: the API's enumerated options accept any case and keep the API's spelling."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prefect_flux_erase.runware.options import EraseOptions


@pytest.mark.parametrize(
    ("field", "given", "sent"),
    [
        ("output_format", "png", "PNG"),
        ("output_format", "Webp", "WEBP"),
        ("output_type", "base64data", "base64Data"),
        ("output_type", "DATAURI", "dataURI"),
        ("delivery_method", "ASYNC", "async"),
        ("safety_mode", "Fast", "fast"),
    ],
)
def test_enumerated_options_accept_any_case(field: str, given: str, sent: str) -> None:
    options = EraseOptions(**{field: given})

    assert getattr(options, field) == sent


def test_an_unknown_value_still_fails_naming_the_allowed_ones() -> None:
    with pytest.raises(ValidationError, match="'JPG', 'PNG' or 'WEBP'"):
        EraseOptions(output_format="gif")
