"""Shapes of attachment answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.attachments.models import Attachment

API_PREFIX = "/api/v1"


def attachment_url(attachment_id: int) -> str:
    return f"{API_PREFIX}/attachments/{attachment_id}"


class AttachmentPublic(BaseModel):
    """An uploaded image. `url` answers the file to those allowed to see it (send the
    access token: `wx.downloadFile` with an `Authorization` header)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "url": "/api/v1/attachments/42",
                    "width": 1080,
                    "height": 1440,
                    "content_type": "image/jpeg",
                    "size": 183245,
                }
            ]
        }
    )

    id: int
    url: str = Field(examples=["/api/v1/attachments/42"])
    width: int
    height: int
    content_type: str = Field(examples=["image/jpeg"])
    size: int = Field(description="Bytes of the stored (re-encoded) file")

    @classmethod
    def of(cls, attachment: Attachment) -> AttachmentPublic:
        assert attachment.id is not None
        return cls(
            id=attachment.id,
            url=attachment_url(attachment.id),
            width=attachment.width,
            height=attachment.height,
            content_type=attachment.content_type,
            size=attachment.size,
        )
