"""Settings, read from environment variables and an optional `.env` file."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from app.core.database_url import DatabaseUrl
    from app.core.proxy import TrustedProxies

DEFAULT_JWT_SECRET = "development-only-secret-change-me"
# What deploy/env.example writes where the operator must put a value of their own.
EXAMPLE_PLACEHOLDER = "CHANGE-ME"
DEFAULT_DATA_DIR = Path("data")


class ConfigError(RuntimeError):
    """The settings cannot run the service (raised at start-up, never per request)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_env: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    # `text`: one line per record; `json`: one JSON object per line. Unset: json in
    # production, text otherwise.
    log_format: Literal["text", "json"] | None = None
    # Who sees /docs, /redoc and /openapi.json: `public`, `staff` (staff and admin logins
    # through HTTP Basic) or `off` (404). Unset: public, except off in production.
    docs_access: Literal["public", "staff", "off"] | None = None
    # Addresses (IPs or CIDRs, comma-separated) of the proxies in front of the service whose
    # X-Forwarded-For / X-Forwarded-Proto are believed; empty: nobody's.
    trusted_proxies: str = ""

    # Database. SQLite is the embedded default; PostgreSQL is production.
    database_url: str = f"sqlite+aiosqlite:///./{DEFAULT_DATA_DIR}/app.db"
    db_pool_size: int = Field(default=32, ge=1, le=500)
    # A request waits this long for a free connection, then answers 503 database_unavailable.
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    allow_sqlite_in_production: bool = False

    # Tokens.
    jwt_secret: str = DEFAULT_JWT_SECRET
    access_token_ttl_seconds: int = Field(default=1800, ge=60)
    refresh_token_ttl_days: int = Field(default=30, ge=1)
    login_max_failures: int = 5
    login_lock_minutes: int = 15

    # WeChat. Without credentials in development the built-in fake WeChat answers.
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_api_base_url: str = ""
    wechat_timeout_seconds: float = 5.0
    wechat_max_retries: int = Field(default=2, ge=0, le=5)
    wechat_miniprogram_state: Literal["developer", "trial", "formal"] = "formal"
    wechat_env_version: Literal["release", "trial", "develop"] = "release"
    redis_url: str = ""

    # Files.
    media_dir: Path = DEFAULT_DATA_DIR / "media"
    max_upload_bytes: int = 10 * 1024 * 1024

    # File storage and the bounds on files the service parses.
    # `local`: files under MEDIA_DIR (one host). `s3`: an S3-protocol object store (AWS S3,
    # Aliyun OSS, Tencent COS, MinIO), which every replica shares.
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str = ""  # empty: AWS's own endpoint for S3_REGION
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""  # empty: the client's default credential chain
    s3_secret_access_key: SecretStr = SecretStr("")
    s3_addressing_style: Literal["virtual", "path"] = "virtual"
    # `s3v4` (SigV4) everywhere it works; `s3` (the legacy V2) for a store that needs it.
    s3_signature_version: Literal["s3v4", "s3"] = "s3v4"
    # Objects are stored under this prefix in the bucket ("" or e.g. "liaison/").
    s3_key_prefix: str = Field(default="", max_length=100, pattern=r"^([A-Za-z0-9._-]+/)*$")
    # `proxy`: the API streams the photo after the access check. `redirect`: it answers 302 to
    # a signed URL of the store valid S3_URL_TTL_SECONDS, so bytes bypass the API.
    s3_delivery: Literal["proxy", "redirect"] = "proxy"
    # Host the signed URLs name when clients reach the store by another address than the API.
    s3_public_endpoint_url: str = ""
    s3_url_ttl_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    # An XLSX roster may inflate to at most this many bytes (all its ZIP members together).
    deputy_import_max_inflated_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)

    # Organisation: station search, deputy roster import, deputy binding codes.
    station_search_radius_m: int = Field(default=50_000, ge=100, le=500_000)
    deputy_import_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    deputy_import_max_rows: int = Field(default=5000, ge=1)
    deputy_binding_code_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)

    # Dashboard (statistics, duty archive, exports).
    # Weight of each kind of act in a deputy's yearly archive score. JSON in the environment,
    # e.g. DASHBOARD_SCORE_WEIGHTS='{"checkin": 1, "inspection": 5}'; kinds not named keep
    # their default weight (app.dashboard.archive.DEFAULT_SCORE_WEIGHTS).
    dashboard_score_weights: dict[str, float] = Field(default_factory=dict)
    # Deputies with no recorded act for this many months are listed as 约谈 candidates.
    inactive_deputy_months: int = Field(default=6, ge=1, le=60)
    # Upper bound on the rows one export streams (a guard, not a page size).
    export_max_rows: int = Field(default=200_000, ge=1)

    # Presence: station codes, check-ins, duty rosters.
    # Key of the station code signatures; empty means derived from JWT_SECRET.
    station_qr_secret: str = ""
    checkin_page: str = "pages/checkin/index"
    # A rotating code changes every step and is accepted for this many steps (now and before).
    qr_rotation_step_seconds: int = Field(default=60, ge=10, le=3600)
    qr_rotation_valid_steps: int = Field(default=2, ge=1, le=10)
    # A second scan at the same station within this window answers the same check-in.
    checkin_repeat_window_seconds: int = Field(default=120, ge=0, le=3600)
    # Open check-ins older than this are closed by the sweep (and flagged auto_closed).
    checkin_max_hours: int = Field(default=12, ge=1, le=48)
    # The reported GPS accuracy is credited up to this many metres.
    checkin_max_accuracy_m: int = Field(default=100, ge=0, le=1000)
    # A check-in this early before a duty slot starts still counts for the slot.
    duty_early_minutes: int = Field(default=30, ge=0, le=240)

    # Activities (代表活动): the window in which an activity's code is accepted, the reminder.
    activity_checkin_early_minutes: int = Field(default=60, ge=0, le=24 * 60)
    activity_checkin_late_minutes: int = Field(default=60, ge=0, le=24 * 60)
    # Signed-up residents and deputies who said yes are reminded this long before the start.
    activity_reminder_hours: int = Field(default=24, ge=1, le=168)
    # "Near me": public activities within this many kilometres of the given point.
    activity_nearby_km: float = Field(default=10.0, gt=0, le=200)

    # msgSecCheck v2 scene for evaluation and consultation comments: 2 = 评论.
    comment_sec_check_scene: int = Field(default=2, ge=1, le=4)

    # Wishes (微心愿) and attachments.
    # A deputy may hold at most this many claimed, not yet fulfilled wishes.
    wish_max_open_claims: int = Field(default=3, ge=1, le=100)
    # Published wishes nobody claimed for this many days expire (sweep).
    wish_expire_days: int = Field(default=30, ge=1, le=365)
    # Fulfilled wishes the resident has not confirmed for this many days complete (sweep).
    wish_auto_complete_days: int = Field(default=7, ge=1, le=90)
    # Photos per wish and per fulfilment report.
    wish_max_attachments: int = Field(default=9, ge=0, le=30)
    # msgSecCheck v2 scene for wish texts: 3 = 论坛 (a post shown publicly on the wall).
    wish_sec_check_scene: int = Field(default=3, ge=1, le=4)
    # Uploaded images larger than this many pixels are refused (decompression bombs); at most
    # Pillow's own bound, above which it refuses an image before we can.
    max_upload_pixels: int = Field(default=40_000_000, ge=1_000_000, le=89_478_485)
    # Uploads never linked to a wish or case are deleted after this many hours (sweep).
    attachment_unlinked_ttl_hours: int = Field(default=48, ge=1, le=24 * 90)

    # Notifications: outbox delivery, subscribe-message templates, the worker.
    # A message is retried this many times (network, 5xx, busy, rate limit), then `failed`.
    notify_max_attempts: int = Field(default=6, ge=1, le=50)
    # Retry n waits base * 2**(n-1) seconds, jittered by ±50 %, at most an hour.
    notify_backoff_base_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)
    # Rows one claim takes, and sends in flight at once within one worker (the gateway runs
    # 16 calls at a time).
    notify_batch_size: int = Field(default=200, ge=1, le=2000)
    notify_concurrency: int = Field(default=16, ge=1, le=500)
    # A claimed row whose worker went silent this long is claimed again by another worker.
    # Keep it above a batch's worst case: batch / concurrency × (retries + 1) × timeout.
    notify_lease_seconds: int = Field(default=300, ge=5, le=3600)
    # Sleep between passes when nothing is due.
    notify_poll_seconds: float = Field(default=2.0, ge=0.05, le=300.0)
    # Per event: {"template_id": ..., "page": ..., "fields": {"thing1": "title", ...}}; JSON in
    # the environment. Events not named keep app.notify.templates.DEFAULT_TEMPLATES.
    notify_templates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Run the worker inside the API process too; unset means yes in development only.
    run_worker_in_process: bool | None = None

    # Cases (意见建议): submission limits, deadlines, sweeps, triage.
    # Submissions per resident or deputy account (staff registering calls are not limited),
    # counted in the database so every replica sees the same count.
    case_submit_per_hour: int = Field(default=10, ge=1, le=10_000)
    case_submit_per_day: int = Field(default=30, ge=1, le=100_000)
    # Working days a unit gets when the category names none.
    case_default_deadline_days: int = Field(default=10, ge=1, le=365)
    # A fed-back case the resident has not rated for this many days is resolved by the sweep.
    case_auto_resolve_days: int = Field(default=7, ge=1, le=365)
    # Units and staff get an inbox message this long before a deadline passes.
    case_due_soon_hours: int = Field(default=24, ge=1, le=720)
    # Open cases this close to a new one are shown to staff as possibly the same problem.
    case_similar_radius_m: int = Field(default=500, ge=10, le=50_000)
    # msgSecCheck v2 scene for case texts: 2 = 评论 (text addressed to the authorities).
    case_sec_check_scene: int = Field(default=2, ge=1, le=4)
    # Page a deputy's own code opens (the resident writes to that deputy).
    case_deputy_qr_page: str = "pages/case/new"
    # Key of the deputy code signatures; empty means derived from JWT_SECRET.
    case_deputy_qr_secret: str = ""

    # Integrators: API keys, Open311 GeoReport v2, webhooks.
    # Calls per minute a new key may make unless its issuer sets another limit.
    api_key_default_rate_per_minute: int = Field(default=120, ge=1, le=100_000)
    # Open311 jurisdiction_id values this deployment answers to, each naming the region
    # (usually a district) it covers. JSON in the environment, e.g.
    # OPEN311_JURISDICTIONS='{"xuhui.sh.gov.cn": 1}'. A request without jurisdiction_id
    # covers the whole deployment; an unknown one is a 404.
    open311_jurisdictions: dict[str, int] = Field(default_factory=dict)
    # Endpoint URLs must be https unless this is set (local receivers in development).
    webhook_allow_http: bool = False
    # Receivers resolving to private, loopback or link-local addresses are refused unless
    # this is set (tests and local development only).
    webhook_allow_private_targets: bool = False
    # One delivery attempt: connect + answer within this time; at most this much of the
    # answer is read.
    webhook_timeout_seconds: float = Field(default=5.0, ge=0.1, le=60.0)
    webhook_max_response_bytes: int = Field(default=16_384, ge=0, le=1_048_576)
    # Rows one claim takes and calls in flight at once, separate from WeChat's budget.
    webhook_batch_size: int = Field(default=500, ge=1, le=5000)
    webhook_concurrency: int = Field(default=64, ge=1, le=1000)
    webhook_lease_seconds: int = Field(default=120, ge=5, le=3600)
    # A delivery is retried this many times (network, timeout, non-2xx), then `failed`;
    # retry n waits base * 2**(n-1) seconds, jittered, at most an hour.
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_backoff_base_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)
    # An endpoint failing this many attempts in a row, the first at least this many hours
    # ago, is paused and the integrator's admin gets an inbox message.
    webhook_pause_after_failures: int = Field(default=20, ge=1, le=10_000)
    webhook_pause_after_hours: float = Field(default=24.0, ge=0.0, le=24 * 30)
    # Hotspots (热点): grouping cases about one problem, in the worker.
    # A report joins a hotspot when it scores this much with one of its reports (0–1).
    hotspot_threshold: float = Field(default=0.47, gt=0.0, le=1.0)
    # Two hotspots a report bridges are merged when their centres agree this much.
    hotspot_merge_threshold: float = Field(default=0.36, gt=0.0, le=1.0)
    # Only reports this recent are compared (days).
    hotspot_window_days: int = Field(default=90, ge=1, le=3650)
    # Cases the worker groups per run (it runs every few seconds).
    hotspot_batch_size: int = Field(default=100, ge=1, le=10_000)
    # Lists show hotspots of at least this many cases unless asked otherwise.
    hotspot_min_cases: int = Field(default=2, ge=1, le=1000)

    # Deputies' suggestions (代表建议).
    # Working days a lead unit gets to reply when staff name no other.
    suggestion_deadline_days: int = Field(default=60, ge=1, le=365)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def effective_log_format(self) -> Literal["text", "json"]:
        if self.log_format is None:
            return "json" if self.is_production else "text"
        return self.log_format

    @property
    def effective_docs_access(self) -> Literal["public", "staff", "off"]:
        if self.docs_access is None:
            return "off" if self.is_production else "public"
        return self.docs_access

    @property
    def database(self) -> DatabaseUrl:
        """DATABASE_URL in the async driver's form (see app.core.database_url)."""
        from app.core.database_url import parse_database_url

        return parse_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        # The URL was validated when the settings were made: its scheme says it (cheap, and
        # asked on hot paths).
        return self.database_url.strip().lower().startswith("sqlite")

    @property
    def proxies(self) -> TrustedProxies:
        from app.core.proxy import TrustedProxies

        return TrustedProxies.parse(self.trusted_proxies)

    @property
    def max_request_bytes(self) -> int:
        """The largest request body accepted: the largest upload and its multipart framing."""
        return max(self.max_upload_bytes, self.deputy_import_max_bytes) + 1024 * 1024

    @property
    def worker_in_process(self) -> bool:
        if self.run_worker_in_process is None:
            return not self.is_production
        return self.run_worker_in_process

    @property
    def wechat_configured(self) -> bool:
        return bool(self.wechat_appid and self.wechat_secret)

    @model_validator(mode="after")
    def _check_storage(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ConfigError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        return self

    @model_validator(mode="after")
    def _refuse_unusable(self) -> Settings:
        # Both raise ConfigError with one sentence; parsed again where used (cheap).
        self.database  # noqa: B018
        self.proxies  # noqa: B018
        return self

    def example_placeholders(self) -> list[str]:
        """The settings whose value still holds deploy/env.example's marker."""
        found = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if EXAMPLE_PLACEHOLDER in json.dumps(value, default=str, ensure_ascii=False):
                found.append(name.upper())
        return sorted(found)

    def production_problems(self) -> list[str]:
        """What production refuses among these settings (app.startup adds the domains')."""
        if not self.is_production:
            return []
        problems = []
        weakness = jwt_secret_weakness(self.jwt_secret)
        if weakness:
            problems.append(f"JWT_SECRET {weakness}")
        if not self.wechat_configured:
            problems.append("WECHAT_APPID and WECHAT_SECRET must be set")
        unfilled = self.example_placeholders()
        if unfilled:
            problems.append(
                f"{', '.join(unfilled)} still hold the {EXAMPLE_PLACEHOLDER} of deploy/env.example"
            )
        if self.is_sqlite and not self.allow_sqlite_in_production:
            problems.append(
                "DATABASE_URL points at SQLite; use PostgreSQL or set ALLOW_SQLITE_IN_PRODUCTION=true"
            )
        return problems


JWT_SECRET_MIN_LENGTH = 32
JWT_SECRET_MIN_BITS = 128
JWT_SECRET_MIN_DISTINCT = 8
_CLASSES = ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10))
_OTHER_CLASS_SIZE = 32


def jwt_secret_bits(secret: str) -> float:
    """Estimated entropy: length × log2(alphabet), the alphabet being the character classes
    the secret uses (a–z 26, A–Z 26, 0–9 10, anything else 32)."""
    alphabet = sum(size for test, size in _CLASSES if any(c.isascii() and test(c) for c in secret))
    if any(not (c.isascii() and c.isalnum()) for c in secret):
        alphabet += _OTHER_CLASS_SIZE
    return len(secret) * math.log2(alphabet) if alphabet > 1 else 0.0


def _is_repetition(secret: str) -> bool:
    """The secret is a shorter string written over and over ("abcdabcd…")."""
    n = len(secret)
    return any(secret == (secret[:k] * (n // k + 1))[:n] for k in range(1, n // 2 + 1))


def jwt_secret_weakness(secret: str) -> str | None:
    """Why `secret` is too weak to sign production tokens, or None when it will do.

    The rule: at least 32 characters, at least 8 different ones, not a shorter string
    repeated, and at least 128 bits by `jwt_secret_bits`. `secrets.token_urlsafe(48)` and
    `secrets.token_hex(16)` pass; 32 × "a" or "abcd" × 8 do not."""
    hint = "use python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    if not secret or secret == DEFAULT_JWT_SECRET:
        return f"must be set to a random value ({hint})"
    if len(secret) < JWT_SECRET_MIN_LENGTH:
        return f"must have at least {JWT_SECRET_MIN_LENGTH} characters ({hint})"
    if (
        len(set(secret)) < JWT_SECRET_MIN_DISTINCT
        or _is_repetition(secret)
        or jwt_secret_bits(secret) < JWT_SECRET_MIN_BITS
    ):
        return f"is too predictable for a signing key ({hint})"
    return None


def _settings_error(exc: ValidationError) -> ConfigError:
    problems = [
        f"{'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: {error['msg']}"
        for error in exc.errors()
    ]
    return ConfigError("invalid settings: " + "; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise _settings_error(exc) from None
