"""The suggestion workflow as one table: (from status, action) → to status, and who may.

- `author`: the deputy who drafted it (co-signers read it, they do not act);
- `staff`: staff (or admin) whose region subtree holds it;
- `lead_unit`: a handler of the lead unit (主办单位).

    draft ──submit──▶ submitted ──register──▶ registered ──assign──▶ assigned ──reply──▶ replied
                                                                  ▲  (supervise)        │
                                                                  └──rehandle (once)────┤
                                                                                         ▼
                                                               evaluated ◀──evaluate─────┘
                                                         (evaluated ──rehandle (once)──▶ assigned)

A move not in the table answers 409 `invalid_transition`; a caller with no rule for the
action at all answers 403 `forbidden`. `rehandle` is allowed once per suggestion (409
`rehandle_used` the second time).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.suggestions.models import SuggestionAction, SuggestionStatus


class Relation(StrEnum):
    author = "author"
    co_signer = "co_signer"
    staff = "staff"
    lead_unit = "lead_unit"
    co_unit = "co_unit"


@dataclass(frozen=True, slots=True)
class Rule:
    to: SuggestionStatus
    who: frozenset[Relation]


S = SuggestionStatus
A = SuggestionAction
R = Relation


def _rule(to: SuggestionStatus, *who: Relation) -> Rule:
    return Rule(to, frozenset(who))


TRANSITIONS: dict[tuple[SuggestionStatus, SuggestionAction], Rule] = {
    (S.draft, A.edit): _rule(S.draft, R.author),
    (S.draft, A.submit): _rule(S.submitted, R.author),
    (S.submitted, A.register): _rule(S.registered, R.staff),
    (S.registered, A.assign): _rule(S.assigned, R.staff),
    (S.assigned, A.supervise): _rule(S.assigned, R.staff),
    (S.assigned, A.reply): _rule(S.replied, R.lead_unit),
    (S.replied, A.evaluate): _rule(S.evaluated, R.author),
    (S.replied, A.rehandle): _rule(S.assigned, R.author),
    (S.evaluated, A.rehandle): _rule(S.assigned, R.author),
}

STATUS_TEXT: dict[SuggestionStatus, str] = {
    S.draft: "草稿",
    S.submitted: "已提交",
    S.registered: "已登记",
    S.assigned: "已交办",
    S.replied: "已答复",
    S.evaluated: "已评价",
}

# Rehandling is allowed this many times per suggestion.
REHANDLE_LIMIT = 1


class Decision(StrEnum):
    allowed = "allowed"
    forbidden = "forbidden"
    invalid = "invalid"


def decide(
    status: SuggestionStatus, action: SuggestionAction, relations: set[Relation]
) -> Decision:
    rule = TRANSITIONS.get((status, action))
    if rule is not None and rule.who & relations:
        return Decision.allowed
    any_rule = any(r.who & relations for (_s, a), r in TRANSITIONS.items() if a == action)
    return Decision.invalid if any_rule else Decision.forbidden
