"""HTTP endpoints of the identity domain: logins, tokens, own profile, accounts, binding."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from app.core.db import SessionDep
from app.core.deps import AdminPrincipal, CurrentPrincipal, SettingsDep
from app.core.errors import NotFound
from app.core.pagination import Page, PageDep
from app.core.security import Role
from app.core.types import Id
from app.identity import service
from app.identity.deps import CurrentUser, DatabaseDep, TargetUser, development_only
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
    documented,
)
from app.identity.schemas import (
    DeputyBindingRequest,
    DevLoginRequest,
    MePublic,
    MeUpdate,
    PasswordLoginRequest,
    PhoneVerifyRequest,
    PhoneVerifyResponse,
    RefreshRequest,
    TokenResponse,
    UserAdminPublic,
    UserCreate,
    UserUpdate,
    WeChatLoginRequest,
)
from app.wechat.deps import WeChatDep

router = APIRouter(tags=["identity"])

_Body = TypeVar("_Body", bound=BaseModel)


# Logins and tokens.


@router.post(
    "/auth/wechat-login",
    response_model=TokenResponse,
    summary="Log in with wx.login's code (residents and deputies)",
    responses=documented(
        InvalidWeChatCode, WeChatLoginBlocked, AccountDisabled, 422, WeChatUnavailableError
    ),
)
async def wechat_login(
    body: WeChatLoginRequest, db: DatabaseDep, settings: SettingsDep, wechat: WeChatDep
) -> TokenResponse:
    """Exchanges the code for the WeChat openid (code2Session) and answers tokens for that
    account, creating a resident account on the first login. A bound deputy gets the
    deputy role. The WeChat session_key never leaves the server."""
    return await service.wechat_login(db, settings, wechat, body.code)


@router.post(
    "/auth/dev-login",
    response_model=TokenResponse,
    summary="Log in as any openid (development mode only)",
    dependencies=[Depends(development_only)],
    responses=documented(AccountDisabled, NotFound, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DevLoginRequest.model_json_schema()}},
        }
    },
)
async def dev_login(request: Request, session: SessionDep, settings: SettingsDep) -> TokenResponse:
    """Stands in for WeChat while developing without it: the openid is taken on trust.
    In production this path does not exist (404 `not_found`, whatever the body)."""
    # The body is read here, after `development_only`, so that in production not even a
    # malformed body reveals the endpoint with a 422.
    body = await _parse_body(request, DevLoginRequest)
    return await service.dev_login(session, settings, body.openid, body.nickname)


async def _parse_body(request: Request, model: type[_Body]) -> _Body:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


@router.post(
    "/auth/password-login",
    response_model=TokenResponse,
    summary="Log in with a username and password (staff, unit handlers, admins)",
    responses=documented(InvalidCredentials, AccountDisabled, 422, AccountLocked),
)
async def password_login(
    body: PasswordLoginRequest, db: DatabaseDep, settings: SettingsDep
) -> TokenResponse:
    """Unknown usernames and wrong passwords answer the same 401 `invalid_credentials`.
    After `LOGIN_MAX_FAILURES` (5) wrong passwords in a row the account is locked for
    `LOGIN_LOCK_MINUTES` (15): 423 `account_locked` with `locked_until` and `Retry-After`."""
    return await service.password_login(db, settings, body.username, body.password)


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    summary="Exchange a refresh token for new tokens (rotation)",
    responses=documented(
        InvalidRefreshToken,
        RefreshTokenExpired,
        RefreshTokenReused,
        RefreshTokenRevoked,
        AccountDisabled,
        422,
    ),
)
async def refresh(body: RefreshRequest, db: DatabaseDep, settings: SettingsDep) -> TokenResponse:
    """Each refresh token works once and is replaced by the one answered. Presenting a spent
    one again (401 `refresh_token_reused`) signs that login out everywhere: log in again."""
    return await service.refresh_tokens(db, settings, body.refresh_token)


# Own profile.


@router.get(
    "/me",
    response_model=MePublic,
    summary="Own profile",
    responses=documented(401, AccountDisabled),
)
async def get_me(session: SessionDep, user: CurrentUser) -> MePublic:
    """The caller's account, with the phone in full (it is the caller's own)."""
    return await service.me_public(session, user)


@router.patch(
    "/me",
    response_model=MePublic,
    summary="Change own nickname or avatar",
    responses=documented(401, AccountDisabled, NicknameRejected, 422),
)
async def update_me(
    principal: CurrentPrincipal, body: MeUpdate, db: DatabaseDep, wechat: WeChatDep
) -> MePublic:
    """Send only what changes; `null` clears a field. A new nickname of a WeChat account
    must pass WeChat's content check (422 `content_rejected`)."""
    return await service.update_me(db, wechat, principal, body)


@router.post(
    "/me/phone",
    response_model=PhoneVerifyResponse,
    summary="Verify the phone number with a getPhoneNumber code",
    responses=documented(401, AccountDisabled, InvalidPhoneCode, WeChatUnavailableError),
)
async def verify_phone(
    body: PhoneVerifyRequest, principal: CurrentPrincipal, db: DatabaseDep, wechat: WeChatDep
) -> PhoneVerifyResponse:
    """WeChat tells the number behind the code; it is stored as the account's verified phone.
    For a resident whose number is on the deputy roster (one unbound deputy), the answer
    carries `deputy_match`, so the mini-program can offer `POST /me/deputy-binding`."""
    return await service.verify_phone(db, wechat, principal, body.code)


@router.post(
    "/me/deputy-binding",
    response_model=TokenResponse,
    summary="Bind the account to a roster deputy (代表身份绑定)",
    responses=documented(
        401,
        BindingOnlyForResidents,
        AccountDisabled,
        BindingCodeUsed,
        DeputyAlreadyBound,
        AccountAlreadyBound,
        AmbiguousDeputyMatch,
        DeputyInactive,
        InvalidBindingCode,
        BindingCodeExpired,
        PhoneNotVerified,
        NoDeputyMatch,
    ),
)
async def bind_deputy(
    body: DeputyBindingRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenResponse:
    """With `binding_code` (one-time, from staff) or `use_verified_phone: true` (after
    `POST /me/phone` found the number on the roster) a resident account becomes the deputy's
    account. Answers fresh tokens carrying the deputy role: replace the stored ones."""
    return await service.bind_deputy(
        session,
        settings,
        principal,
        binding_code=body.binding_code,
        use_verified_phone=body.use_verified_phone,
    )


# Accounts (admin).


@router.post(
    "/users",
    response_model=UserAdminPublic,
    status_code=201,
    summary="Create a staff, unit handler or admin account",
    responses=documented(401, 403, UsernameTaken, 422),
)
async def create_user(
    _admin: AdminPrincipal, body: UserCreate, session: SessionDep
) -> UserAdminPublic:
    """Staff need `region_id` (they see that region's subtree), unit handlers `unit_id`,
    admins neither. Passwords have at least 8 characters."""
    return await service.create_user(session, body)


@router.get(
    "/users",
    response_model=Page[UserAdminPublic],
    summary="List accounts",
    responses=documented(401, 403, 422),
)
async def list_users(
    _admin: AdminPrincipal,
    session: SessionDep,
    page: PageDep,
    role: Role | None = None,
    region_id: Annotated[Id | None, Query()] = None,
    unit_id: Annotated[Id | None, Query()] = None,
    is_active: bool | None = None,
    q: Annotated[
        str | None, Query(max_length=64, description="Part of the username or nickname")
    ] = None,
) -> Page[UserAdminPublic]:
    """Phones are masked; password hashes never leave the server."""
    return await service.list_users(
        session,
        page,
        role=role,
        region_id=region_id,
        unit_id=unit_id,
        is_active=is_active,
        q=q.strip() if q else None,
    )


@router.patch(
    "/users/{user_id}",
    response_model=UserAdminPublic,
    summary="Change an account: password, active, role, region, unit",
    responses=documented(401, 403, 404, SelfLockout, NotPasswordAccount),
)
async def update_user(
    admin: AdminPrincipal, user: TargetUser, body: UserUpdate, session: SessionDep
) -> UserAdminPublic:
    """A new password or deactivation signs the account out (its refresh tokens stop
    working; access tokens expire within `expires_in`). Admins cannot deactivate or demote
    themselves. WeChat accounts (residents, deputies) can only be (de)activated or renamed."""
    return await service.update_user(session, admin, user, body)


DEVELOPMENT_ONLY_PATHS = ("/auth/dev-login",)


def hide_development_endpoints(app: FastAPI, prefix: str) -> None:
    """Leave the development-only endpoints out of the OpenAPI document (for production:
    they answer 404 there, and the document should not list them either)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for path in DEVELOPMENT_ONLY_PATHS:
            schema.get("paths", {}).pop(prefix + path, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
