"""Imports every table so that metadata (Alembic, tests) sees the whole schema."""

from app.activities.models import (  # noqa: F401
    Activity,
    ActivityAttendance,
    ActivityInvitation,
    ActivitySignup,
    AttendanceCorrection,
)
from app.attachments.models import Attachment  # noqa: F401
from app.cases.models import (  # noqa: F401
    Case,
    CaseCategory,
    CaseCoUnit,
    CaseEvent,
    CaseFollow,
    CaseSubmissionKey,
    RoutingRule,
)
from app.consultations.models import Consultation, ConsultationComment  # noqa: F401
from app.dashboard.models import ManualAct  # noqa: F401
from app.groups.models import DeputyGroup, DeputyGroupMember  # noqa: F401
from app.hotspots.models import (  # noqa: F401
    Hotspot,
    HotspotCase,
    HotspotExclusion,
    HotspotSignature,
    HotspotTerm,
)
from app.identity.models import (  # noqa: F401
    Deputy,
    DeputyBindingCode,
    DeputyStation,
    RefreshToken,
    User,
)
from app.integrations.models import (  # noqa: F401
    ApiKey,
    ApiKeyWindow,
    AuditLogEntry,
    Integrator,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from app.notify.models import (  # noqa: F401
    InboxMessage,
    Notification,
    Subscription,
    WorkerLease,
)
from app.org.models import Region, Station, Unit  # noqa: F401
from app.presence.models import CheckIn, DutyAssignment, DutySlot, Reception  # noqa: F401
from app.reports.models import DeputyReport, DeputyReportEvaluation  # noqa: F401
from app.suggestions.models import (  # noqa: F401, E402
    Suggestion,
    SuggestionCase,
    SuggestionConsultation,
    SuggestionCoSigner,
    SuggestionCoUnit,
    SuggestionCounter,
    SuggestionEvent,
    UnitAssessmentPublication,
)
from app.wechat.models import WeChatAccessToken  # noqa: F401
from app.wishes.models import Wish, WishClaimLock, WishEvent  # noqa: F401
