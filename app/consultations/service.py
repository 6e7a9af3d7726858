"""The rules of legislative consultations (立法意见征集).

Staff put a draft out at legislative contact points of their region subtree (or
district-wide), residents and deputies comment inside its window, staff mark each comment's
outcome, and publishing the outcomes tells every commenter what became of theirs — once:
the conditional UPDATE of the status lets one request do it, and the outbox's unique key
holds each message to one.

Functions other domains call: `deputy_comments(session, deputy_id, since, until)` for the
duty archive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.attachments import service as attachment_service
from app.attachments.schemas import AttachmentPublic
from app.consultations.models import Consultation, ConsultationComment, ConsultationStatus, Outcome
from app.consultations.schemas import (
    Article,
    CommentCreate,
    CommentPublic,
    ConsultationCreate,
    ConsultationDetail,
    ConsultationPublic,
    ConsultationStats,
    ConsultationUpdate,
    ContactPointStats,
    OutcomeBody,
    PublishResult,
)
from app.core.clock import SHANGHAI, utcnow
from app.core.errors import AppError, Forbidden, InvalidTransition, NotFound, ValidationFailed
from app.core.masking import mask_name
from app.core.pagination import PageParams
from app.core.security import Principal, Role
from app.core.times import api_time
from app.identity.models import Deputy, User
from app.notify import service as notify_service
from app.org.models import Region, Station, StationKind
from app.presence import service as presence_service
from app.wechat.content_check import ContentFlag

OWNER_TYPE = "consultation"
OUTCOME_LABELS = {
    Outcome.adopted.value: "采纳",
    Outcome.partly_adopted.value: "部分采纳",
    Outcome.not_adopted.value: "未采纳",
}


class ConsultationClosed(AppError):
    status, code, detail = 422, "consultation_closed", "该草案不在意见征集期内"


class ConsultationStillOpen(AppError):
    status, code, detail = 409, "consultation_open", "意见征集期结束后才能公布处理结果"


class OutcomesMissing(AppError):
    status, code, detail = 409, "outcomes_missing", "还有意见未标注处理结果"


class OutcomesPublished(AppError):
    status, code, detail = 409, "outcomes_published", "处理结果已公布，不能再修改"


class NotAContactPoint(ValidationFailed):
    code, detail = "not_a_contact_point", "所选站点不是管辖范围内的基层立法联系点"


class UnknownArticle(ValidationFailed):
    code, detail = "unknown_article", "草案中没有该条款"


# Access -----------------------------------------------------------------------------------------


async def _manages_region(
    session: AsyncSession, principal: Principal | None, region_id: int
) -> bool:
    if principal is None or not principal.is_staff:
        return False
    scope = await presence_service.staff_region_path(session, principal)
    if scope is None:
        return True
    path = (
        await session.execute(sa.select(Region.path).where(col(Region.id) == region_id))
    ).scalar_one_or_none()
    return path is not None and path.startswith(scope)


async def consultation_for(
    session: AsyncSession, principal: Principal | None, consultation_id: int
) -> tuple[Consultation, bool]:
    consultation = await session.get(Consultation, consultation_id)
    if consultation is None:
        raise NotFound("征集草案不存在")
    manage = await _manages_region(session, principal, consultation.region_id)
    if consultation.status == ConsultationStatus.draft and not manage:
        raise NotFound("征集草案不存在")
    return consultation, manage


async def attachment_visible(
    session: AsyncSession, principal: Principal | None, owner_id: int
) -> bool:
    try:
        await consultation_for(session, principal, owner_id)
    except NotFound:
        return False
    return True


attachment_service.register_visibility(OWNER_TYPE, attachment_visible)


def is_open(c: Consultation, now: datetime) -> bool:
    return c.status == ConsultationStatus.published and c.opens_at <= now < c.closes_at


# Answers ------------------------------------------------------------------------------------------


async def _comment_counts(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(ConsultationComment.consultation_id, sa.func.count())
        .where(col(ConsultationComment.consultation_id).in_(ids))
        .group_by(ConsultationComment.consultation_id)
    )
    return {int(i): int(n) for i, n in rows}


def _public(c: Consultation, comments: int, now: datetime) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "issuing_body": c.issuing_body,
        "summary": c.summary,
        "region_id": c.region_id,
        "station_ids": list(c.station_ids or []),
        "opens_at": c.opens_at,
        "closes_at": c.closes_at,
        "status": c.status,
        "is_open": is_open(c, now),
        "published_at": c.published_at,
        "outcomes_published_at": c.outcomes_published_at,
        "comments": comments,
    }


async def detail(
    session: AsyncSession, principal: Principal | None, c: Consultation, manage: bool
) -> ConsultationDetail:
    assert c.id is not None
    attachments = (await attachment_service.attachments_of(session, OWNER_TYPE, [c.id]))[c.id]
    mine = 0
    if principal is not None:
        mine = int(
            (
                await session.execute(
                    sa.select(sa.func.count()).where(
                        col(ConsultationComment.consultation_id) == c.id,
                        col(ConsultationComment.user_id) == principal.user_id,
                    )
                )
            ).scalar_one()
        )
    return ConsultationDetail(
        **_public(c, (await _comment_counts(session, [c.id])).get(c.id, 0), utcnow()),
        articles=[Article(**a) for a in c.articles],
        attachments=[AttachmentPublic.of(a) for a in attachments],
        can_manage=manage,
        my_comments=mine,
    )


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return (
        datetime(year, 1, 1, tzinfo=SHANGHAI).astimezone(UTC),
        datetime(year + 1, 1, 1, tzinfo=SHANGHAI).astimezone(UTC),
    )


async def list_consultations(
    session: AsyncSession,
    principal: Principal | None,
    page: PageParams,
    *,
    station_id: int | None,
    open_only: bool,
    year: int | None,
) -> tuple[list[ConsultationPublic], int]:
    """Published ones for everyone (newest first); staff also their subtree's drafts."""
    visible: Any = col(Consultation.status) != ConsultationStatus.draft.value
    if principal is not None and principal.is_staff:
        scope = await presence_service.staff_region_path(session, principal)
        if scope is None:
            visible = sa.true()
        else:
            visible = sa.or_(
                visible,
                col(Consultation.region_id).in_(
                    sa.select(Region.id).where(col(Region.path).startswith(scope))
                ),
            )
    stmt = sa.select(Consultation).where(visible)
    now = utcnow()
    if open_only:
        stmt = stmt.where(
            col(Consultation.status) == ConsultationStatus.published.value,
            col(Consultation.opens_at) <= now,
            col(Consultation.closes_at) > now,
        )
    if year is not None:
        since, until = _year_bounds(year)
        stmt = stmt.where(col(Consultation.opens_at) >= since, col(Consultation.opens_at) < until)
    rows = list(
        (
            await session.execute(
                stmt.order_by(col(Consultation.opens_at).desc(), col(Consultation.id).desc())
            )
        ).scalars()
    )
    if station_id is not None:
        # JSON membership is portable in Python; a district has a handful of drafts a year.
        rows = [c for c in rows if not c.station_ids or station_id in c.station_ids]
    total = len(rows)
    rows = rows[page.offset : page.offset + page.limit]
    counts = await _comment_counts(session, [c.id for c in rows if c.id is not None])
    return [ConsultationPublic(**_public(c, counts.get(c.id, 0), now)) for c in rows], total  # type: ignore[arg-type]


# Writing ------------------------------------------------------------------------------------------


async def _check_stations(
    session: AsyncSession, principal: Principal, station_ids: Sequence[int]
) -> None:
    if not station_ids:
        return
    rows = await session.execute(
        sa.select(Station.id, Station.kind, Station.region_id).where(
            col(Station.id).in_(station_ids)
        )
    )
    found = {int(i): (kind, region_id) for i, kind, region_id in rows}
    bad = [
        s
        for s in station_ids
        if s not in found
        or found[s][0] != StationKind.legislative_point.value
        or not await _manages_region(session, principal, found[s][1])
    ]
    if bad:
        raise NotAContactPoint(station_ids=bad)


async def create_consultation(
    session: AsyncSession, principal: Principal, body: ConsultationCreate
) -> Consultation:
    if await session.get(Region, body.region_id) is None:
        raise ValidationFailed("区域不存在", code="unknown_region")
    if not await _manages_region(session, principal, body.region_id):
        raise Forbidden("该区域不在您的管辖范围内")
    await _check_stations(session, principal, body.station_ids)
    now = utcnow()
    c = Consultation(
        title=body.title,
        issuing_body=body.issuing_body,
        summary=body.summary,
        articles=[a.model_dump() for a in body.articles],
        region_id=body.region_id,
        station_ids=list(body.station_ids),
        opens_at=body.opens_at,
        closes_at=body.closes_at,
        status=ConsultationStatus.published if body.publish else ConsultationStatus.draft,
        published_at=now if body.publish else None,
        created_by_user_id=principal.user_id,
    )
    session.add(c)
    await session.flush()
    assert c.id is not None
    await attachment_service.claim_attachments(
        session, body.attachment_ids, principal.user_id, OWNER_TYPE, c.id
    )
    return c


async def update_consultation(
    session: AsyncSession, c: Consultation, body: ConsultationUpdate
) -> Consultation:
    fields = body.model_dump(exclude_unset=True)
    if c.status == ConsultationStatus.outcomes_published:
        raise OutcomesPublished()
    if "articles" in fields and c.status != ConsultationStatus.draft:
        raise InvalidTransition("草案发布后不能修改条文", code="invalid_transition")
    opens_at = fields.get("opens_at") or c.opens_at
    closes_at = fields.get("closes_at") or c.closes_at
    if closes_at <= opens_at:
        raise ValidationFailed("截止时间必须晚于开始时间", code="invalid_times")
    for name in ("title", "issuing_body"):
        if fields.get(name) is not None:
            setattr(c, name, fields[name])
    if "summary" in fields:
        c.summary = fields["summary"]
    if body.articles is not None:
        c.articles = [a.model_dump() for a in body.articles]
    c.opens_at, c.closes_at = opens_at, closes_at
    now = utcnow()
    if body.status is ConsultationStatus.published and c.status == ConsultationStatus.draft:
        c.status = ConsultationStatus.published
        c.published_at = now
    c.updated_at = now
    session.add(c)
    await session.flush()
    return c


# Comments -------------------------------------------------------------------------------------------


async def add_comment(
    session: AsyncSession,
    principal: Principal,
    c: Consultation,
    body: CommentCreate,
    flag: ContentFlag | None,
) -> CommentPublic:
    if principal.role not in (Role.resident, Role.deputy):
        raise Forbidden("仅限选民和代表提出意见")
    now = utcnow()
    if not is_open(c, now):
        raise ConsultationClosed(opens_at=api_time(c.opens_at), closes_at=api_time(c.closes_at))
    if body.article_no is not None and body.article_no not in {a["no"] for a in c.articles}:
        raise UnknownArticle(article_no=body.article_no)
    station_id = body.station_id
    if station_id is not None and station_id not in (c.station_ids or []):
        raise ValidationFailed("该草案未在此联系点征集意见", code="unknown_station")
    if station_id is None and len(c.station_ids or []) == 1:
        station_id = c.station_ids[0]
    comment = ConsultationComment(
        consultation_id=c.id,  # type: ignore[arg-type]
        user_id=principal.user_id,
        deputy_id=principal.deputy_id if principal.role == Role.deputy else None,
        station_id=station_id,
        article_no=body.article_no,
        content=body.content,
        content_flag=flag.value if flag else None,
        created_at=now,
    )
    session.add(comment)
    await session.flush()
    return (await _comment_publics(session, [comment]))[0]


async def _comment_publics(
    session: AsyncSession, comments: Sequence[ConsultationComment]
) -> list[CommentPublic]:
    users = {c.user_id for c in comments}
    deputies = {c.deputy_id for c in comments if c.deputy_id is not None}
    nicknames: dict[int, str | None] = {}
    names: dict[int, str] = {}
    if users:
        nicknames = {
            int(i): n
            for i, n in await session.execute(
                sa.select(User.id, User.nickname).where(col(User.id).in_(users))
            )
        }
    if deputies:
        names = {
            int(i): n
            for i, n in await session.execute(
                sa.select(Deputy.id, Deputy.name).where(col(Deputy.id).in_(deputies))
            )
        }
    return [
        CommentPublic(
            id=c.id,  # type: ignore[arg-type]
            consultation_id=c.consultation_id,
            article_no=c.article_no,
            content=c.content,
            station_id=c.station_id,
            # Deputies speak as public office holders; residents stay masked.
            commenter=names.get(c.deputy_id)
            if c.deputy_id
            else mask_name(nicknames.get(c.user_id)),
            is_deputy=c.deputy_id is not None,
            content_flag=c.content_flag,
            outcome=c.outcome,
            outcome_note=c.outcome_note,
            created_at=c.created_at,
        )
        for c in comments
    ]


def _grouped_order() -> list[Any]:
    # The whole draft first, then article by article, oldest first.
    return [
        col(ConsultationComment.article_no).is_not(None),
        col(ConsultationComment.article_no),
        col(ConsultationComment.id),
    ]


async def list_comments(
    session: AsyncSession,
    c: Consultation,
    page: PageParams,
    *,
    user_id: int | None,
    article_no: int | None,
    outcome: Outcome | None,
) -> tuple[list[CommentPublic], int]:
    stmt = sa.select(ConsultationComment).where(col(ConsultationComment.consultation_id) == c.id)
    if user_id is not None:
        stmt = stmt.where(col(ConsultationComment.user_id) == user_id)
    if article_no is not None:
        stmt = stmt.where(col(ConsultationComment.article_no) == article_no)
    if outcome is not None:
        stmt = stmt.where(col(ConsultationComment.outcome) == outcome.value)
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(stmt.subquery()))
    ).scalar_one()
    rows = (
        await session.execute(
            stmt.order_by(*_grouped_order()).limit(page.limit).offset(page.offset)
        )
    ).scalars()
    items = await _comment_publics(session, list(rows))
    if user_id is not None and c.status != ConsultationStatus.outcomes_published:
        # A commenter learns the outcomes when staff publish them, not while they collate.
        items = [i.model_copy(update={"outcome": None, "outcome_note": None}) for i in items]
    return items, int(total)


async def set_outcome(
    session: AsyncSession, principal: Principal, c: Consultation, comment_id: int, body: OutcomeBody
) -> CommentPublic:
    comment = await session.get(ConsultationComment, comment_id)
    if comment is None or comment.consultation_id != c.id:
        raise NotFound("意见不存在")
    if c.status == ConsultationStatus.outcomes_published:
        raise OutcomesPublished()
    comment.outcome = body.outcome
    comment.outcome_note = body.note
    comment.outcome_at = utcnow()
    comment.outcome_by_user_id = principal.user_id
    session.add(comment)
    await session.flush()
    return (await _comment_publics(session, [comment]))[0]


async def publish_outcomes(session: AsyncSession, c: Consultation) -> PublishResult:
    """Tells every commenter the outcome of their comments (反馈), once."""
    now = utcnow()
    if c.status == ConsultationStatus.outcomes_published:
        raise OutcomesPublished()
    if c.status != ConsultationStatus.published:
        raise InvalidTransition("草案尚未发布")
    if now < c.closes_at:
        raise ConsultationStillOpen(closes_at=api_time(c.closes_at))
    missing = (
        await session.execute(
            sa.select(sa.func.count()).where(
                col(ConsultationComment.consultation_id) == c.id,
                col(ConsultationComment.outcome).is_(None),
            )
        )
    ).scalar_one()
    if missing:
        raise OutcomesMissing(missing=int(missing))
    taken = await session.execute(
        sa.update(Consultation)
        .where(
            col(Consultation.id) == c.id,
            col(Consultation.status) == ConsultationStatus.published.value,
        )
        .values(status=ConsultationStatus.outcomes_published.value, outcomes_published_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise OutcomesPublished()
    per_user: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for user_id, outcome in await session.execute(
        sa.select(ConsultationComment.user_id, ConsultationComment.outcome).where(
            col(ConsultationComment.consultation_id) == c.id
        )
    ):
        per_user[int(user_id)][str(outcome)] += 1
    messages = []
    for user_id, counts in sorted(per_user.items()):
        summary = "，".join(
            f"{OUTCOME_LABELS[o]}{counts[o]}条" for o in OUTCOME_LABELS if counts.get(o)
        )
        messages.append(
            notify_service.Message(
                recipient_id=user_id,
                event="consultation.outcomes",
                dedupe_key=f"consultation:{c.id}:outcomes",
                title="立法意见处理结果",
                body=f"您对「{c.title}」提出的意见：{summary}",
                page=f"pages/consultation/detail?id={c.id}",
                params={
                    "consultation_id": c.id,
                    "title": c.title,
                    "note": summary,
                    "time": now.isoformat(),
                    **{o: counts.get(o, 0) for o in OUTCOME_LABELS},
                },
            )
        )
    await notify_service.enqueue_many(session, messages)
    await session.refresh(c)
    return PublishResult(
        consultation_id=c.id,  # type: ignore[arg-type]
        commenters=len(per_user),
        outcomes_published_at=now,
    )


# Export ---------------------------------------------------------------------------------------------

EXPORT_HEADERS = [
    "条款",
    "条文",
    "序号",
    "意见",
    "提出人",
    "联系点",
    "处理结果",
    "说明",
    "提出时间",
]


async def collation(
    session: AsyncSession, c: Consultation
) -> list[tuple[str, str, list[CommentPublic]]]:
    """(article heading, article text, its comments) in order; the whole draft first."""
    rows = (
        await session.execute(
            sa.select(ConsultationComment)
            .where(col(ConsultationComment.consultation_id) == c.id)
            .order_by(*_grouped_order())
        )
    ).scalars()
    comments = await _comment_publics(session, list(rows))
    by_article: dict[int | None, list[CommentPublic]] = defaultdict(list)
    for comment in comments:
        by_article[comment.article_no].append(comment)
    groups = [("总体意见", "", by_article.get(None, []))]
    for article in c.articles:
        heading = f"第{article['no']}条" + (f" {article['title']}" if article.get("title") else "")
        groups.append((heading, article["text"], by_article.get(article["no"], [])))
    return groups


async def station_names(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(Station.id, Station.name).where(col(Station.id).in_(ids))
    )
    return {int(i): n for i, n in rows}


# Statistics -------------------------------------------------------------------------------------------


async def contact_point_stats(
    session: AsyncSession, principal: Principal, year: int
) -> ConsultationStats:
    """Per contact point (and district-wide) for drafts published in `year` in scope."""
    since, until = _year_bounds(year)
    scope = await presence_service.staff_region_path(session, principal)
    stmt = sa.select(Consultation).where(
        col(Consultation.status) != ConsultationStatus.draft.value,
        col(Consultation.published_at) >= since,
        col(Consultation.published_at) < until,
    )
    if scope is not None:
        stmt = stmt.where(
            col(Consultation.region_id).in_(
                sa.select(Region.id).where(col(Region.path).startswith(scope))
            )
        )
    consultations = list((await session.execute(stmt)).scalars())
    drafts: dict[int | None, int] = defaultdict(int)
    for c in consultations:
        points: list[int | None] = list(c.station_ids) if c.station_ids else [None]
        for station_id in points:
            drafts[station_id] += 1
    ids = [c.id for c in consultations]
    figures: dict[int | None, dict[str, Any]] = defaultdict(
        lambda: {"comments": 0, "commenters": set(), "adopted": 0, "partly_adopted": 0}
    )
    if ids:
        rows = await session.execute(
            sa.select(
                ConsultationComment.station_id,
                ConsultationComment.user_id,
                ConsultationComment.outcome,
            ).where(col(ConsultationComment.consultation_id).in_(ids))
        )
        for station_id, user_id, outcome in rows:
            f = figures[station_id]
            f["comments"] += 1
            f["commenters"].add(user_id)
            if outcome == Outcome.adopted.value:
                f["adopted"] += 1
            elif outcome == Outcome.partly_adopted.value:
                f["partly_adopted"] += 1
    keys = sorted(set(drafts) | set(figures), key=lambda k: (k is not None, k or 0))
    names = await station_names(session, [k for k in keys if k is not None])
    items = [
        ContactPointStats(
            station_id=k,
            station_name=names.get(k, "") if k is not None else "全区（未指定联系点）",
            drafts=drafts.get(k, 0),
            comments=figures[k]["comments"] if k in figures else 0,
            commenters=len(figures[k]["commenters"]) if k in figures else 0,
            adopted=figures[k]["adopted"] if k in figures else 0,
            partly_adopted=figures[k]["partly_adopted"] if k in figures else 0,
        )
        for k in keys
    ]
    return ConsultationStats(year=year, items=items)


# For the duty archive -----------------------------------------------------------------------------


async def deputy_comments(
    session: AsyncSession, deputy_id: int, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    rows = await session.execute(
        sa.select(ConsultationComment, Consultation.title)
        .join(Consultation, col(Consultation.id) == ConsultationComment.consultation_id)
        .where(
            col(ConsultationComment.deputy_id) == deputy_id,
            col(ConsultationComment.created_at) >= since,
            col(ConsultationComment.created_at) < until,
        )
        .order_by(col(ConsultationComment.created_at), col(ConsultationComment.id))
    )
    return [
        {
            "comment_id": comment.id,
            "consultation_id": comment.consultation_id,
            "title": title,
            "article_no": comment.article_no,
            "created_at": comment.created_at,
            "outcome": comment.outcome,
        }
        for comment, title in rows
    ]
