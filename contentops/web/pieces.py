"""Content pieces pages: list with filters, create/edit with live preview, the piece page."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..channels.base import ChannelError
from ..errors import DomainError, ValidationError
from ..extensions import db
from ..i18n import error_message, select_timezone, translate
from ..jsonutil import request_json
from ..models import PIECE_STATES, Channel, ContentPiece
from ..rendering import markdown_to_html
from ..security import requires_role
from ..services import channels as channel_service
from ..services import content as content_service
from ..services import options as options_service
from ..timeutil import (
    NonexistentTimeError,
    WallClockError,
    is_valid_timezone,
    parse_local,
    resolve_local,
    to_zone,
    utcnow,
)
from .wallclock import fold_choice, requested_fold

bp = Blueprint("pieces", __name__, url_prefix="/pieces")

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_HTTP_URL = re.compile(r"https?://[^\s\x00-\x1f]+", re.IGNORECASE)

DEFAULT_TIME = time(9, 0)  # a calendar day clicked without an hour starts the morning


def _required() -> DataRequired:
    return DataRequired(message=lazy_gettext("This field is required."))


@bp.app_template_filter("markdown")
def _markdown_filter(text: str | None) -> Markup:
    # rendering.markdown_to_html sanitises; this is the only place its output is marked safe.
    return Markup(markdown_to_html(text))


@bp.app_template_filter("hexcolor")
def _hexcolor_filter(value: str | None) -> str:
    # Colours go into style attributes: anything but #rrggbb could carry CSS.
    return value if isinstance(value, str) and _HEX.fullmatch(value) else "#6c757d"


@bp.app_template_filter("safe_url")
def _safe_url_filter(value: str | None) -> str | None:
    # External URLs come from remote services (a webhook reply): only http(s) becomes a link.
    if isinstance(value, str) and _HTTP_URL.match(value.strip()):
        return value.strip()
    return None


class PieceForm(FlaskForm):
    """The fields every piece has; per-channel variant fields are added per request."""

    title = StringField(lazy_gettext("Title"), validators=[
        _required(),
        Length(max=content_service.MAX_TITLE,
               message=lazy_gettext("Use at most 200 characters."))])
    body = TextAreaField(lazy_gettext("Body (Markdown)"), validators=[
        _required(),
        Length(max=content_service.MAX_BODY,
               message=lazy_gettext("Use at most 100000 characters."))])
    summary = TextAreaField(lazy_gettext("Summary"), validators=[
        Optional(), Length(max=content_service.MAX_SUMMARY,
                           message=lazy_gettext("Use at most 500 characters."))])
    # Choices are checked by the service (its messages are ours and translated), not WTForms.
    audience_id = SelectField(lazy_gettext("Audience"), validate_choice=False,
                              validators=[_required()])
    style_id = SelectField(lazy_gettext("Style"), validate_choice=False,
                           validators=[_required()])
    campaign_id = SelectField(lazy_gettext("Campaign"), validate_choice=False)
    channel_ids = SelectMultipleField(lazy_gettext("Channels"), validate_choice=False)
    tags = StringField(lazy_gettext("Tags"), validators=[
        Length(max=2000, message=lazy_gettext("Use at most 2000 characters."))])
    scheduled_at = StringField(lazy_gettext("Scheduled time"))
    # The version the editor started from, so a concurrent save is noticed, not overwritten.
    version = HiddenField()


def _variant_names(channel_id: int) -> tuple[str, str]:
    return f"variant_title_{channel_id}", f"variant_body_{channel_id}"


def _channels_for(piece: ContentPiece | None) -> list[Channel]:
    """Active channels, plus switched-off ones the piece already uses."""
    return options_service.usable_channels(
        db.session, [p.channel_id for p in piece.posts] if piece is not None else [])


def _build_form(piece: ContentPiece | None, channels: list[Channel], **kwargs: Any) -> PieceForm:
    attrs: dict[str, Any] = {}
    for channel in channels:
        title_name, body_name = _variant_names(channel.id)
        attrs[title_name] = StringField(lazy_gettext("Title for this channel"), validators=[
            Length(max=content_service.MAX_TITLE,
                   message=lazy_gettext("Use at most 200 characters."))])
        attrs[body_name] = TextAreaField(lazy_gettext("Body for this channel (Markdown)"),
                                         validators=[Length(
                                             max=content_service.MAX_BODY,
                                             message=lazy_gettext(
                                                 "Use at most 100000 characters."))])
    form_class = type("PieceFormWithVariants", (PieceForm,), attrs)
    form = form_class(**kwargs)
    pick = SelectChoice("", gettext("Choose…"))
    form.audience_id.choices = [pick] + [
        SelectChoice(str(a.id), a.name)
        for a in options_service.audiences(db.session)]
    form.style_id.choices = [pick] + [
        SelectChoice(str(s.id), s.name)
        for s in options_service.styles(db.session)]
    form.campaign_id.choices = [SelectChoice("", gettext("No campaign"))] + [
        SelectChoice(str(c.id), c.name)
        for c in options_service.campaigns(db.session)]
    form.channel_ids.choices = [SelectChoice(str(c.id), c.name) for c in channels]
    return form


def _local_input(value: datetime | None) -> str:
    """An aware time as a datetime-local value in the viewer's zone."""
    local = to_zone(value, select_timezone())
    return local.strftime("%Y-%m-%dT%H:%M") if local else ""


def _prefill_time() -> str:
    """`?date=YYYY-MM-DD&time=HH:MM[&tz=Zone]` from the calendar; anything malformed is
    ignored. A calendar shown in another zone than the viewer's gives its zone in `tz`; the
    field is always in the viewer's zone, so the wall time is converted."""
    raw_date = request.args.get("date", "")
    raw_time = request.args.get("time", "")
    try:
        day = datetime.strptime(raw_date, "%Y-%m-%d").date()
    except ValueError:
        return ""
    try:
        at = datetime.strptime(raw_time, "%H:%M").time() if raw_time else DEFAULT_TIME
    except ValueError:
        at = DEFAULT_TIME
    wall = datetime.combine(day, at)
    zone = request.args.get("tz", "")
    if zone and zone != select_timezone() and is_valid_timezone(zone):
        # Only a suggestion the user sees and can change: a slot the clocks skip starts
        # when the gap ends, a repeated one at its first occurrence.
        try:
            when = resolve_local(wall, zone, fold=0)
        except NonexistentTimeError as exc:
            when = exc.first_valid
        return _local_input(when)
    return wall.strftime("%Y-%m-%dT%H:%M")


def _form_data(form: PieceForm, channels: list[Channel], *, creating: bool,
               original_time: str, parse_time: bool = True,
               fold: int | None = None) -> dict[str, Any]:
    """The form as the service's input (the same shape the JSON API sends)."""
    data: dict[str, Any] = {
        "title": form.title.data or "",
        "body": form.body.data or "",
        "summary": form.summary.data or "",
        "audience_id": form.audience_id.data or None,
        "style_id": form.style_id.data or None,
        "campaign_id": form.campaign_id.data or None,
        "channel_ids": list(form.channel_ids.data or []),
        "tags": form.tags.data or "",
    }
    variants: dict[str, dict[str, str]] = {}
    for channel in channels:
        title_name, body_name = _variant_names(channel.id)
        title = form[title_name].data or ""
        body = form[body_name].data or ""
        if title.strip() or body.strip():
            variants[str(channel.id)] = {"title": title, "body": body}
    data["variants"] = variants
    raw_time = (form.scheduled_at.data or "").strip()
    # On edit, an untouched time field is not a request to move anything.
    if parse_time and raw_time and (creating or raw_time != original_time):
        data["scheduled_at"] = parse_local(raw_time, select_timezone(), fold)
    return data


def _apply_errors(form: PieceForm, exc: ValidationError) -> list[str]:
    """Put the service's messages next to their fields; return the form-level ones."""
    loose: list[str] = [gettext("Some fields are not valid.")]
    for key, messages in exc.fields.items():
        texts = [translate(m, exc.params) for m in messages]
        target = key
        if key.startswith("variants."):
            parts = key.split(".")
            name = parts[2] if len(parts) > 2 else "title"
            target = f"variant_{name}_{parts[1]}"
        if target in form:
            existing = [str(e) for e in form[target].errors]
            form[target].errors = existing + [t for t in texts if t not in existing]
        else:
            loose += texts
    return loose


def _editor(piece: ContentPiece | None):
    creating = piece is None
    channels = _channels_for(piece)
    if creating:
        form = _build_form(None, channels)
        if request.method == "GET":
            form.scheduled_at.data = _prefill_time()
        original_time = ""
    else:
        form = _build_form(piece, channels, obj=None)
        original_time = _local_input(content_service.common_schedule(piece))
        if request.method == "GET":
            _fill_from_piece(form, piece, original_time)
    form_errors: list[str] = []
    choice: dict[str, Any] | None = None  # the occurrences offered for a repeated time
    status: int | None = None
    if request.method == "POST":
        # WTForms checks presence and length; the service checks everything else. Both run,
        # so the user sees every problem at once, each next to its field.
        form_ok = form.validate()
        time_error: str | None = None  # already in the user's language
        raw_time = (form.scheduled_at.data or "").strip()
        try:
            data = _form_data(form, channels, creating=creating, original_time=original_time,
                              fold=requested_fold(request.form, raw_time))
        except (WallClockError, ValueError) as exc:
            data = _form_data(form, channels, creating=creating, original_time=original_time,
                              parse_time=False)
            if isinstance(exc, WallClockError):
                time_error = translate(exc.message, exc.params)
                choice = fold_choice(exc, raw_time)
            else:
                time_error = gettext("Enter a date and time.")
        try:
            if creating:
                result = content_service.create_piece(db.session, data, author=current_user,
                                                      now=utcnow())
            else:
                started = form.version.data
                result = content_service.update_piece(
                    db.session, piece, data, actor=current_user, now=utcnow(),
                    expected_version=int(started) if (started or "").isdigit() else None)
            if time_error or not form_ok:
                raise ValidationError({})
        except ValidationError as exc:
            db.session.rollback()
            form_errors = _apply_errors(form, exc)
            if time_error and time_error not in form.scheduled_at.errors:
                form.scheduled_at.errors = [*form.scheduled_at.errors, time_error]
        except DomainError as exc:
            db.session.rollback()
            form_errors = [error_message(exc)]
            status = 409
        else:
            db.session.commit()
            for finding in result.warnings:
                flash(translate(finding.message, dict(finding.params)), "warning")
            if creating:
                flash(gettext("The piece was created as a draft."), "success")
            elif result.new_version:
                flash(gettext("Saved as version %(version)d.", version=result.piece.version),
                      "success")
            else:
                flash(gettext("Your changes were saved."), "success")
            return redirect(url_for("pieces.view", piece_id=result.piece.id))
    if status is None:
        status = 422 if request.method == "POST" else 200
    return render_template(
        "pieces/edit.html", form=form, piece=piece, channels=channels,
        variant_names=_variant_names, form_errors=form_errors, fold_choice=choice,
        timezone=select_timezone(), title=gettext("New piece") if creating
        else gettext("Edit piece")), status


def _fill_from_piece(form: PieceForm, piece: ContentPiece, when: str) -> None:
    form.title.data = piece.title
    form.body.data = piece.body
    form.summary.data = piece.summary
    form.audience_id.data = str(piece.audience_id or "")
    form.style_id.data = str(piece.style_id or "")
    form.campaign_id.data = str(piece.campaign_id or "")
    form.channel_ids.data = [str(p.channel_id) for p in piece.posts if p.status != "cancelled"]
    form.tags.data = ", ".join(t.name for t in piece.tags)
    form.scheduled_at.data = when
    form.version.data = str(piece.version)
    for post in piece.posts:
        title_name, body_name = _variant_names(post.channel_id)
        if title_name in form:
            form[title_name].data = post.title_override or ""
            form[body_name].data = post.body_override or ""


@bp.get("/")
@requires_role("viewer")
def index():
    filters = content_service.parse_filters(request.args, strict=False)
    if request.args.get("mine"):
        filters.author_id = current_user.id
    page, per_page = content_service.parse_page(request.args, strict=False)
    items, total = content_service.list_pieces(db.session, filters, page=page,
                                               per_page=per_page)
    pages = max(1, -(-total // per_page))
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    filtering = any(v for k, v in args.items() if k not in ("per_page",))
    return render_template(
        "pieces/index.html", items=items, total=total, page=page, pages=pages, args=args,
        filters=filters, filtering=filtering, states=PIECE_STATES,
        audiences=options_service.audiences(db.session),
        styles=options_service.styles(db.session),
        campaigns=options_service.campaigns(db.session),
        channels=options_service.channels(db.session),
        tags=options_service.tags(db.session),
        title=gettext("Content pieces"))


@bp.route("/new", methods=["GET", "POST"])
@requires_role("editor")
def new():
    return _editor(None)


@bp.route("/<int:piece_id>/edit", methods=["GET", "POST"])
@requires_role("editor")
def edit(piece_id: int):
    piece = db.session.get(ContentPiece, piece_id)
    if piece is None:
        abort(404)
    return _editor(piece)


@bp.get("/<int:piece_id>")
@requires_role("viewer")
def view(piece_id: int):
    piece = db.session.get(ContentPiece, piece_id)
    if piece is None:
        abort(404)
    return _view(piece)


def _view(piece: ContentPiece, *, status: int = 200,
          wechat_preview: dict[str, Any] | None = None):
    return render_template(
        "pieces/view.html", piece=piece, body_html=markdown_to_html(piece.body),
        variant_html={p.id: markdown_to_html(p.body_override) for p in piece.posts
                      if p.body_override},
        preview_posts=channel_service.preview_targets(piece),
        wechat_preview=wechat_preview or {}, title=piece.title), status


@bp.post("/<int:piece_id>/posts/<int:post_id>/lead")
@requires_role("editor")
def make_lead(piece_id: int, post_id: int):
    """Make the post the 头条 (lead article) of its 公众号 multi-article send."""
    from ..models import Post
    from ..services.publishing import groups

    post = db.session.get(Post, post_id)
    if post is None or post.piece_id != piece_id:
        abort(404)
    try:
        groups.set_position(db.session, post, 1, actor=current_user, now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc), "danger")
    else:
        db.session.commit()
        flash(gettext("“%(title)s” is now the lead article (头条).", title=post.title),
              "success")
    return redirect(url_for("pieces.view", piece_id=piece_id))


@bp.post("/<int:piece_id>/posts/<int:post_id>/wechat-preview")
@requires_role("editor")
def wechat_preview(piece_id: int, post_id: int):
    """Send the post's article to one WeChat id before approval; the answer is shown beside
    the field (success, or WeChat's refusal in the reader's language)."""
    piece = db.session.get(ContentPiece, piece_id)
    if piece is None:
        abort(404)
    post = next((p for p in channel_service.preview_targets(piece) if p.id == post_id), None)
    if post is None:
        abort(404)
    to = (request.form.get("to") or "").strip()
    state: dict[str, Any] = {"post_id": post.id, "to": to}
    try:
        channel_service.send_post_preview(
            db.session, post, to=to, secret_key=current_app.config["SECRET_KEY"],
            base_url=current_app.config["CONTENTOPS_BASE_URL"],
            actor=current_user._get_current_object())
    except ValidationError as exc:
        db.session.rollback()
        state["error"] = "; ".join(translate(m, exc.params) for m in exc.fields.get("to", []))
        return _view(piece, status=422, wechat_preview=state)
    except ChannelError as exc:
        db.session.rollback()
        state["error"] = translate(exc.message, exc.params)
        return _view(piece, status=422, wechat_preview=state)
    db.session.commit()
    state["ok"] = gettext("Preview sent to %(to)s on WeChat.", to=to)
    return _view(piece, wechat_preview=state)


@bp.post("/preview")
@requires_role("editor")
def preview():
    """Server-rendered Markdown for the editor's live preview: the same renderer as
    everywhere else, so what the editor sees is what gets published."""
    payload = request_json()
    body = payload.get("body") if isinstance(payload, dict) else request.form.get("body")
    if not isinstance(body, str):
        body = ""
    if len(body) > content_service.MAX_BODY:
        return jsonify({"html": "", "error": gettext("Use at most 100000 characters.")}), 422
    return jsonify({"html": markdown_to_html(body)})
