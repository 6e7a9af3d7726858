"""List parameters and the `{items, total}` answer shared by every list endpoint."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class PageParams(BaseModel):
    limit: int = 20
    offset: int = 0


def _page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (max 100)")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


async def fetch_page(
    session: AsyncSession, statement: Select[Any], page: PageParams
) -> tuple[list[tuple[Any, ...]], int]:
    """Run `statement` for one page (it carries its own ORDER BY) and count all its rows.

    The count rides on the page's rows (`count(*) OVER ()`): one query. Only a page past the
    end, which has no row to carry it, is counted on its own."""
    rows = (
        await session.execute(
            statement.add_columns(func.count().over()).limit(page.limit).offset(page.offset)
        )
    ).all()
    if rows:
        return [tuple(row)[:-1] for row in rows], int(rows[0][-1])
    if not page.offset:
        return [], 0
    total = (
        await session.execute(select(func.count()).select_from(statement.order_by(None).subquery()))
    ).scalar_one()
    return [], int(total)


# How far past the requested page a capped count looks: enough for any pager a person
# clicks through, and a bounded cost however many rows match (1M cases in a district).
COUNT_LOOKAHEAD = 1000


class CappedPage(Page[T], Generic[T]):
    """A page whose `total` is exact up to `offset + limit + 1000` rows; past that `total`
    is that bound and `total_capped` is true ("1,020+")."""

    total_capped: bool = False


async def capped_count(
    session: AsyncSession, statement: Select[Any], page: PageParams
) -> tuple[int, bool]:
    """How many rows `statement` matches, counting no further than `COUNT_LOOKAHEAD` rows
    past the page: (total, capped)."""
    cap = page.offset + page.limit + COUNT_LOOKAHEAD
    counted = (
        await session.execute(
            select(func.count()).select_from(statement.order_by(None).limit(cap + 1).subquery())
        )
    ).scalar_one()
    return (cap, True) if counted > cap else (int(counted), False)
