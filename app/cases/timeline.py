"""Every status change goes through `transition`, which asks `flows.decide` and settles races
with a conditional UPDATE on (status, version); every step leaves a timeline entry
(`record_event`).

Services only `flush()`: the request's session commits the move, its timeline entry and its
notifications together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.cases.access import CaseAccess
from app.cases.flows import STATUS_TEXT, Decision, Relation, decide
from app.cases.models import Case, CaseAction, CaseEvent, CaseStatus
from app.core.clock import utcnow
from app.core.errors import Forbidden, InvalidTransition, VersionConflict
from app.core.security import Principal
from app.integrations import webhooks


async def record_event(
    session: AsyncSession,
    case: Case,
    action: CaseAction | str,
    actor: Principal | None,
    from_status: CaseStatus | None,
    to_status: CaseStatus | None,
    *,
    public_note: str | None = None,
    internal_note: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> CaseEvent:
    assert case.id is not None
    event = CaseEvent(
        case_id=case.id,
        action=str(action),
        from_status=from_status.value if from_status else None,
        to_status=to_status.value if to_status else None,
        actor_id=actor.user_id if actor else None,
        actor_role=_actor_role(actor),
        api_key_id=actor.api_key_id if actor else None,
        round=case.reopen_count,
        public_note=public_note,
        internal_note=internal_note,
        data=data or {},
        created_at=now or utcnow(),
    )
    session.add(event)
    await _publish(session, case, str(action), event)
    return event


def _actor_role(actor: Principal | None) -> str:
    if actor is None:
        return "system"
    if actor.is_api_key:
        return "integrator"
    return actor.role.value


async def _publish(session: AsyncSession, case: Case, action: str, event: CaseEvent) -> None:
    """The webhook events of this step, queued in the same transaction."""
    names = []
    if action == CaseAction.register:
        names.append("case.created")
    elif event.to_status is not None and event.to_status != event.from_status:
        names.append("case.status_changed")
        if action == CaseAction.reply:
            names.append("case.replied")
        if event.to_status == CaseStatus.resolved:
            names.append("case.resolved")
    if not names:
        return
    data = {
        "case_id": case.id,
        "number": case.number,
        "title": case.title,
        "category_id": case.category_id,
        "region_id": case.region_id,
        "channel": case.channel,
        "action": action,
        "from_status": event.from_status,
        "status": event.to_status,
        "public_note": event.public_note,
        "lead_unit_id": case.lead_unit_id,
        "deadline_at": case.deadline_at.isoformat() if case.deadline_at else None,
    }
    await webhooks.publish(
        session, names, data, region_id=case.region_id, occurred_at=event.created_at
    )


async def transition(
    session: AsyncSession,
    access: CaseAccess | None,
    case: Case,
    action: CaseAction,
    *,
    to: CaseStatus | None = None,
    expected_version: int | None = None,
    values: dict[str, Any] | None = None,
    public_note: str | None = None,
    internal_note: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> CaseStatus:
    """Apply one move of the table: check it, update the case conditionally on its status
    and version, write the timeline entry. Notifications are the caller's hook."""
    from app.cases.flows import TRANSITIONS

    now = now or utcnow()
    relations = access.relations if access is not None else {Relation.system}
    current = CaseStatus(case.status)
    decision = decide(current, action, relations)
    if decision is Decision.forbidden:
        raise Forbidden("没有权限对该件执行此操作", code="forbidden")
    if decision is Decision.invalid:
        raise InvalidTransition(
            f"该件当前状态为「{STATUS_TEXT[current]}」，不能执行此操作",
            status_name=current.value,
            action=action.value,
        )
    if expected_version is not None and expected_version != case.version:
        raise VersionConflict(current_version=case.version)
    rule = TRANSITIONS[(current, action)]
    target = to or rule.to
    assert target is not None
    changes = {**(values or {}), "status": target, "version": case.version + 1, "updated_at": now}
    result = await session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == current, Case.version == case.version)  # type: ignore[arg-type]
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        fresh = (
            await session.execute(
                select(Case.status, Case.version).where(Case.id == case.id)  # type: ignore[arg-type]
            )
        ).one()
        if fresh.status != current:
            raise InvalidTransition("该件状态已变化，请刷新后重试", status_name=fresh.status)
        raise VersionConflict(current_version=fresh.version)
    for key, value in changes.items():
        set_committed_value(case, key, value)
    actor = access.principal if access is not None else None
    await record_event(
        session,
        case,
        action,
        actor,
        current,
        target,
        public_note=public_note,
        internal_note=internal_note,
        data=data,
        now=now,
    )
    return target
