"""compose.yaml and what it wires together: settings the service reads, the migrate step
before the API, nginx in front of the replicas, and an env.example that covers every variable.

Docker is not available where the suite runs, so the file is checked as data here; `docker
compose config` checks it where Docker is."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import Settings
from app.startup import production_problems

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
NGINX = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")

APP_IMAGE = "liaison-station:latest"
APP_SERVICES = {"migrate", "api1", "api2", "worker"}
API_REPLICAS = {"api1", "api2"}
# ${NAME}, ${NAME:-default}, ${NAME:?error}; `$$` is a literal dollar for the container's shell.
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _env_example_keys() -> set[str]:
    keys = set()
    for line in ENV_EXAMPLE.splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if match:
            keys.add(match.group(1))
    return keys


def _operator_dotenv(filled: bool = True) -> dict[str, str]:
    """deploy/env.example as an operator fills it in (every CHANGE-ME replaced by a random
    value), or copies it without filling it in."""
    values = {}
    for line in ENV_EXAMPLE.splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            value = match.group(2).strip()
            if value[:1] == value[-1:] == "'":
                value = value[1:-1]
            if filled:
                value = value.replace("CHANGE-ME", secrets.token_hex(24))
            values[match.group(1)] = value
    return values


def _operator_env(service: str, filled: bool = True) -> dict[str, str]:
    """The service's environment after compose's interpolation from the operator's .env."""
    dotenv = _operator_dotenv(filled)

    def fill(match: re.Match[str]) -> str:
        name, kind, default = match.groups()
        if name in dotenv and dotenv[name] != "":
            return dotenv[name]
        assert kind == ":-", f"{name} is required and missing"
        return default

    return {k: REFERENCE.sub(fill, v) for k, v in _environment(SERVICES[service]).items()}


def _documented_settings() -> set[str]:
    """Variables named in a row of a README table: `| `NAME` | …` or `| `A`, `B` | …`."""
    names: set[str] = set()
    for line in README.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def test_the_production_shape_is_there() -> None:
    assert set(SERVICES) == APP_SERVICES | {"db", "minio", "bucket", "proxy"}
    for name in APP_SERVICES:
        assert SERVICES[name]["image"] == APP_IMAGE, name
    assert SERVICES["db"]["image"].startswith("postgres:")
    assert SERVICES["minio"]["image"].startswith("minio/minio:")
    assert SERVICES["bucket"]["image"].startswith("minio/mc:")
    assert SERVICES["proxy"]["image"].startswith("nginx:")
    # Images are pinned: a new upstream release does not change a district's deployment.
    for service in SERVICES.values():
        assert not service["image"].endswith(":latest") or service["image"] == APP_IMAGE
    assert SERVICES["worker"]["command"] == ["python", "-m", "app.cli", "worker"]


def test_app_services_read_only_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    documented = _documented_settings()
    for name in APP_SERVICES:
        env = _environment(SERVICES[name])
        unknown = sorted(set(env) - fields - documented)
        assert not unknown, f"{name}: {unknown} are neither settings nor documented"
        assert env["APP_ENV"] == "production"
        assert env["RUN_WORKER_IN_PROCESS"] == "false"
        assert env["STORAGE_BACKEND"] == "s3"
        assert env["LOG_FORMAT"] == "json"
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://liaison:")
        assert "@db:5432/liaison" in env["DATABASE_URL"]
    # The same settings for every process of the service.
    envs = [_environment(SERVICES[name]) for name in sorted(APP_SERVICES)]
    assert all(env == envs[0] for env in envs)
    # What compose hands the service, from an operator's filled-in .env, passes the checks
    # `migrate` runs first (python -m app.cli check).
    settings = _settings_from(monkeypatch, _operator_env("api1"))
    assert settings.is_production and not settings.is_sqlite
    assert settings.run_worker_in_process is False
    assert production_problems(settings) == []


def test_an_env_example_copied_unfilled_stops_at_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings_from(monkeypatch, _operator_env("api1", filled=False))
    problems = " ".join(production_problems(settings))
    assert "JWT_SECRET" in problems


def test_an_env_example_with_only_the_secret_filled_in_stops_at_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _operator_env("api1", filled=False)
    env["JWT_SECRET"] = secrets.token_urlsafe(48)
    problems = " ".join(production_problems(_settings_from(monkeypatch, env)))
    for name in ("WECHAT_APPID", "WECHAT_SECRET", "NOTIFY_TEMPLATES", "S3_SECRET_ACCESS_KEY"):
        assert name in problems, problems
    assert "JWT_SECRET" not in problems


def _settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings as the service reads them from exactly `env` (no .env file, nothing else)."""
    for key in list(os.environ):
        if key.lower() in Settings.model_fields:
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.lower() in Settings.model_fields:
            monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_secrets_are_required_and_stay_where_they_are_needed() -> None:
    required = {m.group(1) for m in REFERENCE.finditer(COMPOSE_TEXT) if m.group(2) == ":?"}
    assert {
        "POSTGRES_PASSWORD",
        "JWT_SECRET",
        "WECHAT_APPID",
        "WECHAT_SECRET",
        "NOTIFY_TEMPLATES",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "MINIO_ROOT_PASSWORD",
    } <= required
    for name in APP_SERVICES:
        env = _environment(SERVICES[name])
        assert not {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD"} & set(env)
        assert "env_file" not in SERVICES[name]


def test_migrate_runs_to_completion_before_the_api_and_the_worker() -> None:
    migrate = SERVICES["migrate"]
    command = " ".join(migrate["command"])
    assert command.endswith("python -m app.cli check && exec python -m app.cli migrate")
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    for name in API_REPLICAS | {"worker"}:
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name
    # The bucket exists before a replica may store a photo in it.
    for name in API_REPLICAS:
        assert SERVICES[name]["depends_on"]["bucket"]["condition"] == (
            "service_completed_successfully"
        )
    bucket = SERVICES["bucket"]
    assert bucket["restart"] == "no"
    assert bucket["depends_on"]["minio"]["condition"] == "service_healthy"
    script = "\n".join(bucket["entrypoint"])
    assert 'mc mb --ignore-existing "store/$$S3_BUCKET"' in script
    assert "http://minio:9000" in script


def _upstream_servers() -> set[tuple[str, int]]:
    block = re.search(r"upstream\s+liaison_api\s*\{(.*?)\}", NGINX, re.S)
    assert block is not None
    return {(h, int(p)) for h, p in re.findall(r"^\s*server\s+([\w.-]+):(\d+)", block[1], re.M)}


def _uvicorn_port(service: dict[str, Any]) -> int:
    command = service["command"]
    text = command if isinstance(command, str) else " ".join(command)
    assert "uvicorn" in text and "app.main:create_app" in text
    # The app reads client addresses (TRUSTED_PROXIES); uvicorn must not rewrite them first.
    assert "--no-proxy-headers" in text
    match = re.search(r"--port\s+(\d+)", text)
    assert match is not None
    return int(match.group(1))


def test_proxy_balances_over_both_replicas() -> None:
    assert _upstream_servers() == {(name, _uvicorn_port(SERVICES[name])) for name in API_REPLICAS}
    assert "proxy_pass http://liaison_api;" in NGINX
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", NGINX)
    proxy = SERVICES["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    for name in API_REPLICAS:
        assert proxy["depends_on"][name]["condition"] == "service_healthy"
        assert "healthcheck" in SERVICES[name]


def test_proxy_body_limit_fits_the_upload_limit() -> None:
    limits = re.findall(r"client_max_body_size\s+(\d+)m;", NGINX)
    assert limits
    upload_limit = Settings.model_fields["max_upload_bytes"].default
    for megabytes in limits:
        # Room for the largest upload and its multipart envelope, and not much more.
        assert upload_limit < int(megabytes) * 1024 * 1024 <= upload_limit + 2 * 1024 * 1024


def test_files_port_reaches_the_store_the_service_writes_to() -> None:
    env = _environment(SERVICES["api1"])
    assert env["S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["S3_ADDRESSING_STYLE"] == "path"
    # Photos go through the API unless the operator chooses redirect (and names the store).
    assert _operator_env("api1")["S3_DELIVERY"] == "proxy"
    assert "S3_PUBLIC_ENDPOINT_URL" in env
    assert "proxy_pass http://minio:9000;" in NGINX
    # Signed URLs carry the public host: nginx must not rewrite it.
    assert re.search(r"proxy_set_header\s+Host\s+\$http_host;", NGINX)
    assert "${FILES_PORT:-9000}:9000" in SERVICES["proxy"]["ports"]


def test_trusted_proxies_name_the_proxy() -> None:
    address = ipaddress.ip_address(SERVICES["proxy"]["networks"]["backend"]["ipv4_address"])
    subnet = ipaddress.ip_network(COMPOSE["networks"]["backend"]["ipam"]["config"][0]["subnet"])
    assert address in subnet
    for name in APP_SERVICES:
        cidrs = _environment(SERVICES[name])["TRUSTED_PROXIES"].split(",")
        networks = [ipaddress.ip_network(c.strip()) for c in cidrs]
        assert any(address in n for n in networks)
        # Only the proxy: no other container on the network may claim a client address.
        assert all(n.num_addresses <= 4 for n in networks)


def test_env_example_covers_every_variable_compose_reads() -> None:
    referenced = {m.group(1) for m in REFERENCE.finditer(COMPOSE_TEXT)}
    keys = _env_example_keys()
    assert referenced - keys == set(), "missing from deploy/env.example"
    assert keys - referenced == set(), "in deploy/env.example but unused by compose.yaml"
    # Placeholders the operator must replace are marked as such.
    for secret in (
        "POSTGRES_PASSWORD",
        "JWT_SECRET",
        "MINIO_ROOT_PASSWORD",
        "S3_SECRET_ACCESS_KEY",
    ):
        assert re.search(rf"^{secret}=CHANGE-ME$", ENV_EXAMPLE, re.M), secret
    assert "secrets.token_urlsafe" in ENV_EXAMPLE  # how to generate JWT_SECRET


@pytest.mark.parametrize("name", ["compose.yaml", "deploy/nginx.conf", "deploy/env.example"])
def test_readme_shows_the_way(name: str) -> None:
    assert name in README
    assert "### One host with compose" in README
