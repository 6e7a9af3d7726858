"""Masking of personal data where it is not needed (138****1234)."""

from __future__ import annotations


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
