"""All models, imported here so Alembic and the app see the whole schema.

A new model module is added to the imports below; tests/test_wiring.py fails until it is.
"""

from .access_tokens import AccessToken
from .audit import AuditEvent
from .content import PIECE_STATES, ContentPiece, PieceRevision, Tag, piece_tags
from .feedback import (
    COMMENT_STATES,
    FEEDBACK_KINDS,
    KIND_METRIC,
    ChannelDailyStats,
    FeedbackEvent,
    FeedbackHookKey,
    MetricBucket,
    WebComment,
    WebLike,
)
from .posts import METRICS, POST_STATES, Post, PublishAttempt
from .recipients import Recipient
from .review import (
    Approval,
    AppSetting,
    Comment,
    ComplianceTerm,
    Notification,
    PostHold,
    ReviewLink,
)
from .scheduler import ChannelBucket, JobRun, SchedulerNode
from .taxonomy import Audience, Campaign, Channel, Style
from .users import ROLES, ApiToken, LoginFailure, User, role_rank

__all__ = [
    "AccessToken", "AuditEvent", "ContentPiece", "PieceRevision", "Tag", "piece_tags",
    "PIECE_STATES",
    "FeedbackEvent", "FEEDBACK_KINDS", "KIND_METRIC", "COMMENT_STATES", "FeedbackHookKey",
    "MetricBucket", "ChannelDailyStats", "WebComment", "WebLike", "Post", "PublishAttempt",
    "POST_STATES", "METRICS",
    "Audience", "Campaign", "Channel", "Style", "ApiToken", "LoginFailure", "User", "ROLES",
    "role_rank",
    "Recipient", "AppSetting", "Approval", "Comment", "ComplianceTerm", "Notification",
    "PostHold", "ReviewLink", "ChannelBucket", "JobRun", "SchedulerNode",
]

