"""Errors of the activities domain."""

from __future__ import annotations

from app.core.errors import AppError


class ActivityFull(AppError):
    status, code, detail = 409, "activity_full", "报名人数已满"


class AlreadySignedUp(AppError):
    status, code, detail = 409, "already_signed_up", "您已报名该活动"


class NotSignedUp(AppError):
    status, code, detail = 404, "not_signed_up", "您未报名该活动"


class SignupClosed(AppError):
    status, code, detail = 422, "signup_closed", "该活动不接受报名或报名已截止"


class ActivityCancelled(AppError):
    status, code, detail = 409, "activity_cancelled", "该活动已取消"


class ActivityEnded(AppError):
    status, code, detail = 409, "activity_ended", "该活动已结束"


class ActivityNotOpen(AppError):
    status, code, detail = 422, "activity_not_open", "不在活动签到时间内"


class ActivityNotHeld(AppError):
    status, code, detail = 409, "activity_not_held", "活动开始后才能填写活动纪要"


class NotInvited(AppError):
    status, code, detail = 403, "not_invited", "您未受邀参加该活动"


class CapacityBelowSignups(AppError):
    status, code, detail = 409, "capacity_below_signups", "名额不能少于已报名人数"
