"""What production refuses to start with: placeholder subscribe-message template ids and a
JWT_SECRET that is long but predictable; every problem in one sentence."""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import ConfigError, Settings, jwt_secret_bits, jwt_secret_weakness
from app.main import create_app
from app.notify.templates import DEFAULT_TEMPLATES
from app.startup import refuse_unsafe_production
from tests.conftest import PRODUCTION_JWT_SECRET, production_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 32,
        "a" * 200,
        "abcd" * 8,
        "Ab1!" * 16,
        "0123456789abcdef0123456789abcdef",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
        "01010101010101011010101010101010",
        "short-but-random-Xq9",
    ],
)
def test_predictable_or_short_secrets_are_refused(secret: str) -> None:
    assert jwt_secret_weakness(secret) is not None
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        create_app(production_settings(jwt_secret=secret))


@pytest.mark.parametrize(
    "secret",
    [
        secrets.token_urlsafe(48),
        secrets.token_urlsafe(32),
        secrets.token_hex(16),
        secrets.token_hex(32),
        PRODUCTION_JWT_SECRET,
    ],
)
def test_random_secrets_are_accepted(secret: str) -> None:
    assert jwt_secret_weakness(secret) is None, (secret, jwt_secret_bits(secret))
    refuse_unsafe_production(production_settings(jwt_secret=secret))


def test_the_entropy_estimate() -> None:
    assert jwt_secret_bits("") == 0
    # Digits only: log2(10) bits a character, so 32 digits are not enough.
    assert jwt_secret_bits("9" * 32) == pytest.approx(32 * math.log2(10))
    assert jwt_secret_weakness("31415926535897932384626433832795") is not None
    # Hex: digits and lower case, log2(36) a character.
    assert jwt_secret_bits("0a" * 16) == pytest.approx(32 * math.log2(36))
    # Every class: log2(94) a character.
    assert jwt_secret_bits("aA0-") == pytest.approx(4 * math.log2(94))


def test_placeholder_template_ids_are_refused() -> None:
    placeholders = sorted(e for e, raw in DEFAULT_TEMPLATES.items() if raw["template_id"])
    with pytest.raises(ConfigError) as caught:
        create_app(production_settings(notify_templates={}))
    message = str(caught.value)
    assert "NOTIFY_TEMPLATES" in message and ", ".join(placeholders) in message

    # One event left at its default is still refused, and named.
    real = production_settings().notify_templates
    partial = {e: v for e, v in real.items() if e != "wish.claimed"}
    with pytest.raises(ConfigError, match=r"placeholders left: wish\.claimed\)"):
        create_app(production_settings(notify_templates=partial))

    # Turning an event into inbox-only (template_id null) is a real choice, not a placeholder.
    inbox_only = {**partial, "wish.claimed": {"template_id": None}}
    refuse_unsafe_production(production_settings(notify_templates=inbox_only))


def test_template_ids_left_as_the_readmes_placeholders_are_refused() -> None:
    real = production_settings().notify_templates
    left = {**real, "case.merged": {"template_id": "<工单进度提醒 id>"}}
    with pytest.raises(ConfigError, match=r"not WeChat template ids .* for case\.merged$"):
        create_app(production_settings(notify_templates=left))


def test_an_invalid_template_setting_is_a_problem_too() -> None:
    real = production_settings().notify_templates
    broken = {**real, "case.registered": {"template_id": "x", "fields": {"Title!": "title"}}}
    with pytest.raises(ConfigError, match="NOTIFY_TEMPLATES is invalid"):
        create_app(production_settings(notify_templates=broken))


def test_every_problem_in_one_sentence() -> None:
    settings = production_settings(
        jwt_secret="a" * 32,
        notify_templates={},
        wechat_secret="",
        database_url="sqlite:///./data/app.db",
        allow_sqlite_in_production=False,
    )
    with pytest.raises(ConfigError) as caught:
        refuse_unsafe_production(settings)
    message = str(caught.value)
    assert message.startswith("refusing to start in production: ") and "\n" not in message
    for part in ("JWT_SECRET", "WECHAT_APPID and WECHAT_SECRET", "SQLite", "NOTIFY_TEMPLATES"):
        assert part in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "configuration error: refusing to start in production: JWT_SECRET"),
        (
            {"DATABASE_URL": "postgres://app@db/app?sslmode=require&keepalives=1"},
            "configuration error: DATABASE_URL has option(s) keepalives",
        ),
        (
            {"APP_ENV": "development", "DATABASE_URL": "mysql://app@db/app"},
            "configuration error: DATABASE_URL starts with mysql://",
        ),
    ],
    ids=["production-refusal", "unknown-url-option", "unknown-scheme"],
)
def test_the_server_stops_with_the_sentence_not_a_traceback(
    overrides: dict[str, str], expected: str, tmp_path: Path
) -> None:
    """uvicorn's factory path, as the README starts it."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "NOTIFY_"))},
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "production",
        "DATABASE_URL": "postgres://app@127.0.0.1:5432/app",
        "JWT_SECRET": "a" * 32,
        "WECHAT_APPID": "wx-real",
        "WECHAT_SECRET": "real-secret",
        **overrides,
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", "0"]
    result = subprocess.run(  # noqa: S603
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)


def test_the_check_command(tmp_path: Path) -> None:
    """The container's start command runs `check` first: with several uvicorn workers a
    refusing factory would only make uvicorn restart its workers over and over."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "NOTIFY_"))},
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "production",
        "DATABASE_URL": "postgres://app@127.0.0.1:5432/app",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "WECHAT_APPID": "wx-real",
        "WECHAT_SECRET": "real-secret",
    }
    command = [sys.executable, "-m", "app.cli", "check"]

    def check(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            command,
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = check()
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().startswith("configuration error: refusing to start in production")
    assert "NOTIFY_TEMPLATES" in refused.stderr

    accepted = check(NOTIFY_TEMPLATES=json.dumps(production_settings().notify_templates))
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == "settings can run the service (production)"


def readme_env_block() -> dict[str, str]:
    """The `.env` the README's production section tells an operator to write."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("cat > .env <<'EOF'\n", 1)[1].split("\n   EOF", 1)[0]
    values = {}
    for line in block.splitlines():
        name, _, value = line.strip().partition("=")
        values[name] = value
    return values


def filled_in(name: str, value: str) -> str:
    """The README's placeholders (`…`, `<…>`) replaced as an operator would."""
    if name == "JWT_SECRET":
        return secrets.token_urlsafe(48)
    if name == "TRUSTED_PROXIES":
        return "10.0.0.0/8"
    if name == "NOTIFY_TEMPLATES":
        templates = json.loads(value)
        for spec in templates.values():
            spec["template_id"] = secrets.token_urlsafe(32)[:43]
        return json.dumps(templates)
    return value.replace("…", secrets.token_hex(8))


def test_the_readme_production_env_passes_the_check_once_filled_in(tmp_path: Path) -> None:
    raw = readme_env_block()
    assert raw["APP_ENV"] == "production"
    env_file = tmp_path / ".env"
    env_file.write_text(
        "".join(f"{name}={filled_in(name, value)}\n" for name, value in raw.items()),
        encoding="utf-8",
    )
    refuse_unsafe_production(Settings(_env_file=env_file))  # type: ignore[call-arg]
    # Left as written, the placeholders are refused.
    env_file.write_text("".join(f"{n}={v}\n" for n, v in raw.items()), encoding="utf-8")
    with pytest.raises(ConfigError):
        refuse_unsafe_production(Settings(_env_file=env_file))  # type: ignore[call-arg]
