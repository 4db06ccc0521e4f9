"""Channel settings pages: a typed form per kind (from the adapter's config_fields), write-only
secrets, Test connection, Send preview, and recipient lists per channel or per audience."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from ..channels.base import ChannelError
from ..channels.registry import adapter_class, kinds
from ..errors import DomainError, ValidationError
from ..extensions import db
from ..i18n import error_fields, error_message, translate
from ..models import Audience, Channel, ContentPiece
from ..security import requires_role
from ..services import channels as channel_service
from ..services import options as options_service
from ..services import recipients as recipient_service
from ..services.channels import INT_SETTINGS
from ..timeutil import timezone_choices

bp = Blueprint("channels", __name__, url_prefix="/settings/channels")

MAX_CSV_BYTES = 5 * 1024 * 1024


def _secret_key() -> str:
    return current_app.config["SECRET_KEY"]


def _base_url() -> str:
    return current_app.config["CONTENTOPS_BASE_URL"]


def _channel(channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        abort(404)
    return channel


@bp.get("/")
@requires_role("admin")
def index():
    channels = options_service.channels(db.session)
    return render_template("channels/index.html", channels=channels, kinds=kinds(),
                           title=gettext("Channels"))


def _form_to_data(kind: str) -> dict[str, Any]:
    """The posted form as the service's input: settings plus `config` from typed fields."""
    form = request.form
    data: dict[str, Any] = {"name": form.get("name", ""), "color": form.get("color", ""),
                            "timezone": form.get("timezone", ""),
                            "active": form.get("active") == "on",
                            "requires_two_approvals": form.get("requires_two_approvals") == "on"}
    for name in INT_SETTINGS:
        if name in form:
            data[name] = form.get(name, "").strip()
    config: dict[str, Any] = {}
    for spec in adapter_class(kind).config_fields:
        key = f"config.{spec.name}"
        if spec.type == "bool":
            config[spec.name] = form.get(key) == "on"
        elif key in form:
            config[spec.name] = form.get(key, "")
    data["config"] = config
    return data


def _render_form(kind: str, channel: Channel | None, values: dict[str, Any],
                 errors: dict[str, list[str]], status: int = 200):
    cls = adapter_class(kind)
    secrets_set = channel_service.secret_fields_set(channel, _secret_key()) if channel else []
    title = gettext("Edit channel") if channel else gettext("New channel")
    return render_template("channels/form.html", kind=kind, cls=cls, channel=channel,
                           values=values, errors=errors, secrets_set=secrets_set,
                           timezones=timezone_choices(), int_settings=INT_SETTINGS,
                           title=title), status


def _values_of(channel: Channel) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(channel, name) for name in INT_SETTINGS}
    values.update(name=channel.name, color=channel.color, timezone=channel.timezone or "",
                  active=channel.active, requires_two_approvals=channel.requires_two_approvals,
                  config=dict(channel.config or {}))
    return values


def _defaults(kind: str) -> dict[str, Any]:
    config = {f.name: f.default for f in adapter_class(kind).config_fields
              if f.default is not None}
    return {"name": "", "color": "#0d6efd", "timezone": "", "active": True,
            "requires_two_approvals": False, "grace_minutes": 60, "max_retries": 5,
            "conflict_window_minutes": 120, "config": config}


def _posted_values(data: dict[str, Any]) -> dict[str, Any]:
    # Re-show what was typed, except secrets (write-only, never echoed back).
    return data


@bp.route("/new/<kind>", methods=["GET", "POST"])
@requires_role("admin")
def new(kind: str):
    if kind not in kinds():
        abort(404)
    if request.method == "GET":
        return _render_form(kind, None, _defaults(kind), {})
    data = _form_to_data(kind)
    data["kind"] = kind
    try:
        channel = channel_service.create_channel(db.session, data, secret_key=_secret_key(),
                                                 actor=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _render_form(kind, None, data, error_fields(exc), 422)
    db.session.commit()
    flash(gettext("Channel %(name)s created.", name=channel.name), "success")
    return redirect(url_for("channels.index"))


@bp.route("/<int:channel_id>/edit", methods=["GET", "POST"])
@requires_role("admin")
def edit(channel_id: int):
    channel = _channel(channel_id)
    if request.method == "GET":
        return _render_form(channel.kind, channel, _values_of(channel), {})
    data = _form_to_data(channel.kind)
    try:
        channel_service.update_channel(db.session, channel, data, secret_key=_secret_key(),
                                       actor=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _render_form(channel.kind, _channel(channel_id), data, error_fields(exc), 422)
    db.session.commit()
    flash(gettext("Channel %(name)s saved.", name=channel.name), "success")
    return redirect(url_for("channels.index"))


@bp.post("/<int:channel_id>/test")
@requires_role("admin")
def test(channel_id: int):
    channel = _channel(channel_id)
    try:
        message = channel_service.check_connection(channel, secret_key=_secret_key())
    except ChannelError as exc:
        flash(gettext("Test connection failed: %(reason)s",
                      reason=translate(exc.message, exc.params)), "error")
    else:
        flash(translate(message, {"service": gettext(adapter_class(channel.kind).label)}),
              "success")
    return redirect(url_for("channels.index"))


@bp.route("/<int:channel_id>/preview", methods=["GET", "POST"])
@requires_role("admin")
def preview(channel_id: int):
    channel = _channel(channel_id)
    cls = adapter_class(channel.kind)
    pieces = options_service.recent_pieces(db.session)
    errors: dict[str, list[str]] = {}
    wxname = cls.preview_address == "wxname"
    to = request.form.get("to", "" if wxname else current_user.email)
    piece_id = request.form.get("piece_id", "")
    if request.method == "POST":
        piece = None
        if piece_id:
            piece = db.session.get(ContentPiece, int(piece_id)) if piece_id.isdigit() else None
            if piece is None:
                errors["piece_id"] = [gettext("Choose a piece from the list.")]
        if cls.uses_recipients and recipient_service.normalize_email(to) is None:
            errors["to"] = [gettext("Enter a valid e-mail address.")]
        elif wxname and not to.strip():
            errors["to"] = [gettext("Enter the WeChat id (微信号) that should receive the "
                                    "preview; it must follow the account.")]
        if not errors:
            try:
                channel_service.send_preview(
                    db.session, channel, secret_key=_secret_key(), base_url=_base_url(),
                    piece=piece, to=to if cls.uses_recipients or wxname else None,
                    actor=current_user)
            except ChannelError as exc:
                db.session.rollback()
                errors["send"] = [translate(exc.message, exc.params)]
            else:
                db.session.commit()
                flash(gettext("Preview sent to %(name)s.", name=channel.name), "success")
                return redirect(url_for("channels.index"))
    return render_template("channels/preview.html", channel=channel, cls=cls, pieces=pieces,
                           to=to, piece_id=piece_id, errors=errors,
                           title=gettext("Send preview")), (422 if errors else 200)


# --- Recipient lists ------------------------------------------------------------------------

def _list_ref(owner: str, owner_id: int) -> tuple[recipient_service.ListRef, Any]:
    if owner == "channel":
        channel = _channel(owner_id)
        if not adapter_class(channel.kind).uses_recipients:
            abort(404)
        return recipient_service.ListRef(channel_id=owner_id), channel
    audience = db.session.get(Audience, owner_id)
    if audience is None:
        abort(404)
    return recipient_service.ListRef(audience_id=owner_id), audience


def _recipients_page(owner: str, owner_id: int, errors: dict[str, list[str]] | None = None,
                     values: dict[str, str] | None = None, report: Any = None,
                     status: int = 200):
    ref, target = _list_ref(owner, owner_id)
    rows = recipient_service.list_recipients(db.session, ref)
    audiences = options_service.audiences(db.session)
    return render_template("channels/recipients.html", owner=owner, target=target, rows=rows,
                           counts=recipient_service.counts(db.session, ref), errors=errors or {},
                           values=values or {}, report=report, audiences=audiences,
                           title=gettext("Recipients")), status


def _register_recipient_views(owner: str, prefix: str) -> None:
    def show(owner_id: int):
        if request.method == "GET":
            return _recipients_page(owner, owner_id)
        ref, _ = _list_ref(owner, owner_id)
        values = {"email": request.form.get("email", ""), "name": request.form.get("name", "")}
        try:
            recipient_service.add_recipient(db.session, ref, values["email"], values["name"])
        except ValidationError as exc:
            db.session.rollback()
            return _recipients_page(owner, owner_id, error_fields(exc), values, status=422)
        db.session.commit()
        flash(gettext("Added %(email)s.", email=values["email"].strip()), "success")
        return redirect(url_for(f"channels.{owner}_recipients", owner_id=owner_id))

    def import_csv(owner_id: int):
        ref, _ = _list_ref(owner, owner_id)
        upload = request.files.get("file")
        data = upload.read(MAX_CSV_BYTES + 1) if upload else b""
        if not data:
            return _recipients_page(owner, owner_id,
                                    {"file": [gettext("Choose a CSV file to import.")]},
                                    status=422)
        if len(data) > MAX_CSV_BYTES:
            return _recipients_page(owner, owner_id,
                                    {"file": [gettext("The file is larger than 5 MB.")]},
                                    status=422)
        try:
            report = recipient_service.import_csv(db.session, ref, data)
        except DomainError as exc:
            db.session.rollback()
            fields = error_fields(exc) or {"file": [error_message(exc)]}
            return _recipients_page(owner, owner_id, fields, status=422)
        db.session.commit()
        return _recipients_page(owner, owner_id, report=report)

    def delete(owner_id: int, recipient_id: int):
        ref, _ = _list_ref(owner, owner_id)
        try:
            recipient_service.remove_recipient(db.session, ref, recipient_id)
        except DomainError:
            db.session.rollback()
            abort(404)
        db.session.commit()
        flash(gettext("Recipient removed."), "success")
        return redirect(url_for(f"channels.{owner}_recipients", owner_id=owner_id))

    bp.add_url_rule(f"{prefix}/<int:owner_id>/recipients", f"{owner}_recipients",
                    requires_role("admin")(show), methods=["GET", "POST"])
    bp.add_url_rule(f"{prefix}/<int:owner_id>/recipients/import", f"{owner}_recipients_import",
                    requires_role("admin")(import_csv), methods=["POST"])
    bp.add_url_rule(f"{prefix}/<int:owner_id>/recipients/<int:recipient_id>/delete",
                    f"{owner}_recipients_delete", requires_role("admin")(delete),
                    methods=["POST"])


_register_recipient_views("channel", "")
_register_recipient_views("audience", "/audiences")


@bp.get("/audiences/")
@requires_role("admin")
def audience_lists():
    audiences = options_service.audiences(db.session)
    counts = {a.id: recipient_service.counts(db.session,
                                             recipient_service.ListRef(audience_id=a.id))
              for a in audiences}
    return render_template("channels/audience_lists.html", audiences=audiences, counts=counts,
                           title=gettext("Audience e-mail lists"))
