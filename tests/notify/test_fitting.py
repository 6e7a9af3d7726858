"""Values are fitted to WeChat's field rules, so WeChat never rejects them (47003)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from app.notify import fitting
from app.notify.fitting import field_type, fit_value, is_cjk
from app.notify.templates import DEFAULT_TEMPLATES, TemplateRegistry, render_data, render_page

NOW = datetime(2026, 11, 22, 5, 40, tzinfo=UTC)  # 13:40 in Shanghai

NASTY = [
    "",
    None,
    "小区东门路灯已经坏了三个星期了晚上出行非常不方便希望尽快修好",
    "line one\nline two\ttab",
    "emoji 😀 inside 🎉 text",
    "A" * 100,
    "C-2026-000123 编号",
    "  spaced   out  ",
    12345.678,
    "13800001111",
    "粤A8Z888挂",
    "¥1,234.5元",
    "handling",
    "2026-11-22T05:40:00+00:00",
    "\x00\x07control",
]


def is_symbol(ch: str) -> bool:
    return not ch.isalnum() and not ch.isspace() and not is_cjk(ch) and ch.isprintable()


# An independent reading of WeChat's rules (订阅消息参数值内容限制), checked against the output.
RULES = {
    "thing": lambda v: 0 < len(v) <= 20 and "\n" not in v and all(ord(c) <= 0xFFFF for c in v),
    "character_string": lambda v: (
        0 < len(v) <= 32 and all(c.isascii() and (c.isalnum() or is_symbol(c)) for c in v)
    ),
    "number": lambda v: re.fullmatch(r"-?\d+(\.\d+)?", v) is not None and len(v) <= 32,
    "letter": lambda v: re.fullmatch(r"[A-Za-z]{1,32}", v) is not None,
    "symbol": lambda v: 0 < len(v) <= 5 and all(is_symbol(c) for c in v),
    "phrase": lambda v: 0 < len(v) <= 5 and all(is_cjk(c) for c in v),
    "time": lambda v: re.fullmatch(r"(\d{4}年\d{2}月\d{2}日 )?\d{1,2}:\d{2}", v) is not None,
    "date": lambda v: re.fullmatch(r"\d{4}年\d{2}月\d{2}日", v) is not None,
    "amount": lambda v: re.fullmatch(r"¥\d{1,10}(\.\d+)?元?", v) is not None,
    "phone_number": lambda v: 0 < len(v) <= 17 and all(c.isdigit() or is_symbol(c) for c in v),
    "car_number": lambda v: (
        0 < len(v) <= 8
        and all(c.isascii() and c.isalnum() for c in v[1:-1])
        and all(is_cjk(c) or (c.isascii() and c.isalnum()) for c in (v[0], v[-1]))
    ),
    "name": lambda v: (0 < len(v) <= 10) if any(is_cjk(c) for c in v) else (0 < len(v) <= 20),
}


@pytest.mark.parametrize("kind", sorted(RULES))
@pytest.mark.parametrize("value", NASTY)
def test_every_fitted_value_obeys_its_rule(kind: str, value: object) -> None:
    fitted = fit_value(f"{kind}7", value, now=NOW)
    assert RULES[kind](fitted), (kind, value, fitted)


def test_field_type_strips_the_number() -> None:
    assert field_type("thing1") == "thing"
    assert field_type("character_string12") == "character_string"
    assert field_type("phone_number3") == "phone_number"
    assert field_type("car_number4") == "car_number"


def test_thing_is_cut_to_twenty_with_an_ellipsis() -> None:
    long = "小区东门路灯已经坏了三个星期了晚上出行非常不方便"
    fitted = fitting.fit_thing(long)
    assert len(fitted) == 20
    assert fitted == long[:19] + "…"
    assert fitting.fit_thing("路灯不亮") == "路灯不亮"
    assert fitting.fit_thing("第一行\n第二行") == "第一行 第二行"
    assert fitting.fit_thing("") == "无"


def test_character_string_keeps_ascii_letters_digits_symbols() -> None:
    assert fitting.fit_character_string("C-2026-000123 编号") == "C-2026-000123"
    assert fitting.fit_character_string("x" * 40) == "x" * 32
    assert fitting.fit_character_string("编号") == "-"


def test_phrase_maps_statuses_and_keeps_five_chinese_characters() -> None:
    assert fitting.fit_phrase("handling") == "办理中"
    assert fitting.fit_phrase("rejected") == "不予受理"
    assert fitting.fit_phrase("已经办结完毕了") == "已经办结完"
    assert fitting.fit_phrase("OK 好") == "好"
    assert fitting.fit_phrase("") == "已更新"


def test_time_is_shown_in_shanghai() -> None:
    assert fit_value("time4", "2026-11-22T05:40:00Z", now=NOW) == "2026年11月22日 13:40"
    assert (
        fit_value("time4", datetime(2026, 1, 2, 16, 5, tzinfo=UTC), now=NOW)
        == "2026年01月03日 00:05"
    )
    assert fit_value("time4", "15:01", now=NOW) == "15:01"
    assert fit_value("time4", "not a time", now=NOW) == "2026年11月22日 13:40"
    assert fit_value("date2", "2026-11-21T20:00:00+00:00", now=NOW) == "2026年11月22日"


def test_number_amount_phone_car_name() -> None:
    assert fitting.fit_number("共 12.50 件") == "12.50"
    assert fitting.fit_number("none") == "0"
    assert fitting.fit_amount("¥1,234.5元") == "¥1234.50"
    assert fitting.fit_amount(99) == "¥99.00"
    assert fitting.fit_phone_number("电话：+86-0766-66888866") == "+86-0766-66888866"
    assert fitting.fit_phone_number("1" * 30) == "1" * 17
    assert fitting.fit_car_number("粤a8z888挂") == "粤A8Z888挂"
    assert fitting.fit_car_number("粤A中8Z888") == "粤A8Z888"
    assert fitting.fit_name("张三丰") == "张三丰"
    assert fitting.fit_name("欧阳" * 8) == ("欧阳" * 5)
    assert fitting.fit_name("Alexander Hamilton Jr") == "Alexander Hamilton J"
    assert fitting.fit_letter("abc123DEF") == "abcDEF"
    assert fitting.fit_symbol("a-b+c#d%e&f") == "-+#%&"


@pytest.mark.parametrize("event", sorted(DEFAULT_TEMPLATES))
@pytest.mark.parametrize("value", NASTY)
def test_default_templates_render_valid_data(event: str, value: object) -> None:
    spec = TemplateRegistry().get(event)
    assert spec is not None
    params = {
        k: value
        for k in ("number", "title", "status_text", "time", "note", "reason", "deputy_name")
    }
    data = render_data(spec, params=params, title="标题", body="正文", created_at=NOW)
    assert set(data) == set(spec.fields)
    for key, fitted in data.items():
        assert RULES[field_type(key)](fitted), (event, key, value, fitted)


def test_settings_override_one_event_and_keep_the_rest() -> None:
    registry = TemplateRegistry(
        {
            "case.fed_back": {
                "template_id": "REAL-TMPL-1",
                "fields": {"thing9": "reply|=无", "name2": "unit_contact"},
            },
            "case.registered": {"template_id": None},
        }
    )
    fed_back = registry.get("case.fed_back")
    assert fed_back is not None
    assert fed_back.template_id == "REAL-TMPL-1"
    assert fed_back.page == "pages/case/detail?id={case_id}"
    assert fed_back.fields == {"thing9": "reply|=无", "name2": "unit_contact"}
    assert registry.get("case.registered").inbox_only  # type: ignore[union-attr]
    assert registry.get("wish.claimed").template_id == "wish_progress"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        TemplateRegistry({"case.fed_back": {"fields": {"bad key": "x"}}})


def test_page_placeholders_fall_back_to_the_enqueued_page() -> None:
    spec = TemplateRegistry().get("case.handling")
    assert render_page(spec, {"case_id": 12}, None) == "pages/case/detail?id=12"
    assert render_page(spec, {}, "pages/case/detail?id=7") == "pages/case/detail?id=7"
    assert render_page(spec, {}, None) == "pages/case/detail"
