"""`Idempotency-Key` for `POST /cases`: a retried submission gets the first answer.

The key row is inserted in the same transaction as the case, with a unique (user, key):

- a fresh key inserts its row, the case is made, and the answer is stored on the row;
- a retry finds the row and answers the stored status and body, making nothing;
- a concurrent retry (same key, in flight at the same time) blocks on the unique index
  (PostgreSQL) or on the write lock (SQLite) until the first commits, then reads the stored
  answer; if the first failed and rolled back, the retry simply does the work itself;
- the same key with a different body is refused (422 `idempotency_key_reused`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.cases.models import CaseSubmissionKey
from app.core.clock import utcnow
from app.core.errors import AppError, Conflict, ValidationFailed

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


class IdempotencyKeyReused(AppError):
    status, code, detail = 422, "idempotency_key_reused", "该幂等键已用于另一份不同的提交"


class IdempotencyKeyInvalid(ValidationFailed):
    code, detail = "invalid_idempotency_key", "Idempotency-Key 应为 8–128 位字母、数字或 ._:-"


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: dict[str, Any]


def validate_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise IdempotencyKeyInvalid()
    return key


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find_answer(
    session: AsyncSession, user_id: int, key: str, digest: str
) -> StoredAnswer | None:
    """The stored answer of an earlier submission with this key, if any (read only)."""
    row = (
        await session.execute(
            select(
                CaseSubmissionKey.request_hash,
                CaseSubmissionKey.status_code,
                CaseSubmissionKey.response,
            ).where(CaseSubmissionKey.user_id == user_id, CaseSubmissionKey.key == key)
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != digest:
        raise IdempotencyKeyReused()
    if row.status_code is None or row.response is None:
        raise Conflict("相同的提交正在处理，请稍后刷新", code="idempotency_in_progress")
    return StoredAnswer(row.status_code, row.response)


async def claim_key(
    session: AsyncSession, user_id: int, key: str, digest: str
) -> tuple[int | None, StoredAnswer | None]:
    """Insert the key row; (row id, None) when this request does the work, (None, answer)
    when an earlier or concurrent one already did."""
    values = {"user_id": user_id, "key": key, "request_hash": digest, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(CaseSubmissionKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(CaseSubmissionKey.id)  # type: ignore[arg-type]
    )
    inserted = (await session.execute(stmt)).scalar_one_or_none()
    if inserted is not None:
        return inserted, None
    answer = await find_answer(session, user_id, key, digest)
    return None, answer


async def store_answer(
    session: AsyncSession, row_id: int, case_id: int, status_code: int, body: dict[str, Any]
) -> None:
    await session.execute(
        update(CaseSubmissionKey)
        .where(CaseSubmissionKey.id == row_id)  # type: ignore[arg-type]
        .values(case_id=case_id, status_code=status_code, response=body)
        .execution_options(synchronize_session=False)
    )


# A retry comes within minutes (hours at most, from a phone that was offline); a week is ample.
KEY_RETENTION_DAYS = 7


async def purge_submission_keys(session: AsyncSession, now: datetime) -> int:
    """Delete keys older than KEY_RETENTION_DAYS (a sweep for the worker). Answers how many."""
    result = await session.execute(
        delete(CaseSubmissionKey)
        .where(col(CaseSubmissionKey.created_at) < now - timedelta(days=KEY_RETENTION_DAYS))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
