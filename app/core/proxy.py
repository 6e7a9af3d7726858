"""The client's address behind a load balancer or reverse proxy.

`TRUSTED_PROXIES` lists the proxies (IPs or CIDRs, comma-separated) in front of the service.
Only when the socket peer is one of them are `X-Forwarded-For` and `X-Forwarded-Proto`
believed: the client is the rightmost address in `X-Forwarded-For` that is not itself a
trusted proxy (everything left of it could have been written by the client). With the
setting empty nobody is trusted and the socket peer is the client.

The middleware rewrites the ASGI scope's `client` and `scheme`, so everything downstream
(`request.client`, URLs the app builds, the access log) sees the resolved values.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = {"http", "https"}


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> TrustedProxies:
        networks = []
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(
                    f"TRUSTED_PROXIES has {item!r}, which is neither an IP address nor a CIDR "
                    "range (e.g. 10.0.0.0/8)"
                ) from None
        return cls(tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        address = _address(host) if host else None
        return address is not None and any(address in network for network in self.networks)

    def client_of(self, forwarded_for: str) -> str | None:
        """The rightmost hop that is not a trusted proxy (or the leftmost if all are)."""
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                address = _address(hop)
                return str(address) if address is not None else None
        first = _address(hops[0]) if hops else None
        return str(first) if first is not None else None


class ProxyHeadersMiddleware:
    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.proxies:
            peer = scope.get("client")
            if peer and self.proxies.trusts(peer[0]):
                self._resolve(scope)
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> None:
        forwarded_for: list[str] = []
        proto: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
        if forwarded_for:
            client = self.proxies.client_of(",".join(forwarded_for))
            # An unparseable hop is not an address to rate-limit or log: keep the peer.
            if client is not None:
                scope["client"] = (client, 0)
        if proto is not None:
            # The trusted peer wrote the last value; earlier ones may come from the client.
            scheme = proto.split(",")[-1].strip().lower()
            if scheme in _SCHEMES:
                scope["scheme"] = (
                    scheme if scope["type"] == "http" else scheme.replace("http", "ws")
                )
