"""Counting what a request sends to the database: statements (round trips) and transactions.

Listens to the app's engine (`before_cursor_execute`, `begin`) and counts while a block runs,
so a test can assert a request's budget: a count is deterministic where a time is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from app.core.db import Database


@dataclass
class Tally:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0

    @property
    def round_trips(self) -> int:
        return len(self.statements)

    def describe(self) -> str:
        lines = [f"{self.round_trips} statements in {self.transactions} transaction(s):"]
        lines += [f"  {' '.join(s.split())[:160]}" for s in self.statements]
        return "\n".join(lines)


@contextmanager
def counting(db: Database) -> Iterator[Tally]:
    """Every statement and transaction begun on `db`'s engine while the block runs."""
    tally = Tally()
    engine = db.engine.sync_engine

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        tally.statements.append(statement)

    def on_begin(_conn: Any) -> None:
        tally.transactions += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    try:
        yield tally
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)
