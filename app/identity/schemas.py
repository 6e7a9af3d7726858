"""Request and response bodies of logins, tokens, profiles and accounts."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.clock import utcnow
from app.core.masking import mask_phone
from app.core.security import Role
from app.core.times import Timestamp
from app.core.types import Id
from app.identity.models import Deputy, User

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$"

# Roles an admin creates with a password; residents and deputies come through WeChat.
PasswordRole = Literal["staff", "unit", "admin"]

_SAMPLE_TIME = "2026-11-22T16:00:00+08:00"


def _strip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


# Logins.


class WeChatLoginRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "0a3Xyz000abcDE1FgH2"}]})

    code: str = Field(min_length=1, max_length=128, description="`res.code` from wx.login()")


class DevLoginRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"openid": "dev-resident-1", "nickname": "测试居民"}]}
    )

    openid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    nickname: str | None = Field(default=None, max_length=64)


class PasswordLoginRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "staff", "password": "staff-demo-2026"}]}
    )

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"refresh_token": "Vt3x0m2kq9c7Y1Hh0bV2Qp6cZ8uFzA4e5rT1wX9yL0s"}]
        }
    )

    refresh_token: str = Field(min_length=1, max_length=200)


# Profiles.


class DeputyBrief(BaseModel):
    id: int = Field(examples=[7])
    name: str = Field(examples=["王建国"])


class MePublic(BaseModel):
    """The caller's own account. The phone is shown in full: it is the owner's."""

    id: int = Field(examples=[42])
    role: Role = Field(examples=["resident"])
    username: str | None = Field(default=None, examples=[None])
    nickname: str | None = Field(default=None, examples=["小李"])
    avatar_url: str | None = Field(default=None, examples=["https://example.com/avatar/42.png"])
    phone: str | None = Field(default=None, examples=["13800138000"])
    phone_verified_at: Timestamp | None = Field(default=None, examples=[_SAMPLE_TIME])
    region_id: int | None = Field(default=None, examples=[None])
    unit_id: int | None = Field(default=None, examples=[None])
    deputy_id: int | None = Field(default=None, examples=[None])
    deputy: DeputyBrief | None = None
    created_at: Timestamp = Field(examples=[_SAMPLE_TIME])
    last_login_at: Timestamp | None = Field(default=None, examples=[_SAMPLE_TIME])

    @classmethod
    def of(cls, user: User, deputy: Deputy | None = None) -> MePublic:
        assert user.id is not None
        return cls(
            id=user.id,
            role=Role(user.role),
            username=user.username,
            nickname=user.nickname,
            avatar_url=user.avatar_url,
            phone=user.phone,
            phone_verified_at=user.phone_verified_at,
            region_id=user.region_id,
            unit_id=user.unit_id,
            deputy_id=user.deputy_id,
            deputy=DeputyBrief(id=deputy.id, name=deputy.name)
            if deputy is not None and deputy.id is not None
            else None,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
        )


class MeUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"nickname": "小李", "avatar_url": "https://example.com/avatar/42.png"}]
        },
    )

    nickname: str | None = Field(default=None, min_length=1, max_length=64)
    avatar_url: AnyHttpUrl | None = Field(default=None, max_length=500)

    _strip_nickname = field_validator("nickname")(lambda v: _strip(v))


class TokenResponse(BaseModel):
    """Tokens for `Authorization: Bearer <access_token>`, and the account they belong to."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.sig",
                    "refresh_token": "Vt3x0m2kq9c7Y1Hh0bV2Qp6cZ8uFzA4e5rT1wX9yL0s",
                    "token_type": "bearer",
                    "expires_in": 1800,
                    "refresh_expires_in": 2592000,
                    "user": {
                        "id": 42,
                        "role": "resident",
                        "username": None,
                        "nickname": "小李",
                        "avatar_url": None,
                        "phone": None,
                        "phone_verified_at": None,
                        "region_id": None,
                        "unit_id": None,
                        "deputy_id": None,
                        "deputy": None,
                        "created_at": _SAMPLE_TIME,
                        "last_login_at": _SAMPLE_TIME,
                    },
                }
            ]
        }
    )

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")
    user: MePublic


# Phone and deputy binding.


class PhoneVerifyRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"code": "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"}
            ]
        }
    )

    code: str = Field(
        min_length=1, max_length=256, description="`e.detail.code` from the getPhoneNumber button"
    )


class DeputyMatch(BaseModel):
    """The roster deputy whose phone equals the verified one, not yet bound to an account."""

    deputy_id: int = Field(examples=[7])
    name: str = Field(examples=["王建国"])


class PhoneVerifyResponse(BaseModel):
    phone: str = Field(examples=["13800138000"])
    phone_verified_at: Timestamp = Field(examples=[_SAMPLE_TIME])
    deputy_match: DeputyMatch | None = Field(
        default=None,
        description="Present when the phone matches exactly one unbound roster deputy and "
        "the account can bind: offer `POST /me/deputy-binding {use_verified_phone: true}`.",
    )


class DeputyBindingRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"binding_code": "7KQ4M2XD"}, {"use_verified_phone": True}]
        },
    )

    binding_code: str | None = Field(
        default=None, min_length=4, max_length=64, description="The one-time code staff issued"
    )
    use_verified_phone: bool = Field(
        default=False, description="Bind the roster deputy whose phone is the verified phone"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> DeputyBindingRequest:
        if (self.binding_code is None) == (not self.use_verified_phone):
            raise ValueError("give either binding_code or use_verified_phone: true")
        return self


# Accounts (admin).


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "dh-staff",
                    "password": "a-long-passphrase",
                    "role": "staff",
                    "region_id": 2,
                    "nickname": "东湖街道联络员",
                },
                {
                    "username": "jsj-handler",
                    "password": "another-passphrase",
                    "role": "unit",
                    "unit_id": 3,
                },
            ]
        },
    )

    username: str = Field(pattern=USERNAME_PATTERN, description="3–64 letters, digits, _.@-")
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    role: PasswordRole
    region_id: Id | None = Field(default=None, description="Required for staff")
    unit_id: Id | None = Field(default=None, description="Required for unit handlers")
    nickname: str | None = Field(default=None, max_length=64)

    _strip_nickname = field_validator("nickname")(lambda v: _strip(v))


class UserUpdate(BaseModel):
    """Any subset. A new password also clears a lockout and signs the account out everywhere."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"password": "a-new-passphrase"},
                {"is_active": False},
                {"role": "staff", "region_id": 4},
            ]
        },
    )

    password: str | None = Field(
        default=None, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )
    is_active: bool | None = None
    role: PasswordRole | None = None
    region_id: Id | None = None
    unit_id: Id | None = None
    nickname: str | None = Field(default=None, max_length=64)
    unlock: bool | None = Field(default=None, description="true clears a login lockout")

    _strip_nickname = field_validator("nickname")(lambda v: _strip(v))


class UserAdminPublic(BaseModel):
    """An account as admins see it: no password hash, the phone masked."""

    id: int = Field(examples=[5])
    role: Role = Field(examples=["staff"])
    username: str | None = Field(default=None, examples=["dh-staff"])
    nickname: str | None = Field(default=None, examples=["东湖街道联络员"])
    phone: str | None = Field(default=None, examples=["138****8000"])
    phone_verified: bool = Field(examples=[False])
    region_id: int | None = Field(default=None, examples=[2])
    unit_id: int | None = Field(default=None, examples=[None])
    deputy_id: int | None = Field(default=None, examples=[None])
    is_active: bool = Field(examples=[True])
    locked_until: Timestamp | None = Field(default=None, examples=[None])
    last_login_at: Timestamp | None = Field(default=None, examples=[_SAMPLE_TIME])
    created_at: Timestamp = Field(examples=[_SAMPLE_TIME])
    updated_at: Timestamp | None = Field(default=None, examples=[None])

    @classmethod
    def of(cls, user: User) -> UserAdminPublic:
        assert user.id is not None
        return cls(
            id=user.id,
            role=Role(user.role),
            username=user.username,
            nickname=user.nickname,
            phone=mask_phone(user.phone),
            phone_verified=user.phone_verified_at is not None,
            region_id=user.region_id,
            unit_id=user.unit_id,
            deputy_id=user.deputy_id,
            is_active=user.is_active,
            locked_until=user.locked_until
            if user.locked_until is not None and user.locked_until > utcnow()
            else None,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
