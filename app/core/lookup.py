"""Names of rows by id, for answers that show a name next to an id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession


async def names_by_id(
    session: AsyncSession, model: Any, ids: Iterable[int | None]
) -> dict[int, str]:
    """{id: name} of the model's rows among `ids` (None and repeats ignored), in one query."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, model.name).where(model.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows.all()}
