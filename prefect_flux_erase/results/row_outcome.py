"""`RowOutcome`: what happened to one manifest row, and the results table's schema.

Every manifest row ends as exactly one `RowOutcome`, whatever happened to it. The results
dataset is the manifest's own columns followed by :data:`RESULT_FIELDS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pyarrow as pa

Status = Literal["succeeded", "failed"]

#: Columns the pipeline adds to every manifest row, in order, with their Arrow types.
RESULT_FIELDS: tuple[pa.Field, ...] = (
    pa.field("row_key", pa.string()),
    pa.field("row_index", pa.int64()),
    pa.field("status", pa.string()),
    pa.field("output_uri", pa.list_(pa.string())),
    pa.field("image_uuid", pa.list_(pa.string())),
    pa.field("source_url", pa.list_(pa.string())),
    pa.field("cost", pa.float64()),
    pa.field("error_code", pa.string()),
    pa.field("error_message", pa.string()),
    pa.field("attempts", pa.int32()),
    pa.field("latency_s", pa.float64()),
    pa.field("task_uuid", pa.string()),
    pa.field("resumed", pa.bool_()),
    pa.field("shared_with", pa.int64()),
    pa.field("cached", pa.bool_()),
    pa.field("seed", pa.list_(pa.int64())),
    pa.field("nsfw_content", pa.list_(pa.bool_())),
)
RESULT_SCHEMA = pa.schema(list(RESULT_FIELDS))
RESULT_COLUMNS: tuple[str, ...] = tuple(f.name for f in RESULT_FIELDS)


@dataclass
class RowOutcome:
    """The record of one row: status, outputs, cost, error and timing.

    ``output_uri``/``image_uuid``/``source_url``/``seed``/``nsfw_content`` are lists because
    ``numberResults`` > 1 gives several results per row: one entry per result, in order
    (``seed`` and ``nsfw_content`` hold ``None`` where the API did not send the field;
    ``NSFWContent`` comes with ``check_content``). ``error_code`` is stable (a Runware code such as
    ``invalidMaskDimensions`` or a local one such as ``inputNotFound``); ``error_message`` says
    what to fix. ``shared_with`` is the ``row_index`` of the row whose erase (and charge) this
    row shares because their image, mask and settings are identical (this row then costs 0);
    ``cached`` says the result came from the cross-run result cache (cost 0).

    Example:
        >>> RowOutcome(row_key="a", row_index=0, status="failed", error_code="inputNotFound",
        ...            error_message="s3://b/a.png does not exist").as_record()["status"]
        'failed'
    """

    row_key: str
    row_index: int
    status: Status
    output_uri: list[str] = field(default_factory=list)
    image_uuid: list[str] = field(default_factory=list)
    source_url: list[str] = field(default_factory=list)
    cost: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    latency_s: float | None = None
    task_uuid: str | None = None
    resumed: bool = False
    shared_with: int | None = None
    cached: bool = False
    seed: list[int | None] = field(default_factory=list)
    nsfw_content: list[bool | None] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        """The outcome as a dict keyed by :data:`RESULT_COLUMNS`."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RowOutcome:
        """The outcome a results row records (columns missing from older parts left empty).

        Example:
            >>> done = RowOutcome(row_key="a", row_index=0, status="succeeded", cost=0.03)
            >>> RowOutcome.from_record(done.as_record()) == done
            True
        """
        values: dict[str, Any] = {}
        for name in RESULT_COLUMNS:
            if name in record and record[name] is not None:
                values[name] = record[name]
        values["row_index"] = int(values["row_index"])
        return cls(**values)
