"""HTTP endpoints of attachments: upload an image, fetch one."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from app.attachments import service
from app.attachments.schemas import AttachmentPublic
from app.core.db import Database, SessionDep, get_db
from app.core.deps import CurrentPrincipal, OptionalPrincipal, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.storage import Storage, StorageError, get_storage
from app.core.types import Id

router = APIRouter(prefix="/attachments", tags=["cases", "wishes"])

DatabaseDep = Annotated[Database, Depends(get_db)]
StorageDep = Annotated[Storage, Depends(get_storage)]


@router.post(
    "",
    status_code=201,
    response_model=AttachmentPublic,
    responses=problem_responses(401, 413, 415, 422, 503),
    summary="Upload an image (JPEG, PNG or WebP)",
)
async def upload_attachment(
    principal: CurrentPrincipal,
    settings: SettingsDep,
    db: DatabaseDep,
    storage: StorageDep,
    file: Annotated[
        UploadFile, File(description="The image, as `wx.uploadFile` sends it (name: `file`)")
    ],
) -> AttachmentPublic:
    """Store a photo for a wish, a fulfilment report or a case (附件上传).

    The type is read from the bytes themselves (the file name and the part's content type are
    ignored); anything but JPEG, PNG or WebP is refused with 415. Larger than
    `MAX_UPLOAD_BYTES` is refused with 413, more pixels than `MAX_UPLOAD_PIXELS` (read from
    the header, before decoding: decompression bombs too) with 422 `image_too_large`; 503
    `storage_unavailable` when the object store cannot be reached. The image is turned upright
    and re-encoded with no metadata: EXIF, and with it the GPS position, never reaches the
    storage.
    The answer's `id` goes into `attachment_ids` of the object it illustrates; until then
    only the uploader can fetch it.
    """
    data = await file.read(settings.max_upload_bytes + 1)
    await file.close()
    attachment = await service.store_upload(
        db, storage, settings, uploader_id=principal.user_id, data=data
    )
    return AttachmentPublic.of(attachment)


async def _chunks(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # a client that went away closes the file or the store's stream now


@router.get(
    "/{attachment_id}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
            "description": "The image bytes",
        },
        302: {
            "description": "With `S3_DELIVERY=redirect`: the image at a signed URL of the object "
            "store, valid `S3_URL_TTL_SECONDS`",
            "headers": {
                "Location": {
                    "description": "The signed URL",
                    "schema": {"type": "string"},
                    "example": "https://photos.oss-cn-hangzhou.aliyuncs.com/2026/11/"
                    "3f2a9c.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&…",
                }
            },
        },
        **problem_responses(401, 404, 503),
    },
    summary="Fetch an image",
)
async def get_attachment(
    attachment_id: Annotated[Id, Path()],
    session: SessionDep,
    principal: OptionalPrincipal,
    storage: StorageDep,
) -> Response:
    """The image, to its uploader and to whoever may see the wish or case it belongs to.

    Anyone else gets 404 (not 403), so ids reveal nothing. Photos of a published wish are
    public like the wish itself. With the object store in `redirect` mode the answer is a
    302 to a short-lived signed URL (follow it; do not keep it); otherwise the bytes.
    """
    attachment = await service.get_attachment(session, attachment_id)
    if attachment is None or not await service.can_view(session, principal, attachment):
        raise NotFound("图片不存在或无权查看")
    private = attachment.owner_type is None
    signed = await storage.signed_url(attachment.storage_key)
    if signed is not None:
        # Never cached: a cached redirect would outlive its signature.
        return RedirectResponse(signed, status_code=302, headers={"Cache-Control": "no-store"})
    # The first chunk is read before answering, so a missing file is a 404, not a cut answer.
    chunks = storage.stream(attachment.storage_key)
    try:
        first = await anext(chunks, b"")
    except StorageError as exc:
        raise NotFound("图片文件已丢失") from exc
    return StreamingResponse(
        _chunks(first, chunks),
        media_type=attachment.content_type,
        headers={
            "Content-Length": str(attachment.size),
            "Cache-Control": "private, max-age=3600" if not private else "private, no-store",
            "ETag": f'"{attachment.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
