"""Uploading images, linking them to the object they illustrate, and who may see them.

Other domains call two things:

- `claim_attachments(session, attachment_ids, uploader_id, owner_type, owner_id)` inside
  their transaction, when a wish or case is created with photos: only the caller's own,
  not yet linked uploads are accepted, atomically.
- `register_visibility(owner_type, checker)` once at import, so that an attachment linked to
  one of their objects is visible to whoever may see that object. Wishes register "wish" and
  "wish_fulfilment"; cases register "case" (e.g. `can_view_case_attachment`).

The worker runs `purge_unlinked_uploads(session, now, settings)`: uploads never linked are
deleted after `ATTACHMENT_UNLINKED_TTL_HOURS`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.attachments.models import Attachment
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import AppError, ValidationFailed
from app.core.security import Principal
from app.core.storage import Storage, StorageError, new_key, storage_for

logger = logging.getLogger("app.attachments")

# Pillow warns, rather than refuses, for images between its pixel bound and twice that; make
# it refuse, so every decompression bomb is one exception that `clean_image` turns into 422.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# Pillow's format name → (content type, file extension).
ALLOWED_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}


class PayloadTooLarge(AppError):
    status, code, detail = 413, "payload_too_large", "图片过大，请压缩后再上传"


class UnsupportedImage(AppError):
    status, code, detail = 415, "unsupported_media_type", "仅支持 JPEG、PNG、WebP 格式的图片"


class InvalidAttachment(ValidationFailed):
    code, detail = "invalid_attachment", "附件不存在、不属于您或已被使用"


VisibilityChecker = Callable[[AsyncSession, Principal | None, int], Awaitable[bool]]
_visibility: dict[str, VisibilityChecker] = {}


def register_visibility(owner_type: str, checker: VisibilityChecker) -> None:
    """Let whoever `checker(session, principal, owner_id)` admits see attachments linked to
    objects of `owner_type`. Registering the same type again replaces the checker."""
    _visibility[owner_type] = checker


def visibility_checker(owner_type: str) -> VisibilityChecker | None:
    return _visibility.get(owner_type)


async def can_view(
    session: AsyncSession, principal: Principal | None, attachment: Attachment
) -> bool:
    """The uploader always; others only through the owner object's checker."""
    if principal is not None and principal.user_id == attachment.uploader_id:
        return True
    if attachment.owner_type is None or attachment.owner_id is None:
        return False
    checker = _visibility.get(attachment.owner_type)
    if checker is None:
        logger.warning("no visibility checker for attachments of %s", attachment.owner_type)
        return False
    return await checker(session, principal, attachment.owner_id)


# An image at the pixel bound takes a few hundred MB while it is cleaned (its pixels, the
# upright copy, the clean copy) and a second or more of CPU: at most this many are cleaned at
# once per process; further uploads wait their turn without holding a thread.
DECODE_SLOTS = 2
_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _decode_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots_by_loop.get(loop)
    if slots is None:
        slots = _slots_by_loop[loop] = asyncio.Semaphore(DECODE_SLOTS)
    return slots


@dataclass(frozen=True, slots=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean_image(data: bytes, *, max_pixels: int) -> CleanImage:
    """Identify the image from its bytes, apply its EXIF orientation and re-encode it with no
    metadata at all (no EXIF, hence no GPS position, no XMP, no text chunks). CPU-bound: call
    it in a thread.

    Whatever else a hostile file makes Pillow raise (malformed EXIF breaks the orientation
    step with TypeError, for one) is the file's fault: 415, not a server error."""
    try:
        return _clean_image(data, max_pixels=max_pixels)
    except AppError:
        raise
    except Exception as exc:
        logger.info("unreadable image upload: %s", type(exc).__name__)
        raise UnsupportedImage("无法识别的图片内容") from exc


def _clean_image(data: bytes, *, max_pixels: int) -> CleanImage:
    too_large = UnsupportedImage("图片尺寸过大，请缩小后再上传", code="image_too_large", status=422)
    try:
        # Only the three formats' parsers run; opening reads the header, decoding is `load`.
        with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as opened:
            fmt = opened.format
            if fmt not in ALLOWED_FORMATS:
                raise UnsupportedImage()
            width, height = opened.size
            if width * height > max_pixels:  # from the header, before any pixel is decoded
                raise too_large
            opened.seek(0)  # first frame of an animation
            opened.load()
            icc_profile = opened.info.get("icc_profile")
            upright = ImageOps.exif_transpose(opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise too_large from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UnsupportedImage("无法识别的图片内容", code="unsupported_media_type") from exc
    except ValueError as exc:
        raise UnsupportedImage("无法识别的图片内容") from exc

    # A fresh image holds pixels only: nothing of the original's metadata can leak through.
    if fmt == "JPEG" and upright.mode not in ("RGB", "L"):
        upright = upright.convert("RGB")
    elif fmt in ("PNG", "WEBP") and upright.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        upright = upright.convert("RGBA")
    clean = Image.new(upright.mode, upright.size)
    if upright.mode == "P":
        palette = upright.getpalette()
        if palette is not None:
            clean.putpalette(palette)
    clean.paste(upright)
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile  # colour, not location: keep it
    if upright.mode == "P" and "transparency" in upright.info:
        options["transparency"] = upright.info["transparency"]
    if fmt == "JPEG":
        options.update(quality=88, optimize=True)
    elif fmt == "WEBP":
        options.update(quality=85)
    out = io.BytesIO()
    clean.save(out, format=fmt, **options)
    content_type, extension = ALLOWED_FORMATS[fmt]
    return CleanImage(out.getvalue(), content_type, extension, clean.width, clean.height)


async def store_upload(
    db: Database, storage: Storage, settings: Settings, *, uploader_id: int, data: bytes
) -> Attachment:
    """Check, clean and store one uploaded image; answers the new (unlinked) attachment.

    Runs its own short transaction after the slow work (decoding, re-encoding, writing the
    file), so no database write lock is held meanwhile.
    """
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge()
    if not data:
        raise UnsupportedImage("上传的文件为空", code="empty_file", status=422)
    async with _decode_slots():
        image = await asyncio.to_thread(clean_image, data, max_pixels=settings.max_upload_pixels)
    key = new_key(image.extension)
    await storage.save(key, image.data, image.content_type)
    try:
        async with db.transaction() as session:
            attachment = Attachment(
                uploader_id=uploader_id,
                storage_key=key,
                content_type=image.content_type,
                size=len(image.data),
                width=image.width,
                height=image.height,
                sha256=hashlib.sha256(image.data).hexdigest(),
            )
            session.add(attachment)
            await session.flush()
    except BaseException:
        await storage.delete(key)
        raise
    return attachment


async def claim_attachments(
    session: AsyncSession,
    attachment_ids: Iterable[int],
    uploader_id: int,
    owner_type: str,
    owner_id: int,
) -> list[Attachment]:
    """Link the caller's own unlinked uploads to one object, all or none.

    One conditional UPDATE does it: an id that does not exist, belongs to someone else or is
    already linked (also by a concurrent request) makes the row count fall short, and the
    error rolls back the caller's whole transaction. Answers the attachments in the given order.
    """
    ids = list(dict.fromkeys(attachment_ids))
    if not ids:
        return []
    result = await session.execute(
        update(Attachment)
        .where(
            Attachment.id.in_(ids),
            Attachment.uploader_id == uploader_id,
            Attachment.owner_type.is_(None),
        )
        .values(owner_type=owner_type, owner_id=owner_id, linked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):  # type: ignore[attr-defined]
        raise InvalidAttachment(attachment_ids=ids)
    rows = await session.execute(select(Attachment).where(Attachment.id.in_(ids)))
    by_id = {a.id: a for a in rows.scalars()}
    return [by_id[i] for i in ids]


async def attachments_of(
    session: AsyncSession, owner_type: str, owner_ids: Iterable[int]
) -> dict[int, list[Attachment]]:
    """Attachments linked to each of `owner_ids`, oldest first, in one query."""
    ids = list(set(owner_ids))
    found: dict[int, list[Attachment]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(Attachment)
        .where(Attachment.owner_type == owner_type, Attachment.owner_id.in_(ids))
        .order_by(Attachment.id)
    )
    for attachment in rows.scalars():
        assert attachment.owner_id is not None
        found[attachment.owner_id].append(attachment)
    return found


async def get_attachment(session: AsyncSession, attachment_id: int) -> Attachment | None:
    return await session.get(Attachment, attachment_id)


async def purge_unlinked_uploads(
    session: AsyncSession, now: datetime, settings: Settings, *, limit: int = 500
) -> int:
    """Sweep (worker signature `fn(session, now, settings)`): delete uploads nobody linked to
    a wish or case within `ATTACHMENT_UNLINKED_TTL_HOURS`, rows and files.

    The DELETE repeats the "still unlinked and old" condition, so an upload being linked at
    the same moment either is linked (and kept) or is deleted and the link fails with
    `invalid_attachment`; never a link to a missing row. Files go after the rows; should the
    transaction then fail, the rows stay and answer 404 (the file is missing), nothing worse.
    Answers how many were deleted.
    """
    cutoff = now - timedelta(hours=settings.attachment_unlinked_ttl_hours)
    stale = and_(Attachment.owner_type.is_(None), col(Attachment.created_at) < cutoff)
    ids = list(
        (
            await session.execute(
                select(Attachment.id).where(stale).order_by(Attachment.id).limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    keys = list(
        (
            await session.execute(
                delete(Attachment)
                .where(Attachment.id.in_(ids), stale)
                .returning(Attachment.storage_key)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )
    storage = storage_for(settings)
    for key in keys:
        try:
            await storage.delete(key)
        except StorageError:
            logger.warning("could not delete an unlinked upload's file")
    return len(keys)
