"""The API as a contract: one set of JSON Schemas (2020-12, the dialect of OpenAPI 3.1) that
every endpoint validates its request with, and the OpenAPI document built from the very same
schemas and Flask's URL map (`GET /api/v1/openapi.json`).

Each view carries an `Operation` (the `operation` decorator, placed under `api_role` so a
401/403 comes before a 422). The schemas check shape, types and limits; the services keep the
checks that need the database or a rule (does the audience exist, may the post move …).
Limits come from the services' constants, so the document cannot drift from what is enforced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from ..errors import N_, BadRequest, DomainError, ValidationError
from ..i18n import error_fields, translate
from ..jsonutil import MAX_DEPTH, request_json
from ..models import METRICS, PIECE_STATES, POST_STATES
from ..security import PUBLIC
from ..services import channels as channel_service
from ..services import content, postlist, review, taxonomy
from ..services.calendar import MAX_RANGE_DAYS
from ..services.feedback.ingest import MAX_BATCH

F = TypeVar("F", bound=Callable)
PREFIX = "/api/v1"
REF = "#/components/schemas/"

# --- building blocks ----------------------------------------------------------------------


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    return {**schema, "type": [kind, "null"] if isinstance(kind, str) else [*kind, "null"]}


def text(limit: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit, **extra}


def obj(properties: dict[str, Any], *, required: tuple[str, ...] = (), closed: bool = False,
        **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    return out


def array(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **extra}


def all_of(base: str, extra: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"allOf": [ref(base), obj(extra, required=required)]}


ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
# Ids a client sends: the API has always taken a digit string as well as a number (and an
# empty string for "none" where the id is optional), and users' scripts rely on that.
ID_IN = {"type": ["integer", "string"], "minimum": 1, "maximum": 2**31 - 1,
         "pattern": r"^\s*[0-9]{1,9}\s*$", "description": "integer (a digit string is "
         "accepted too)"}
ID_IN_OPTIONAL = {**ID_IN, "type": ["integer", "string", "null"],
                  "pattern": r"^\s*([0-9]{1,9})?\s*$"}
INT = {"type": "integer"}
WHEN = {"type": ["string", "null"], "format": "date-time"}
STRING = {"type": "string"}
NULL_STRING = {"type": ["string", "null"]}
MOMENT = text(64, description="ISO 8601 with a UTC offset, e.g. 2026-11-11T20:00:00+08:00")

# --- request bodies -------------------------------------------------------------------------

_PIECE_FIELDS: dict[str, Any] = {
    "title": text(content.MAX_TITLE),
    "body": text(content.MAX_BODY, description="Markdown"),
    "summary": nullable(text(content.MAX_SUMMARY)),
    "audience_id": ID_IN,
    "style_id": ID_IN,
    "campaign_id": ID_IN_OPTIONAL,
    "channel_ids": array(ID_IN, maxItems=content.MAX_CHANNELS,
                         description="At least one; each becomes a post"),
    # A list, or one comma-separated string as the form sends it (always accepted).
    "tags": {"type": ["array", "string"], "items": text(content.MAX_TAG),
             "maxItems": content.MAX_TAGS,
             "maxLength": content.MAX_TAGS * (content.MAX_TAG + 1)},
    "scheduled_at": nullable(MOMENT),
    "variants": {
        "type": "object",
        "description": "Per-channel title/body overrides, keyed by channel id",
        "propertyNames": {"pattern": r"^[0-9]{1,9}$"},
        "additionalProperties": nullable(obj({
            "title": nullable(text(content.MAX_TITLE)),
            "body": nullable(text(content.MAX_BODY)),
        }, closed=True)),
    },
}

_CHANNEL_FIELDS: dict[str, Any] = {
    "name": text(100),
    "kind": {"type": "string", "enum": sorted(channel_service.kinds())},
    "config": {"type": "object", "description": "Settings of the kind (DESIGN.md §6); "
                                                "secrets are write-only"},
    "color": nullable(text(7, pattern=channel_service.COLOR.pattern)),
    "timezone": nullable(text(64, description="IANA time zone, e.g. Asia/Shanghai")),
    **{name: ({"type": ["integer", "null"], "minimum": low, "maximum": high}
              if name in ("daily_quota", "per_minute_limit")
              else {"type": "integer", "minimum": low, "maximum": high})
       for name, (low, high) in channel_service.INT_SETTINGS.items()},
    "requires_two_approvals": {"type": "boolean"},
    "active": {"type": "boolean"},
}


def _taxonomy_fields(kind_name: str) -> dict[str, Any]:
    kind = taxonomy.KINDS[kind_name]
    fields: dict[str, Any] = {f.name: (text(f.max_length) if f.required
                                       else nullable(text(f.max_length)))
                              for f in kind.text_fields}
    if kind_name == "campaign":
        fields.update({
            "starts_on": nullable(text(10, format="date")),
            "ends_on": nullable(text(10, format="date")),
            "goal_reads": {"type": ["integer", "null"], "minimum": 1,
                           "maximum": 1_000_000_000},
        })
    return fields


_COMMENT = nullable(text(review.MAX_COMMENT))

REQUESTS: dict[str, dict[str, Any]] = {
    # Unknown keys are refused (a typo like "tilte" must not be silently lost).
    "PieceCreate": obj(_PIECE_FIELDS, required=("title", "body", "audience_id", "style_id",
                                                "channel_ids"), closed=True),
    "PieceUpdate": obj({**_PIECE_FIELDS, "version": nullable(
        {**INT, "description": "The version last seen; 409 if someone saved since"})},
        closed=True),
    # Channels and taxonomy ignore keys they do not know, so a client may send back what it
    # read (id, config …) after changing a field.
    "ChannelCreate": obj(_CHANNEL_FIELDS, required=("name", "kind", "config")),
    "ChannelUpdate": obj(_CHANNEL_FIELDS),
    **{f"{name.title()}Create": obj(_taxonomy_fields(name), required=("name",))
       for name in taxonomy.KINDS},
    **{f"{name.title()}Update": obj(_taxonomy_fields(name)) for name in taxonomy.KINDS},
    # The review actions have always ignored keys they do not know (a client may send back
    # more than they read): open schemas keep that.
    "Submit": obj({"comment": _COMMENT, "override_reason": _COMMENT}),
    "Approve": obj({"version": nullable(INT), "comment": _COMMENT}),
    "RequestChanges": obj({"version": nullable(INT), "comment": _COMMENT},
                          required=("comment",)),
    "CommentCreate": obj({"body": text(review.MAX_COMMENT), "parent_id": ID_IN_OPTIONAL,
                          "nonce": nullable(text(64))}, required=("body",)),
    "Schedule": obj({"scheduled_at": MOMENT, "alone": {
        "type": "boolean", "description": "公众号 multi-article sends: move this article out "
                                          "of its send instead of moving the whole send"}},
                    required=("scheduled_at",)),
    "Position": obj({"position": {"type": "integer", "minimum": 1,
                                  "description": "1 makes the post the 头条 of its send"}},
                    required=("position",)),
    "Move": obj({"scheduled_at": text(64, description="ISO 8601; without an offset it is "
                                                      "read in `timezone`"),
                 "timezone": nullable(text(64))}, required=("scheduled_at",)),
    "MarkPublished": obj({"url": nullable(text(1000, description="The public address"))}),
    "FeedbackPush": obj({"events": array(
        # Each event is checked on its own and reported in `rejected`, so one bad event
        # does not refuse the batch: the item schema documents, the service judges.
        {"type": "object", "properties": {
            "event_id": {"description": "Unique per source; a repeat counts as duplicate"},
            "post_id": {"description": "integer; or channel_id + external_id"},
            "channel_id": {"description": "integer"},
            "external_id": {"description": "string"},
            "kind": {"description": "read | like | comment | share | click"},
            "count": {"description": "integer, default 1"},
            "text": {"description": "string (comments)"},
            "author": {"description": "string"},
            "occurred_at": {"description": "ISO 8601 with offset"}}},
        maxItems=MAX_BATCH)}, required=("events",)),
}

# Where a service has always said something more specific than the generic message.
FIELD_MESSAGES: dict[str, dict[str, dict[str, str]]] = {
    "FeedbackPush": {"events": {"required": N_("Send a list of events."),
                                "type": N_("Send a list of events."),
                                "maxItems": N_("At most %(max)s events per request.")}},
    "RequestChanges": {"comment": {"required": N_("Say what should change.")}},
}

# --- responses ------------------------------------------------------------------------------

_NAMED = nullable(obj({"id": INT, "name": STRING}, required=("id", "name")))
_CHANNEL_REF = {"id": INT, "name": STRING, "kind": STRING, "color": NULL_STRING}
_POST = {
    "id": INT, "piece_id": INT, "channel_id": INT,
    "channel": obj(_CHANNEL_REF, required=tuple(_CHANNEL_REF)),
    "title": STRING, "status": {"type": "string", "enum": list(POST_STATES)},
    "scheduled_at": WHEN, "next_attempt_at": WHEN, "published_at": WHEN,
    "external_id": NULL_STRING, "external_url": NULL_STRING, "attempt_count": INT,
    "last_error": NULL_STRING,
    "metrics": obj({m: INT for m in METRICS}, required=METRICS),
}
_FINDING = obj({"code": STRING, "severity": STRING, "field": NULL_STRING,
                "message": STRING, "params": {"type": "object"}},
               required=("code", "severity", "field", "message", "params"))
_WARNING = obj({"code": STRING, "message": STRING}, required=("code", "message"))
_PIECE_SUMMARY = {
    "id": INT, "title": STRING, "summary": NULL_STRING,
    "status": {"type": "string", "enum": list(PIECE_STATES)}, "version": INT,
    "approved_version": nullable(INT), "audience": _NAMED, "style": _NAMED,
    "campaign": _NAMED, "tags": array(STRING), "author": _NAMED,
    "channels": array(obj({**_CHANNEL_REF, "post_id": INT, "status": STRING,
                           "scheduled_at": WHEN}, required=("id", "post_id", "status"))),
    "created_at": WHEN, "updated_at": WHEN,
}
_PIECE = {
    "body": STRING, "body_html": STRING, "audience_id": nullable(INT),
    "style_id": nullable(INT), "campaign_id": nullable(INT), "channel_ids": array(INT),
    "variants": {"type": "object", "additionalProperties": obj({
        "title": NULL_STRING, "body": NULL_STRING})},
    "posts": array(all_of("Post", {"title_override": NULL_STRING,
                                   "body_override": NULL_STRING, "body_html": STRING})),
}
_EVENT = obj({"id": STRING, "title": STRING, "start": STRING},
             required=("id", "start"), description="A FullCalendar event object")


def _record(kind_name: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"id": INT, "name": STRING, "description": STRING}
    if kind_name == "style":
        fields["guidelines"] = STRING
    if kind_name == "campaign":
        fields.update({"starts_on": nullable(text(10, format="date")),
                       "ends_on": nullable(text(10, format="date")),
                       "goal": STRING, "goal_reads": nullable(INT)})
    return obj(fields, required=tuple(fields))


RESPONSES: dict[str, dict[str, Any]] = {
    "Error": obj({"error": obj({
        "code": {"type": "string", "description": "Stable, machine-readable"},
        "message": {"type": "string", "description": "In the caller's language"},
        "fields": {"type": "object", "description": "Field name → messages",
                   "additionalProperties": array(STRING)},
        "findings": array(_FINDING, description="Compliance findings that blocked it"),
    }, required=("code", "message", "fields"))}, required=("error",)),
    "Post": obj(_POST, required=tuple(_POST)),
    "PostAction": all_of("Post", {"warnings": array(STRING)}, ("warnings",)),
    "PostMoved": all_of("Post", {"warnings": array(_WARNING)}, ("warnings",)),
    "PostListItem": all_of("Post", {
        "audience": _NAMED, "style": _NAMED, "campaign": _NAMED,
        "engagement_rate": {"type": ["number", "null"]},
        "staff": nullable(obj({"confirmed": INT, "total": INT, "reached": INT}))},
        ("audience", "style", "campaign", "engagement_rate", "staff")),
    "PostList": obj({"items": array(ref("PostListItem")), "total": INT, "page": INT,
                     "per_page": INT, "pages": INT},
                    required=("items", "total", "page", "per_page", "pages")),
    "PieceSummary": obj(_PIECE_SUMMARY, required=tuple(_PIECE_SUMMARY)),
    "Piece": all_of("PieceSummary", _PIECE, tuple(_PIECE)),
    "PieceSaved": all_of("Piece", {"warnings": array(_WARNING)}, ("warnings",)),
    "PieceList": obj({"items": array(ref("PieceSummary")), "total": INT, "page": INT,
                      "per_page": INT}, required=("items", "total", "page", "per_page")),
    "Review": obj({
        "id": INT, "status": STRING, "version": INT, "approved_version": nullable(INT),
        "approvals": array(obj({"user_id": INT, "version": INT, "approved_at": WHEN})),
        "approvals_needed": INT,
        "posts": array(all_of("Post", {"held": {"type": "boolean"}}, ("held",))),
        "findings": array(_FINDING)},
        required=("id", "status", "version", "approved_version", "approvals",
                  "approvals_needed", "posts")),
    "Comment": obj({"id": INT, "piece_id": INT, "parent_id": nullable(INT),
                    "author": NULL_STRING, "author_id": nullable(INT),
                    "version": nullable(INT), "body": STRING, "created_at": WHEN},
                   required=("id", "piece_id", "parent_id", "author", "body", "created_at")),
    "CommentList": obj({"items": array(ref("Comment"))}, required=("items",)),
    "Token": obj({"id": INT, "name": STRING, "prefix": STRING, "created_at": WHEN,
                  "last_used_at": WHEN, "revoked_at": WHEN},
                 required=("id", "name", "prefix", "created_at", "last_used_at",
                           "revoked_at")),
    "Channel": obj({
        "id": INT, "name": STRING, "kind": STRING, "color": NULL_STRING,
        "timezone": NULL_STRING, "config": {"type": "object"}, "active": {"type": "boolean"},
        "daily_quota": nullable(INT), "per_minute_limit": nullable(INT),
        "grace_minutes": nullable(INT), "max_retries": nullable(INT),
        "conflict_window_minutes": nullable(INT),
        "requires_two_approvals": {"type": "boolean"}},
        required=("id", "name", "kind", "config", "active")),
    **{name.title(): _record(name) for name in taxonomy.KINDS},
    "FeedbackResult": obj({"accepted": INT, "duplicates": INT,
                           "rejected": array(obj({"index": INT, "error": STRING},
                                                 required=("index", "error")))},
                          required=("accepted", "duplicates", "rejected")),
    "Health": obj({"status": {"type": "string", "enum": ["ok", "degraded"]},
                   "database": {"type": "string", "enum": ["ok", "error"]},
                   "scheduler": obj({"alive": {"type": "boolean"}, "last_heartbeat": WHEN,
                                     "stale_after_seconds": {"type": "number"}},
                                    required=("alive", "last_heartbeat")),
                   "reasons": array({"type": "string",
                                     "enum": ["scheduler_down", "database_error"]},
                                    description="Why the status is degraded (codes)"),
                   "message": {"type": "string",
                               "description": "The reasons in the caller's language"}},
                  required=("status", "database", "scheduler")),
    "CalendarEvent": _EVENT,
    "UnscheduledPost": obj({"post_id": INT, "piece_id": INT, "title": STRING,
                            "status": STRING, "status_label": STRING,
                            "channel": {"type": "object"}},
                           required=("post_id", "piece_id", "title", "status")),
    "BestTime": obj({"suggestion": nullable(obj({
        "weekday": INT, "hour": INT, "posts": INT, "engagement_rate": {"type": "number"},
        "avg_reads": {"type": "number"}, "audience_specific": {"type": "boolean"},
        "next_at": STRING, "next_at_local": STRING})), "timezone": STRING},
        required=("suggestion", "timezone")),
    "OpenAPI": {"type": "object", "description": "This document"},
}

SCHEMAS: dict[str, dict[str, Any]] = {**REQUESTS, **RESPONSES}

# --- query parameters -----------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""


def _id_param(name: str, description: str = "") -> Param:
    return Param(name, text(12, pattern=r"^[0-9]*$"), description or "An id")


def _ids_param(name: str) -> Param:
    return Param(name, text(1000), "Ids, comma-separated or the parameter repeated")


PAGE = Param("page", text(6, pattern=r"^[0-9]*$"), "Page number, from 1")
PER_PAGE = Param("per_page", text(3, pattern=r"^[0-9]*$"),
                 f"Items per page, at most {content.MAX_PER_PAGE}")
TZ = Param("tz", text(64), "IANA time zone")
RANGE = (Param("start", text(64), "Range start: a date or ISO 8601 time"),
         Param("end", text(64), f"Range end (exclusive), at most {MAX_RANGE_DAYS} days on"),
         Param("timeZone", text(64), "IANA time zone of the view"), TZ)
CALENDAR_FILTERS = (*(_ids_param(k) for k in ("channel", "audience", "style", "campaign",
                                              "author")),
                    Param("status", text(1000), "Statuses, comma-separated"))

_WECHAT_SIGNATURE = (
    Param("signature", text(64), "sha1 of the sorted server token, timestamp and nonce"),
    Param("timestamp", text(32)), Param("nonce", text(64)))

QUERIES: dict[str, tuple[Param, ...]] = {
    "wechat_handshake": (*_WECHAT_SIGNATURE,
                         Param("echostr", text(256), "Echoed back when the signature holds")),
    "wechat_event": _WECHAT_SIGNATURE,
    "pieces": (
        Param("status", text(32, enum=["", *PIECE_STATES]), "Review state"),
        *(_id_param(n) for n in ("audience_id", "style_id", "campaign_id", "channel_id",
                                 "author_id")),
        Param("tag", text(content.MAX_TAG)), Param("q", text(content.MAX_TITLE),
                                                   "Words in the title or body"),
        PAGE, PER_PAGE),
    "posts": (
        Param("status", text(1000), "Post states, comma-separated or repeated"),
        *(_id_param(n) for n in postlist.FILTER_IDS),
        Param("from", text(64), "A date (whole day) or ISO 8601 time"),
        Param("to", text(64), "A date (whole day, included) or ISO 8601 time"),
        Param("q", text(200), "Words in the title"),
        Param("sort", text(32, pattern="^-?(" + "|".join(postlist.SORT_KEYS) + ")?$"),
              "A column, `-` first for descending, e.g. -reads"),
        PAGE, Param("per_page", text(3, pattern=r"^[0-9]*$"),
                    f"Items per page, at most {postlist.MAX_PER_PAGE}")),
    "calendar": (*RANGE, *CALENDAR_FILTERS),
    "calendar_quota": (*RANGE, *CALENDAR_FILTERS),
    "observances": (*RANGE, Param("hide", text(1000), "Observance keys to leave out")),
    "unscheduled": CALENDAR_FILTERS,
    "best_time": (_id_param("channel_id"), _id_param("audience_id"), TZ),
}

# --- operations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    body: str | None = None
    body_optional: bool = False
    validate_body: bool = True
    query: tuple[Param, ...] = ()
    status: int = 200
    response: dict[str, Any] | None = None
    description: str = ""
    extra_errors: tuple[int, ...] = ()
    headers: tuple[Param, ...] = field(default=())
    # Other answers with a body of their own: (status, schema name).
    others: tuple[tuple[int, str], ...] = ()
    # The service's own check, called with (body, **view args) when the schema refused the
    # body, so the answer lists every problem (see check_body).
    service_check: Callable[..., None] | None = None
    query_check: Callable[[], Any] | None = None
    # Endpoints that speak another format (WeChat's server URL: XML in, plain text out).
    media_type: str = "application/json"
    raw_body: str | None = None


def operation(summary: str, *, tag: str, body: str | None = None, body_optional: bool = False,
              validate_body: bool = True, query: str | None = None, status: int = 200,
              response: str | dict[str, Any] | None = None, description: str = "",
              extra_errors: tuple[int, ...] = (), headers: tuple[Param, ...] = (),
              others: tuple[tuple[int, str], ...] = (),
              service_check: Callable[..., None] | None = None,
              query_check: Callable[[], Any] | None = None,
              media_type: str = "application/json",
              raw_body: str | None = None) -> Callable[[F], F]:
    """Describe a view for the document and validate its request against the same schemas.
    Put it under `api_role` (or `public`): who may call comes before what they sent."""
    op = Operation(summary, tag, body, body_optional, validate_body,
                   QUERIES[query] if query else (), status,
                   ref(response) if isinstance(response, str) else response, description,
                   extra_errors, headers, others, service_check, query_check, media_type,
                   raw_body)

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if op.query:
                check_query(op.query, op.query_check)
            if op.body and op.validate_body:
                check_body(op.body, optional=op.body_optional,
                           service_check=op.service_check, view_args=kwargs)
            return view(*args, **kwargs)

        wrapper.openapi = op  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


# --- validation -----------------------------------------------------------------------------

_VALIDATORS: dict[str, Draft202012Validator] = {}


def validator(name: str) -> Draft202012Validator:
    found = _VALIDATORS.get(name)
    if found is None:
        found = _VALIDATORS[name] = Draft202012Validator(REQUESTS[name])
    return found


_TYPE_MESSAGES = {
    "string": N_("Enter text."), "integer": N_("Enter a whole number."),
    "number": N_("Enter a number."), "boolean": N_("Use true or false."),
    "array": N_("Send a list."), "object": N_("Send a JSON object."),
}


def _field(path: list[Any]) -> str:
    return ".".join(str(p) for p in path)


def _is_id(path: list[Any]) -> bool:
    last = str(path[-1]) if path else ""
    return last.endswith("_id") or (len(path) > 1 and str(path[-2]).endswith("_ids"))


def _message(error: SchemaError, overrides: Mapping[str, Mapping[str, str]]
             ) -> tuple[str, str]:
    """(field, translated message) for one schema error, in the services' words."""
    path = list(error.absolute_path)
    keyword = str(error.validator)
    if keyword == "required":  # (field_errors lists every missing field)
        missing = [p for p in error.validator_value if p not in error.instance]
        where = _field([*path, missing[0] if missing else ""])
        return where, translate(overrides.get(where, {}).get(
            "required", N_("This field is required.")))
    if keyword == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in known)
        return _field([*path, extra[0] if extra else ""]), translate(N_("Unknown field."))
    where = _field(path)
    special = overrides.get(where, {}).get(keyword)
    if special:
        return where, translate(special, {"max": error.validator_value})
    if keyword == "type":
        kinds = error.validator_value
        kind = next(k for k in ([kinds] if isinstance(kinds, str) else kinds) if k != "null")
        if kind == "integer" and _is_id(path):
            return where, translate(N_("Enter a valid id."))
        return where, translate(_TYPE_MESSAGES.get(kind, N_("This value is not valid.")))
    if keyword in ("pattern", "minimum", "maximum") and _is_id(path):
        return where, translate(N_("Enter a valid id."))
    if keyword == "maxLength":
        return where, translate(N_("Use at most %(max)s characters."),
                                {"max": error.validator_value})
    if keyword == "maxItems":
        return where, translate(N_("Use at most %(max)s items."),
                                {"max": error.validator_value})
    if keyword in ("minimum", "maximum"):
        return where, translate(N_("The value is out of range."))
    if keyword == "enum":
        return where, translate(N_("Choose one of the options."))
    return where, translate(N_("This value is not valid."))


def field_errors(errors: list[SchemaError], name: str = "") -> dict[str, list[str]]:
    """Schema errors as the API's `fields`: one message per field, as the services do."""
    overrides = FIELD_MESSAGES.get(name, {})
    out: dict[str, list[str]] = {}
    for error in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)),
                                               str(e.validator))):
        if error.validator == "required":
            for name in error.validator_value:
                if name not in error.instance:
                    where = _field([*error.absolute_path, name])
                    out.setdefault(where, [translate(overrides.get(where, {}).get(
                        "required", N_("This field is required.")))])
            continue
        where, message = _message(error, overrides)
        out.setdefault(where, [message])
    return out


def _raise(fields: dict[str, list[str]]) -> None:
    # The messages are translated already (each with its own limit); translating a
    # translated text again leaves it as it is.
    raise ValidationError(fields)


def check_body(name: str, *, optional: bool = False,
               service_check: Callable[..., None] | None = None,
               view_args: Mapping[str, Any] | None = None) -> None:
    if optional and not request.get_data(cache=True):
        return
    data = request_json()
    if not isinstance(data, dict):
        raise BadRequest(N_("Send a JSON object with Content-Type: application/json."))
    errors = list(validator(name).iter_errors(data))
    if not errors:
        return
    fields = field_errors(errors, name)
    if service_check is not None:
        # The services report every problem at once; so does the API: what the service
        # finds besides the schema (a missing audience, a taken name …) is added.
        try:
            service_check(data, **(view_args or {}))
        except ValidationError as exc:
            for where, messages in error_fields(exc).items():
                fields.setdefault(where, messages)
        except DomainError:
            pass
    _raise(fields)


def check_query(params: tuple[Param, ...],
                service_check: Callable[[], Any] | None = None) -> None:
    fields: dict[str, list[str]] = {}
    for param in params:
        check = Draft202012Validator(param.schema)
        for value in request.args.getlist(param.name):
            errors = list(check.iter_errors(value))
            if errors:
                error = errors[0]
                error.path.appendleft(param.name)
                fields.setdefault(param.name, [_message(error, {})[1]])
    if fields and service_check is not None:
        # The service parses the same parameters in its own words: those win, and whatever
        # else it finds is reported too.
        try:
            service_check()
        except ValidationError as exc:
            fields.update(error_fields(exc))
        except DomainError:
            pass
    if fields:
        _raise(fields)


# --- the document ---------------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:(?P<conv>[^:>]+):)?(?P<name>[^>]+)>")
_ERROR_TEXT = {
    400: f"Not a JSON object, nested deeper than {MAX_DEPTH} levels, or a bad CSRF token",
    401: "No valid API token", 403: "The token's role does not allow this",
    404: "No such object", 409: "A rule refused it (state, quota, stale version …)",
    413: "The body is larger than the limit", 422: "Fields are not valid (see `fields`)",
    503: "The database does not answer",
}


def _error(status: int) -> dict[str, Any]:
    return {"description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": ref("Error")}}}


def _operation_doc(rule: Any, method: str, view: Any, op: Operation) -> dict[str, Any]:
    role = getattr(view, "required_role", None)
    doc: dict[str, Any] = {
        "operationId": rule.endpoint.removeprefix("api.") + (
            "" if len(rule.methods - {"HEAD", "OPTIONS"}) == 1 else "_" + method.lower()),
        "summary": op.summary, "tags": [op.tag],
    }
    description = op.description
    if role and role != PUBLIC:
        description = (f"Role: {role} or above. " + description).strip()
        doc["security"] = [{"bearerAuth": []}]
    else:
        doc["security"] = []
    if description:
        doc["description"] = description
    params = [{"name": m["name"], "in": "path", "required": True,
               "schema": ID if m["conv"] == "int" else STRING}
              for m in _CONVERTER.finditer(rule.rule)]
    params += [{"name": p.name, "in": "query", "required": False, "schema": p.schema,
                **({"description": p.description} if p.description else {})}
               for p in op.query]
    params += [{"name": p.name, "in": "header", "required": True, "schema": p.schema,
                "description": p.description} for p in op.headers]
    if params:
        doc["parameters"] = params
    statuses: set[int] = set(op.extra_errors)
    if op.body:
        doc["requestBody"] = {"required": not op.body_optional,
                              "content": {"application/json": {"schema": ref(op.body)}}}
        statuses |= {400, 413, 422}
    elif op.raw_body:
        doc["requestBody"] = {"required": True,
                              "content": {op.raw_body: {"schema": {"type": "string"}}}}
        statuses |= {400, 413}
    if op.query:
        statuses.add(422)
    if role and role != PUBLIC:
        statuses |= {401, 403}
    if "<" in rule.rule:
        statuses.add(404)
    if method != "GET":
        statuses.add(409)
    responses: dict[str, Any] = {}
    if op.status == 204:
        responses["204"] = {"description": "Done"}
    else:
        responses[str(op.status)] = {
            "description": "OK" if op.status == 200 else "Created",
            "content": {op.media_type: {"schema": op.response or {}}}}
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    for status, name in op.others:
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Other"),
                                  "content": {"application/json": {"schema": ref(name)}}}
    doc["responses"] = responses
    return doc


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api/v1 route that carries an Operation."""
    from .. import __version__

    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        op = getattr(view, "openapi", None)
        if op is None:
            continue
        path = _CONVERTER.sub(lambda m: "{" + m["name"] + "}", rule.rule[len(PREFIX):])
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation_doc(rule, method, view,
                                                                        op)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "ContentOps API", "version": __version__,
            "description": (
                "Plan, review and publish content. Authenticate with "
                "`Authorization: Bearer <token>` (create one under Your settings → API "
                "tokens, or `contentops token create EMAIL`). Every error is "
                "`{\"error\": {\"code\", \"message\", \"fields\"}}` with a 4xx status; "
                f"bodies are limited to {app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} "
                f"MiB and {MAX_DEPTH} levels of nesting."),
        },
        "servers": [{"url": PREFIX}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "A personal API token"}},
        },
    }
