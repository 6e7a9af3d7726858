"""Errors of the presence domain."""

from __future__ import annotations

from app.core.errors import AppError


class InvalidQr(AppError):
    status, code, detail = 422, "invalid_qr", "二维码无效或已过期，请重新扫描站点二维码"


class OutOfRange(AppError):
    status, code, detail = 422, "out_of_range", "您不在站点签到范围内，请到站点后再扫码签到"


class NotCheckedIn(AppError):
    status, code, detail = 409, "not_checked_in", "请先在站点扫码签到后再登记接待"


class CaseAlreadyAttached(AppError):
    status, code, detail = 409, "reception_has_case", "该接待记录已转为案件"


class WeChatFailed(AppError):
    status, code, detail = 502, "wechat_error", "微信服务返回错误，请稍后再试"
