"""The rules of identity: logins, tokens, accounts, the verified phone and deputy binding.

Most functions take the request's session and only `flush()`. Three take the `Database`
instead and open their own short transactions, for reasons the transaction-per-request rule
cannot serve:

- `wechat_login` and `verify_phone` call WeChat first and write afterwards: no transaction
  (on SQLite: no write lock) is held while WeChat answers.
- `password_login` and `refresh_tokens` must keep what a failure wrote (the failure counter,
  a revoked token family) although the request then answers an error: they commit that and
  raise after the transaction has ended. Argon2 runs outside any transaction too.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database, UTCDateTime
from app.core.errors import NotFound, Unauthenticated
from app.core.pagination import Page, PageParams
from app.core.security import (
    Principal,
    Role,
    create_access_token,
    hash_password,
    new_secret_token,
    sha256_hex,
    verify_password,
)
from app.identity.errors import (
    AccountAlreadyBound,
    AccountDisabled,
    AccountLocked,
    AmbiguousDeputyMatch,
    BindingCodeExpired,
    BindingCodeUsed,
    BindingOnlyForResidents,
    DeputyAlreadyBound,
    DeputyInactive,
    InvalidBindingCode,
    InvalidCredentials,
    InvalidPhoneCode,
    InvalidRefreshToken,
    InvalidWeChatCode,
    NicknameRejected,
    NoDeputyMatch,
    NotPasswordAccount,
    PhoneNotVerified,
    RefreshTokenExpired,
    RefreshTokenReused,
    RefreshTokenRevoked,
    SelfLockout,
    UsernameTaken,
    WeChatLoginBlocked,
    WeChatUnavailableError,
    field_invalid,
)
from app.identity.models import Deputy, DeputyBindingCode, RefreshToken, User
from app.identity.schemas import (
    DeputyMatch,
    MePublic,
    MeUpdate,
    PhoneVerifyResponse,
    TokenResponse,
    UserAdminPublic,
    UserCreate,
    UserUpdate,
)
from app.org.models import Region, Unit
from app.wechat.gateway import WeChatGateway
from app.wechat.types import (
    CODE_USED,
    INVALID_CODE,
    WeChatAPIError,
    WeChatError,
    WeChatRateLimited,
)

logger = logging.getLogger("app.identity")

PASSWORD_ROLES = frozenset({Role.staff, Role.unit, Role.admin})
WECHAT_ROLES = frozenset({Role.resident, Role.deputy})
# msgSecCheck v2 scenes: 1 资料 (profile).
PROFILE_SEC_CHECK_SCENE = 1
# code2Session: "高风险等级用户，小程序登录拦截".
WECHAT_RISKY_USER = 40226


# Deputy binding codes (stored hashed; the roster issues them, /me/deputy-binding redeems them).

_BINDING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed
_BINDING_SEPARATORS = re.compile(r"[\s-]+")


def normalize_binding_code(code: str) -> str:
    """How a typed code is compared: case, spaces and dashes do not matter."""
    return _BINDING_SEPARATORS.sub("", code).upper()


def binding_code_hash(code: str) -> str:
    """The `DeputyBindingCode.code_hash` of a code (sha256 of its normalized form)."""
    return sha256_hex(normalize_binding_code(code))


def generate_binding_code(length: int = 8) -> str:
    """A new random code (32^8 ≈ 10^12 values) to give a deputy once; store only its hash."""
    return "".join(secrets.choice(_BINDING_ALPHABET) for _ in range(length))


# Tokens.


def principal_for(user: User) -> Principal:
    assert user.id is not None
    return Principal(
        user_id=user.id,
        role=Role(user.role),
        region_id=user.region_id,
        unit_id=user.unit_id,
        deputy_id=user.deputy_id,
    )


async def _deputy_of(session: AsyncSession, user: User) -> Deputy | None:
    if user.deputy_id is None:
        return None
    return await session.get(Deputy, user.deputy_id)


async def me_public(session: AsyncSession, user: User) -> MePublic:
    return MePublic.of(user, await _deputy_of(session, user))


async def issue_tokens(
    session: AsyncSession, settings: Settings, user: User, *, family_id: str | None = None
) -> TokenResponse:
    """A new access token and a new refresh token (of `family_id`, or of a new family)."""
    assert user.id is not None
    refresh = new_secret_token(32)
    ttl = timedelta(days=settings.refresh_token_ttl_days)
    session.add(
        RefreshToken(
            id=sha256_hex(refresh),
            user_id=user.id,
            family_id=family_id or uuid.uuid4().hex,
            expires_at=utcnow() + ttl,
        )
    )
    await session.flush()
    return TokenResponse(
        access_token=create_access_token(principal_for(user), settings),
        refresh_token=refresh,
        token_type="bearer",
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_in=int(ttl.total_seconds()),
        user=await me_public(session, user),
    )


async def revoke_refresh_tokens(session: AsyncSession, user_id: int) -> None:
    """Sign an account out everywhere (its access tokens still live until they expire)."""
    await session.execute(
        sa.update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


async def purge_refresh_tokens(session: AsyncSession, *, older_than_days: int = 7) -> int:
    """Delete refresh tokens that expired more than `older_than_days` ago (for a sweep)."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    result = await session.execute(
        sa.delete(RefreshToken).where(col(RefreshToken.expires_at) < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def refresh_tokens(db: Database, settings: Settings, token: str) -> TokenResponse:
    """Rotate: the presented token is spent and a new one of the same family is answered.

    A spent token presented again means it was copied: the whole family is revoked (the
    thief's and the owner's tokens alike) and the owner logs in again. Of two requests
    racing with one token, the conditional UPDATE lets exactly one through; the other is a
    reuse.
    """
    token_id = sha256_hex(token)
    now = utcnow()
    async with db.transaction() as session:
        row = await session.get(RefreshToken, token_id)
        if row is None:
            raise InvalidRefreshToken()
        if row.revoked_at is not None:
            raise RefreshTokenRevoked()
        if row.expires_at <= now:
            raise RefreshTokenExpired()
        if row.used_at is None:
            claimed = await session.execute(
                sa.update(RefreshToken)
                .where(
                    col(RefreshToken.id) == token_id,
                    col(RefreshToken.used_at).is_(None),
                    col(RefreshToken.revoked_at).is_(None),
                )
                .values(used_at=now)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                user = await session.get(User, row.user_id)
                if user is None or not user.is_active:
                    raise AccountDisabled()
                return await issue_tokens(session, settings, user, family_id=row.family_id)
        await session.execute(
            sa.update(RefreshToken)
            .where(
                col(RefreshToken.family_id) == row.family_id,
                col(RefreshToken.revoked_at).is_(None),
            )
            .values(revoked_at=now)
        )
    # Committed the revocation; now refuse.
    logger.warning("refresh token reuse: family of user %s revoked", row.user_id)
    raise RefreshTokenReused()


# WeChat and development logins.


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


async def _user_for_openid(
    session: AsyncSession, openid: str, *, unionid: str | None = None, nickname: str | None = None
) -> User:
    """Find or create the resident account of an openid. Two first logins racing create
    one account: INSERT … ON CONFLICT DO NOTHING, then read whichever row won."""
    user = (await session.execute(select(User).where(col(User.openid) == openid))).scalars().first()
    if user is None:
        await session.execute(
            _insert(session, User)
            .values(
                role=Role.resident.value,
                openid=openid,
                unionid=unionid,
                nickname=nickname,
                is_active=True,
                failed_login_count=0,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["openid"])
        )
        user = (await session.execute(select(User).where(col(User.openid) == openid))).scalar_one()
    elif unionid and user.unionid != unionid:
        user.unionid = unionid
    return user


async def _login_wechat_account(
    session: AsyncSession, settings: Settings, user: User
) -> TokenResponse:
    if not user.is_active:
        raise AccountDisabled()
    user.last_login_at = utcnow()
    return await issue_tokens(session, settings, user)


def _wechat_unavailable(exc: WeChatError) -> WeChatUnavailableError:
    logger.warning("WeChat call failed: %s errcode=%s", type(exc).__name__, exc.errcode)
    return WeChatUnavailableError(retry_after=30 if isinstance(exc, WeChatRateLimited) else 5)


async def wechat_login(
    db: Database, settings: Settings, gateway: WeChatGateway, code: str
) -> TokenResponse:
    """wx.login's code → code2Session → the account of that openid (created on first login).

    The session_key is dropped here: nothing in this service needs it, so it is neither
    stored, answered nor logged.
    """
    try:
        wx_session = await gateway.code_to_session(code)
    except WeChatAPIError as exc:
        if exc.errcode in (INVALID_CODE, CODE_USED):
            raise InvalidWeChatCode() from None
        if exc.errcode == WECHAT_RISKY_USER:
            raise WeChatLoginBlocked() from None
        raise _wechat_unavailable(exc) from None
    except WeChatError as exc:
        raise _wechat_unavailable(exc) from None
    openid, unionid = wx_session.openid, wx_session.unionid
    del wx_session
    async with db.transaction() as session:
        user = await _user_for_openid(session, openid, unionid=unionid)
        return await _login_wechat_account(session, settings, user)


async def dev_login(
    session: AsyncSession, settings: Settings, openid: str, nickname: str | None
) -> TokenResponse:
    """Development mode only (the router refuses it in production): log in as any openid."""
    user = await _user_for_openid(session, openid, nickname=nickname)
    if nickname and user.nickname != nickname:
        user.nickname = nickname
    return await _login_wechat_account(session, settings, user)


# Password logins.


async def check_password(
    db: Database,
    settings: Settings,
    username: str,
    password: str,
    roles: frozenset[Role] = PASSWORD_ROLES,
) -> User:
    """The active account of one of `roles` with this username and password, else
    `InvalidCredentials` (unknown usernames answer exactly like wrong passwords, and take as
    long), `AccountLocked` or `AccountDisabled`. A wrong password counts towards the lock:
    `login_max_failures` in a row lock the account for `login_lock_minutes`."""
    async with db.transaction(write=False) as session:
        user = (
            (await session.execute(select(User).where(col(User.username) == username)))
            .scalars()
            .first()
        )
    now = utcnow()
    if user is None or user.password_hash is None or Role(user.role) not in roles:
        await verify_password(password, None)
        raise InvalidCredentials()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(user.locked_until)
    if not await verify_password(password, user.password_hash):
        await _count_failure(db, settings, user.id)
    if not user.is_active:
        raise AccountDisabled()
    return user


async def password_login(
    db: Database, settings: Settings, username: str, password: str
) -> TokenResponse:
    """Staff, unit handlers and admins (see `check_password`)."""
    user = await check_password(db, settings, username, password)
    now = utcnow()
    async with db.transaction() as session:
        # Succeeds only while the account is not locked: a lock set by failures racing this
        # login wins.
        done = await session.execute(
            sa.update(User)
            .where(col(User.id) == user.id, _not_locked(now))
            .values(failed_login_count=0, locked_until=None, last_login_at=now)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise AccountLocked(await _locked_until(session, user.id, now))
        fresh = await session.get(User, user.id, populate_existing=True)
        assert fresh is not None
        return await issue_tokens(session, settings, fresh)


def _not_locked(now: Any) -> Any:
    return sa.or_(col(User.locked_until).is_(None), col(User.locked_until) <= now)


async def _locked_until(session: AsyncSession, user_id: int | None, now: Any) -> Any:
    locked = (
        await session.execute(sa.select(col(User.locked_until)).where(col(User.id) == user_id))
    ).scalar_one_or_none()
    return locked if locked is not None and locked > now else now + timedelta(seconds=1)


async def _count_failure(db: Database, settings: Settings, user_id: int | None) -> NoReturn:
    """One more failure, settled by one conditional UPDATE (failures racing each other count
    exactly): the `login_max_failures`-th sets the lock. A lock that has run out starts the
    count afresh. Always raises."""
    now = utcnow()
    lock_until = now + timedelta(minutes=settings.login_lock_minutes)
    # An expired lock left in the row means the previous run of failures is over.
    new_count = sa.case(
        (col(User.locked_until).is_not(None), 1), else_=col(User.failed_login_count) + 1
    )
    async with db.transaction() as session:
        row = (
            await session.execute(
                sa.update(User)
                .where(col(User.id) == user_id, _not_locked(now))
                .values(
                    failed_login_count=new_count,
                    locked_until=sa.case(
                        (
                            new_count >= settings.login_max_failures,
                            sa.literal(lock_until, UTCDateTime()),
                        ),
                        else_=sa.null(),
                    ),
                )
                .returning(col(User.failed_login_count), col(User.locked_until))
            )
        ).first()
        if row is None:  # locked by a failure racing this one
            locked = await _locked_until(session, user_id, now)
        else:
            locked = row.locked_until
    if locked is not None and locked > now:
        raise AccountLocked(locked)
    raise InvalidCredentials()


# Accounts (admin).


async def _check_scope(
    session: AsyncSession, role: Role, region_id: int | None, unit_id: int | None
) -> None:
    """Staff belong to a region, unit handlers to a unit, admins to neither."""
    if role == Role.staff:
        if region_id is None:
            raise field_invalid(
                "region_id", "staff accounts need a region", "工作人员账号必须指定所属区域"
            )
        if unit_id is not None:
            raise field_invalid(
                "unit_id", "staff accounts have no unit", "工作人员账号不能指定承办单位"
            )
    elif role == Role.unit:
        if unit_id is None:
            raise field_invalid(
                "unit_id", "unit accounts need a unit", "承办单位账号必须指定所属单位"
            )
        if region_id is not None:
            raise field_invalid(
                "region_id", "unit accounts have no region", "承办单位账号不能指定区域"
            )
    elif region_id is not None or unit_id is not None:
        raise field_invalid(
            "region_id" if region_id is not None else "unit_id",
            "admin accounts have neither region nor unit",
            "管理员账号不能指定区域或单位",
        )
    if region_id is not None and await session.get(Region, region_id) is None:
        raise field_invalid("region_id", "no such region", "所选区域不存在")
    if unit_id is not None and await session.get(Unit, unit_id) is None:
        raise field_invalid("unit_id", "no such unit", "所选承办单位不存在")


async def create_user(session: AsyncSession, data: UserCreate) -> UserAdminPublic:
    role = Role(data.role)
    await _check_scope(session, role, data.region_id, data.unit_id)
    if data.password == data.username:
        raise field_invalid("password", "password equals the username", "密码不能与用户名相同")
    exists = (
        await session.execute(sa.select(col(User.id)).where(col(User.username) == data.username))
    ).first()
    if exists is not None:
        raise UsernameTaken()
    user = User(
        role=role,
        username=data.username,
        password_hash=await hash_password(data.password),
        nickname=data.nickname,
        region_id=data.region_id,
        unit_id=data.unit_id,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # the same username created a moment ago
        raise UsernameTaken() from None
    return UserAdminPublic.of(user)


async def list_users(
    session: AsyncSession,
    page: PageParams,
    *,
    role: Role | None = None,
    region_id: int | None = None,
    unit_id: int | None = None,
    is_active: bool | None = None,
    q: str | None = None,
) -> Page[UserAdminPublic]:
    conditions: list[Any] = []
    if role is not None:
        conditions.append(col(User.role) == role.value)
    if region_id is not None:
        conditions.append(col(User.region_id) == region_id)
    if unit_id is not None:
        conditions.append(col(User.unit_id) == unit_id)
    if is_active is not None:
        conditions.append(col(User.is_active).is_(is_active))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            sa.or_(
                col(User.username).ilike(pattern, escape="\\"),
                col(User.nickname).ilike(pattern, escape="\\"),
            )
        )
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(User).where(*conditions))
    ).scalar_one()
    users = (
        (
            await session.execute(
                select(User)
                .where(*conditions)
                .order_by(col(User.id))
                .limit(page.limit)
                .offset(page.offset)
            )
        )
        .scalars()
        .all()
    )
    return Page[UserAdminPublic](items=[UserAdminPublic.of(u) for u in users], total=total)


async def update_user(
    session: AsyncSession, actor: Principal, user: User, data: UserUpdate
) -> UserAdminPublic:
    given = data.model_fields_set
    role = Role(user.role)
    if role in WECHAT_ROLES and given & {"password", "role", "region_id", "unit_id", "unlock"}:
        raise NotPasswordAccount()
    if user.id == actor.user_id and (
        data.is_active is False or (data.role is not None and data.role != Role.admin.value)
    ):
        raise SelfLockout()
    if role in PASSWORD_ROLES:
        new_role = Role(data.role) if data.role is not None else role
        region_id = data.region_id if "region_id" in given else user.region_id
        unit_id = data.unit_id if "unit_id" in given else user.unit_id
        # Moving an account to another role drops the scope the old role needed.
        if new_role != role:
            if "region_id" not in given and new_role != Role.staff:
                region_id = None
            if "unit_id" not in given and new_role != Role.unit:
                unit_id = None
        await _check_scope(session, new_role, region_id, unit_id)
        user.role, user.region_id, user.unit_id = new_role, region_id, unit_id
    if "nickname" in given:
        user.nickname = data.nickname
    sign_out = False
    if data.password is not None:
        if data.password == user.username:
            raise field_invalid("password", "password equals the username", "密码不能与用户名相同")
        user.password_hash = await hash_password(data.password)
        user.failed_login_count, user.locked_until = 0, None
        sign_out = True
    if data.unlock:
        user.failed_login_count, user.locked_until = 0, None
    if data.is_active is not None:
        sign_out = sign_out or (user.is_active and not data.is_active)
        user.is_active = data.is_active
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
    if sign_out:
        assert user.id is not None
        await revoke_refresh_tokens(session, user.id)
    return UserAdminPublic.of(user)


async def user_or_404(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("未找到该账号")
    return user


# Own profile.


async def active_user(session: AsyncSession, principal: Principal) -> User:
    """The caller's account row; a deleted or deactivated account is refused."""
    user = await session.get(User, principal.user_id)
    if user is None:
        raise Unauthenticated("登录已失效，请重新登录")
    if not user.is_active:
        raise AccountDisabled()
    return user


async def update_me(
    db: Database, gateway: WeChatGateway, principal: Principal, data: MeUpdate
) -> MePublic:
    """Nickname and avatar. A WeChat account's new nickname passes WeChat's content check
    (msgSecCheck, scene 1 = profile) first, with no transaction open while WeChat answers."""
    given = data.model_fields_set
    async with db.transaction(write=False) as session:
        openid = (await active_user(session, principal)).openid
    if "nickname" in given and data.nickname is not None and openid:
        await _check_nickname(gateway, openid, data.nickname)
    async with db.transaction() as session:
        user = await active_user(session, principal)
        if "nickname" in given:
            user.nickname = data.nickname
        if "avatar_url" in given:
            user.avatar_url = str(data.avatar_url) if data.avatar_url is not None else None
        user.updated_at = utcnow()
        session.add(user)
        await session.flush()
        return await me_public(session, user)


async def _check_nickname(gateway: WeChatGateway, openid: str, nickname: str) -> None:
    """Nicknames have no staff review behind them: `risky` and `review` are both refused.
    If WeChat cannot be asked, the nickname is taken (a name is low risk; admins can
    rename an account)."""
    try:
        result = await gateway.msg_sec_check(
            openid=openid, content=nickname, scene=PROFILE_SEC_CHECK_SCENE
        )
    except WeChatError as exc:
        logger.warning("nickname content check did not run: %s", type(exc).__name__)
        return
    if result.suggest != "pass":
        raise NicknameRejected()


# Verified phone.


def phone_variants(phone: str) -> list[str]:
    """The spellings a roster may hold for a mainland mobile number."""
    variants = [phone]
    if re.fullmatch(r"1\d{10}", phone):
        variants += [
            f"+86{phone}",
            f"86{phone}",
            f"+86 {phone}",
            f"{phone[:3]} {phone[3:7]} {phone[7:]}",
            f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
        ]
    return variants


async def _roster_deputies_with_phone(session: AsyncSession, phone: str) -> Sequence[Deputy]:
    return (
        (
            await session.execute(
                select(Deputy)
                .where(
                    col(Deputy.phone).in_(phone_variants(phone)), col(Deputy.is_active).is_(True)
                )
                .order_by(col(Deputy.id))
                .limit(3)
            )
        )
        .scalars()
        .all()
    )


async def _bound_user_id(session: AsyncSession, deputy_id: int | None) -> int | None:
    return (
        await session.execute(sa.select(col(User.id)).where(col(User.deputy_id) == deputy_id))
    ).scalar_one_or_none()


async def deputy_match_for_phone(session: AsyncSession, phone: str) -> Deputy | None:
    """The one active roster deputy with this phone, if exactly one and not yet bound."""
    deputies = await _roster_deputies_with_phone(session, phone)
    if len(deputies) != 1 or await _bound_user_id(session, deputies[0].id) is not None:
        return None
    return deputies[0]


async def verify_phone(
    db: Database, gateway: WeChatGateway, principal: Principal, code: str
) -> PhoneVerifyResponse:
    """getPhoneNumber's code → WeChat's verified number, stored on the account."""
    async with db.transaction(write=False) as session:
        await active_user(session, principal)  # a disabled account does not reach WeChat
    try:
        info = await gateway.get_phone_number(code)
    except WeChatAPIError as exc:
        if exc.errcode in (INVALID_CODE, CODE_USED):
            raise InvalidPhoneCode() from None
        raise _wechat_unavailable(exc) from None
    except WeChatError as exc:
        raise _wechat_unavailable(exc) from None
    phone = info.pure_phone_number if info.country_code in ("86", "") else info.phone_number
    async with db.transaction() as session:
        user = await active_user(session, principal)
        now = utcnow()
        user.phone, user.phone_verified_at, user.updated_at = phone, now, now
        session.add(user)
        await session.flush()
        match = None
        if Role(user.role) == Role.resident:
            deputy = await deputy_match_for_phone(session, phone)
            if deputy is not None and deputy.id is not None:
                match = DeputyMatch(deputy_id=deputy.id, name=deputy.name)
        return PhoneVerifyResponse(phone=phone, phone_verified_at=now, deputy_match=match)


# Deputy binding (代表身份绑定).


@dataclass(frozen=True, slots=True)
class _Redeemed:
    deputy: Deputy
    code_id: int | None


async def _redeem_code(session: AsyncSession, code: str, user_id: int) -> _Redeemed:
    now = utcnow()
    hashes = {binding_code_hash(code), sha256_hex(code.strip())}
    row = (
        (
            await session.execute(
                select(DeputyBindingCode).where(col(DeputyBindingCode.code_hash).in_(hashes))
            )
        )
        .scalars()
        .first()
    )
    if row is None:
        raise InvalidBindingCode()
    if row.used_at is not None:
        raise BindingCodeUsed()
    if row.expires_at <= now:
        raise BindingCodeExpired()
    deputy = await _bindable_deputy(session, row.deputy_id)
    # One redemption per code, whoever races for it.
    spent = await session.execute(
        sa.update(DeputyBindingCode)
        .where(
            col(DeputyBindingCode.id) == row.id,
            col(DeputyBindingCode.used_at).is_(None),
            col(DeputyBindingCode.expires_at) > now,
        )
        .values(used_at=now, used_by_user_id=user_id)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise BindingCodeUsed()
    return _Redeemed(deputy=deputy, code_id=row.id)


async def _bindable_deputy(session: AsyncSession, deputy_id: int) -> Deputy:
    deputy = await session.get(Deputy, deputy_id)
    if deputy is None or not deputy.is_active:
        raise DeputyInactive()
    if await _bound_user_id(session, deputy.id) is not None:
        raise DeputyAlreadyBound()
    return deputy


async def _deputy_by_verified_phone(session: AsyncSession, user: User) -> Deputy:
    if user.phone is None or user.phone_verified_at is None:
        raise PhoneNotVerified()
    deputies = await _roster_deputies_with_phone(session, user.phone)
    if not deputies:
        raise NoDeputyMatch()
    if len(deputies) > 1:
        raise AmbiguousDeputyMatch()
    return await _bindable_deputy(session, deputies[0].id)  # type: ignore[arg-type]


async def bind_deputy(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    binding_code: str | None,
    use_verified_phone: bool,
) -> TokenResponse:
    """A resident account becomes the account of a roster deputy, by a one-time code staff
    issued or by the phone WeChat verified. One account per deputy: the unique
    `user.deputy_id` settles two accounts racing for the same deputy."""
    if principal.role == Role.deputy:
        raise AccountAlreadyBound()
    if principal.role != Role.resident:
        raise BindingOnlyForResidents()
    user = await active_user(session, principal)
    if Role(user.role) != Role.resident or user.deputy_id is not None:
        raise AccountAlreadyBound()
    assert user.id is not None
    if binding_code is not None:
        deputy = (await _redeem_code(session, binding_code, user.id)).deputy
    else:
        assert use_verified_phone
        deputy = await _deputy_by_verified_phone(session, user)
    now = utcnow()
    try:
        bound = await session.execute(
            sa.update(User)
            .where(
                col(User.id) == user.id,
                col(User.role) == Role.resident.value,
                col(User.deputy_id).is_(None),
            )
            .values(role=Role.deputy.value, deputy_id=deputy.id, updated_at=now)
        )
    except IntegrityError:
        raise DeputyAlreadyBound() from None
    if bound.rowcount != 1:  # type: ignore[attr-defined]
        raise AccountAlreadyBound()
    await session.refresh(user)
    logger.info("user %s bound to deputy %s", user.id, deputy.id)
    return await issue_tokens(session, settings, user)
