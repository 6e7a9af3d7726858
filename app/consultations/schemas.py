"""Request and response bodies of legislative consultations."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.attachments.schemas import AttachmentPublic
from app.consultations.models import ConsultationStatus, Outcome
from app.core.times import Timestamp
from app.core.types import MAX_ID, Id
from app.org.schemas import _Body

MAX_ARTICLES = 500


class Article(_Body):
    no: int = Field(ge=1, le=10_000, description="条: the article's number")
    title: str | None = Field(default=None, max_length=100)
    text: str = Field(min_length=1, max_length=10_000)


def _check_articles(articles: list[Article] | None) -> None:
    if articles is None:
        return
    numbers = [a.no for a in articles]
    if len(set(numbers)) != len(numbers):
        raise ValueError("article numbers must be unique")


def _check_ids(value: list[int] | None) -> list[int] | None:
    return None if value is None else list(dict.fromkeys(value))


_EXAMPLE: dict[str, Any] = {
    "title": "某市物业管理条例（修订草案征求意见稿）",
    "issuing_body": "市人大常委会法制工作委员会",
    "summary": "本次修订重点完善业主大会制度、物业服务收费……",
    "articles": [
        {"no": 1, "title": "立法目的", "text": "为了规范物业管理活动……制定本条例。"},
        {"no": 2, "text": "本条例适用于本市行政区域内的物业管理活动。"},
    ],
    "region_id": 1,
    "station_ids": [21],
    "opens_at": "2026-12-01T08:00:00+08:00",
    "closes_at": "2026-12-31T23:59:59+08:00",
    "attachment_ids": [61],
    "publish": True,
}


class ConsultationCreate(_Body):
    """`station_ids`: the legislative contact points (stations of kind `legislative_point`)
    it is put out at; empty means district-wide (the whole `region_id`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    title: str = Field(min_length=1, max_length=200)
    issuing_body: str = Field(min_length=1, max_length=100)
    summary: str | None = Field(default=None, max_length=5000)
    articles: list[Article] = Field(default_factory=list, max_length=MAX_ARTICLES)
    region_id: int = Field(ge=1, le=MAX_ID)
    station_ids: list[Id] = Field(default_factory=list, max_length=100)
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    attachment_ids: list[Id] = Field(default_factory=list, max_length=20)
    publish: bool = False

    @field_validator("station_ids", "attachment_ids")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        return _check_ids(value) or []

    @model_validator(mode="after")
    def _consistent(self) -> ConsultationCreate:
        _check_articles(self.articles)
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        if self.closes_at.year > 2199 or self.opens_at.year < 2000:
            raise ValueError("times are between 2000 and 2199")
        return self


class ConsultationUpdate(_Body):
    """Only the fields sent change; `articles` only while a draft. `status: published` opens
    it for comment at `opens_at`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "published"}, {"closes_at": "2027-01-15T23:59:59+08:00"}]
        }
    )

    title: str | None = Field(default=None, min_length=1, max_length=200)
    issuing_body: str | None = Field(default=None, min_length=1, max_length=100)
    summary: str | None = Field(default=None, max_length=5000)
    articles: list[Article] | None = Field(default=None, max_length=MAX_ARTICLES)
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None
    status: ConsultationStatus | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ConsultationUpdate:
        _check_articles(self.articles)
        for at in (self.opens_at, self.closes_at):
            if at is not None and not 2000 <= at.year <= 2199:
                raise ValueError("times are between 2000 and 2199")
        if self.status is not None and self.status is not ConsultationStatus.published:
            raise ValueError("status can only be set to published here")
        return self


class ConsultationPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "title": "某市物业管理条例（修订草案征求意见稿）",
                    "issuing_body": "市人大常委会法制工作委员会",
                    "summary": "本次修订重点完善业主大会制度……",
                    "region_id": 1,
                    "station_ids": [21],
                    "opens_at": "2026-12-01T08:00:00+08:00",
                    "closes_at": "2026-12-31T23:59:59+08:00",
                    "status": "published",
                    "is_open": True,
                    "published_at": "2026-11-30T10:00:00+08:00",
                    "outcomes_published_at": None,
                    "comments": 27,
                }
            ]
        }
    )

    id: int
    title: str
    issuing_body: str
    summary: str | None
    region_id: int
    station_ids: list[int]
    opens_at: Timestamp
    closes_at: Timestamp
    status: ConsultationStatus
    is_open: bool = Field(description="Published and inside its comment window now")
    published_at: Timestamp | None
    outcomes_published_at: Timestamp | None
    comments: int


class ConsultationDetail(ConsultationPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **{k: v for k, v in _EXAMPLE.items() if k not in ("attachment_ids", "publish")},
                    "id": 3,
                    "status": "published",
                    "is_open": True,
                    "published_at": "2026-11-30T10:00:00+08:00",
                    "outcomes_published_at": None,
                    "comments": 27,
                    "attachments": [],
                    "can_manage": False,
                    "my_comments": 1,
                }
            ]
        }
    )

    articles: list[Article]
    attachments: list[AttachmentPublic] = Field(default_factory=list)
    can_manage: bool = False
    my_comments: int = 0


class CommentCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"article_no": 12, "content": "建议明确维修资金的使用程序……", "station_id": 21},
                {"content": "整体赞成，建议增加对老旧小区的过渡条款"},
            ]
        }
    )

    article_no: int | None = Field(default=None, ge=1, le=10_000)
    content: str = Field(min_length=1, max_length=2000)
    station_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The contact point it came through"
    )


class CommentPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 101,
                    "consultation_id": 3,
                    "article_no": 12,
                    "content": "建议明确维修资金的使用程序……",
                    "station_id": 21,
                    "commenter": "张**",
                    "is_deputy": False,
                    "content_flag": None,
                    "outcome": "partly_adopted",
                    "outcome_note": "已在第十二条第二款吸收",
                    "created_at": "2026-12-05T11:00:00+08:00",
                }
            ]
        }
    )

    id: int
    consultation_id: int
    article_no: int | None
    content: str
    station_id: int | None
    commenter: str | None = Field(description="Nickname, masked (deputies by name)")
    is_deputy: bool
    content_flag: str | None
    outcome: Outcome | None
    outcome_note: str | None
    created_at: Timestamp


class OutcomeBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"outcome": "adopted", "note": "已在第十二条吸收"}]}
    )

    outcome: Outcome
    note: str | None = Field(default=None, max_length=1000)


class PublishResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "consultation_id": 3,
                    "commenters": 88,
                    "outcomes_published_at": "2027-01-10T10:00:00+08:00",
                }
            ]
        }
    )

    consultation_id: int
    commenters: int = Field(description="People told the outcome of their comments")
    outcomes_published_at: Timestamp


class ContactPointStats(BaseModel):
    station_id: int | None = Field(description="null: district-wide consultations")
    station_name: str
    drafts: int = Field(description="Drafts consulted (published in the year)")
    comments: int
    commenters: int
    adopted: int = Field(description="Comments adopted")
    partly_adopted: int


class ConsultationStats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2026,
                    "items": [
                        {
                            "station_id": 21,
                            "station_name": "江城街道基层立法联系点",
                            "drafts": 6,
                            "comments": 143,
                            "commenters": 88,
                            "adopted": 12,
                            "partly_adopted": 9,
                        }
                    ],
                }
            ]
        }
    )

    year: int
    items: list[ContactPointStats]
