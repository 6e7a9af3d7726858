"""The wish workflow: one transition table, and hooks that run after a transition.

    pending_review ─approve→ published ─claim→ claimed ─fulfil→ fulfilled ─confirm→ completed
          │                    │  ↑              │                  └─auto_complete→ completed
          ├─reject→ rejected   │  └──release─────┘
          └─withdraw→ withdrawn ←─withdraw─┘  published ─expire→ expired

Every route and sweep goes through `check()` against `TRANSITIONS`; nothing else decides
whether a step is allowed. The service applies a step as one conditional UPDATE
(`WHERE status IN sources`), so a step that lost a race is refused like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from app.core.errors import Forbidden, InvalidTransition
from app.wishes.models import WishStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.wishes.models import Wish, WishEvent

S = WishStatus


class Party(StrEnum):
    """How a caller relates to one wish."""

    owner = "owner"  # the resident who posted it
    claimer = "claimer"  # the deputy holding its claim
    deputy = "deputy"  # any deputy bound to an account
    staff = "staff"  # staff whose region covers the wish, or an admin
    system = "system"  # the sweeps run by the worker


class Action(StrEnum):
    submit = "submit"
    approve = "approve"
    reject = "reject"
    claim = "claim"
    release = "release"
    fulfil = "fulfil"
    confirm = "confirm"
    auto_complete = "auto_complete"
    withdraw = "withdraw"
    expire = "expire"


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    sources: frozenset[WishStatus]
    target: WishStatus
    parties: frozenset[Party]
    label: str  # for the timeline, in Chinese


def _t(
    action: Action, sources: set[WishStatus], target: WishStatus, parties: set[Party], label: str
) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(parties), label)


TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        _t(Action.submit, set(), S.pending_review, {Party.owner}, "提交心愿"),
        _t(Action.approve, {S.pending_review}, S.published, {Party.staff}, "审核通过"),
        _t(Action.reject, {S.pending_review}, S.rejected, {Party.staff}, "审核未通过"),
        _t(Action.claim, {S.published}, S.claimed, {Party.deputy}, "代表认领"),
        _t(Action.release, {S.claimed}, S.published, {Party.claimer}, "代表放弃认领"),
        _t(Action.fulfil, {S.claimed}, S.fulfilled, {Party.claimer}, "代表完成心愿"),
        _t(Action.confirm, {S.fulfilled}, S.completed, {Party.owner}, "群众确认并致谢"),
        _t(Action.auto_complete, {S.fulfilled}, S.completed, {Party.system}, "超期自动完成"),
        _t(
            Action.withdraw,
            {S.pending_review, S.published},
            S.withdrawn,
            {Party.owner},
            "群众撤回",
        ),
        _t(Action.expire, {S.published}, S.expired, {Party.system}, "无人认领，已过期"),
    )
}

# Statuses a wish reaches only through a claim: claiming it again is "already claimed".
TAKEN = frozenset({S.claimed, S.fulfilled, S.completed})
FINAL = frozenset({S.completed, S.rejected, S.withdrawn, S.expired})

STATUS_TEXT = {
    S.pending_review: "待审核",
    S.published: "待认领",
    S.claimed: "已认领",
    S.fulfilled: "已实现",
    S.completed: "已完成",
    S.rejected: "未通过",
    S.withdrawn: "已撤回",
    S.expired: "已过期",
}


def check(action: Action, status: WishStatus, parties: frozenset[Party]) -> Transition:
    """The transition `action` names, if `parties` may take it from `status`.

    Refuses with 403 when none of the caller's parties may take the step at all, and with
    409 `invalid_transition` when they may, but not from the wish's current status.
    """
    transition = TRANSITIONS[action]
    if not transition.parties & parties:
        raise Forbidden("您无权对该心愿执行此操作")
    if status not in transition.sources:
        raise InvalidTransition(
            f"心愿当前状态为「{STATUS_TEXT[status]}」，不能{transition.label}",
            status_from=status.value,
            action=action.value,
        )
    return transition


def allowed_actions(status: WishStatus, parties: frozenset[Party]) -> list[Action]:
    """The steps this caller could take now (the mini-program shows these buttons)."""
    return [
        t.action
        for t in TRANSITIONS.values()
        if status in t.sources and t.parties & parties and Party.system not in t.parties
    ]


@dataclass(slots=True)
class Step:
    """A transition that has just been applied, handed to the hooks."""

    session: AsyncSession
    transition: Transition
    wish: Wish
    event: WishEvent
    actor_id: int | None
    note: str | None
    extra: dict[str, Any] = field(default_factory=dict)


Hook = Callable[[Step], Awaitable[None]]
_hooks: dict[Action, list[Hook]] = defaultdict(list)


def on(*actions: Action) -> Callable[[Hook], Hook]:
    """Register a hook to run, inside the same transaction, after each of `actions`."""

    def register(hook: Hook) -> Hook:
        for action in actions:
            _hooks[action].append(hook)
        return hook

    return register


async def run_hooks(step: Step) -> None:
    for hook in _hooks[step.transition.action]:
        await hook(step)
