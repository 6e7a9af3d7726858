"""An uploaded photo and the object it belongs to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.core.models import created_at_field, timestamp_field


class Attachment(SQLModel, table=True):
    """One image, stored re-encoded without metadata behind the storage interface.

    Until it is linked (`owner_type`, `owner_id` set by `claim_attachments`) only its uploader
    may see it; afterwards whoever may see the owner object may see it too.
    """

    __table_args__ = (Index("ix_attachment_owner", "owner_type", "owner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    uploader_id: int = Field(foreign_key="user.id", index=True)
    storage_key: str = Field(max_length=255, unique=True)
    content_type: str = Field(max_length=50)
    size: int
    width: int
    height: int
    sha256: str = Field(max_length=64)
    # "wish", "wish_fulfilment", "case", ...: which kind of object, and its id.
    owner_type: str | None = Field(default=None, max_length=30)
    owner_id: int | None = Field(default=None)
    linked_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
