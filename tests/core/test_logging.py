"""What the service writes to its log, read from the real output of its handler.

A request path can carry any character once percent-decoded; none of them may start a new
line of the log (a forged record) in either format.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Literal

import httpx
import pytest

from app.core.logging import configure_logging
from tests.conftest import make_settings

FORGED = "2026-11-29 21:00:00,000 ERROR [0] app.errors: database password is hunter2"

# Percent-encoded characters that break or disguise a line, each followed by a forged record.
HOSTILE_PATHS = [
    f"/deputy-codes/abc{encoded}{FORGED.replace(' ', '%20')}"
    for encoded in (
        "%0A",  # line feed
        "%0D",  # carriage return
        "%0D%0A",
        "%0B",  # vertical tab
        "%0C",  # form feed
        "%1B%5B2K%0D",  # ANSI "erase line", carriage return
        "%C2%85",  # NEL
        "%E2%80%A8",  # line separator
        "%E2%80%A9",  # paragraph separator
        "%E2%80%AE",  # right-to-left override
        "%00",
        "%09",
    )
]

TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \[[A-Za-z0-9._-]+\] \S+: ")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


Capture = Callable[[Literal["text", "json"]], tuple[io.StringIO, "_Records"]]


@pytest.fixture
def capture_log() -> Iterator[Capture]:
    """Install the service's log handler (as create_app does) writing into a buffer; give
    back a function that does it for a format; restore the previous handlers after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def install(log_format: Literal["text", "json"]) -> tuple[io.StringIO, _Records]:
        buffer = io.StringIO()
        configure_logging("INFO", log_format, stream=buffer)
        records = _Records()
        root.addHandler(records)
        return buffer, records

    yield install
    root.handlers = saved_handlers
    root.setLevel(saved_level)


def _lines(buffer: io.StringIO) -> list[str]:
    # Split the way a log shipper or a terminal might: on every line boundary Python knows.
    return buffer.getvalue().splitlines()


async def test_text_log_keeps_one_line_per_record_whatever_the_path(
    client: httpx.AsyncClient, capture_log: Capture
) -> None:
    buffer, records = capture_log("text")
    for path in HOSTILE_PATHS:
        answer = await client.get(path)
        assert answer.status_code in (404, 422), (path, answer.status_code)
    lines = _lines(buffer)
    assert len(lines) == len(records.records) >= len(HOSTILE_PATHS), lines
    for line in lines:
        assert TEXT_RECORD.match(line), line
    access = [line for line in lines if " app.access: " in line]
    assert len(access) == len(HOSTILE_PATHS)
    # The characters are there, escaped, so the path can still be read.
    assert any("abc\\n2026-11-29" in line for line in access), access
    assert any("abc\\r2026-11-29" in line for line in access), access
    assert any("abc\\u2028" in line for line in access), access
    assert any("abc\\x1b[2K\\r" in line for line in access), access


async def test_json_log_is_one_object_per_line_with_the_request_id(
    client: httpx.AsyncClient, capture_log: Capture
) -> None:
    buffer, records = capture_log("json")
    request_ids = []
    for path in HOSTILE_PATHS:
        answer = await client.get(path)
        request_ids.append(answer.headers["x-request-id"])
    lines = _lines(buffer)
    assert len(lines) == len(records.records) >= len(HOSTILE_PATHS), lines
    entries = [json.loads(line) for line in lines]
    access = [e for e in entries if e["logger"] == "app.access"]
    assert [e["request_id"] for e in access] == request_ids
    for entry in access:
        assert entry["level"] == "INFO" and entry["method"] == "GET"
        assert entry["status"] in (404, 422) and isinstance(entry["duration_ms"], float)
        assert entry["time"].endswith("+00:00")
        # The structured path is the decoded one; the message has it escaped.
        assert entry["path"].startswith("/api/v1/deputy-codes/abc")
        assert "\n" not in entry["message"] and "\r" not in entry["message"]
        assert FORGED in entry["path"]
    assert access[0]["path"] == "/api/v1/deputy-codes/abc\n" + FORGED


async def test_a_traceback_cannot_pass_for_a_record(capture_log: Capture) -> None:
    buffer, records = capture_log("text")
    try:
        raise ValueError("bad value\n" + FORGED)
    except ValueError:
        logging.getLogger("app.errors").exception("failed on %s", "/x\n" + FORGED)
    lines = _lines(buffer)
    assert TEXT_RECORD.match(lines[0]) and "/x\\n2026" in lines[0]
    assert len(lines) > 2
    assert all(line.startswith("  | ") for line in lines[1:]), lines
    assert sum(1 for line in lines if TEXT_RECORD.match(line)) == len(records.records) == 1


async def test_json_log_carries_a_traceback_inside_its_one_line(capture_log: Capture) -> None:
    buffer, _records = capture_log("json")
    try:
        raise ValueError("bad value\n" + FORGED)
    except ValueError:
        logging.getLogger("app.errors").exception("failed")
    (line,) = _lines(buffer)
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["message"] == "failed"
    assert "ValueError: bad value\n" + FORGED in entry["exc_info"]


async def test_no_query_string_or_body_in_the_access_log(
    client: httpx.AsyncClient, capture_log: Capture
) -> None:
    buffer, _records = capture_log("json")
    await client.get("/stations", params={"q": "13800138000"})
    await client.post("/auth/password-login", json={"username": "13800138000", "password": "p"})
    assert "13800138000" not in buffer.getvalue()
    assert len(_lines(buffer)) >= 2


def test_the_format_defaults_to_json_in_production_and_text_otherwise() -> None:
    assert make_settings().effective_log_format == "text"
    assert make_settings(log_format="json").effective_log_format == "json"
    production = make_settings(
        app_env="production",
        jwt_secret="Zq7$kP2!vX9#mL4@wR8^tN3&yB6*cH1%",
        database_url="postgresql+asyncpg://u:p@db/app",
    )
    assert production.effective_log_format == "json"
    assert (
        make_settings(
            app_env="production",
            jwt_secret="Zq7$kP2!vX9#mL4@wR8^tN3&yB6*cH1%",
            database_url="postgresql+asyncpg://u:p@db/app",
            log_format="text",
        ).effective_log_format
        == "text"
    )
