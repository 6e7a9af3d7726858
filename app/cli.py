"""Operations: `python -m app.cli create-admin|seed-demo|worker`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from app.core.config import get_settings
from app.core.db import Database
from app.core.logging import configure_logging
from app.core.security import Role, hash_password
from app.identity.models import User


async def create_admin(username: str, password: str) -> str:
    db = Database(get_settings())
    try:
        async with db.transaction() as session:
            existing = (
                await session.execute(select(User).where(User.username == username))
            ).scalar_one_or_none()
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


async def seed_demo() -> str:
    from app.demo import seed_demo_district

    db = Database(get_settings())
    try:
        return await seed_demo_district(db)
    finally:
        await db.dispose()


async def run_worker(once: bool) -> str:
    from app.notify.worker import run_worker_forever

    db = Database(get_settings())
    try:
        await run_worker_forever(db, get_settings(), once=once)
        return "worker stopped"
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    admin = commands.add_parser("create-admin", help="create (or reset) an admin account")
    admin.add_argument("username")
    admin.add_argument("--password", help="prompted for when omitted")

    commands.add_parser("seed-demo", help="seed a demo district (idempotent)")

    worker = commands.add_parser("worker", help="deliver notifications and run sweeps")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")

    args = parser.parse_args(argv)
    configure_logging(get_settings().log_level, get_settings().effective_log_format)
    job: Callable[[], Awaitable[str]]
    if args.command == "create-admin":
        password = args.password or getpass.getpass("password: ")
        if len(password) < 8:
            print("password must have at least 8 characters", file=sys.stderr)
            return 2
        job = lambda: create_admin(args.username, password)  # noqa: E731
    elif args.command == "seed-demo":
        job = seed_demo
    else:
        job = lambda: run_worker(args.once)  # noqa: E731
    print(asyncio.run(job()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
