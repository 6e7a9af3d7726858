"""A fake WeChat server that speaks the real HTTP endpoints and JSON shapes.

Tests start it on 127.0.0.1 and point `WECHAT_API_BASE_URL` at it; in development without
WeChat credentials the service starts one in-process, so the quick start works offline.

Rules (deterministic, so tests and mini-program developers can rely on them):

- **wx.login codes**: any code of 1–128 characters from ``[A-Za-z0-9._@-]`` is valid once.
  The openid is ``"o" + sha256(user part).hexdigest()[:27]`` (28 characters) where the user
  part is everything before the first ``"."``: ``"alice.1"`` and ``"alice.2"`` log in the
  same user twice. A code used a second time answers 40163; a code starting with
  ``"invalid"`` (or with other characters) answers 40029; one starting with ``"blocked"``
  answers 40226 (a user WeChat's risk control blocks). ``openid_for_code()`` computes it.
- **phone codes** (getPhoneNumber): ``"phone-13800000001"`` → phoneNumber ``13800000001``,
  country code 86; ``"phone-852-61234567"`` → ``+85261234567``, pure ``61234567``, country
  code 852. Anything else answers 40029; a code used twice answers 40163.
- **content check** (msgSecCheck v2): text containing a risky word (default 赌博 → label
  20006, 诈骗 → 20008) is ``risky``; a review word (default 加微信 → 10001, 代开发票 → 20006)
  is ``review``; everything else ``pass`` with label 100.
- **tokens**: ``cgi-bin/token`` and ``cgi-bin/stable_token`` mint tokens signed with HMAC by
  the app's secret, so another fake instance configured with the same appid and secret (a
  worker process in development) accepts them. An unknown, forged, expired or revoked token
  answers 40001. ``stable_token`` answers the same token while more than 5 minutes remain;
  ``force_refresh`` mints a new one and revokes the previous one (on this instance).
- **subscribe messages** are accepted for every openid unless told otherwise
  (``unsubscribe(openid)`` → 43101); data values must be strings (else 47003).

Failures are injected per endpoint (a queue, consumed one per request): an errcode, an HTTP
status, a delay before answering, or a delay then an error. Every request is recorded
(endpoint, method, query, body). Control it with the Python API (`FakeWeChat`) or over HTTP
under ``/_fake/`` (see miniprogram_api_docs/wechat.md).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import qrcode
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.core.clock import utcnow
from app.core.security import secrets_match

DEV_APPID = "wx-dev-appid"
DEV_SECRET = "wx-dev-secret-0123456789abcdef"

DEFAULT_RISKY_WORDS: dict[str, int] = {"赌博": 20006, "诈骗": 20008}
DEFAULT_REVIEW_WORDS: dict[str, int] = {"加微信": 10001, "代开发票": 20006}

TOKEN_TTL_SECONDS = 7200
STABLE_TOKEN_RENEW_SECONDS = 300

# endpoint name → (method, path): the names used to inject failures and filter records.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "token": ("GET", "/cgi-bin/token"),
    "stable_token": ("POST", "/cgi-bin/stable_token"),
    "jscode2session": ("GET", "/sns/jscode2session"),
    "getuserphonenumber": ("POST", "/wxa/business/getuserphonenumber"),
    "subscribe_send": ("POST", "/cgi-bin/message/subscribe/send"),
    "getwxacodeunlimit": ("POST", "/wxa/getwxacodeunlimit"),
    "msg_sec_check": ("POST", "/wxa/msg_sec_check"),
}

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json string",
    40226: "code blocked: high risk user",
    41030: "invalid page",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47003: "argument invalid!",
    61010: "code is expired",
}

_CODE_RE = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
_PHONE_RE = re.compile(r"^phone-(?:(\d{1,4})-)?(\d{5,15})$")
_SCENE_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")


def openid_for_code(code: str) -> str:
    """The openid a wx.login code logs in: "o" + sha256(part before the first ".")[:27]."""
    user = code.split(".", 1)[0]
    return "o" + hashlib.sha256(user.encode()).hexdigest()[:27]


def phone_for_code(code: str) -> tuple[str, str, str] | None:
    """(phoneNumber, purePhoneNumber, countryCode) a getPhoneNumber code stands for."""
    match = _PHONE_RE.match(code)
    if not match:
        return None
    country, pure = match.group(1) or "86", match.group(2)
    full = pure if country == "86" else f"+{country}{pure}"
    return full, pure, country


@dataclass
class Failure:
    """One injected failure: an errcode answer, an HTTP status, and/or a delay before it."""

    errcode: int | None = None
    http_status: int | None = None
    delay: float = 0.0
    errmsg: str | None = None


@dataclass
class Received:
    """One request the fake received."""

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeWeChat:
    """The fake's state and rules. Thread-safe: the server runs in its own thread and event
    loop while tests drive it from theirs."""

    def __init__(self, apps: dict[str, str] | None = None) -> None:
        self.apps: dict[str, str] = dict(apps or {DEV_APPID: DEV_SECRET})
        self._lock = threading.Lock()
        self.reset()

    # ---- control -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget failures, records, used codes, sent messages and word lists' changes.

        Tokens already issued stay valid (they are signed), so a shared token outlives it."""
        with self._lock:
            self._failures: dict[str, deque[Failure]] = {name: deque() for name in ENDPOINTS}
            self._received: list[Received] = []
            self._used_codes: set[str] = set()
            self._used_phone_codes: set[str] = set()
            self._revoked: set[str] = set()
            self._stable: dict[str, tuple[str, datetime]] = {}
            self._tokens_not_before: dict[str, float] = {}
            self._unsubscribed: set[str] = set()
            self._messages: list[dict[str, Any]] = []
            self.risky_words: dict[str, int] = dict(DEFAULT_RISKY_WORDS)
            self.review_words: dict[str, int] = dict(DEFAULT_REVIEW_WORDS)
            self.known_pages: set[str] | None = None

    def fail(
        self,
        endpoint: str,
        errcode: int | None = None,
        *,
        http_status: int | None = None,
        delay: float = 0.0,
        times: int = 1,
        errmsg: str | None = None,
    ) -> None:
        """Queue `times` failures for the next requests to `endpoint` (a name of ENDPOINTS).

        `errcode` answers {"errcode", "errmsg"}; `http_status` answers that status with a
        plain-text body; `delay` sleeps first (alone, it makes a slow but correct answer)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(ENDPOINTS)}")
        if errcode is None and http_status is None and delay <= 0:
            raise ValueError("a failure needs an errcode, an http_status or a delay")
        with self._lock:
            for _ in range(times):
                self._failures[endpoint].append(Failure(errcode, http_status, delay, errmsg))

    def pending_failures(self, endpoint: str) -> int:
        with self._lock:
            return len(self._failures[endpoint])

    def received(self, endpoint: str | None = None) -> list[Received]:
        """What the fake received, oldest first, optionally for one endpoint."""
        with self._lock:
            return [r for r in self._received if endpoint is None or r.endpoint == endpoint]

    def messages(self, openid: str | None = None) -> list[dict[str, Any]]:
        """Subscribe messages accepted (the request bodies), optionally for one openid."""
        with self._lock:
            return [m for m in self._messages if openid is None or m.get("touser") == openid]

    def unsubscribe(self, openid: str) -> None:
        """Subscribe messages to this openid answer 43101 from now on."""
        with self._lock:
            self._unsubscribed.add(openid)

    def subscribe(self, openid: str) -> None:
        with self._lock:
            self._unsubscribed.discard(openid)

    def invalidate_tokens(self, appid: str | None = None) -> None:
        """Every token issued so far (by any instance) answers 40001 on this instance."""
        with self._lock:
            for app in [appid] if appid else list(self.apps):
                self._tokens_not_before[app] = time.time() + 0.001
                self._stable.pop(app, None)

    def configure(
        self,
        *,
        risky_words: dict[str, int] | None = None,
        review_words: dict[str, int] | None = None,
        known_pages: list[str] | None = None,
    ) -> None:
        with self._lock:
            if risky_words is not None:
                self.risky_words = dict(risky_words)
            if review_words is not None:
                self.review_words = dict(review_words)
            if known_pages is not None:
                self.known_pages = set(known_pages)

    openid_for = staticmethod(openid_for_code)
    phone_for = staticmethod(phone_for_code)

    # ---- tokens ------------------------------------------------------------------------

    def mint_token(self, appid: str, ttl: int = TOKEN_TTL_SECONDS) -> tuple[str, datetime]:
        issued = time.time()
        expires = utcnow() + timedelta(seconds=ttl)
        payload = f"{appid}|{int(expires.timestamp())}|{issued:.6f}|{secrets.token_hex(8)}"
        sig = hmac.new(self.apps[appid].encode(), payload.encode(), hashlib.sha256).digest()
        return f"{_b64(payload.encode())}.{_b64(sig)}", expires

    def token_appid(self, token: str) -> str | None:
        """The appid a valid token belongs to, or None (unknown, forged, expired, revoked)."""
        try:
            payload_b64, sig_b64 = token.split(".", 1)
            payload = _unb64(payload_b64).decode()
            appid, expires_ts, issued, _nonce = payload.split("|")
            sig = _unb64(sig_b64)
        except (ValueError, UnicodeDecodeError):
            return None
        secret = self.apps.get(appid)
        if secret is None:
            return None
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
        if not secrets_match(sig, expected):
            return None
        if int(expires_ts) <= utcnow().timestamp():
            return None
        with self._lock:
            if token in self._revoked:
                return None
            if float(issued) < self._tokens_not_before.get(appid, 0.0):
                return None
        return appid

    # ---- request handling --------------------------------------------------------------

    def _record(self, endpoint: str, request: Request, body: Any) -> Failure | None:
        with self._lock:
            self._received.append(
                Received(
                    endpoint=endpoint,
                    method=request.method,
                    path=request.url.path,
                    query=dict(request.query_params),
                    body=body,
                )
            )
            queue = self._failures[endpoint]
            return queue.popleft() if queue else None

    def _app_error(self, query: dict[str, str], body: dict[str, Any]) -> int | None:
        appid = query.get("appid") or body.get("appid")
        secret = query.get("secret") or body.get("secret")
        if appid not in self.apps:
            return 40013
        if not secret or not secrets_match(self.apps[appid], str(secret)):
            return 40125
        return None

    def handle(self, endpoint: str, query: dict[str, str], body: Any) -> dict[str, Any] | bytes:
        """Answer one request by the rules (after any injected failure)."""
        if not isinstance(body, dict):
            body = {}
        if endpoint in ("token", "stable_token"):
            return self._token(endpoint, query, body)
        if endpoint == "jscode2session":
            return self._jscode2session(query)
        appid = self.token_appid(query.get("access_token", ""))
        if appid is None:
            return _error(40001)
        if endpoint == "getuserphonenumber":
            return self._phone(appid, body)
        if endpoint == "subscribe_send":
            return self._subscribe_send(body)
        if endpoint == "getwxacodeunlimit":
            return self._wxacode(body)
        if endpoint == "msg_sec_check":
            return self._sec_check(body)
        raise ValueError(endpoint)

    def _token(self, endpoint: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        source = query if endpoint == "token" else body
        if source.get("grant_type") != "client_credential":
            return _error(40002)
        error = self._app_error(query if endpoint == "token" else {}, body)
        if error:
            return _error(error)
        appid = str(source["appid"])
        now = utcnow()
        with self._lock:
            current = self._stable.get(appid)
        if endpoint == "stable_token":
            force = body.get("force_refresh") in (True, "true", 1)
            if (
                not force
                and current
                and (current[1] - now).total_seconds() > STABLE_TOKEN_RENEW_SECONDS
                and self.token_appid(current[0]) == appid
            ):
                token, expires = current
            else:
                token, expires = self.mint_token(appid)
                with self._lock:
                    if force and current:
                        self._revoked.add(current[0])
                    self._stable[appid] = (token, expires)
        else:
            token, expires = self.mint_token(appid)
        return {"access_token": token, "expires_in": int((expires - now).total_seconds())}

    def _jscode2session(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("grant_type") != "authorization_code":
            return _error(40002)
        error = self._app_error(query, {})
        if error:
            return _error(error)
        code = query.get("js_code", "")
        if not _CODE_RE.match(code) or code.startswith("invalid"):
            return _error(40029)
        if code.startswith("blocked"):
            return _error(40226)
        with self._lock:
            if code in self._used_codes:
                return _error(40163)
            self._used_codes.add(code)
        return {"openid": openid_for_code(code), "session_key": _b64(secrets.token_bytes(16))}

    def _phone(self, appid: str, body: dict[str, Any]) -> dict[str, Any]:
        code = str(body.get("code") or "")
        phone = phone_for_code(code)
        if phone is None:
            return _error(40029)
        with self._lock:
            if code in self._used_phone_codes:
                return _error(40163)
            self._used_phone_codes.add(code)
        full, pure, country = phone
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": full,
                "purePhoneNumber": pure,
                "countryCode": country,
                "watermark": {"timestamp": int(time.time()), "appid": appid},
            },
        }

    def _subscribe_send(self, body: dict[str, Any]) -> dict[str, Any]:
        touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
        if not touser or not isinstance(touser, str):
            return _error(40003)
        if not template_id or not isinstance(data, dict) or not data:
            return _error(47003)
        for key, item in data.items():
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                return _error(47003, f"argument invalid! data.{key}.value invalid")
        state = body.get("miniprogram_state", "formal")
        if state not in ("developer", "trial", "formal"):
            return _error(47003, "argument invalid! miniprogram_state invalid")
        with self._lock:
            if touser in self._unsubscribed:
                return _error(43101)
            self._messages.append(body)
        return {"errcode": 0, "errmsg": "ok", "msgid": secrets.randbelow(10**15)}

    def _wxacode(self, body: dict[str, Any]) -> dict[str, Any] | bytes:
        scene = body.get("scene")
        if not isinstance(scene, str) or not _SCENE_RE.match(scene):
            return _error(40169)
        page = body.get("page")
        if (
            body.get("check_path", True)
            and page
            and self.known_pages is not None
            and page not in self.known_pages
        ):
            return _error(41030)
        env_version = body.get("env_version", "release")
        if env_version not in ("release", "trial", "develop"):
            return _error(40097)
        width = body.get("width", 430)
        # WeChat clamps the width to 280..1280 rather than refusing it.
        width = min(max(width if isinstance(width, int) else 430, 280), 1280)
        return qr_png(scene, width)

    def _sec_check(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("version") != 2:
            return _error(40097, "invalid args: only version 2 is served")
        content, openid, scene = body.get("content"), body.get("openid"), body.get("scene")
        if not isinstance(content, str) or scene not in (1, 2, 3, 4):
            return _error(40097)
        if not openid or not isinstance(openid, str):
            return _error(40003)
        text = "".join(str(body.get(k) or "") for k in ("title", "nickname", "signature"))
        text += content
        with self._lock:
            risky = [(w, label) for w, label in self.risky_words.items() if w in text]
            review = [(w, label) for w, label in self.review_words.items() if w in text]
        detail: list[dict[str, Any]] = [
            {"strategy": "content_model", "errcode": 0, "suggest": "pass", "label": 100}
        ]
        if risky:
            suggest, label = "risky", risky[0][1]
        elif review:
            suggest, label = "review", review[0][1]
        else:
            suggest, label = "pass", 100
        for word, word_label in risky + review:
            detail.append(
                {
                    "strategy": "keyword",
                    "errcode": 0,
                    "suggest": "risky" if (word, word_label) in risky else "review",
                    "label": word_label,
                    "level": 90,
                    "keyword": word,
                }
            )
        return {
            "errcode": 0,
            "errmsg": "ok",
            "result": {"suggest": suggest, "label": label},
            "detail": detail,
            "trace_id": secrets.token_hex(12),
        }


def _error(errcode: int, errmsg: str | None = None) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "error")}


def qr_png(text: str, width: int = 430) -> bytes:
    """A standard QR code of `text` as a `width`×`width` PNG (any QR reader decodes it)."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    image = code.make_image().get_image().convert("L").resize((width, width), resample=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ---- HTTP --------------------------------------------------------------------------------


def create_fake_app(fake: FakeWeChat) -> Starlette:
    """The Starlette app serving the WeChat endpoints and the /_fake control endpoints."""

    def endpoint_route(name: str, method: str, path: str) -> Route:
        async def handler(request: Request) -> Response:
            raw = await request.body()
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            failure = fake._record(name, request, body)
            if failure is not None:
                if failure.delay > 0:
                    await asyncio.sleep(failure.delay)
                if failure.http_status is not None:
                    return PlainTextResponse("fake upstream failure", failure.http_status)
                if failure.errcode is not None:
                    return JSONResponse(_error(failure.errcode, failure.errmsg))
            answer = fake.handle(name, dict(request.query_params), body)
            if isinstance(answer, bytes):
                return Response(answer, media_type="image/png")
            return JSONResponse(answer)

        return Route(path, handler, methods=[method], name=name)

    async def add_failure(request: Request) -> Response:
        spec = await request.json()
        try:
            fake.fail(
                spec["endpoint"],
                spec.get("errcode"),
                http_status=spec.get("http_status"),
                delay=float(spec.get("delay", 0)),
                times=int(spec.get("times", 1)),
                errmsg=spec.get("errmsg"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"pending": fake.pending_failures(spec["endpoint"])})

    async def list_requests(request: Request) -> Response:
        endpoint = request.query_params.get("endpoint")
        return JSONResponse([r.as_dict() for r in fake.received(endpoint)])

    async def list_messages(request: Request) -> Response:
        return JSONResponse(fake.messages(request.query_params.get("openid")))

    async def reset(request: Request) -> Response:
        fake.reset()
        return JSONResponse({"ok": True})

    async def configure(request: Request) -> Response:
        spec = await request.json()
        try:
            fake.configure(
                risky_words=spec.get("risky_words"),
                review_words=spec.get("review_words"),
                known_pages=spec.get("known_pages"),
            )
            for openid in spec.get("unsubscribe", []):
                fake.unsubscribe(openid)
            for openid in spec.get("subscribe", []):
                fake.subscribe(openid)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"risky_words": fake.risky_words, "review_words": fake.review_words})

    async def invalidate_tokens(request: Request) -> Response:
        fake.invalidate_tokens()
        return JSONResponse({"ok": True})

    async def openid(request: Request) -> Response:
        code = request.query_params.get("code", "")
        return JSONResponse({"code": code, "openid": openid_for_code(code)})

    routes = [endpoint_route(name, method, path) for name, (method, path) in ENDPOINTS.items()]
    routes += [
        Route("/_fake/failures", add_failure, methods=["POST"]),
        Route("/_fake/requests", list_requests, methods=["GET"]),
        Route("/_fake/messages", list_messages, methods=["GET"]),
        Route("/_fake/reset", reset, methods=["POST"]),
        Route("/_fake/config", configure, methods=["POST"]),
        Route("/_fake/tokens/invalidate", invalidate_tokens, methods=["POST"]),
        Route("/_fake/openid", openid, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.fake = fake
    return app


class FakeWeChatServer:
    """Runs the fake on 127.0.0.1 (a free port unless one is given) in a background thread."""

    def __init__(self, fake: FakeWeChat | None = None, *, port: int = 0) -> None:
        self.fake = fake or FakeWeChat()
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> str:
        """Start serving and answer the base URL (e.g. http://127.0.0.1:38211)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_fake_app(self.fake),
            # The process's logging stays as the service set it up (one handler, one
            # format, its levels): uvicorn neither reconfigures nor re-levels it.
            log_config=None,
            log_level=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-wechat", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake WeChat server did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None


def main(argv: list[str] | None = None) -> None:
    """Run a fake WeChat in the foreground: `python -m app.wechat.fake_server --port 9000`."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake WeChat server for development.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--appid", default=DEV_APPID)
    parser.add_argument("--secret", default=DEV_SECRET)
    args = parser.parse_args(argv)
    app = create_fake_app(FakeWeChat({args.appid: args.secret}))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
