"""The client behind a load balancer: X-Forwarded-For and X-Forwarded-Proto count only when
the socket peer is one of TRUSTED_PROXIES. Observed through HTTP: the scheme of the redirect
the API builds, and the client network on the access line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.core.config import ConfigError
from app.core.proxy import TrustedProxies
from tests.conftest import make_settings
from tests.serving import serving

SPOOF = {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}


@asynccontextmanager
async def client_from(
    peer: str, trusted: str, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[httpx.AsyncClient]:
    access = logging.getLogger("app.access")
    level = access.level
    access.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.INFO)
    access.setLevel(logging.INFO)
    try:
        settings = make_settings(trusted_proxies=trusted)
        async with serving(settings, base_url="http://api.test", peer=(peer, 40000)) as (_, c):
            yield c
    finally:
        access.removeHandler(caplog.handler)
        access.setLevel(level)


def access_client(caplog: pytest.LogCaptureFixture) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name == "app.access"]
    assert lines, "no access line"
    return lines[-1].rsplit("client=", 1)[1]


async def redirect_scheme(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    # A trailing slash is redirected to the same URL without it, built from the scope.
    response = await client.get("/api/v1/regions/", headers=headers)
    assert response.status_code == 307, response.text
    return response.headers["location"].split("://", 1)[0]


@pytest.mark.parametrize(
    ("peer", "trusted", "scheme", "client"),
    [
        # Nobody is trusted by default: the spoofed headers change nothing.
        ("203.0.113.7", "", "http", "203.0.113.0/24"),
        # A peer outside TRUSTED_PROXIES: the same.
        ("203.0.113.7", "10.0.0.0/8, 192.168.1.5", "http", "203.0.113.0/24"),
        # A trusted proxy names the client and the scheme it saw.
        ("10.1.2.3", "10.0.0.0/8", "https", "198.51.100.0/24"),
        ("192.168.1.5", "10.0.0.0/8, 192.168.1.5", "https", "198.51.100.0/24"),
    ],
    ids=["nobody-trusted", "untrusted-peer", "trusted-cidr", "trusted-address"],
)
async def test_forwarded_headers_count_only_from_trusted_proxies(
    peer: str, trusted: str, scheme: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_from(peer, trusted, caplog) as http:
        assert await redirect_scheme(http, SPOOF) == scheme
    assert access_client(caplog) == client


async def test_the_rightmost_untrusted_hop_is_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client may write any X-Forwarded-For it likes; each trusted proxy appends the
    address it saw. Read from the right, the first address no trusted proxy has is the client."""
    headers = {"X-Forwarded-For": "1.2.3.4, 198.51.100.9, 10.0.0.8"}
    async with client_from("10.1.2.3", "10.0.0.0/8", caplog) as client:
        await client.get("/healthz", headers=headers)
    assert access_client(caplog) == "198.51.100.0/24"


async def test_two_header_lines_and_ipv6(caplog: pytest.LogCaptureFixture) -> None:
    async with client_from("fd00::1", "fd00::/8", caplog) as client:
        await client.get(
            "/healthz",
            headers=[
                ("X-Forwarded-For", "192.0.2.1"),
                ("X-Forwarded-For", "[2001:db8:1:2::7]:443"),
            ],
        )
    assert access_client(caplog) == "2001:db8:1::/48"


async def test_garbage_from_a_trusted_proxy_keeps_the_peer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {"X-Forwarded-For": "unknown", "X-Forwarded-Proto": "gopher"}
    async with client_from("10.1.2.3", "10.0.0.0/8", caplog) as client:
        assert await redirect_scheme(client, headers) == "http"
    assert access_client(caplog) == "10.1.2.0/24"


def test_trusted_proxies_setting() -> None:
    proxies = TrustedProxies.parse(" 10.0.0.0/8 ,192.168.1.5,, fd00::/8 ")
    assert proxies.trusts("10.200.0.1") and proxies.trusts("192.168.1.5")
    assert proxies.trusts("::ffff:10.0.0.1") and proxies.trusts("fd00::abcd")
    assert not proxies.trusts("192.168.1.6") and not proxies.trusts("not-an-ip")
    assert not TrustedProxies.parse("")
    for bad in ("10.0.0.0/33", "proxy.internal", "10.0.0.1-10.0.0.9"):
        with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
            make_settings(trusted_proxies=bad)
