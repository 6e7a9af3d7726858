"""A demo district for the quick start: regions, stations of every kind, units, deputies and
a staff account. Idempotent: a second run changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from app.core.db import Database
from app.core.security import Role, hash_password
from app.identity.models import Deputy, DeputyLevel, DeputyStation, User
from app.org.models import QrMode, Region, RegionLevel, Station, StationKind, Unit, UnitKind

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
            session.add(DeputyStation(deputy_id=deputy.id, station_id=station.id))  # type: ignore[arg-type]

        session.add(
            User(
                role=Role.staff,
                username=STAFF_USERNAME,
                nickname="示范区人大工作人员",
                password_hash=await hash_password(STAFF_PASSWORD),
                region_id=district.id,
            )
        )
        session.add(
            User(
                role=Role.admin,
                username=ADMIN_USERNAME,
                nickname="系统管理员",
                password_hash=await hash_password(ADMIN_PASSWORD),
            )
        )
    return _credentials("demo district seeded")


def _credentials(headline: str) -> str:
    return (
        f"{headline}: {DEMO_DISTRICT} with {len(STATIONS)} stations, {len(UNITS)} units, "
        f"{len(DEPUTIES)} deputies\n"
        f"  staff login: {STAFF_USERNAME} / {STAFF_PASSWORD}\n"
        f"  admin login: {ADMIN_USERNAME} / {ADMIN_PASSWORD}\n"
        '  residents: POST /api/v1/auth/dev-login {"openid": "any-id"} (development mode)'
    )


async def seed_demo_case_categories(db: Database) -> int:
    """The default case categories (问题类别) with their deadline days; idempotent by code."""
    from app.cases.seed import seed_case_categories

    async with db.transaction() as session:
        return await seed_case_categories(session)
