"""All models, imported here so Alembic and the app see the whole schema."""

from .access_tokens import AccessToken
from .audit import AuditEvent
from .content import PIECE_STATES, ContentPiece, PieceRevision, Tag, piece_tags
from .feedback import (
    COMMENT_STATES,
    FEEDBACK_KINDS,
    KIND_METRIC,
    FeedbackEvent,
    FeedbackHookKey,
    MetricBucket,
    WebComment,
    WebLike,
)
from .posts import METRICS, POST_STATES, Post, PublishAttempt
from .taxonomy import Audience, Campaign, Channel, Style
from .users import ROLES, ApiToken, User, role_rank

__all__ = [
    "AccessToken", "AuditEvent", "ContentPiece", "PieceRevision", "Tag", "piece_tags",
    "PIECE_STATES",
    "FeedbackEvent", "FEEDBACK_KINDS", "KIND_METRIC", "COMMENT_STATES", "FeedbackHookKey",
    "MetricBucket", "WebComment", "WebLike", "Post", "PublishAttempt", "POST_STATES", "METRICS",
    "Audience", "Campaign", "Channel", "Style", "ApiToken", "User", "ROLES", "role_rank",
]


def _import_all_model_modules() -> None:
    """Import every module here so Alembic and the mapper see each table, even ones a
    feature adds without touching this file."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


_import_all_model_modules()
