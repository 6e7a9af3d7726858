"""Operations: `python -m app.cli check|migrate|create-admin|seed-demo|worker`.

Every command works on a freshly migrated, empty database. Settings that cannot be used and
a database that cannot be reached are reported in one sentence (exit status 2 and 1), not
with a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

import app.models  # noqa: F401  (every table, so foreign keys resolve)
from app.core.config import ConfigError, Settings, get_settings
from app.core.db import Database, unavailable_message
from app.core.logging import configure_logging
from app.core.security import Role, hash_password
from app.identity.models import User

# alembic.ini and migrations/ sit in the working directory (the container image's /srv) or
# next to the app package (a source checkout).
_ALEMBIC_INI_PLACES = (
    Path.cwd() / "alembic.ini",
    Path(__file__).resolve().parents[1] / "alembic.ini",
)


async def create_admin(settings: Settings, username: str, password: str) -> str:
    db = Database(settings)
    try:
        async with db.transaction() as session:
            existing = await session.scalar(select(User).where(User.username == username))
            if existing is not None:
                existing.password_hash = await hash_password(password)
                existing.role = Role.admin
                existing.is_active = True
                existing.failed_login_count = 0
                existing.locked_until = None
                return f"admin {username} updated"
            session.add(
                User(
                    role=Role.admin, username=username, password_hash=await hash_password(password)
                )
            )
        return f"admin {username} created"
    finally:
        await db.dispose()


async def seed_demo(settings: Settings) -> str:
    from app.demo import seed_demo_district, seed_demo_hotspots

    db = Database(settings)
    try:
        district = await seed_demo_district(db)
        return f"{district}\n{await seed_demo_hotspots(db)}"
    finally:
        await db.dispose()


async def run_worker(settings: Settings, once: bool) -> str:
    from app.notify.worker import run_worker_forever

    db = Database(settings)
    try:
        await run_worker_forever(db, settings, once=once)
        return "worker stopped"
    finally:
        await db.dispose()


async def regroup_hotspots(settings: Settings) -> str:
    from app.core.clock import utcnow
    from app.hotspots import service as hotspot_service

    db = Database(settings)
    try:
        async with db.transaction() as session:
            result = await hotspot_service.regroup(session, settings, utcnow())
        return (
            f"regrouped {result.cases} cases of the last {settings.hotspot_window_days} days "
            f"into {result.hotspots} groups ({result.moved} moved) in {result.seconds:.1f} s"
        )
    finally:
        await db.dispose()


def migrate(config_path: Path | None) -> str:
    """`alembic upgrade head`; migrations/env.py holds a PostgreSQL advisory lock meanwhile,
    so replicas or jobs started together migrate one after the other."""
    from alembic import command
    from alembic.config import Config

    path = config_path or next((p for p in _ALEMBIC_INI_PLACES if p.is_file()), None)
    if path is None or not path.is_file():
        raise ConfigError(
            "alembic.ini not found; run from the folder that holds alembic.ini and migrations/ "
            "or pass --config"
        )
    command.upgrade(Config(str(path)), "head")
    return "database at the latest migration"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser(
        "migrate", help="upgrade the database to the latest migration (safe to run concurrently)"
    )
    migrate_cmd.add_argument("--config", type=Path, help="alembic.ini (default: found)")

    commands.add_parser(
        "check",
        help="refuse (exit 2, one sentence) the settings the API and worker would refuse",
    )

    admin = commands.add_parser("create-admin", help="create (or reset) an admin account")
    admin.add_argument("username")
    admin.add_argument("--password", help="prompted for when omitted")

    commands.add_parser("seed-demo", help="seed a demo district (idempotent)")

    commands.add_parser(
        "regroup-hotspots",
        help="decide the hotspots of the window's cases again (keeps what staff split or merged)",
    )

    worker = commands.add_parser("worker", help="deliver notifications and run sweeps")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    return parser


def _job(args: argparse.Namespace, settings: Settings) -> Callable[[], Awaitable[str]] | None:
    if args.command == "create-admin":
        password = args.password or getpass.getpass("password: ")
        if len(password) < 8:
            raise ConfigError("the password must have at least 8 characters")
        return lambda: create_admin(settings, args.username, password)
    if args.command == "seed-demo":
        return lambda: seed_demo(settings)
    if args.command == "regroup-hotspots":
        return lambda: regroup_hotspots(settings)
    if args.command == "worker":
        from app.startup import refuse_unsafe_production

        refuse_unsafe_production(settings)
        return lambda: run_worker(settings, args.once)
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = get_settings()
        configure_logging(settings.log_level, settings.effective_log_format)
        if args.command == "migrate":
            print(migrate(args.config))
            return 0
        if args.command == "check":
            from app.startup import refuse_unsafe_production

            refuse_unsafe_production(settings)
            print(f"settings can run the service ({settings.app_env})")
            return 0
        job = _job(args, settings)
        assert job is not None
        print(asyncio.run(job()))
        return 0
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        message = unavailable_message(settings, exc) if settings is not None else None
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
