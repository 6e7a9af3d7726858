"""Fitting values to WeChat's subscribe-message field rules (订阅消息参数值内容限制).

WeChat rejects a whole message (errcode 47003) when one value breaks its field's rule, so
every value is fitted here before sending. The rule depends on the key's type, the key
without its trailing digits (`thing1` → thing, `character_string12` → character_string):

| type             | rule                                                                    |
|------------------|-------------------------------------------------------------------------|
| thing            | ≤ 20 characters: Chinese, letters, digits, symbols                      |
| number           | ≤ 32 digits, may carry a decimal point                                  |
| letter           | ≤ 32 letters only                                                       |
| symbol           | ≤ 5 symbols only                                                        |
| character_string | ≤ 32 digits, letters or symbols (no Chinese)                            |
| time             | 24-hour time, optionally with the date: "2019年10月1日 15:01"           |
| date             | a date, optionally with a time: "2019年10月1日"                         |
| amount           | one currency sign and ≤ 10 digits, may carry decimals, may end in 元    |
| phone_number     | ≤ 17 digits and symbols: "+86-0766-66888866"                            |
| car_number       | ≤ 8; first and last may be Chinese, the rest letters or digits          |
| name             | ≤ 10 Chinese characters, or ≤ 20 letters or symbols                     |
| phrase           | ≤ 5 Chinese characters only: "配送中"                                   |

"Symbols" are common characters other than Chinese, letters and digits; never control
characters such as newlines. No value may be empty. Times are shown in Asia/Shanghai.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.core.clock import SHANGHAI

THING_MAX = 20
CHARACTER_STRING_MAX = 32
NUMBER_MAX = 32
LETTER_MAX = 32
SYMBOL_MAX = 5
PHRASE_MAX = 5
PHONE_MAX = 17
CAR_NUMBER_MAX = 8
NAME_CJK_MAX = 10
NAME_LATIN_MAX = 20
AMOUNT_DIGITS_MAX = 10

ELLIPSIS = "…"

_TYPE_RE = re.compile(r"^([a-z_]+?)\d*$")

# English status names to the phrase a resident reads (each ≤ 5 Chinese characters).
STATUS_PHRASES: dict[str, str] = {
    "registered": "已登记",
    "handling": "办理中",
    "fed_back": "已反馈",
    "resolved": "已办结",
    "rejected": "不予受理",
    "merged": "已合并",
    "reopened": "重新办理",
    "assigned": "已交办",
    "overdue": "已超期",
    "due_soon": "即将到期",
    "pending_review": "待审核",
    "published": "已发布",
    "claimed": "已认领",
    "released": "待认领",
    "fulfilled": "已实现",
    "completed": "已完成",
    "withdrawn": "已撤回",
    "expired": "已过期",
}


def field_type(key: str) -> str:
    """`thing1` → "thing"; `character_string2` → "character_string"."""
    match = _TYPE_RE.match(key)
    return match.group(1) if match else key


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FA1F
    )


def _is_symbol(ch: str) -> bool:
    """A visible character that is not a letter, digit, Chinese, space or emoji."""
    if ch.isspace() or is_cjk(ch) or ch.isalnum():
        return False
    category = unicodedata.category(ch)
    if category.startswith("C") or category == "So" or ord(ch) > 0xFFFF:
        return False
    return category[0] in ("P", "S")


def _clean_text(value: Any) -> str:
    """Text without control characters, emoji or runs of white space."""
    text = "" if value is None else str(value)
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\r\n\t" or ch.isspace():
            kept.append(" ")
        elif category.startswith("C") or category == "So" or ord(ch) > 0xFFFF and not is_cjk(ch):
            continue
        else:
            kept.append(ch)
    return re.sub(r" {2,}", " ", "".join(kept)).strip()


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def fit_thing(value: Any, fallback: str = "无") -> str:
    text = _clean_text(value)
    return _truncate(text, THING_MAX) if text else fallback


def fit_character_string(value: Any, fallback: str = "-") -> str:
    text = "".join(
        ch for ch in _clean_text(value) if ch.isascii() and (ch.isalnum() or _is_symbol(ch))
    )
    return text[:CHARACTER_STRING_MAX] or fallback


def fit_number(value: Any, fallback: str = "0") -> str:
    match = re.search(r"-?\d+(?:\.\d+)?", _clean_text(value))
    if not match:
        return fallback
    text = match.group(0)
    if len(text) > NUMBER_MAX:
        integer = text.split(".")[0]
        text = integer[:NUMBER_MAX]
    return text


def fit_letter(value: Any, fallback: str = "NA") -> str:
    text = "".join(ch for ch in _clean_text(value) if ch.isascii() and ch.isalpha())
    return text[:LETTER_MAX] or fallback


def fit_symbol(value: Any, fallback: str = "-") -> str:
    text = "".join(ch for ch in _clean_text(value) if _is_symbol(ch))
    return text[:SYMBOL_MAX] or fallback


def fit_phrase(value: Any, fallback: str = "已更新") -> str:
    raw = _clean_text(value)
    text = STATUS_PHRASES.get(raw, raw)
    text = "".join(ch for ch in text if is_cjk(ch))
    return text[:PHRASE_MAX] or fallback


def fit_phone_number(value: Any, fallback: str = "-") -> str:
    text = "".join(ch for ch in _clean_text(value) if ch.isdigit() or ch in "+-()")
    return text[:PHONE_MAX] or fallback


def fit_car_number(value: Any, fallback: str = "无") -> str:
    chars = [
        ch.upper() for ch in _clean_text(value) if is_cjk(ch) or (ch.isascii() and ch.isalnum())
    ]
    # Chinese only first and last: drop Chinese characters anywhere else.
    chars = [ch for i, ch in enumerate(chars) if not is_cjk(ch) or i in (0, len(chars) - 1)]
    if len(chars) > CAR_NUMBER_MAX:
        chars = chars[:CAR_NUMBER_MAX]
        if is_cjk(chars[-1]) and len(chars) > 1:
            chars = chars[:-1]
    return "".join(chars) or fallback


def fit_name(value: Any, fallback: str = "-") -> str:
    text = "".join(
        ch
        for ch in _clean_text(value)
        if is_cjk(ch) or (ch.isascii() and ch.isalpha()) or ch in "·. -"
    ).strip()
    if not text:
        return fallback
    if any(is_cjk(ch) for ch in text):
        return text.replace(" ", "")[:NAME_CJK_MAX]
    return text[:NAME_LATIN_MAX].strip()


def fit_amount(value: Any, fallback: str = "¥0.00") -> str:
    text = _clean_text(value)
    match = re.search(r"\d+(?:\.\d+)?", text.replace(",", ""))
    if not match:
        return fallback
    try:
        amount = Decimal(match.group(0)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return fallback
    integer, _, decimals = f"{amount:f}".partition(".")
    if len(integer) > AMOUNT_DIGITS_MAX:
        integer = "9" * AMOUNT_DIGITS_MAX
    return f"¥{integer}.{decimals or '00'}"


def as_datetime(value: Any) -> datetime | None:
    """A datetime from a datetime, a date or an ISO 8601 string; None when not parseable."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=SHANGHAI)
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI)


_HHMM = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
_ALREADY_CHINESE = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日( \d{1,2}:\d{2})?$")


def fit_time(value: Any, fallback: datetime) -> str:
    """ "2026年11月22日 13:40" in Asia/Shanghai (a bare "15:01" is kept as it is)."""
    if isinstance(value, str) and (
        _HHMM.match(value.strip()) or _ALREADY_CHINESE.match(value.strip())
    ):
        return value.strip()
    moment = as_datetime(value) or fallback.astimezone(SHANGHAI)
    return f"{moment.year}年{moment.month:02d}月{moment.day:02d}日 {moment:%H:%M}"


def fit_date(value: Any, fallback: datetime) -> str:
    """ "2026年11月22日" in Asia/Shanghai."""
    if isinstance(value, str) and _ALREADY_CHINESE.match(value.strip()):
        return value.strip().split(" ")[0]
    moment = as_datetime(value) or fallback.astimezone(SHANGHAI)
    return f"{moment.year}年{moment.month:02d}月{moment.day:02d}日"


def fit_value(key: str, value: Any, *, now: datetime) -> str:
    """The value fitted to the rule of the key's type; `now` stands in for a missing time."""
    kind = field_type(key)
    if kind == "time":
        return fit_time(value, now)
    if kind == "date":
        return fit_date(value, now)
    fitter = _FITTERS.get(kind)
    if fitter is None:  # enum and future types: clean text, never empty
        return _clean_text(value)[:THING_MAX] or "-"
    return fitter(value)


_FITTERS = {
    "thing": fit_thing,
    "character_string": fit_character_string,
    "number": fit_number,
    "letter": fit_letter,
    "symbol": fit_symbol,
    "phrase": fit_phrase,
    "phone_number": fit_phone_number,
    "car_number": fit_car_number,
    "name": fit_name,
    "amount": fit_amount,
}
