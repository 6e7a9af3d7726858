"""A demo district for the quick start: regions, stations of every kind, units, deputies and
a staff account, deputy groups, activities (one held with its attendance, one open for
sign-ups), a report to the voters and a draft law open for comment. Idempotent: a second run
changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.activities.models import (
    Activity,
    ActivityAttendance,
    ActivityInvitation,
    AttendanceSource,
    AttendanceStatus,
    LeaveStatus,
    RsvpAnswer,
)
from app.consultations.models import Consultation, ConsultationStatus
from app.core.clock import SHANGHAI, local_now, utcnow
from app.core.db import Database
from app.core.security import Role, hash_password
from app.groups.models import DeputyGroup, DeputyGroupMember, GroupKind, GroupRole
from app.identity.models import Deputy, DeputyLevel, DeputyStation, User
from app.org.models import QrMode, Region, RegionLevel, Station, StationKind, Unit, UnitKind
from app.reports.models import DeputyReport, ReportStatus

DEMO_DISTRICT = "示范区"
STAFF_USERNAME = "staff"
STAFF_PASSWORD = "staff-demo-2026"  # noqa: S105 - printed for the demo on purpose
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-demo-2026"  # noqa: S105

STREETS = {
    "东湖街道": ["翠苑社区", "文华社区"],
    "西溪镇": ["桃源村", "青石社区"],
}

STATIONS = [
    # (kind, name, street/community, address, lat, lng, qr_mode)
    (
        StationKind.home,
        "东湖街道人大代表之家",
        "东湖街道",
        "东湖路100号",
        30.2741,
        120.1551,
        QrMode.printed,
    ),
    (
        StationKind.station,
        "翠苑社区代表联络站",
        "翠苑社区",
        "翠苑一区12幢",
        30.2802,
        120.1320,
        QrMode.both,
    ),
    (
        StationKind.station,
        "文华社区代表联络站",
        "文华社区",
        "文华路58号",
        30.2890,
        120.1405,
        QrMode.printed,
    ),
    (
        StationKind.station,
        "桃源村代表联络站",
        "桃源村",
        "桃源村村委会二楼",
        30.2101,
        120.0502,
        QrMode.printed,
    ),
    (
        StationKind.office,
        "王建国代表工作室",
        "青石社区",
        "青石路3号",
        30.2205,
        120.0611,
        QrMode.rotating,
    ),
    (
        StationKind.legislative_point,
        "西溪镇基层立法联系点",
        "西溪镇",
        "西溪镇政府一楼",
        30.2150,
        120.0555,
        QrMode.printed,
    ),
]

UNITS = [
    ("区住房和城乡建设局", UnitKind.government),
    ("区城市管理局", UnitKind.government),
    ("区教育局", UnitKind.government),
    ("区民政局", UnitKind.government),
    ("东湖街道办事处", UnitKind.street_office),
    ("西溪镇人民政府", UnitKind.street_office),
    ("区人民法院", UnitKind.court),
]

DEPUTIES = [
    # (name, level, title, phone, station name)
    ("王建国", DeputyLevel.district, "翠苑社区党委书记", "13800000001", "翠苑社区代表联络站"),
    ("李秀英", DeputyLevel.city, "区人民医院护士长", "13800000002", "翠苑社区代表联络站"),
    ("张伟", DeputyLevel.district, "文华中学教师", "13800000003", "文华社区代表联络站"),
    ("刘芳", DeputyLevel.township, "桃源村村民委员会主任", "13800000004", "桃源村代表联络站"),
    ("陈明", DeputyLevel.provincial, "某科技公司工程师", "13800000005", "东湖街道人大代表之家"),
    ("赵丽", DeputyLevel.district, "社区卫生服务中心医生", "13800000006", "王建国代表工作室"),
]


async def seed_demo_district(db: Database) -> str:
    await seed_demo_case_categories(db)
    async with db.transaction() as session:
        existing = (
            await session.execute(
                select(Region).where(Region.name == DEMO_DISTRICT, Region.parent_id.is_(None))
            )  # type: ignore[union-attr]
        ).scalar_one_or_none()
        if existing is not None:
            return _credentials("demo district already seeded")

        district = Region(name=DEMO_DISTRICT, level=RegionLevel.district)
        session.add(district)
        await session.flush()
        district.path = f"/{district.id}/"
        regions = {DEMO_DISTRICT: district}
        for street_name, communities in STREETS.items():
            street = Region(name=street_name, level=RegionLevel.street, parent_id=district.id)
            session.add(street)
            await session.flush()
            street.path = f"{district.path}{street.id}/"
            regions[street_name] = street
            for community_name in communities:
                community = Region(
                    name=community_name, level=RegionLevel.community, parent_id=street.id
                )
                session.add(community)
                await session.flush()
                community.path = f"{street.path}{community.id}/"
                regions[community_name] = community

        stations: dict[str, Station] = {}
        for kind, name, region_name, address, lat, lng, qr_mode in STATIONS:
            station = Station(
                kind=kind,
                name=name,
                region_id=regions[region_name].id,  # type: ignore[arg-type]
                address=address,
                latitude=lat,
                longitude=lng,
                radius_m=300,
                phone="0571-88000000",
                opening_hours="周一至周五 9:00-17:00",
                qr_mode=qr_mode,
            )
            session.add(station)
            stations[name] = station
        for unit_name, unit_kind in UNITS:
            session.add(Unit(name=unit_name, kind=unit_kind, region_id=district.id))
        await session.flush()

        deputies: dict[str, Deputy] = {}
        for name, deputy_level, title, phone, station_name in DEPUTIES:
            station = stations[station_name]
            deputy = Deputy(
                name=name,
                level=deputy_level,
                title=title,
                phone=phone,
                region_id=station.region_id,
                term="第十八届",
            )
            session.add(deputy)
            await session.flush()
            deputies[name] = deputy
            session.add(DeputyStation(deputy_id=deputy.id, station_id=station.id))  # type: ignore[arg-type]

        staff = User(
            role=Role.staff,
            username=STAFF_USERNAME,
            nickname="示范区人大工作人员",
            password_hash=await hash_password(STAFF_PASSWORD),
            region_id=district.id,
        )
        session.add(staff)
        await session.flush()
        assert staff.id is not None
        await _seed_participation(session, regions, stations, deputies, staff.id)
        admin = User(
            role=Role.admin,
            username=ADMIN_USERNAME,
            nickname="系统管理员",
            password_hash=await hash_password(ADMIN_PASSWORD),
        )
        session.add(admin)
        await session.flush()
        await _seed_demo_integrator(session, admin.id)
    return _credentials("demo district seeded")


DEMO_INTEGRATOR = "示范区12345市民服务热线"


async def _seed_demo_integrator(session: AsyncSession, admin_id: int | None) -> None:
    """One integrator (the district's 12345 hotline) without a key: keys are shown only when
    issued, so the admin issues one (POST /api/v1/integrators/{id}/keys) to try the API."""
    from app.integrations.models import Integrator

    account = User(role=Role.staff, nickname=DEMO_INTEGRATOR, is_active=True)
    session.add(account)
    await session.flush()
    account.username = f"integrator-{account.id}"
    session.add(
        Integrator(
            name=DEMO_INTEGRATOR,
            contact_name="热线值班室",
            contact_phone="12345",
            user_id=account.id,
            created_by_id=admin_id,
        )
    )


async def _seed_participation(
    session: AsyncSession,
    regions: dict[str, Region],
    stations: dict[str, Station],
    deputies: dict[str, Deputy],
    staff_id: int,
) -> None:
    """Groups, a held and an upcoming activity, a report, a draft open for comment."""
    ids = {name: d.id for name, d in deputies.items()}
    groups: dict[str, DeputyGroup] = {}
    for name, kind, region, members in (
        ("东湖街道代表小组", GroupKind.area, "东湖街道", ["王建国", "李秀英", "张伟", "陈明"]),
        ("西溪镇代表小组", GroupKind.area, "西溪镇", ["刘芳", "赵丽"]),
        ("医疗卫生界代表小组", GroupKind.sector, DEMO_DISTRICT, ["李秀英", "赵丽"]),
    ):
        group = DeputyGroup(name=name, kind=kind, region_id=regions[region].id)  # type: ignore[arg-type]
        session.add(group)
        await session.flush()
        groups[name] = group
        for n, member in enumerate(members):
            role = GroupRole.leader if n == 0 else GroupRole.member
            session.add(DeputyGroupMember(group_id=group.id, deputy_id=ids[member], role=role))  # type: ignore[arg-type]

    now = utcnow()
    today = local_now().replace(hour=9, minute=30, second=0, microsecond=0)
    held_at = today - timedelta(days=7)
    held_station = stations["翠苑社区代表联络站"]
    held = Activity(
        kind="inspection",
        title="老旧小区加装电梯集中视察",
        content="东湖街道代表小组实地查看翠苑一区加装电梯进展，听取居民意见。",
        starts_at=held_at,
        ends_at=held_at + timedelta(hours=3),
        region_id=held_station.region_id,
        station_id=held_station.id,
        group_id=groups["东湖街道代表小组"].id,
        address=held_station.address,
        latitude=held_station.latitude,
        longitude=held_station.longitude,
        radius_m=held_station.radius_m,
        organiser="东湖街道人大工委",
        minutes="4 名代表受邀，3 名到场，1 名请假；收集意见 5 条，现场转办 2 件。",
        minutes_at=held_at + timedelta(hours=4),
        created_by_user_id=staff_id,
    )
    session.add(held)
    await session.flush()
    for name, answer, status in (
        ("王建国", RsvpAnswer.yes, AttendanceStatus.present),
        ("李秀英", RsvpAnswer.yes, AttendanceStatus.present),
        ("张伟", RsvpAnswer.leave, None),
        ("陈明", RsvpAnswer.yes, AttendanceStatus.present),
    ):
        session.add(
            ActivityInvitation(
                activity_id=held.id,  # type: ignore[arg-type]
                deputy_id=ids[name],  # type: ignore[arg-type]
                answer=answer,
                reason="外出培训" if answer is RsvpAnswer.leave else None,
                leave_status=LeaveStatus.approved if answer is RsvpAnswer.leave else None,
                answered_at=held_at - timedelta(days=2),
            )
        )
        if status is not None:
            session.add(
                ActivityAttendance(
                    activity_id=held.id,  # type: ignore[arg-type]
                    deputy_id=ids[name],  # type: ignore[arg-type]
                    status=status,
                    source=AttendanceSource.scan,
                    checked_in_at=held_at - timedelta(minutes=10),
                    latitude=held_station.latitude,
                    longitude=held_station.longitude,
                    accuracy_m=20.0,
                    distance_m=15.0,
                )
            )
    day = today + timedelta(days=10)
    home = stations["东湖街道人大代表之家"]
    upcoming = Activity(
        kind="reception_day",
        title="代表接待选民日",
        content="区人大代表在人大代表之家接待选民，欢迎报名反映问题、提出建议。",
        starts_at=day,
        ends_at=day + timedelta(hours=3),
        region_id=home.region_id,
        station_id=home.id,
        group_id=groups["东湖街道代表小组"].id,
        address=home.address,
        latitude=home.latitude,
        longitude=home.longitude,
        radius_m=home.radius_m,
        organiser="东湖街道人大工委",
        is_public=True,
        signup_enabled=True,
        capacity=30,
        signup_deadline=day - timedelta(days=1),
        created_by_user_id=staff_id,
    )
    session.add(upcoming)
    await session.flush()
    for name in ("王建国", "李秀英", "张伟", "陈明"):
        session.add(ActivityInvitation(activity_id=upcoming.id, deputy_id=ids[name]))  # type: ignore[arg-type]

    session.add(
        DeputyReport(
            deputy_id=ids["王建国"],  # type: ignore[arg-type]
            year=today.year,
            term="第十八届",
            title=f"王建国代表{today.year}年度述职报告",
            content="一年来，本人参加视察调研 6 次，进站接待选民 42 人次，提出建议 5 件……",
            region_id=held_station.region_id,
            station_ids=[held_station.id],  # type: ignore[list-item]
            status=ReportStatus.published,
            published_at=now,
            created_by_user_id=staff_id,
        )
    )
    point = stations["西溪镇基层立法联系点"]
    session.add(
        Consultation(
            title="示范市物业管理条例（修订草案征求意见稿）",
            issuing_body="示范市人大常委会法制工作委员会",
            summary="本次修订重点完善业主大会制度、物业服务收费和老旧小区物业管理。",
            articles=[
                {
                    "no": 1,
                    "title": "立法目的",
                    "text": "为了规范物业管理活动，维护业主和物业服务人的合法权益，制定本条例。",
                },
                {
                    "no": 2,
                    "title": "适用范围",
                    "text": "本市行政区域内的物业管理活动，适用本条例。",
                },
                {"no": 3, "title": "业主大会", "text": "一个物业管理区域成立一个业主大会。"},
            ],
            region_id=point.region_id,
            station_ids=[point.id],  # type: ignore[list-item]
            opens_at=now - timedelta(days=7),
            closes_at=(today + timedelta(days=23)).replace(hour=23, minute=59).astimezone(SHANGHAI),
            status=ConsultationStatus.published,
            published_at=now - timedelta(days=7),
            created_by_user_id=staff_id,
        )
    )
    await session.flush()


def _credentials(headline: str) -> str:
    return (
        f"{headline}: {DEMO_DISTRICT} with {len(STATIONS)} stations, {len(UNITS)} units, "
        f"{len(DEPUTIES)} deputies\n"
        f"  staff login: {STAFF_USERNAME} / {STAFF_PASSWORD}\n"
        f"  admin login: {ADMIN_USERNAME} / {ADMIN_PASSWORD}\n"
        '  residents: POST /api/v1/auth/dev-login {"openid": "any-id"} (development mode)\n'
        f"  integrator: {DEMO_INTEGRATOR} (issue it a key as admin: "
        "POST /api/v1/integrators/{id}/keys)"
    )


async def seed_demo_case_categories(db: Database) -> int:
    """The default case categories (问题类别) with their deadline days; idempotent by code."""
    from app.cases.seed import seed_case_categories

    async with db.transaction() as session:
        return await seed_case_categories(session)


# Demo cases come from the generated reports of app/hotspots/corpus.py whose places are the
# demo communities (same coordinates): corpus place index → community.
DEMO_CASE_PLACES = {0: "翠苑社区", 1: "文华社区", 2: "桃源村"}
DEMO_DEPUTY_OPENID = "demo-deputy-wang-jianguo"


async def seed_demo_hotspots(db: Database) -> str:
    """Residents' cases at three demo communities, grouped into hotspots by the worker's own
    sweep, and one deputy's suggestion drafted from the largest hotspot and registered, so a
    newcomer sees hotspots and a suggestion at once. Idempotent: skipped when any hotspot
    exists."""
    from datetime import timedelta

    from sqlalchemy import func

    from app.cases.models import Case, CaseCategory
    from app.core.clock import utcnow
    from app.core.security import Principal
    from app.hotspots import corpus
    from app.hotspots import service as hotspot_service
    from app.hotspots.models import Hotspot, HotspotCase
    from app.suggestions import service as suggestion_service

    settings = db.settings
    async with db.transaction() as session:
        if (await session.execute(select(func.count()).select_from(Hotspot))).scalar_one():
            return "demo hotspots already seeded"
        regions = {
            r.name: r
            for r in (
                await session.execute(
                    select(Region).where(col(Region.name).in_(list(DEMO_CASE_PLACES.values())))
                )
            ).scalars()
        }
        categories = {c.code: c.id for c in (await session.execute(select(CaseCategory))).scalars()}
        if len(regions) < len(DEMO_CASE_PLACES):
            return "demo hotspots skipped: the demo district is missing"
        reports = [r for r in corpus.generate(520, 7) if r.area in DEMO_CASE_PLACES][:80]
        now = utcnow()
        shift = now - max(r.created_at for r in reports) - timedelta(hours=2)
        residents = []
        for n in range(12):
            resident = User(
                role=Role.resident, openid=f"demo-resident-{n + 1}", nickname=f"居民{n + 1}"
            )
            session.add(resident)
            residents.append(resident)
        await session.flush()
        for n, report in enumerate(reports):
            created = report.created_at + shift
            case = Case(
                title=report.title,
                content=report.content,
                category_id=categories[report.category],
                region_id=regions[DEMO_CASE_PLACES[report.area]].id,  # type: ignore[arg-type]
                latitude=report.latitude,
                longitude=report.longitude,
                submitter_id=residents[n % len(residents)].id,  # type: ignore[arg-type]
                owner_id=residents[n % len(residents)].id,
                created_at=created,
            )
            session.add(case)
            await session.flush()
            case.number = f"{created.astimezone(SHANGHAI):%Y%m%d}-{case.id:04d}"
        await session.flush()
    while True:
        async with db.transaction() as session:
            if not await hotspot_service.group_pending(session, utcnow(), settings):
                break
    async with db.transaction() as session:
        deputy = (await session.execute(select(Deputy).where(Deputy.name == "王建国"))).scalar_one()
        user = (
            await session.execute(
                select(User).where(
                    (User.deputy_id == deputy.id) | (User.openid == DEMO_DEPUTY_OPENID)
                )
            )
        ).scalar_one_or_none()
        if user is None:
            user = User(
                role=Role.deputy, openid=DEMO_DEPUTY_OPENID, nickname="王建国", deputy_id=deputy.id
            )
            session.add(user)
            await session.flush()
        staff = (
            await session.execute(select(User).where(User.username == STAFF_USERNAME))
        ).scalar_one()
        paths = [regions["翠苑社区"].path]
        hotspot = (
            await session.execute(
                select(Hotspot)
                .join(HotspotCase, col(HotspotCase.hotspot_id) == Hotspot.id)
                .where(col(HotspotCase.region_path).startswith(paths[0]))
                .order_by(col(Hotspot.case_count).desc(), col(Hotspot.id))
                .limit(1)
            )
        ).scalar_one()
        as_deputy = Principal(user_id=user.id, role=Role.deputy, deputy_id=deputy.id)  # type: ignore[arg-type]
        suggestion = await suggestion_service.create_draft(
            session, as_deputy, hotspot_id=hotspot.id, case_ids=None, co_signer_ids=[], now=utcnow()
        )
        access = await suggestion_service.load_access(session, as_deputy, suggestion.id)  # type: ignore[arg-type]
        await suggestion_service.submit(session, access, utcnow())
        as_staff = Principal(user_id=staff.id, role=Role.staff, region_id=staff.region_id)  # type: ignore[arg-type]
        access = await suggestion_service.load_access(session, as_staff, suggestion.id)  # type: ignore[arg-type]
        await suggestion_service.register(session, access, "示范数据", utcnow())
        count = (
            await session.execute(
                select(func.count()).select_from(Hotspot).where(col(Hotspot.case_count) >= 2)
            )
        ).scalar_one()
    return (
        f"demo hotspots seeded: {len(reports)} cases, {count} hotspots of 2+ cases, "
        f"suggestion {suggestion.number} by 王建国 (openid {DEMO_DEPUTY_OPENID} for dev-login)"
    )
