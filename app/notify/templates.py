"""Which subscribe-message template, fields and page each event uses.

Each event maps to `{"template_id": ..., "page": ..., "fields": {wechat_key: source}}`.
`NOTIFY_TEMPLATES` (JSON) overrides it per event; events it does not name keep the defaults
below. A `template_id` of null makes the event inbox-only (staff and unit handlers read it in
the dashboard; they have no subscription).

A source names where a field's value comes from, tried left to right across `|`:
- `name`: the notification's `params[name]` (what the domain passed to `enqueue`);
- `@title`, `@body`, `@created_at`: the notification's own title, body and creation time;
- `=text`: the literal text.
The value found is then fitted to the key's WeChat rule (app.notify.fitting).

`page` may carry `{param}` placeholders ("pages/case/detail?id={case_id}"); when a
placeholder has no value the page given to `enqueue` is used instead.

The default template ids are the names of the templates this product picks from WeChat's
public template library (工单进度提醒, 办理结果通知, 心愿状态通知, 活动通知, 意见反馈通知); a deployment sets the ids
its own mini-program account was given (公众平台 → 订阅消息 → 我的模板) in NOTIFY_TEMPLATES.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core.config import Settings
from app.notify.fitting import fit_value

CASE_PROGRESS = "case_progress"
CASE_RESULT = "case_result"
WISH_PROGRESS = "wish_progress"
ACTIVITY_NOTICE = "activity_notice"
CONSULTATION_FEEDBACK = "consultation_feedback"

CASE_PAGE = "pages/case/detail?id={case_id}"
WISH_PAGE = "pages/wish/detail?id={wish_id}"
ACTIVITY_PAGE = "pages/activity/detail?id={activity_id}"
SUGGESTION_PAGE = "pages/suggestion/detail?id={suggestion_id}"

_CASE_NUMBER = "number|case_number|case_id"
_CASE_TITLE = "title|@title"
_CASE_TIME = "time|occurred_at|@created_at"
_WISH_TITLE = "title|@title"
_WISH_TIME = "time|occurred_at|@created_at"


def _case(phrase: str, note: str, template_id: str = CASE_PROGRESS) -> dict[str, Any]:
    return {
        "template_id": template_id,
        "page": CASE_PAGE,
        "fields": {
            "character_string1": _CASE_NUMBER,
            "thing2": _CASE_TITLE,
            "phrase3": f"status_text|={phrase}",
            "time4": _CASE_TIME,
            "thing5": note,
        },
    }


def _wish(phrase: str, note: str) -> dict[str, Any]:
    return {
        "template_id": WISH_PROGRESS,
        "page": WISH_PAGE,
        "fields": {
            "thing1": _WISH_TITLE,
            "phrase2": f"status_text|={phrase}",
            "time3": _WISH_TIME,
            "thing4": note,
        },
    }


def _activity(phrase: str, note: str) -> dict[str, Any]:
    return {
        "template_id": ACTIVITY_NOTICE,
        "page": ACTIVITY_PAGE,
        "fields": {
            "thing1": "title|@title",
            "time2": "time|@created_at",
            "thing3": "place|=见活动详情",
            "phrase4": f"status_text|={phrase}",
            "thing5": note,
        },
    }


def _inbox_only(page: str) -> dict[str, Any]:
    return {"template_id": None, "page": page, "fields": {}}


DEFAULT_TEMPLATES: dict[str, dict[str, Any]] = {
    "case.registered": _case("已登记", "note|=您的诉求已登记，我们将尽快办理"),
    "case.handling": _case("办理中", "note|unit_name|=已交承办单位办理"),
    "case.fed_back": _case("已反馈", "note|reply|=承办单位已答复，请查看"),
    "case.resolved": _case("已办结", "note|=请对办理结果进行评价", CASE_RESULT),
    "case.rejected": _case("不予受理", "reason|note|@body"),
    "case.merged": _case("已合并", "note|=已与相同诉求合并办理"),
    # A deputy's suggestion that carries the resident's case was answered by the unit.
    "case.suggestion_replied": _case("已答复", "note|=您反映的问题已纳入代表建议并获答复"),
    "wish.published": _wish("已发布", "note|=心愿已通过审核并发布"),
    "wish.rejected": _wish("未通过", "reason|note|@body"),
    "wish.claimed": _wish("已认领", "deputy_name|note|=代表已认领您的心愿"),
    "wish.fulfilled": _wish("已实现", "note|=代表已完成心愿，请确认"),
    "wish.completed": _wish("已完成", "note|=感谢您的参与"),
    "wish.expired": _wish("已过期", "note|=心愿已到期未被认领"),
    "wish.released": _wish("待认领", "note|=认领代表已放弃，心愿重新发布"),
    "activity.invited": _activity("待回复", "note|=请在小程序中回复是否参加"),
    "activity.changed": _activity("时间调整", "note|=活动时间已调整，请留意"),
    "activity.cancelled": _activity("已取消", "note|=活动已取消"),
    "activity.reminder": _activity("即将开始", "note|=活动明天开始，请准时参加"),
    "activity.leave_decided": _activity("已审批", "note|@body"),
    # For staff and unit handlers, who work in the dashboard: the inbox only.
    "activity.leave_requested": _inbox_only(ACTIVITY_PAGE),
    "deputy_report.published": _inbox_only("pages/report/detail?id={report_id}"),
    "consultation.outcomes": {
        "template_id": CONSULTATION_FEEDBACK,
        "page": "pages/consultation/detail?id={consultation_id}",
        "fields": {
            "thing1": "title|@title",
            "phrase2": "status_text|=已反馈",
            "thing3": "note|@body",
            "time4": "time|@created_at",
        },
    },
    "case.assigned": _inbox_only(CASE_PAGE),
    "case.due_soon": _inbox_only(CASE_PAGE),
    "case.overdue": _inbox_only(CASE_PAGE),
    "case.supervised": _inbox_only(CASE_PAGE),
    "case.sent_back": _inbox_only(CASE_PAGE),
    "case.dissatisfied": _inbox_only(CASE_PAGE),
    # Deputies' suggestions: the deputies and the units read them in the inbox.
    "suggestion.registered": _inbox_only(SUGGESTION_PAGE),
    "suggestion.replied": _inbox_only(SUGGESTION_PAGE),
    "suggestion.assigned": _inbox_only(SUGGESTION_PAGE),
    "suggestion.supervised": _inbox_only(SUGGESTION_PAGE),
    "suggestion.evaluated": _inbox_only(SUGGESTION_PAGE),
    "suggestion.rehandle": _inbox_only(SUGGESTION_PAGE),
}

_KEY_RE = re.compile(r"^[a-z_]+\d+$")


@dataclass(frozen=True)
class TemplateSpec:
    event: str
    template_id: str | None
    page: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def inbox_only(self) -> bool:
        return not self.template_id


class TemplateConfigError(ValueError):
    """NOTIFY_TEMPLATES names a field key WeChat would not accept."""


def _spec(event: str, raw: dict[str, Any]) -> TemplateSpec:
    fields = {str(k): str(v) for k, v in (raw.get("fields") or {}).items()}
    bad = [k for k in fields if not _KEY_RE.match(k)]
    if bad:
        raise TemplateConfigError(f"{event}: field keys must look like thing1, got {bad}")
    template_id = raw.get("template_id")
    return TemplateSpec(
        event=event,
        template_id=str(template_id) if template_id else None,
        page=raw.get("page"),
        fields=fields,
    )


class TemplateRegistry:
    """The effective specs: the defaults, overridden per event by the settings."""

    def __init__(self, overrides: dict[str, dict[str, Any]] | None = None) -> None:
        merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in DEFAULT_TEMPLATES.items()}
        for event, raw in (overrides or {}).items():
            merged[event] = {**merged.get(event, {"fields": {}}), **raw}
        self.specs = {event: _spec(event, raw) for event, raw in merged.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> TemplateRegistry:
        return cls(settings.notify_templates)

    def get(self, event: str) -> TemplateSpec | None:
        return self.specs.get(event)

    def template_ids(self) -> set[str]:
        return {s.template_id for s in self.specs.values() if s.template_id}


def _lookup(
    source: str, params: dict[str, Any], title: str, body: str, created_at: datetime
) -> Any:
    for option in source.split("|"):
        option = option.strip()
        if option.startswith("="):
            return option[1:]
        if option == "@title":
            value: Any = title
        elif option == "@body":
            value = body
        elif option == "@created_at":
            value = created_at
        else:
            value = params.get(option)
        if value not in (None, ""):
            return value
    return None


def render_data(
    spec: TemplateSpec,
    *,
    params: dict[str, Any],
    title: str,
    body: str,
    created_at: datetime,
) -> dict[str, str]:
    """The `data` of subscribeMessage.send, every value fitted to its field's rule."""
    return {
        key: fit_value(key, _lookup(source, params, title, body, created_at), now=created_at)
        for key, source in spec.fields.items()
    }


def render_page(
    spec: TemplateSpec | None, params: dict[str, Any], fallback: str | None
) -> str | None:
    """The template's page with its placeholders filled, else the page given to enqueue."""
    if spec is None or not spec.page:
        return fallback
    names = [name for _, name, _, _ in string.Formatter().parse(spec.page) if name]
    if any(params.get(name) in (None, "") for name in names):
        return fallback or spec.page.split("?", 1)[0]
    return spec.page.format_map({name: params[name] for name in names})


_WECHAT_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def malformed_template_ids(registry: TemplateRegistry) -> list[str]:
    """Events whose template id cannot be one WeChat gave (those are 43 characters of
    letters, digits, `-` and `_`): a placeholder like "<工单进度提醒 id>" left in place."""
    return sorted(
        event
        for event, spec in registry.specs.items()
        if spec.template_id and not _WECHAT_TEMPLATE_ID.match(spec.template_id)
    )


def placeholder_events(registry: TemplateRegistry) -> list[str]:
    """Events that would still be sent with a default template id: those ids are only the
    names of library templates, and WeChat refuses them for any real account."""
    placeholders = {raw["template_id"] for raw in DEFAULT_TEMPLATES.values() if raw["template_id"]}
    return sorted(e for e, spec in registry.specs.items() if spec.template_id in placeholders)
