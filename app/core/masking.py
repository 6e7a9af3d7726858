"""Masking of personal data where it is not needed (138****1234)."""

from __future__ import annotations

import ipaddress


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
