"""The case workflow as one table: (from status, action) → to status, and who may.

Every status change of a case goes through `service.transition`, which looks the move up
here. Who may is a set of relations between the caller and the case:

- `owner`: the account the case belongs to (the resident, or the deputy who submitted it);
- `staff`: staff (or admin) whose region subtree holds the case;
- `lead_unit`: a handler of the unit leading the case;
- `system`: the sweeps (`mark_overdue_cases`, `auto_resolve_unrated`);
- `staff_for_ownerless`: staff recording a phone resident's rating (no account to rate with).

A move that is not in the table answers 409 `invalid_transition`; a caller with no rule for
the action at all answers 403 `forbidden`.

    registered ──assign──▶ handling ──reply──▶ fed_back ──rate (satisfied)──▶ resolved
        ▲                    │  ▲                 │   ──resolve (staff)────────▶ resolved
        └────send_back───────┘  └─────reopen──────┘   (owner or staff; staff also from resolved)
    registered / handling ──reject──▶ rejected      registered / handling ──merge──▶ merged
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.cases.models import CaseAction, CaseStatus


class Relation(StrEnum):
    owner = "owner"
    staff = "staff"
    lead_unit = "lead_unit"
    system = "system"
    staff_for_ownerless = "staff_for_ownerless"


@dataclass(frozen=True, slots=True)
class Rule:
    to: CaseStatus | None  # None: the hook decides (rating)
    who: frozenset[Relation]


def _rule(to: CaseStatus | None, *who: Relation) -> Rule:
    return Rule(to, frozenset(who))


S = CaseStatus
A = CaseAction
R = Relation

TRANSITIONS: dict[tuple[CaseStatus, CaseAction], Rule] = {
    (S.registered, A.assign): _rule(S.handling, R.staff),
    (S.handling, A.transfer): _rule(S.handling, R.staff),
    (S.registered, A.reject): _rule(S.rejected, R.staff),
    (S.handling, A.reject): _rule(S.rejected, R.staff),
    (S.registered, A.merge): _rule(S.merged, R.staff),
    (S.handling, A.merge): _rule(S.merged, R.staff),
    (S.handling, A.supervise): _rule(S.handling, R.staff),
    (S.handling, A.send_back): _rule(S.registered, R.lead_unit),
    (S.handling, A.reply): _rule(S.fed_back, R.lead_unit),
    (S.fed_back, A.rate): _rule(None, R.owner, R.staff_for_ownerless),
    (S.fed_back, A.reopen): _rule(S.handling, R.owner, R.staff),
    # Staff may reopen a resolved case too (e.g. the problem came back): documented.
    (S.resolved, A.reopen): _rule(S.handling, R.staff),
    (S.fed_back, A.resolve): _rule(S.resolved, R.staff),
    (S.fed_back, A.auto_resolve): _rule(S.resolved, R.system),
    (S.registered, A.edit): _rule(S.registered, R.staff),
    (S.handling, A.edit): _rule(S.handling, R.staff),
}

# Whom the resident-facing steps are announced to, and as which event.
RESIDENT_EVENTS: dict[CaseStatus, str] = {
    S.registered: "case.registered",
    S.handling: "case.handling",
    S.fed_back: "case.fed_back",
    S.resolved: "case.resolved",
    S.rejected: "case.rejected",
    S.merged: "case.merged",
}

STATUS_TEXT: dict[CaseStatus, str] = {
    S.registered: "已登记",
    S.handling: "办理中",
    S.fed_back: "已答复",
    S.resolved: "已办结",
    S.rejected: "不予受理",
    S.merged: "已合并",
}


class Decision(StrEnum):
    allowed = "allowed"
    forbidden = "forbidden"  # no rule of this action names any of the caller's relations
    invalid = "invalid"  # the caller could do this action, but not from this status


def decide(status: CaseStatus, action: CaseAction, relations: set[Relation]) -> Decision:
    rule = TRANSITIONS.get((status, action))
    if rule is not None and rule.who & relations:
        return Decision.allowed
    any_rule = any(r.who & relations for (_s, a), r in TRANSITIONS.items() if a == action)
    return Decision.invalid if any_rule else Decision.forbidden
