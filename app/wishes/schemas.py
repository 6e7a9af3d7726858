"""Request and response shapes of the wishes API."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.attachments.schemas import AttachmentPublic
from app.core.times import Timestamp
from app.core.types import Id
from app.wishes.models import ContentCheck, WishStatus

MAX_PHOTOS = 9

# A row id: positive and within a 32-bit INTEGER, so no database is asked about 10**30.


def _strip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


# Optional free text: surrounding blanks removed, a blank answer counts as none.
OptionalText = Annotated[str | None, AfterValidator(_strip)]


class BeneficiaryIn(BaseModel):
    """For whom the wish is (private: masked for everyone but the owner, the claiming
    deputy and staff)."""

    name: str = Field(min_length=1, max_length=50, examples=["王小明"])
    phone: str | None = Field(
        default=None, pattern=r"^\+?[0-9][0-9 -]{4,19}$", examples=["13812345678"]
    )
    address: OptionalText = Field(default=None, max_length=255, examples=["幸福路12号3栋201"])
    description: OptionalText = Field(
        default=None, max_length=500, examples=["8岁，父母在外务工，和奶奶一起生活"]
    )

    @field_validator("name", mode="after")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value


class WishCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "想要一个新书包",
                    "content": "孩子的书包背了三年已经破了，开学前想换一个新的。",
                    "beneficiary": {
                        "name": "王小明",
                        "phone": "13812345678",
                        "address": "幸福路12号3栋201",
                        "description": "8岁，父母在外务工，和奶奶一起生活",
                    },
                    "station_id": 3,
                    "attachment_ids": [41, 42],
                }
            ]
        }
    )

    title: str = Field(min_length=2, max_length=50, description="What is wished for")
    content: str = Field(min_length=5, max_length=1000, description="Why")
    beneficiary: BeneficiaryIn
    station_id: Id | None = Field(default=None, description="Station that takes it on")
    region_id: Id | None = Field(default=None, description="Community, when no station is named")
    attachment_ids: list[Id] = Field(
        default_factory=list, max_length=MAX_PHOTOS, description="Own uploads from /attachments"
    )

    @field_validator("title", "content", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if len(stripped) < 2:
            raise ValueError("must not be blank")
        return stripped

    @model_validator(mode="after")
    def _where(self) -> WishCreate:
        if self.station_id is None and self.region_id is None:
            raise ValueError("station_id or region_id is required")
        return self


class WishReview(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"approve": True},
                {"approve": False, "reason": "心愿内容涉及现金资助，请修改为具体物品后重新提交"},
            ]
        }
    )

    approve: bool
    reason: OptionalText = Field(default=None, max_length=500, description="Required to reject")

    @model_validator(mode="after")
    def _reason_to_reject(self) -> WishReview:
        if not self.approve and not self.reason:
            raise ValueError("reason is required to reject a wish")
        return self


class WishRelease(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "近期外出学习，无法按时完成，请其他代表认领"}]}
    )

    reason: str = Field(min_length=2, max_length=500)


class WishFulfil(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"note": "已于周六将新书包送到孩子家中。", "attachment_ids": [57, 58]}]
        }
    )

    note: str = Field(
        min_length=2, max_length=1000, description="Required: what was done, 2–1000 characters"
    )
    attachment_ids: list[Id] = Field(
        default_factory=list,
        max_length=MAX_PHOTOS,
        description="Optional photos: ids from `POST /attachments` uploaded by the claiming "
        "deputy and not linked to anything yet, at most `WISH_MAX_ATTACHMENTS` (9); any other "
        "id fails the whole step with 422 `invalid_attachment` and nothing changes",
    )


class WishConfirm(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"thanks": "谢谢李代表，孩子很喜欢！", "rating": 5}]}
    )

    thanks: OptionalText = Field(default=None, max_length=500)
    rating: int | None = Field(default=None, ge=1, le=5)


class WishWithdraw(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "问题已自行解决"}]})

    reason: OptionalText = Field(default=None, max_length=500)


class Beneficiary(BaseModel):
    name: str | None = Field(examples=["王**"])
    phone: str | None = Field(examples=["138****5678"])
    address: str | None = Field(examples=["幸福路12号****"])
    description: str | None = Field(description="Withheld (null) when masked")
    masked: bool = Field(description="True when the caller sees masked values")


class ClaimingDeputy(BaseModel):
    """The deputy holding the claim: public, as deputies show who they are (亮身份)."""

    deputy_id: int = Field(examples=[7], description="The roster deputy (`GET /deputies/{id}`)")
    name: str | None = Field(examples=["李明"], description="The deputy's name on the roster")


class WishEventPublic(BaseModel):
    action: str = Field(examples=["claim"])
    label: str = Field(examples=["代表认领"])
    from_status: WishStatus | None
    to_status: WishStatus
    actor_id: int | None = Field(description="null for the system (sweeps)")
    actor_role: str = Field(examples=["deputy"])
    note: str | None
    created_at: Timestamp


class WishPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "status": "published",
                    "status_text": "待认领",
                    "title": "想要一个新书包",
                    "content": "孩子的书包背了三年已经破了，开学前想换一个新的。",
                    "beneficiary": {
                        "name": "王**",
                        "phone": "138****5678",
                        "address": "幸福路12号****",
                        "description": None,
                        "masked": True,
                    },
                    "region_id": 9,
                    "region_name": "幸福社区",
                    "station_id": 3,
                    "station_name": "幸福社区代表联络站",
                    "claimed_by": None,
                    "photos": [
                        {
                            "id": 41,
                            "url": "/api/v1/attachments/41",
                            "width": 1080,
                            "height": 1440,
                            "content_type": "image/jpeg",
                            "size": 183245,
                        }
                    ],
                    "fulfilment_photos": [],
                    "actions": ["claim"],
                    "version": 2,
                    "created_at": "2026-11-20T17:30:00+08:00",
                    "published_at": "2026-11-20T18:02:11+08:00",
                }
            ]
        }
    )

    id: int
    status: WishStatus
    status_text: str
    title: str
    content: str
    beneficiary: Beneficiary
    region_id: int
    region_name: str | None = None
    station_id: int | None = None
    station_name: str | None = None
    claimed_by: ClaimingDeputy | None = Field(
        default=None,
        description="An object `{deputy_id, name}` while a deputy holds the wish (claimed, "
        "fulfilled, completed), for everyone who sees the wish; null before a claim and after "
        "a release",
    )
    reject_reason: str | None = Field(default=None, description="Owner and staff only")
    fulfil_note: str | None = None
    thanks: str | None = None
    rating: int | None = None
    content_check: ContentCheck | None = Field(
        default=None, description="Staff only: passed / review / unchecked"
    )
    needs_attention: bool | None = Field(
        default=None,
        description="Staff only: the content check asked for review or could not run",
    )
    photos: list[AttachmentPublic] = Field(default_factory=list)
    fulfilment_photos: list[AttachmentPublic] = Field(default_factory=list)
    actions: list[str] = Field(
        default_factory=list, description="Steps the caller may take now, e.g. claim, confirm"
    )
    version: int
    created_at: Timestamp
    published_at: Timestamp | None = None
    claimed_at: Timestamp | None = None
    fulfilled_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class WishDetail(WishPublic):
    timeline: list[WishEventPublic] | None = Field(
        default=None, description="Owner, claiming deputy and staff only"
    )
