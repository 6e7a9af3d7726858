"""Errors of the identity domain, each with its HTTP status and stable `code`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.clock import SHANGHAI, utcnow
from app.core.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    Conflict,
    Forbidden,
    Problem,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
    _title,
)
from app.core.times import api_time

# Logins and tokens.


class InvalidWeChatCode(Unauthenticated):
    code, detail = "invalid_wechat_code", "微信登录凭证无效或已使用，请重新登录"


class WeChatLoginBlocked(Forbidden):
    code, detail = "wechat_login_blocked", "微信判定当前账号存在风险，暂时无法登录"


class WeChatUnavailableError(ServiceUnavailable):
    code, detail = "wechat_unavailable", "微信服务暂时不可用，请稍后再试"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class InvalidCredentials(Unauthenticated):
    code, detail = "invalid_credentials", "用户名或密码错误"


class AccountLocked(AppError):
    """423 Locked: too many failed password logins. Carries `locked_until` (ISO 8601)."""

    status, code, detail = 423, "account_locked", "登录失败次数过多，账号已暂时锁定"

    def __init__(self, locked_until: datetime) -> None:
        seconds = max(1, int((locked_until - utcnow()).total_seconds()) + 1)
        local = locked_until.astimezone(SHANGHAI).strftime("%H:%M")
        super().__init__(
            f"登录失败次数过多，账号已锁定，请于 {local} 后再试",
            headers={"Retry-After": str(seconds)},
            locked_until=api_time(locked_until),
        )


class AccountDisabled(Forbidden):
    code, detail = "account_disabled", "账号已停用，请联系管理员"


class InvalidRefreshToken(Unauthenticated):
    code, detail = "invalid_refresh_token", "登录已失效，请重新登录"


class RefreshTokenExpired(Unauthenticated):
    code, detail = "refresh_token_expired", "登录已过期，请重新登录"


class RefreshTokenRevoked(Unauthenticated):
    code, detail = "refresh_token_revoked", "登录已失效，请重新登录"


class RefreshTokenReused(Unauthenticated):
    code, detail = "refresh_token_reused", "登录凭证已被使用过，为安全起见请重新登录"


# Accounts.


class UsernameTaken(Conflict):
    code, detail = "username_taken", "该用户名已被使用"


class SelfLockout(Conflict):
    code, detail = "cannot_modify_own_access", "不能停用自己的账号或取消自己的管理员身份"


class NotPasswordAccount(ValidationFailed):
    code, detail = "not_password_account", "微信登录的账号没有密码、区域或单位可修改"


class NicknameRejected(ValidationFailed):
    code, detail = "content_rejected", "昵称未通过内容安全检测，请换一个"


def field_invalid(field: str, message: str, detail: str | None = None) -> ValidationFailed:
    """A 422 naming one body field, shaped like FastAPI's own validation errors."""
    return ValidationFailed(
        detail or "提交的内容不符合要求",
        errors=[{"field": f"body.{field}", "message": message, "type": "value_error"}],
    )


# Phone and deputy binding.


class InvalidPhoneCode(ValidationFailed):
    code, detail = "invalid_phone_code", "手机号授权凭证无效或已使用，请重新授权"


class InvalidBindingCode(ValidationFailed):
    code, detail = "invalid_binding_code", "绑定码无效，请核对后重新输入"


class BindingCodeExpired(ValidationFailed):
    code, detail = "binding_code_expired", "绑定码已过期，请联系工作人员重新获取"


class BindingCodeUsed(Conflict):
    code, detail = "binding_code_used", "绑定码已被使用，请联系工作人员重新获取"


class DeputyAlreadyBound(Conflict):
    code, detail = "deputy_already_bound", "该代表身份已绑定其他微信账号"


class AccountAlreadyBound(Conflict):
    code, detail = "account_already_bound", "当前账号已绑定代表身份"


class DeputyInactive(Conflict):
    code, detail = "deputy_inactive", "该代表已不在名册中，无法绑定"


class PhoneNotVerified(ValidationFailed):
    code, detail = "phone_not_verified", "请先验证手机号"


class NoDeputyMatch(ValidationFailed):
    code, detail = "no_deputy_match", "未找到与该手机号对应的代表，请使用绑定码"


class AmbiguousDeputyMatch(Conflict):
    code, detail = "ambiguous_deputy_match", "该手机号对应多位代表，请使用绑定码绑定"


class BindingOnlyForResidents(Forbidden):
    code, detail = "forbidden", "工作人员账号不能绑定代表身份"


def documented(*errors: type[AppError] | int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problems an endpoint answers, one example per code.

    Takes error classes (their status, code and detail become the examples) or bare statuses.
    """
    by_status: dict[int, dict[str, Any]] = {}
    for error in errors:
        if isinstance(error, int):
            status, code, detail = error, _generic_code(error), _generic_detail(error)
        else:
            status, code, detail = error.status, error.code, error.detail
        example = {
            "type": "about:blank",
            "title": _title(status),
            "status": status,
            "code": code,
            "detail": detail,
        }
        if code == "account_locked":
            example["locked_until"] = "2026-11-22T16:15:00+08:00"
        by_status.setdefault(status, {})[code] = {"value": example}
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"examples": examples}},
        }
        for status, examples in by_status.items()
    }


_GENERIC = {
    401: ("unauthenticated", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "未找到该资源"),
    422: ("validation_error", "提交的内容不符合要求"),
}


def _generic_code(status: int) -> str:
    return _GENERIC.get(status, ("error", ""))[0]


def _generic_detail(status: int) -> str:
    return _GENERIC.get(status, ("", _title(status)))[1]
