"""Dependencies of the cases routes: load-and-check a case, versions, checked submissions."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from sqlalchemy import and_, select

from app.cases import idempotency
from app.cases.access import CaseAccess
from app.cases.models import CaseSubmissionKey, ContentFlag
from app.cases.queries import load_case_view
from app.cases.schemas import CaseCreate
from app.cases.submission import ContentRejected, Verdict
from app.core.db import SessionDep, get_db
from app.core.deps import CurrentPrincipal, SettingsDep
from app.core.errors import AppError
from app.core.security import Role
from app.core.types import Id
from app.identity.models import User
from app.wechat.deps import WeChatDep
from app.wechat.types import WeChatError

logger = logging.getLogger("app.cases")


async def _case_access(
    session: SessionDep,
    principal: CurrentPrincipal,
    case_id: Annotated[Id, Path()],
) -> CaseAccess:
    access, _view = await load_case_view(session, principal, case_id)
    return access


CaseAccessDep = Annotated[CaseAccess, Depends(_case_access)]


class PreconditionFailed(AppError):
    status, code, detail = 412, "version_conflict", "If-Match 与当前版本不符，请刷新后重试"


_ETAG = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The case version as read, e.g. "3" (the ETag of GET /cases/{id})',
        ),
    ] = None,
) -> int | None:
    if if_match is None:
        return None
    match = _ETAG.match(if_match.strip())
    if match is None:
        raise AppError("If-Match 格式应为版本号", code="validation_error", status=422)
    return int(match.group(1))


IfMatchDep = Annotated[int | None, Depends(_if_match)]


def expected_version(body_version: int | None, if_match: int | None) -> int | None:
    """The version a staff edit was made against: the body's, or If-Match's."""
    if body_version is not None and if_match is not None and body_version != if_match:
        raise AppError("version 与 If-Match 不一致", code="validation_error", status=422)
    return body_version if body_version is not None else if_match


@dataclass(slots=True)
class Submission:
    body: CaseCreate
    verdict: Verdict
    idempotency_key: str | None
    request_hash: str


async def _checked_submission(
    request: Request,
    body: CaseCreate,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    wechat: WeChatDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Generated once per draft; a retry with it answers the first result",
        ),
    ] = None,
) -> Submission:
    """The body, content-checked before the request's transaction opens: WeChat is never
    called while a transaction (or SQLite's write lock) is held. A retry whose key already
    has an answer skips the check."""
    if principal.role not in (Role.resident, Role.deputy, Role.staff, Role.admin):
        from app.core.errors import Forbidden

        raise Forbidden()
    digest = idempotency.request_hash(body.model_dump(mode="json"))
    if idempotency_key is not None:
        idempotency.validate_key(idempotency_key)
    db = await get_db(request)
    # One round trip: the caller's openid (for the check) and any earlier answer to the key.
    key_cols = (
        CaseSubmissionKey.request_hash,
        CaseSubmissionKey.status_code,
        CaseSubmissionKey.response,
    )
    stmt = select(User.openid, *key_cols).where(User.id == principal.user_id)
    stmt = stmt.outerjoin(
        CaseSubmissionKey,
        and_(
            CaseSubmissionKey.user_id == User.id,
            CaseSubmissionKey.key == (idempotency_key or ""),
        ),
    )
    async with db.transaction(write=False) as session:
        row = (await session.execute(stmt)).first()
    openid = row.openid if row is not None else None
    if idempotency_key is not None and row is not None and row.request_hash is not None:
        if row.request_hash != digest:
            raise idempotency.IdempotencyKeyReused()
        # Answered before: the route replays it without checking the text again.
        return Submission(body, Verdict(None), idempotency_key, digest)
    verdict = Verdict(None)
    if not principal.is_staff:
        verdict = await _content_check(wechat, openid, body, settings.case_sec_check_scene)
    return Submission(body, verdict, idempotency_key, digest)


async def _content_check(
    wechat: object, openid: str | None, body: CaseCreate, scene: int
) -> Verdict:
    if not openid:
        return Verdict(ContentFlag.unchecked)
    try:
        result = await wechat.msg_sec_check(  # type: ignore[attr-defined]
            openid=openid, content=f"{body.title}\n{body.content}", scene=scene, title=body.title
        )
    except WeChatError as exc:
        # Never lose a resident's request: register it, flagged for staff to look at.
        logger.warning("content check unavailable for a case: %s", type(exc).__name__)
        return Verdict(ContentFlag.unchecked)
    if result.suggest == "risky":
        raise ContentRejected()
    if result.suggest == "review":
        return Verdict(ContentFlag.review)
    return Verdict(None)


SubmissionDep = Annotated[Submission, Depends(_checked_submission)]
