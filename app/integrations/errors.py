"""Errors of the integrations domain (codes listed in miniprogram_api_docs/errors.md)."""

from __future__ import annotations

from app.core.errors import AppError, Forbidden, Unauthenticated


class InvalidApiKey(Unauthenticated):
    code, detail = "invalid_api_key", "API 密钥无效、已吊销或已过期"


class IpNotAllowed(Forbidden):
    code, detail = "ip_not_allowed", "调用来源地址不在该接入系统的允许范围内"


class KeyNotAllowedHere(Forbidden):
    code, detail = "key_not_allowed", "API 密钥不能调用该接口"


class InsufficientScope(Forbidden):
    code, detail = "insufficient_scope", "API 密钥没有该接口所需的权限范围"


class WebhookUrlRejected(AppError):
    status, code, detail = 422, "webhook_url_rejected", "回调地址不可用"
