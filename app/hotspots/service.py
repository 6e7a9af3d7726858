"""The rules of hotspots: grouping new cases (the worker's sweep), regrouping, scope, the
staff's split and merge, and what a hotspot shows.

Grouping runs in the worker, never in the submission's transaction: `group_pending` takes
the cases not grouped yet, in order, a batch per run. For each it looks up candidates in the
inverted index (`hotspot_signature`: the same strong terms within the time window, an index
range per term), decides with `grouping.decide`, and writes its row, its signature and the
hotspot's new centre. Hotspot rows are locked (`FOR UPDATE`) before their centre is rewritten,
and a hotspot merged meanwhile is followed to where it went, so a staff merge or split racing
the sweep is settled by the database. The sweep runs under the worker's lease; should two runs
overlap anyway, a case's primary key in `hotspot_case` lets only one of them group it (the
other's transaction fails and its sweep is tried again).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    desc,
    exists,
    false,
    func,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.cases.models import Case, CaseCategory
from app.core.clock import SHANGHAI
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.lookup import names_by_id
from app.core.masking import mask_text
from app.core.security import Principal, Role
from app.hotspots.grouping import Centre, Grouper, Item, Tuning, decide, score
from app.hotspots.models import (
    Hotspot,
    HotspotCase,
    HotspotExclusion,
    HotspotSignature,
    HotspotStatus,
    HotspotTerm,
)
from app.hotspots.text import DOCS_TERM, Vector, term_counts, weigh
from app.identity.models import Deputy, DeputyStation
from app.org.models import Region, Station, Unit

# A case that committed after a case with a higher id was grouped is still found when it is
# at most this old (a transaction commits within seconds).
LATE_MINUTES = 30
_IN_CHUNK = 900
EPOCH = date(1970, 1, 1)


def tuning_of(settings: Settings) -> Tuning:
    return Tuning(
        threshold=settings.hotspot_threshold,
        merge_threshold=settings.hotspot_merge_threshold,
        window_days=settings.hotspot_window_days,
    )


def day_of(moment: datetime) -> int:
    return (moment.astimezone(UTC).date() - EPOCH).days


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def _vector(terms: dict[str, Any]) -> Vector:
    return Vector({int(t): float(w) for t, w in terms.items()})


def _centre(hotspot: Hotspot) -> Centre:
    return Centre(
        terms={int(t): float(w) for t, w in (hotspot.terms or {}).items()},
        lat_sum=hotspot.lat_sum,
        lng_sum=hotspot.lng_sum,
        points=hotspot.points,
        region_id=hotspot.region_id or 0,
        split_from_id=hotspot.split_from_id,
    )


def _store_centre(hotspot: Hotspot, centre: Centre) -> None:
    hotspot.terms = {str(t): w for t, w in centre.trimmed().items()}
    hotspot.lat_sum = centre.lat_sum
    hotspot.lng_sum = centre.lng_sum
    hotspot.points = centre.points


# ---------------------------------------------------------------------------------------
# Grouping (the worker's sweep)


@dataclass(slots=True)
class _Pending:
    case_id: int
    title: str
    content: str
    category_id: int
    region_id: int
    region_path: str
    latitude: float | None
    longitude: float | None
    created_at: datetime


class _Stats:
    """Document frequencies as the batch goes: read once, counted up per case, written once."""

    def __init__(self, df: dict[int, int]) -> None:
        self.df = df
        self.docs = df.pop(DOCS_TERM, 0)
        self.added: Counter[int] = Counter()

    def count(self, terms: Iterable[int]) -> None:
        for term in terms:
            self.df[term] = self.df.get(term, 0) + 1
            self.added[term] += 1
        self.docs += 1
        self.added[DOCS_TERM] += 1


async def _load_df(session: AsyncSession, terms: set[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    ordered = sorted(terms | {DOCS_TERM})
    for i in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[i : i + _IN_CHUNK]
        rows = await session.execute(
            select(HotspotTerm.term, HotspotTerm.df).where(col(HotspotTerm.term).in_(chunk))
        )
        found.update({int(t): int(df) for t, df in rows.all()})
    return found


async def _save_df(session: AsyncSession, added: Counter[int]) -> None:
    if not added:
        return
    table = HotspotTerm.__table__  # type: ignore[attr-defined]
    statement = _insert(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=["term"], set_={"df": table.c.df + statement.excluded.df}
    )
    await session.execute(statement, [{"term": t, "df": n} for t, n in sorted(added.items())])


async def pending_cases(session: AsyncSession, limit: int, now: datetime) -> list[_Pending]:
    """The cases not grouped yet, oldest first: those above the highest grouped id (an index
    range), and any recent one below it that committed late (the anti-join only looks at
    the last minutes, so it stays small however many cases are stored)."""
    highest = int(
        (
            await session.execute(select(func.coalesce(func.max(HotspotCase.case_id), 0)))
        ).scalar_one()
    )
    columns = (
        Case.id,
        Case.title,
        Case.content,
        Case.category_id,
        Case.region_id,
        Region.path,
        Case.latitude,
        Case.longitude,
        Case.created_at,
    )
    newer = await session.execute(
        select(*columns)
        .join(Region, col(Region.id) == Case.region_id)
        .where(col(Case.id) > highest)
        .order_by(col(Case.id))
        .limit(limit)
    )
    late = await session.execute(
        select(*columns)
        .join(Region, col(Region.id) == Case.region_id)
        .where(
            col(Case.id) <= highest,
            col(Case.created_at) >= now - timedelta(minutes=LATE_MINUTES),
            ~exists().where(HotspotCase.case_id == Case.id),
        )
        .order_by(col(Case.id))
        .limit(limit)
    )
    found = sorted({row[0]: row for row in [*late.all(), *newer.all()]}.values())
    return [_Pending(*row) for row in found[:limit]]


async def group_pending(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """The sweep: group the cases not grouped yet (a batch). Answers how many."""
    batch = await pending_cases(session, settings.hotspot_batch_size, now)
    if not batch:
        return 0
    tuning = tuning_of(settings)
    counts = {p.case_id: term_counts(p.title, p.content) for p in batch}
    every_term: set[int] = set()
    for c in counts.values():
        every_term.update(c)
    stats = _Stats(await _load_df(session, every_term))
    for pending in batch:
        await add_case(session, pending, counts[pending.case_id], stats, tuning, now)
    await _save_df(session, stats.added)
    await session.flush()
    return len(batch)


async def candidates(session: AsyncSession, item: Item, tuning: Tuning) -> list[Item]:
    """The grouped cases sharing the item's strongest terms within the window, the
    strongest overlap first: one bounded index range per term."""
    signature = item.vector.signature()
    if not signature:
        return []
    # Each term's postings are read newest first, at most `postings_per_term` of them:
    # an index range scan whose length does not grow with the number of cases stored, even
    # for a term every tenth report uses.
    postings = union_all(
        *(
            select(
                select(
                    HotspotSignature.case_id,
                    (col(HotspotSignature.weight) * weight).label("w"),
                )
                .where(
                    HotspotSignature.term == term,
                    col(HotspotSignature.day).between(item.day - tuning.window_days, item.day + 1),
                )
                .order_by(desc(col(HotspotSignature.day)), desc(col(HotspotSignature.case_id)))
                .limit(tuning.postings_per_term)
                .subquery()
            )
            for term, weight in signature
        )
    ).subquery()
    overlap = func.sum(postings.c.w).label("overlap")
    top = (
        select(postings.c.case_id, overlap)
        .group_by(postings.c.case_id)
        .order_by(desc("overlap"))
        .limit(tuning.candidates)
        .subquery()
    )
    rows = await session.execute(
        select(HotspotCase).join(top, top.c.case_id == HotspotCase.case_id)
    )
    return [_item(hc) for hc in rows.scalars()]


def _item(hc: Any) -> Item:
    """An Item from a HotspotCase or a row of its table."""
    return Item(
        case_id=hc.case_id,
        vector=_vector(hc.terms),
        category_id=hc.category_id,
        region_id=hc.region_id,
        day=day_of(hc.created_at),
        latitude=hc.latitude,
        longitude=hc.longitude,
        hotspot_id=hc.hotspot_id,
    )


async def _locked_hotspots(session: AsyncSession, ids: Iterable[int]) -> dict[int, Hotspot]:
    """The hotspots, locked for the rest of the transaction, with those they were merged
    into (followed to the end). Locked in id order, so two writers never deadlock."""
    found: dict[int, Hotspot] = {}
    wanted = set(ids)
    while missing := sorted(wanted - set(found)):
        rows = await session.execute(
            select(Hotspot)
            .where(col(Hotspot.id).in_(missing))
            .order_by(col(Hotspot.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for hotspot in rows.scalars():
            assert hotspot.id is not None
            found[hotspot.id] = hotspot
            if hotspot.merged_into_id is not None:
                wanted.add(hotspot.merged_into_id)
        wanted -= {m for m in missing if m not in found}
    return found


def _resolution(hotspots: dict[int, Hotspot]) -> dict[int, int]:
    resolve: dict[int, int] = {}
    for hotspot_id in hotspots:
        target = hotspot_id
        seen = set()
        while hotspots[target].merged_into_id is not None and target not in seen:
            seen.add(target)
            target = hotspots[target].merged_into_id  # type: ignore[assignment]
        if target != hotspot_id:
            resolve[hotspot_id] = target
    return resolve


async def add_case(
    session: AsyncSession,
    pending: _Pending,
    counts: Counter[int],
    stats: _Stats,
    tuning: Tuning,
    now: datetime,
) -> int:
    """Group one case: its vector, its candidates, the decision, the rows. Answers the
    hotspot id."""
    # Counted first: a term only this report has weighs as rare, not as unheard of.
    stats.count(counts)
    vector = weigh(counts, stats.df, stats.docs)
    item = Item(
        case_id=pending.case_id,
        vector=vector,
        category_id=pending.category_id,
        region_id=pending.region_id,
        day=day_of(pending.created_at),
        latitude=pending.latitude,
        longitude=pending.longitude,
    )
    found = await candidates(session, item, tuning)
    hotspots = await _locked_hotspots(session, {c.hotspot_id for c in found if c.hotspot_id})
    resolve = _resolution(hotspots)
    centres = {h: _centre(row) for h, row in hotspots.items() if h not in resolve}
    decision = decide(item, found, centres, tuning, resolve)
    if decision.hotspot_id is None:
        target = Hotspot(
            title=(mask_text(pending.title) or "")[:100],
            category_id=pending.category_id,
            region_id=pending.region_id,
            first_case_at=pending.created_at,
            created_at=now,
        )
        session.add(target)
        await session.flush()
        centre = Centre(region_id=pending.region_id)
    else:
        target = hotspots[decision.hotspot_id]
        centre = centres[decision.hotspot_id]
        for other_id in decision.merge:
            await _absorb(session, target, centre, hotspots[other_id], now)
    assert target.id is not None
    centre.add(item)
    _store_centre(target, centre)
    target.case_count += 1
    target.last_case_at = max(filter(None, (target.last_case_at, pending.created_at)))
    target.first_case_at = min(filter(None, (target.first_case_at, pending.created_at)))
    target.updated_at = now
    session.add(
        HotspotCase(
            case_id=pending.case_id,
            hotspot_id=target.id,
            terms={str(t): w for t, w in vector.weights.items()},
            category_id=pending.category_id,
            region_id=pending.region_id,
            region_path=pending.region_path,
            latitude=pending.latitude,
            longitude=pending.longitude,
            created_at=pending.created_at,
            grouped_at=now,
        )
    )
    signature = vector.signature()
    if signature:
        await session.execute(
            _insert(session, HotspotSignature.__table__),  # type: ignore[attr-defined]
            [
                {"term": t, "day": item.day, "case_id": pending.case_id, "weight": w}
                for t, w in signature
            ],
        )
    await session.flush()
    return target.id


async def _absorb(
    session: AsyncSession, target: Hotspot, centre: Centre, source: Hotspot, now: datetime
) -> None:
    """Move every case of `source` into `target` and leave `source` pointing at it."""
    assert target.id is not None and source.id is not None
    await session.execute(
        update(HotspotCase)
        .where(col(HotspotCase.hotspot_id) == source.id)
        .values(hotspot_id=target.id)
    )
    await session.execute(
        update(Hotspot)
        .where(col(Hotspot.merged_into_id) == source.id)
        .values(merged_into_id=target.id)
    )
    centre.absorb(_centre(source))
    target.case_count += source.case_count
    target.first_case_at = min(filter(None, (target.first_case_at, source.first_case_at)))
    target.last_case_at = max(filter(None, (target.last_case_at, source.last_case_at)))
    target.updated_at = now
    source.status = HotspotStatus.merged
    source.merged_into_id = target.id
    source.case_count = 0
    source.terms = {}
    source.updated_at = now
    await session.flush()


# ---------------------------------------------------------------------------------------
# Regrouping


@dataclass(frozen=True, slots=True)
class RegroupResult:
    cases: int
    moved: int
    hotspots: int
    seconds: float


async def regroup(session: AsyncSession, settings: Settings, now: datetime) -> RegroupResult:
    """Decide every grouped case of the window again, in arrival order, in memory, with the
    stored weights: after changing the thresholds, or to undo the drift of early decisions.
    Cases staff placed by hand (split, merge) stay where they are and the others gather
    round them; a split-off case never goes back. Each new group keeps the id of the
    hotspot most of its cases were in, so links to hotspots stay valid where they can."""
    import time

    started = time.perf_counter()
    tuning = tuning_of(settings)
    since = now - timedelta(days=tuning.window_days)
    # Plain rows, not ORM objects: a hundred thousand of them load several times faster.
    table = HotspotCase.__table__  # type: ignore[attr-defined]
    rows = (
        await session.execute(
            select(table)
            .where(table.c.created_at >= since)
            .order_by(table.c.created_at, table.c.case_id)
        )
    ).all()
    excluded: dict[int, set[int]] = defaultdict(set)
    for case_id, hotspot_id in (
        await session.execute(select(HotspotExclusion.case_id, HotspotExclusion.hotspot_id))
    ).all():
        excluded[case_id].add(hotspot_id)
    hotspots = {
        h.id: h
        for h in (await session.execute(select(Hotspot).with_for_update())).scalars()
        if h.id is not None
    }
    resolve = _resolution(hotspots)
    # Pinned cases keep their (current) hotspot; the grouper numbers new groups above all ids.
    grouper = Grouper(tuning, next_id=max(hotspots, default=0) + 1)
    for hotspot_id, hotspot in hotspots.items():
        if hotspot.split_from_id is not None:
            grouper.centre(hotspot_id).split_from_id = resolve.get(
                hotspot.split_from_id, hotspot.split_from_id
            )
    before = {hc.case_id: hc.hotspot_id for hc in rows}
    items = []
    for hc in rows:
        item = _item(hc)
        item.hotspot_id = resolve.get(hc.hotspot_id, hc.hotspot_id) if hc.pinned else None
        item.excluded = frozenset(excluded.get(hc.case_id, ()))
        grouper.add(item)
        items.append(item)
    after = grouper.assignment(items)
    # Name each group after the hotspot most of its cases were in.
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for case_id, group in after.items():
        votes[group][resolve.get(before[case_id], before[case_id])] += 1
    names: dict[int, int] = {}
    taken: set[int] = set()
    # Groups staff pinned keep their ids; the others, largest first, take the id most of
    # their cases had.
    for group, vote in sorted(
        votes.items(), key=lambda kv: (kv[0] not in hotspots, -sum(kv[1].values()))
    ):
        if group in hotspots and group not in taken:  # a pinned group keeps its own id
            names[group] = group
            taken.add(group)
            continue
        for old, _ in vote.most_common():
            if old not in taken and hotspots.get(old) is not None:
                names[group] = old
                taken.add(old)
                break
    first_case: dict[int, Item] = {}
    for item in items:
        first_case.setdefault(after[item.case_id], item)
    titles: dict[int, str] = dict(
        (
            await session.execute(
                select(Case.id, Case.title).where(
                    col(Case.id).in_([i.case_id for i in first_case.values()][:50_000])
                )
            )
        ).all()
    )
    for group in votes:
        if group in names:
            continue
        first = first_case[group]
        fresh = Hotspot(
            title=(mask_text(titles.get(first.case_id, "")) or "")[:100],
            category_id=first.category_id,
            region_id=first.region_id,
            created_at=now,
        )
        session.add(fresh)
        await session.flush()
        assert fresh.id is not None
        names[group] = fresh.id
        hotspots[fresh.id] = fresh
    moved = [
        {"cid": case_id, "hid": names[group]}
        for case_id, group in after.items()
        if names[group] != before[case_id]
    ]
    if moved:
        table = HotspotCase.__table__  # type: ignore[attr-defined]
        await session.execute(
            update(table)
            .where(table.c.case_id == bindparam("cid"))
            .values(hotspot_id=bindparam("hid")),
            moved,
            execution_options={"synchronize_session": False},
        )
    touched = set(names.values()) | {resolve.get(h, h) for h in before.values()}
    # Centres from the window's cases (what the problem is now), counts and dates from all
    # cases, set-based: one UPDATE per hotspot would not finish in time at 100k cases.
    centres: dict[int, Centre] = {}
    for group, name in names.items():
        centre = grouper.centres.get(group)
        if centre is not None:
            centres[name] = centre
    await _refresh_counts(session, sorted(touched), now)
    table = Hotspot.__table__  # type: ignore[attr-defined]
    rows_out = [
        {
            "hid": hotspot_id,
            "terms": {str(t): w for t, w in centre.trimmed().items()},
            "lat_sum": centre.lat_sum,
            "lng_sum": centre.lng_sum,
            "points": centre.points,
        }
        for hotspot_id, centre in centres.items()
    ]
    if rows_out:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("hid"))
            .values(
                terms=bindparam("terms"),
                lat_sum=bindparam("lat_sum"),
                lng_sum=bindparam("lng_sum"),
                points=bindparam("points"),
            ),
            rows_out,
            execution_options={"synchronize_session": False},
        )
    session.expire_all()
    return RegroupResult(len(items), len(moved), len(votes), time.perf_counter() - started)


async def _refresh_counts(session: AsyncSession, hotspot_ids: list[int], now: datetime) -> None:
    """Each hotspot's case count and first and last case from its cases, in one statement
    per thousand hotspots."""
    for i in range(0, len(hotspot_ids), 1000):
        chunk = hotspot_ids[i : i + 1000]
        members = (
            select(
                HotspotCase.hotspot_id,
                func.count().label("n"),
                func.min(HotspotCase.created_at).label("first"),
                func.max(HotspotCase.created_at).label("last"),
            )
            .where(col(HotspotCase.hotspot_id).in_(chunk))
            .group_by(HotspotCase.hotspot_id)
            .subquery()
        )
        table = Hotspot.__table__  # type: ignore[attr-defined]
        await session.execute(
            update(table)
            .where(table.c.id.in_(chunk))
            .values(case_count=0, first_case_at=None, last_case_at=None, updated_at=now)
        )
        await session.execute(
            update(table)
            .where(table.c.id == members.c.hotspot_id)
            .values(
                case_count=members.c.n,
                first_case_at=members.c.first,
                last_case_at=members.c.last,
            )
        )


async def rebuild(session: AsyncSession, hotspot: Hotspot, now: datetime) -> None:
    """A hotspot's count, centre and dates from its cases."""
    rows = (
        (await session.execute(select(HotspotCase).where(HotspotCase.hotspot_id == hotspot.id)))
        .scalars()
        .all()
    )
    centre = Centre(region_id=hotspot.region_id or 0, split_from_id=hotspot.split_from_id)
    for hc in rows:
        centre.add(_item(hc))
    _store_centre(hotspot, centre)
    hotspot.case_count = len(rows)
    hotspot.first_case_at = min((hc.created_at for hc in rows), default=None)
    hotspot.last_case_at = max((hc.created_at for hc in rows), default=None)
    hotspot.updated_at = now
    await session.flush()


# ---------------------------------------------------------------------------------------
# Scope


async def scope_paths(session: AsyncSession, principal: Principal) -> list[str] | None:
    """The region paths whose cases the caller may see in hotspots; None: all of them.
    Staff: their region subtree. Deputies: their own region and their stations' regions."""
    if principal.role is Role.admin:
        return None
    if principal.role is Role.staff and principal.region_id is not None:
        path = (
            await session.execute(select(Region.path).where(Region.id == principal.region_id))
        ).scalar_one_or_none()
        return [path] if path else []
    if principal.role is Role.deputy and principal.deputy_id is not None:
        region_ids = select(Deputy.region_id).where(Deputy.id == principal.deputy_id)
        station_regions = (
            select(Station.region_id)
            .join(DeputyStation, col(DeputyStation.station_id) == Station.id)
            .where(DeputyStation.deputy_id == principal.deputy_id)
        )
        rows = await session.execute(
            select(Region.path).where(
                or_(col(Region.id).in_(region_ids), col(Region.id).in_(station_regions))
            )
        )
        return sorted(set(rows.scalars()))
    raise Forbidden("仅限工作人员和人大代表查看热点")


def in_paths(column: Any, paths: Sequence[str] | None) -> ColumnElement[bool]:
    if paths is None:
        return true()
    if not paths:
        return false()
    return or_(*(col(column).startswith(p) for p in paths))


def visible(paths: Sequence[str] | None) -> ColumnElement[bool]:
    """Hotspots with at least one case in the paths."""
    if paths is None:
        return true()
    return exists().where(
        HotspotCase.hotspot_id == Hotspot.id, in_paths(HotspotCase.region_path, paths)
    )


async def load_visible(
    session: AsyncSession, principal: Principal, hotspot_id: int
) -> tuple[Hotspot, list[str] | None]:
    paths = await scope_paths(session, principal)
    hotspot = (
        await session.execute(select(Hotspot).where(Hotspot.id == hotspot_id, visible(paths)))
    ).scalar_one_or_none()
    if hotspot is None:
        # A merged hotspot has no cases of its own: it is visible where its target is.
        merged = await session.get(Hotspot, hotspot_id)
        if merged is not None and merged.merged_into_id is not None:
            target = (
                await session.execute(
                    select(Hotspot).where(Hotspot.id == merged.merged_into_id, visible(paths))
                )
            ).scalar_one_or_none()
            if target is not None:
                return merged, paths
        raise NotFound("未找到该热点", code="not_found")
    return hotspot, paths


# ---------------------------------------------------------------------------------------
# Staff: split and merge


async def split(
    session: AsyncSession,
    principal: Principal,
    hotspot: Hotspot,
    paths: list[str] | None,
    case_ids: list[int],
    now: datetime,
) -> Hotspot:
    """拆分: the named cases leave the hotspot for a new one of their own; the grouping never
    puts them back, nor merges the two hotspots again, and regrouping keeps both sides."""
    assert hotspot.id is not None
    if hotspot.status != HotspotStatus.active:
        raise Conflict("该热点已合并，不能拆分", code="hotspot_merged")
    locked = (await _locked_hotspots(session, [hotspot.id]))[hotspot.id]
    if locked.status != HotspotStatus.active:
        raise Conflict("该热点已合并，不能拆分", code="hotspot_merged")
    rows = (
        (
            await session.execute(
                select(HotspotCase).where(
                    HotspotCase.hotspot_id == locked.id,
                    col(HotspotCase.case_id).in_(case_ids),
                )
            )
        )
        .scalars()
        .all()
    )
    members = {hc.case_id: hc for hc in rows}
    strangers = [c for c in case_ids if c not in members]
    if strangers:
        raise ValidationFailed(
            "所选的件不属于该热点",
            code="case_not_in_hotspot",
            errors=[
                {
                    "field": "body.case_ids",
                    "message": f"not in hotspot: {strangers}",
                    "type": "value_error",
                }
            ],
        )
    out_of_scope = [c for c, hc in members.items() if not _path_in(hc.region_path, paths)]
    if out_of_scope:
        raise Forbidden("所选的件不在您的管辖范围内")
    if len(members) >= locked.case_count:
        raise ValidationFailed(
            "不能拆出热点的全部件",
            code="split_all_cases",
            errors=[
                {
                    "field": "body.case_ids",
                    "message": "would leave the hotspot empty",
                    "type": "value_error",
                }
            ],
        )
    first = min(members.values(), key=lambda hc: (hc.created_at, hc.case_id))
    title = (await session.execute(select(Case.title).where(Case.id == first.case_id))).scalar_one()
    fresh = Hotspot(
        title=(mask_text(title) or "")[:100],
        category_id=first.category_id,
        region_id=first.region_id,
        split_from_id=locked.id,
        created_at=now,
    )
    session.add(fresh)
    await session.flush()
    # Both sides are staff's word now: regrouping keeps them as they are.
    await session.execute(
        update(HotspotCase).where(HotspotCase.hotspot_id == locked.id).values(pinned=True)
    )
    await session.execute(
        update(HotspotCase)
        .where(col(HotspotCase.case_id).in_(list(members)))
        .values(hotspot_id=fresh.id, pinned=True)
    )
    for case_id in sorted(members):
        session.add(
            HotspotExclusion(case_id=case_id, hotspot_id=locked.id, created_by_id=principal.user_id)
        )
    await session.flush()
    old_id, fresh_id = locked.id, fresh.id
    assert old_id is not None
    session.expire_all()
    locked = (await _locked_hotspots(session, [old_id]))[old_id]
    reloaded = await session.get(Hotspot, fresh_id, populate_existing=True)
    assert reloaded is not None
    await rebuild(session, locked, now)
    await rebuild(session, reloaded, now)
    return reloaded


def _path_in(path: str, paths: list[str] | None) -> bool:
    return paths is None or any(path.startswith(p) for p in paths)


async def merge(
    session: AsyncSession,
    principal: Principal,
    source: Hotspot,
    into_id: int,
    paths: list[str] | None,
    now: datetime,
) -> Hotspot:
    """合并: every case of the hotspot moves into `into_id`, and regrouping keeps them
    together; the old hotspot answers with `merged_into_id` from then on."""
    if into_id == source.id:
        raise ValidationFailed(
            "不能与自身合并",
            errors=[
                {"field": "body.into_hotspot_id", "message": "same hotspot", "type": "value_error"}
            ],
        )
    # Both rows are locked first (in id order), so what follows reads them as they are once
    # any merge racing this one has committed.
    assert source.id is not None
    locked = await _locked_hotspots(session, [source.id, into_id])
    if into_id not in locked:
        raise NotFound("未找到要并入的热点", code="not_found")
    src, dst = locked[source.id], locked[into_id]
    if src.status != HotspotStatus.active or dst.status != HotspotStatus.active:
        raise Conflict("热点已被合并，请刷新后重试", code="hotspot_merged")
    target_visible = (
        await session.execute(select(Hotspot.id).where(Hotspot.id == into_id, visible(paths)))
    ).scalar_one_or_none()
    if target_visible is None:
        raise NotFound("未找到要并入的热点", code="not_found")
    await session.execute(
        update(HotspotCase)
        .where(col(HotspotCase.hotspot_id).in_([src.id, dst.id]))
        .values(pinned=True)
    )
    centre = _centre(dst)
    await _absorb(session, dst, centre, src, now)
    _store_centre(dst, centre)
    await session.flush()
    return dst


# ---------------------------------------------------------------------------------------
# Reading


@dataclass(slots=True)
class Listing:
    hotspot: Hotspot
    category_name: str | None
    recent: int  # cases in the last 14 days


async def list_hotspots(
    session: AsyncSession,
    principal: Principal,
    *,
    min_cases: int,
    category_id: int | None,
    region_id: int | None,
    sort: str,
    limit: int,
    offset: int,
    now: datetime,
) -> tuple[list[Listing], int]:
    paths = await scope_paths(session, principal)
    recent_since = now - timedelta(days=14)
    recent = (
        select(func.count())
        .where(
            HotspotCase.hotspot_id == Hotspot.id,
            col(HotspotCase.created_at) >= recent_since,
        )
        .correlate(Hotspot)
        .scalar_subquery()
    )
    conditions: list[ColumnElement[bool]] = [
        col(Hotspot.status) == HotspotStatus.active.value,
        col(Hotspot.case_count) >= min_cases,
        visible(paths),
    ]
    if category_id is not None:
        conditions.append(col(Hotspot.category_id) == category_id)
    if region_id is not None:
        region_path = (
            await session.execute(select(Region.path).where(Region.id == region_id))
        ).scalar_one_or_none()
        if region_path is None:
            return [], 0
        conditions.append(
            exists().where(
                HotspotCase.hotspot_id == Hotspot.id,
                col(HotspotCase.region_path).startswith(region_path),
            )
        )
    order = {
        "size": (desc(col(Hotspot.case_count)), desc(col(Hotspot.id))),
        "recent": (desc(col(Hotspot.last_case_at)), desc(col(Hotspot.id))),
        "growth": (desc(recent), desc(col(Hotspot.case_count)), desc(col(Hotspot.id))),
    }[sort]
    total = (
        await session.execute(select(func.count()).select_from(Hotspot).where(*conditions))
    ).scalar_one()
    rows = await session.execute(
        select(Hotspot, CaseCategory.name, recent.label("recent"))
        .outerjoin(CaseCategory, col(CaseCategory.id) == Hotspot.category_id)
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return [Listing(h, name, int(n or 0)) for h, name, n in rows.all()], int(total)


@dataclass(slots=True)
class Detail:
    hotspot: Hotspot
    weekly: list[tuple[date, int]]
    points: list[tuple[int, float, float]]
    categories: list[tuple[int, str, int]]
    units: list[tuple[int, str, int]]
    regions: list[tuple[int, str, int]]
    representatives: list[dict[str, Any]]
    cases: list[dict[str, Any]]


WEEKS = 8
MAX_POINTS = 500
MAX_LISTED = 200


def week_start(moment: datetime) -> date:
    day = moment.astimezone(SHANGHAI).date()
    return day - timedelta(days=day.weekday())


async def detail(
    session: AsyncSession, hotspot: Hotspot, paths: list[str] | None, now: datetime
) -> Detail:
    rows = (
        await session.execute(
            select(HotspotCase, Case)
            .join(Case, col(Case.id) == HotspotCase.case_id)
            .where(HotspotCase.hotspot_id == hotspot.id)
            .order_by(desc(col(HotspotCase.created_at)))
        )
    ).all()
    this_week = week_start(now)
    weeks = [this_week - timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]
    per_week: Counter[date] = Counter(week_start(hc.created_at) for hc, _ in rows)
    categories: Counter[int] = Counter(c.category_id for _, c in rows)
    units: Counter[int] = Counter(c.lead_unit_id for _, c in rows if c.lead_unit_id)
    regions: Counter[int] = Counter(c.region_id for _, c in rows)
    names = await _names(session, categories, units, regions)
    centre = _centre(hotspot)
    centre_vector = Vector(centre.trimmed())
    norm = math.sqrt(sum(w * w for w in centre_vector.weights.values())) or 1.0
    ranked = sorted(rows, key=lambda r: -_vector(r[0].terms).cosine(centre_vector) / norm)
    representatives = [
        {
            "case_id": c.id,
            "number": c.number,
            "title": mask_text(c.title),
            "excerpt": (mask_text(c.content) or "")[:140],
            "region_name": names["region"].get(c.region_id),
            "created_at": c.created_at,
        }
        for hc, c in ranked[:3]
    ]
    listed = [
        {
            "id": c.id,
            "number": c.number,
            "title": mask_text(c.title),
            "status": c.status,
            "region_id": c.region_id,
            "created_at": c.created_at,
            "pinned": hc.pinned,
        }
        for hc, c in rows
        if _path_in(hc.region_path, paths)
    ][:MAX_LISTED]
    return Detail(
        hotspot=hotspot,
        weekly=[(w, per_week.get(w, 0)) for w in weeks],
        points=[
            (c.id, hc.latitude, hc.longitude)  # type: ignore[misc]
            for hc, c in rows
            if hc.latitude is not None and hc.longitude is not None
        ][:MAX_POINTS],
        categories=[(k, names["category"].get(k, ""), n) for k, n in categories.most_common()],
        units=[(k, names["unit"].get(k, ""), n) for k, n in units.most_common()],
        regions=[(k, names["region"].get(k, ""), n) for k, n in regions.most_common()],
        representatives=representatives,
        cases=listed,
    )


async def _names(
    session: AsyncSession,
    categories: Iterable[int],
    units: Iterable[int],
    regions: Iterable[int],
) -> dict[str, dict[int, str]]:
    return {
        "category": await names_by_id(session, CaseCategory, categories),
        "unit": await names_by_id(session, Unit, units),
        "region": await names_by_id(session, Region, regions),
    }


async def hotspot_case_ids(session: AsyncSession, hotspot_id: int) -> list[int]:
    """The cases of a hotspot (following a merge), for drafting a suggestion from it."""
    hotspot = await session.get(Hotspot, hotspot_id)
    seen = set()
    while hotspot is not None and hotspot.merged_into_id is not None and hotspot.id not in seen:
        seen.add(hotspot.id)
        hotspot = await session.get(Hotspot, hotspot.merged_into_id)
    if hotspot is None:
        return []
    rows = await session.execute(
        select(HotspotCase.case_id)
        .where(HotspotCase.hotspot_id == hotspot.id)
        .order_by(col(HotspotCase.case_id))
    )
    return list(rows.scalars())


# ---------------------------------------------------------------------------------------
# Text matches (the duplicate hint)


@dataclass(frozen=True, slots=True)
class TextMatch:
    case_id: int
    score: float


async def text_matches(
    session: AsyncSession,
    *,
    title: str,
    content: str,
    category_id: int,
    region_id: int,
    latitude: float | None,
    longitude: float | None,
    at: datetime,
    settings: Settings,
    exclude_case_id: int | None = None,
) -> list[TextMatch]:
    """Grouped cases that read like the given report (the grouping's own score: text, place,
    category, within the window), best first. Used for "someone already reported this"."""
    tuning = tuning_of(settings)
    counts = term_counts(title, content)
    df = await _load_df(session, set(counts))
    docs = df.pop(DOCS_TERM, 0)
    if exclude_case_id is None:  # a report not stored yet counts as grouping would count it
        df = {t: df.get(t, 0) + 1 for t in counts}
        docs += 1
    item = Item(
        case_id=exclude_case_id or 0,
        vector=weigh(counts, df, docs),
        category_id=category_id,
        region_id=region_id,
        day=day_of(at),
        latitude=latitude,
        longitude=longitude,
    )
    found = [c for c in await candidates(session, item, tuning) if c.case_id != exclude_case_id]
    scored = [TextMatch(c.case_id, round(score(item, c, tuning), 3)) for c in found]
    return sorted(
        (m for m in scored if m.score >= tuning.threshold), key=lambda m: (-m.score, -m.case_id)
    )
