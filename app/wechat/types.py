"""What the gateway answers and raises. Domains import these, never wechatpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


class WeChatError(Exception):
    """WeChat answered with an error, or could not be reached."""

    def __init__(self, errcode: int | None, errmsg: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(f"WeChat error {errcode}: {errmsg}")


class WeChatUnavailable(WeChatError):
    """Network failure, timeout, HTTP 5xx or errcode -1 (busy), after bounded retries."""


class WeChatRateLimited(WeChatError):
    """errcode 45011: the API's frequency limit."""


class WeChatAPIError(WeChatError):
    """Any other non-zero errcode (40029 invalid code, 40163 code used, 43101 not subscribed,
    47003 bad template data, ...). `errcode` says which."""


# errcodes the domains act on
INVALID_CODE = 40029
CODE_USED = 40163
NOT_SUBSCRIBED = 43101
BAD_TEMPLATE_DATA = 47003
INVALID_TOKEN = 40001
EXPIRED_TOKEN = 42001
RATE_LIMIT = 45011
BUSY = -1


@dataclass(frozen=True, slots=True)
class WxSession:
    """code2Session's answer. `session_key` stays on the server and is never logged."""

    openid: str
    session_key: str
    unionid: str | None = None

    def __repr__(self) -> str:
        return f"WxSession(openid={self.openid!r}, unionid={self.unionid!r})"


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    phone_number: str  # with country code for non-mainland numbers
    pure_phone_number: str
    country_code: str


@dataclass(frozen=True, slots=True)
class SecCheckResult:
    """msgSecCheck v2: `suggest` is pass, review or risky."""

    suggest: Literal["pass", "review", "risky"]
    label: int
    trace_id: str | None = None
    raw: dict[str, Any] | None = None
