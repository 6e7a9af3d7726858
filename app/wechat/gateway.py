"""The WeChat gateway: the only code that talks to WeChat (built on wechatpy 1.8.18).

wechatpy does the HTTP and the errcode parsing. Its gaps are covered here:

- it has no code-based phone API, no `stable_token`, no `miniprogram_state` on subscribe
  sends and no msgSecCheck v2: those go through its generic `client.post`;
- it retries errcode 40001 forever (a RecursionError) and fetches tokens with no timeout:
  `_SyncClient` turns its auto-retry off, never lets it fetch a token of its own, and fetches
  with `stable_token` under the configured timeout;
- it blocks: every call runs in the gateway's own thread pool, never on the event loop (a
  dedicated pool, so a slow WeChat cannot starve the default executor that DNS lookups and
  other libraries share).

Every call has a timeout (`WECHAT_TIMEOUT_SECONDS`) and a bounded retry with backoff
(`WECHAT_MAX_RETRIES`) on network errors, HTTP 5xx and errcode -1; 45011 raises
WeChatRateLimited at once; 40001/42001 renew the shared token once and retry once; any other
errcode raises WeChatAPIError. The access token is shared by every process through the
database, or Redis when REDIS_URL is set (app.wechat.token_store).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient
from wechatpy.exceptions import APILimitedException, WeChatClientException

from app.core.config import Settings
from app.core.db import Database
from app.wechat.token_store import DatabaseTokenStore, RedisTokenStore, TokenStore
from app.wechat.types import (
    BUSY,
    CODE_USED,
    EXPIRED_TOKEN,
    INVALID_TOKEN,
    RATE_LIMIT,
    PhoneInfo,
    SecCheckResult,
    WeChatAPIError,
    WeChatError,
    WeChatRateLimited,
    WeChatUnavailable,
    WxSession,
)

logger = logging.getLogger("app.wechat")

T = TypeVar("T")

WECHAT_API_BASE_URL = "https://api.weixin.qq.com"
THREADS = 16
DAILY_QUOTA = 45009  # wechatpy's APILimitedException; the per-minute limit is 45011
_SUGGESTIONS = ("pass", "review", "risky")


class _SyncClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's client pointed at the configured base URL, with its token handling tamed.

    Tokens come from the shared store and are passed on each call; wechatpy never fetches
    or retries one on its own."""

    def __init__(self, appid: str, secret: str, base_url: str, timeout: float) -> None:
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self.base_url = base_url.rstrip("/")
        self.API_BASE_URL = f"{self.base_url}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{self.base_url}/"
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=THREADS, max_retries=0)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        if urlsplit(self.base_url).hostname in ("127.0.0.1", "localhost", "::1"):
            self._http.trust_env = False  # a local fake WeChat is never behind a proxy

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        # wechatpy adds `self.access_token` when the params name none (fetching a token of
        # its own); a None value stops it and is dropped from the query by requests.
        params = kwargs.setdefault("params", {})
        params.setdefault("access_token", None)
        return super()._request(method, url_or_endpoint, **kwargs)

    def fetch_access_token(self, force_refresh: bool = False) -> dict[str, Any]:
        """POST /cgi-bin/stable_token, under the client's timeout."""
        result: dict[str, Any] = self.post(
            "stable_token",
            data={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": force_refresh,
            },
        )
        return result

    def post_wxa(self, endpoint: str, token: str | None, data: dict[str, Any]) -> Any:
        return self.post(
            endpoint,
            api_base_url=f"{self.base_url}/",
            params={"access_token": token},
            data=data,
        )


def _translate(exc: BaseException) -> tuple[WeChatError, bool] | None:
    """The gateway error for what wechatpy or requests raised, and whether a retry may help.
    None for anything that is not a WeChat failure (a bug: let it propagate)."""
    if isinstance(exc, requests.Timeout):
        return WeChatUnavailable(None, "timeout"), True
    if isinstance(exc, requests.RequestException):
        return WeChatUnavailable(None, f"network error: {type(exc).__name__}"), True
    if isinstance(exc, APILimitedException):
        return WeChatRateLimited(int(exc.errcode), str(exc.errmsg)), False
    if isinstance(exc, WeChatClientException):
        if exc.errcode is None:
            status = exc.response.status_code if exc.response is not None else None
            transient = status is None or status >= 500 or status == 429
            return WeChatUnavailable(None, f"HTTP {status}"), transient
        errcode = int(exc.errcode)
        if errcode == BUSY:
            return WeChatUnavailable(BUSY, str(exc.errmsg)), True
        if errcode in (RATE_LIMIT, DAILY_QUOTA):
            return WeChatRateLimited(errcode, str(exc.errmsg)), False
        return WeChatAPIError(errcode, str(exc.errmsg)), False
    return None


class WeChatGateway:
    """Every call has a timeout and a bounded retry; wechatpy's blocking calls run in a
    thread, never on the event loop. The access token is shared by all processes through
    the database."""

    def __init__(
        self, settings: Settings, db: Database, *, retry_backoff_seconds: float = 0.2
    ) -> None:
        self.settings = settings
        self.db = db
        self.base_url = (settings.wechat_api_base_url or WECHAT_API_BASE_URL).rstrip("/")
        self.retry_backoff_seconds = retry_backoff_seconds
        self._client = _SyncClient(
            settings.wechat_appid,
            settings.wechat_secret,
            self.base_url,
            settings.wechat_timeout_seconds,
        )
        self._executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="wechat")
        attempts = settings.wechat_max_retries + 1
        worst_fetch = attempts * settings.wechat_timeout_seconds + attempts * 2.0
        lease = timedelta(seconds=worst_fetch + 5)
        self.tokens: TokenStore
        if settings.redis_url:
            self.tokens = RedisTokenStore(
                settings.redis_url, settings.wechat_appid, self._fetch_token, lease
            )
        else:
            self.tokens = DatabaseTokenStore(db, settings.wechat_appid, self._fetch_token, lease)

    # ---- the calls -----------------------------------------------------------------------

    async def code_to_session(self, code: str) -> WxSession:
        """code2Session: a wx.login code → openid (and session_key, kept on the server)."""
        result = await self._call(
            "jscode2session", lambda _: self._client.wxa.code_to_session(code), needs_token=False
        )
        openid, session_key = result.get("openid"), result.get("session_key")
        if not openid or not session_key:
            raise WeChatAPIError(None, "jscode2session answered no openid")
        return WxSession(openid=openid, session_key=session_key, unionid=result.get("unionid"))

    async def get_phone_number(self, code: str) -> PhoneInfo:
        """getuserphonenumber: a getPhoneNumber button code → the user's phone number."""
        result = await self._call(
            "getuserphonenumber",
            lambda token: self._client.post_wxa(
                "wxa/business/getuserphonenumber", token, {"code": code}
            ),
        )
        info = result.get("phone_info") or {}
        if not info.get("phoneNumber"):
            raise WeChatAPIError(None, "getuserphonenumber answered no phone_info")
        return PhoneInfo(
            phone_number=str(info["phoneNumber"]),
            pure_phone_number=str(info.get("purePhoneNumber") or info["phoneNumber"]),
            country_code=str(info.get("countryCode") or "86"),
        )

    async def get_unlimited_qrcode(
        self,
        *,
        scene: str,
        page: str | None = None,
        env_version: str | None = None,
        width: int = 430,
        check_path: bool = False,
    ) -> bytes:
        """getwxacodeunlimit: a mini-program code image whose scene the scanning page reads."""
        data: dict[str, Any] = {
            "scene": scene,
            "check_path": check_path,
            "env_version": env_version or self.settings.wechat_env_version,
            "width": width,
        }
        if page:
            data["page"] = page
        answer = await self._call(
            "getwxacodeunlimit",
            lambda token: self._client.post_wxa("wxa/getwxacodeunlimit", token, data),
            expect_json=False,
        )
        # wechatpy answers the raw response when the body is not JSON: the image.
        if not isinstance(answer, requests.Response):
            raise WeChatAPIError(None, "getwxacodeunlimit answered no image")
        if not answer.headers.get("content-type", "").startswith("image/"):
            raise WeChatAPIError(None, "getwxacodeunlimit answered no image")
        return answer.content

    async def send_subscribe_message(
        self,
        *,
        openid: str,
        template_id: str,
        data: dict[str, str],
        page: str | None = None,
        miniprogram_state: str | None = None,
        lang: str = "zh_CN",
    ) -> None:
        """subscribeMessage.send. 43101 (no subscription) and 47003 (bad data) raise
        WeChatAPIError with that errcode."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
            "miniprogram_state": miniprogram_state or self.settings.wechat_miniprogram_state,
            "lang": lang,
        }
        if page:
            body["page"] = page
        await self._call(
            "subscribe_send",
            lambda token: self._client.post(
                "message/subscribe/send", params={"access_token": token}, data=body
            ),
        )

    async def msg_sec_check(
        self, *, openid: str, content: str, scene: int, title: str | None = None
    ) -> SecCheckResult:
        """msgSecCheck v2. `scene`: 1 profile, 2 comment, 3 forum, 4 social log."""
        body: dict[str, Any] = {"content": content, "version": 2, "scene": scene, "openid": openid}
        if title:
            body["title"] = title
        result = await self._call(
            "msg_sec_check",
            lambda token: self._client.post_wxa("wxa/msg_sec_check", token, body),
        )
        verdict = result.get("result") or {}
        suggest = verdict.get("suggest")
        if suggest not in _SUGGESTIONS:
            raise WeChatAPIError(None, "msg_sec_check answered no suggestion")
        return SecCheckResult(
            suggest=suggest,
            label=int(verdict.get("label", 0)),
            trace_id=result.get("trace_id"),
            raw=result,
        )

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client._http.close()
        await self.tokens.close()

    # ---- machinery -----------------------------------------------------------------------

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        result = await self._call(
            "stable_token",
            lambda _: self._client.fetch_access_token(force_refresh=force),
            needs_token=False,
        )
        token = result.get("access_token")
        if not token:
            raise WeChatAPIError(None, "stable_token answered no access_token")
        return str(token), int(result.get("expires_in") or 7200)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # keeps the request id on log lines
        return await loop.run_in_executor(self._executor, functools.partial(context.run, fn, *args))

    def _backoff(self, attempt: int) -> float:
        base: float = self.retry_backoff_seconds * 2 ** (attempt - 1)
        return min(base, 5.0) * random.uniform(0.5, 1.0)

    async def _call(
        self,
        what: str,
        fn: Callable[[str | None], Any],
        *,
        needs_token: bool = True,
        expect_json: bool = True,
    ) -> Any:
        """Run `fn(token)` in a thread with bounded retries; raise a WeChatError on failure."""
        retries = 0
        token_renewed = False
        previous: WeChatError | None = None
        while True:
            token = await self.tokens.get() if needs_token else None
            cause: Exception | None = None
            try:
                result = await self._in_thread(fn, token)
            except Exception as exc:
                translated = _translate(exc)
                if translated is None:
                    raise
                error, transient = translated
                cause = exc
            else:
                if not expect_json or isinstance(result, dict):
                    return result
                # wechatpy hands back the raw response when the body is not JSON (an HTML
                # error page from a proxy, say): treat it like a 5xx.
                error, transient = WeChatUnavailable(None, "answer is not JSON"), True
            if needs_token and error.errcode in (INVALID_TOKEN, EXPIRED_TOKEN):
                if not token_renewed:
                    token_renewed = True
                    logger.info("WeChat %s: access token rejected, renewing it once", what)
                    await self.tokens.renew(rejected=token)
                    continue
            elif transient and retries < self.settings.wechat_max_retries:
                retries += 1
                delay = self._backoff(retries)
                logger.warning(
                    "WeChat %s failed (%s %s); retry %d of %d in %.2fs",
                    what,
                    error.errcode,
                    error.errmsg,
                    retries,
                    self.settings.wechat_max_retries,
                    delay,
                )
                previous = error
                await asyncio.sleep(delay)
                continue
            if error.errcode == CODE_USED and previous is not None:
                # The failed attempt reached WeChat and spent the code; the honest answer is
                # that WeChat was unavailable, not that the user sent a used code.
                error = previous
            logger.warning("WeChat %s failed: %s %s", what, error.errcode, error.errmsg)
            raise error from cause
