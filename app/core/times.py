"""How every answer writes a moment: ISO 8601 in Asia/Shanghai, to the second, with an
explicit offset: `2026-11-29T09:30:00+08:00`.

The service's users are all in China and its deadlines and business days are Shanghai's
already, so answers speak Shanghai time; the offset stays explicit so that a client never has
to guess. No client sends a timestamp back for comparison (versions are integers, there are no
time cursors), so seconds are enough. The database keeps UTC (`app.core.db.UTCDateTime`).

- `Timestamp` is the type of every datetime field of a schema: it validates like `datetime`
  (any offset; see the fields for what a naive input means) and serializes to JSON in the one
  form. A test walks every response schema and refuses a bare `datetime` field.
- `api_time(moment)` writes the form for the few places that build JSON or files by hand.
- `normalize_times(data)` rewrites timestamp strings inside free-form JSON (timeline event
  data) that older rows may hold in another form.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import PlainSerializer, WithJsonSchema

from app.core.clock import SHANGHAI

SAMPLE_TIME = "2026-05-20T09:30:00+08:00"

# ISO 8601 with date, time and an explicit offset or Z: what `normalize_times` rewrites.
_ISO_MOMENT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})", re.ASCII
)


def api_time(moment: datetime) -> str:
    """`moment` as answers write it. A naive value is taken as UTC, as the database stores."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


Timestamp = Annotated[
    datetime,
    PlainSerializer(api_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": [SAMPLE_TIME]}),
]


def normalize_times(data: Any) -> Any:
    """`data` (JSON-like) with every string that is a full ISO 8601 moment rewritten by
    `api_time`; everything else unchanged."""
    if isinstance(data, str):
        if _ISO_MOMENT.fullmatch(data):
            try:
                return api_time(datetime.fromisoformat(data))
            except ValueError:
                return data
        return data
    if isinstance(data, dict):
        return {key: normalize_times(value) for key, value in data.items()}
    if isinstance(data, list):
        return [normalize_times(value) for value in data]
    if isinstance(data, datetime):
        return api_time(data)
    return data


# Free-form JSON in an answer (timeline event data), its timestamp strings in the one form.
TimedJSON = Annotated[
    dict[str, Any], PlainSerializer(normalize_times, return_type=dict[str, Any], when_used="json")
]
