"""Column helpers shared by the domain models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from app.core.clock import utcnow
from app.core.db import UTCDateTime
from app.core.sorting import SORT_KEY_CHARS_PER_NAME_CHAR


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def timestamp_field(*, index: bool = False, nullable: bool = True) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(sa_type=UTCDateTime, nullable=False, index=index)


def enum_field(default: Any = ..., *, length: int = 30, index: bool = False) -> Any:
    """A StrEnum stored as plain VARCHAR: adding a value later needs no type migration."""
    return Field(default=default, sa_type=sa.String(length), index=index, nullable=False)


def name_sort_field(name_length: int) -> Any:
    """The pinyin sort key of a `name` column of `name_length` characters (see
    `app.core.sorting`); filled in from the name on every write."""
    return Field(default="", max_length=SORT_KEY_CHARS_PER_NAME_CHAR * name_length, nullable=False)


__all__ = ["created_at_field", "timestamp_field", "datetime"]
