"""Display labels (msgids) for states, roles and metrics, shared by pages, e-mails and exports.

Kept free of Flask: callers translate with gettext at render time. Templates use the
`post_status_label`, `piece_status_label`, `role_label` and `metric_label` globals.
"""

from __future__ import annotations

from .errors import N_

POST_STATUS_LABELS: dict[str, str] = {
    "unscheduled": N_("Unscheduled"),
    "scheduled": N_("Scheduled"),
    "publishing": N_("Publishing now"),
    "published": N_("Published"),
    "retrying": N_("Retrying"),
    "failed": N_("Failed"),
    "unknown": N_("Unknown outcome"),
    "awaiting_staff": N_("Awaiting staff"),
    "missed": N_("Missed"),
    "cancelled": N_("Cancelled"),
}

# Bootstrap colour per post state, so every page shows a state the same way.
POST_STATUS_COLORS: dict[str, str] = {
    "unscheduled": "secondary",
    "scheduled": "primary",
    "publishing": "info",
    "published": "success",
    "retrying": "warning",
    "failed": "danger",
    "unknown": "danger",
    "awaiting_staff": "warning",
    "missed": "danger",
    "cancelled": "secondary",
}

PIECE_STATUS_LABELS: dict[str, str] = {
    "draft": N_("Draft"),
    "in_review": N_("In review"),
    "changes_requested": N_("Changes requested"),
    "approved": N_("Approved"),
}

PIECE_STATUS_COLORS: dict[str, str] = {
    "draft": "secondary",
    "in_review": "info",
    "changes_requested": "warning",
    "approved": "success",
}

ROLE_LABELS: dict[str, str] = {
    "viewer": N_("Viewer"),
    "editor": N_("Editor"),
    "approver": N_("Approver"),
    "admin": N_("Admin"),
}

ROLE_DESCRIPTIONS: dict[str, str] = {
    "viewer": N_("Sees the calendar, pieces, posts and analytics."),
    "editor": N_("Also writes pieces, schedules posts and submits them for review."),
    "approver": N_("Also approves pieces or requests changes."),
    "admin": N_("Also manages users, channels, audiences, styles and campaigns."),
}

METRIC_LABELS: dict[str, str] = {
    "reads": N_("Reads"),
    "likes": N_("Likes"),
    "comments": N_("Comments"),
    "shares": N_("Shares"),
    "clicks": N_("Clicks"),
    "engagement": N_("Engagement"),
}
