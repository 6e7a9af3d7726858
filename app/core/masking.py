"""Masking of personal data where it is not needed (138****1234)."""

from __future__ import annotations

import ipaddress
import re


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "*" * len(digits)


def mask_name(name: str | None) -> str | None:
    """张三丰 → 张**; keeps the family name only."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_address(address: str | None, keep: int = 6) -> str | None:
    if not address:
        return address
    return address[:keep] + ("****" if len(address) > keep else "")


def mask_ip(host: str | None) -> str:
    """203.0.113.7 → 203.0.113.0/24, 2001:db8:1:2::7 → 2001:db8:1::/48: enough to tell
    networks apart in a log, not enough to single out a person."""
    if not host:
        return "-"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "-"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-?\d{4}(\d{3,4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9Xx])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9Xx])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_ROOM = re.compile(r"\d+\s*(室|号房|户)")
_NAMED = re.compile(r"(我叫|本人|联系人|姓名)[:：]?\s*([\u4e00-\u9fff])[\u4e00-\u9fff]{1,3}")


def mask_text(text: str | None) -> str | None:
    """A resident's free text with the personal data in it masked: mobile and landline
    numbers, ID card numbers, e-mail addresses, room numbers and self-introduced names
    ("我叫张三" → "我叫张**"). For showing what residents wrote to others."""
    if not text:
        return text
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    text = _LANDLINE.sub(lambda m: m.group(1) + "-****" + m.group(2), text)
    text = _EMAIL.sub("***@***", text)
    text = _ROOM.sub(lambda m: "**" + m.group(1), text)
    return _NAMED.sub(lambda m: m.group(1) + m.group(2) + "**", text)
