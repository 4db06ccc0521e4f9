"""Review pages: the approvers' queue, the review panel of a piece (actions, comments, history,
diff, per-channel previews), live compliance checks, reviewer links and review settings."""

from __future__ import annotations

import secrets
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
from flask_babel import format_timedelta, gettext
from flask_login import current_user
from markupsafe import Markup

from ..errors import N_, DomainError, ValidationError
from ..extensions import db
from ..i18n import error_fields, error_message, translate
from ..jsonutil import request_json
from ..models import AuditEvent, ContentPiece
from ..models.review import ReviewLink
from ..security import public, requires_role
from ..services import app_settings, compliance, diff, review
from ..services import preview as preview_service
from ..services.channels import build_adapter
from ..timeutil import utcnow

bp = Blueprint("review", __name__, url_prefix="/review")

# History entries: audit action -> what happened, as a msgid.
HISTORY_LABELS: dict[str, str] = {
    "piece.submit": N_("submitted it for review"),
    "piece.approve": N_("approved it"),
    "piece.request_changes": N_("requested changes"),
    "piece.withdraw": N_("withdrew it from review"),
    "piece.reopen": N_("reopened it"),
    "piece.edit": N_("edited it (new version)"),
    "piece.comment": N_("commented"),
    "piece.compliance_override": N_("submitted despite compliance errors"),
    "piece.link_created": N_("created a reviewer link"),
    "piece.link_revoked": N_("revoked a reviewer link"),
    "piece.external_approved": N_("approved it through a reviewer link"),
    "piece.external_changes_requested": N_("requested changes through a reviewer link"),
    "piece.created": N_("created it"),
    "piece.updated": N_("edited it"),
}


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _piece_or_404(piece_id: int) -> ContentPiece:
    piece = db.session.get(ContentPiece, piece_id)
    if piece is None:
        abort(404)
    return piece


def _safe_next(default: str) -> str:
    target = request.form.get("next") or request.args.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


# --- template helpers -----------------------------------------------------------------------

@bp.app_context_processor
def _inject() -> dict[str, Any]:
    if not getattr(current_user, "is_authenticated", False):
        return {}
    from ..services import notifications

    out: dict[str, Any] = {"notifications_unread": notifications.unread_count(
        db.session, current_user)}
    if current_user.has_role("approver"):
        out["review_badge"] = review.queue_count(db.session)
    return out


@bp.app_template_global()
def piece_url(piece: ContentPiece) -> str:
    """The piece's own page (the pieces area)."""
    return url_for("pieces.view", piece_id=piece.id)


@bp.app_template_global()
def review_state_label(state: str) -> str:
    return gettext(review.state_label(state))


@bp.app_template_global()
def finding_text(finding) -> str:
    return translate(finding.message, dict(finding.params))


@bp.app_template_global()
def review_panel(piece: ContentPiece) -> dict[str, Any]:
    """Everything the review panel on a piece page shows."""
    user = current_user
    approvals = review.active_approvals(db.session, piece)
    return {
        "actions": review.allowed_actions(db.session, piece, user),
        "approvals": approvals,
        # Pieces approved before approvals were recorded one by one (imports, demo data)
        # still count as approved once.
        "approval_count": max(len(approvals), 1 if piece.is_approved_as_is else 0),
        "needed": review.approvals_needed(piece),
        "two_channels": review.two_approval_channels(piece),
        "findings": compliance.check_piece(db.session, piece),
        "threads": review.comment_threads(db.session, piece),
        "history": review.history(db.session, piece),
        "versions": review.versions(db.session, piece),
        "held": [p for p in piece.posts if p.hold is not None],
        "links": review.links_for(db.session, piece) if user.has_role("editor") else [],
        "may_override": compliance.may_override(db.session, user),
        "now": utcnow(),
    }


@bp.app_template_global()
def form_nonce() -> str:
    """A one-off value in a form so that sending it twice is recognised."""
    return secrets.token_hex(12)


@bp.app_template_global()
def comment_html(comment) -> Markup:
    return Markup(review.comment_html(comment))  # escaped, then sanitised


@bp.app_template_global()
def history_text(event: AuditEvent) -> str:
    label = HISTORY_LABELS.get(event.action)
    return gettext(label) if label else event.action


@bp.app_template_global()
def link_url(link: ReviewLink) -> str:
    return url_for("review.external", token=review.link_token(link, _secret()), _external=True)


# --- queue ----------------------------------------------------------------------------------

@bp.get("/")
@requires_role("approver")
def index():
    now = utcnow()
    items = review.review_queue(db.session, now)
    return render_template("review/queue.html", title=gettext("Review queue"), items=items,
                           waited=lambda d: format_timedelta(d, threshold=1.1))


# --- piece review page ----------------------------------------------------------------------

def _diff_pair(piece: ContentPiece) -> tuple[int, int]:
    versions = review.versions(db.session, piece)
    default_a = piece.approved_version or (versions[-2] if len(versions) > 1 else versions[-1])
    try:
        a = int(request.args.get("a", default_a))
        b = int(request.args.get("b", piece.version))
    except ValueError:
        a, b = default_a, piece.version
    if a not in versions:
        a = default_a
    if b not in versions:
        b = piece.version
    return a, b


def _diff(piece: ContentPiece, a: int, b: int) -> dict[str, Any] | None:
    ra, rb = review.revision(db.session, piece, a), review.revision(db.session, piece, b)
    if ra is None or rb is None:
        return None
    return {
        "a": a, "b": b,
        "title": Markup(diff.inline_diff(ra.title, rb.title)),
        "summary": Markup(diff.inline_diff(ra.summary or "", rb.summary or "")),
        "body": Markup(diff.inline_diff(ra.body or "", rb.body or "")),
        "same": (ra.title, ra.body, ra.summary) == (rb.title, rb.body, rb.summary),
    }


def _previews(piece: ContentPiece) -> list[preview_service.Preview]:
    adapters = {}
    for post in piece.posts:
        if post.channel_id in adapters:
            continue
        try:
            adapters[post.channel_id] = build_adapter(post.channel, _secret())
        except Exception:  # unknown kind or unreadable secrets: the preview says so
            current_app.logger.warning("no adapter for channel %s", post.channel_id)
    return preview_service.previews(piece, adapters, current_app.config["CONTENTOPS_BASE_URL"])


@bp.app_template_global()
def review_diff(piece: ContentPiece) -> dict[str, Any] | None:
    """The default comparison on a piece page: approved (or previous) version → current."""
    if len(review.versions(db.session, piece)) < 2:
        return None
    a, b = _diff_pair(piece)
    return _diff(piece, a, b)


@bp.app_template_global()
def channel_previews(piece: ContentPiece) -> list[preview_service.Preview]:
    return _previews(piece)


@bp.get("/pieces/<int:piece_id>")
@requires_role("viewer")
def piece(piece_id: int):
    item = _piece_or_404(piece_id)
    return render_template("review/piece.html", title=item.title, piece=item)


@bp.get("/pieces/<int:piece_id>/diff")
@requires_role("viewer")
def piece_diff(piece_id: int):
    item = _piece_or_404(piece_id)
    a, b = _diff_pair(item)
    return render_template("review/diff.html", title=gettext("Changes"), piece=item,
                           diff=_diff(item, a, b))


# --- actions --------------------------------------------------------------------------------

def _form_version() -> int | None:
    raw = request.form.get("version", "")
    return int(raw) if raw.isdigit() else None


def _act(piece_id: int, action: str):
    item = _piece_or_404(piece_id)
    user = current_user._get_current_object()
    back = _safe_next(url_for("review.piece", piece_id=item.id))
    state = request.form.get("state")
    if state and state != item.status and review.already_done(db.session, item, action, user):
        flash(gettext("That was already done."), "info")
        return redirect(back)
    now = utcnow()
    comment = request.form.get("comment", "")
    try:
        if action == "submit":
            findings = review.submit(db.session, item, user, now, comment=comment,
                                     override_reason=request.form.get("override_reason"))
            warnings = [f for f in findings if f.severity == "warning"]
            message = gettext("Submitted for review.")
            if warnings:
                message += " " + gettext("%(n)s warning(s) remain.", n=len(warnings))
        elif action == "withdraw":
            review.withdraw(db.session, item, user, now, comment=comment)
            message = gettext("Withdrawn from review.")
        elif action == "reopen":
            review.reopen(db.session, item, user, now, comment=comment)
            message = gettext("Reopened; the piece is a draft again.")
        elif action == "approve":
            review.approve(db.session, item, user, now, version=_form_version(),
                           comment=comment)
            message = gettext("Approved.")
            if review.awaiting_second_approval(db.session, item):
                message += " " + gettext("A second approver is still needed.")
        else:
            review.request_changes(db.session, item, user, now, comment=comment,
                                   version=_form_version())
            message = gettext("Changes requested.")
    except review.StaleVersion as exc:
        db.session.rollback()
        a = exc.seen if exc.seen in review.versions(db.session, item) else item.version
        return render_template("review/stale.html", title=gettext("The piece changed"),
                               piece=item, message=error_message(exc),
                               diff=_diff(item, a, item.version)), 409
    except ValidationError as exc:
        db.session.rollback()
        flash(error_message(exc), "error")
        for name, msgs in error_fields(exc).items():
            for msg in msgs:
                flash(f"{_field_label(name)}: {msg}", "error")
        return redirect(back)
    except review.InvalidTransition as exc:
        db.session.rollback()
        flash(gettext("“%(action)s” is not possible while the piece is %(state)s.",
                      action=gettext(review.ACTION_LABELS.get(exc.action, exc.action)),
                      state=review_state_label(exc.state)), "error")
        return redirect(back)
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc), "error")
        return redirect(back)
    db.session.commit()
    flash(message, "success")
    return redirect(back)


def _field_label(name: str) -> str:
    labels = {"title": gettext("Title"), "body": gettext("Body"), "summary": gettext("Summary"),
              "audience_id": gettext("Audience"), "style_id": gettext("Style"),
              "comment": gettext("Comment"), "override_reason": gettext("Reason"),
              "compliance": gettext("Checks")}
    return labels.get(name, name)


@bp.post("/pieces/<int:piece_id>/submit")
@requires_role("editor")
def submit(piece_id: int):
    return _act(piece_id, "submit")


@bp.post("/pieces/<int:piece_id>/withdraw")
@requires_role("editor")
def withdraw(piece_id: int):
    return _act(piece_id, "withdraw")


@bp.post("/pieces/<int:piece_id>/reopen")
@requires_role("editor")
def reopen(piece_id: int):
    return _act(piece_id, "reopen")


@bp.post("/pieces/<int:piece_id>/approve")
@requires_role("approver")
def approve(piece_id: int):
    return _act(piece_id, "approve")


@bp.post("/pieces/<int:piece_id>/request-changes")
@requires_role("approver")
def request_changes(piece_id: int):
    return _act(piece_id, "request_changes")


@bp.post("/pieces/<int:piece_id>/comments")
@requires_role("editor")
def comment(piece_id: int):
    item = _piece_or_404(piece_id)
    parent = request.form.get("parent_id", "")
    try:
        added = review.add_comment(db.session, item, request.form.get("body", ""), utcnow(),
                                   author=current_user._get_current_object(),
                                   parent_id=int(parent) if parent.isdigit() else None,
                                   nonce=request.form.get("nonce") or None)
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc) + " " + " ".join(
            m for msgs in error_fields(exc).values() for m in msgs), "error")
        return redirect(_safe_next(url_for("review.piece", piece_id=item.id)))
    db.session.commit()
    return redirect(_safe_next(url_for("review.piece", piece_id=item.id))
                    + f"#comment-{added.id}")


# --- live checks ----------------------------------------------------------------------------

@bp.post("/checks")
@requires_role("editor")
def checks():
    data = request_json()
    if not isinstance(data, dict):
        return jsonify({"error": {"code": "bad_request", "message": gettext(
            "Send a JSON object with Content-Type: application/json."), "fields": {}}}), 400
    draft = compliance.draft_from_data(db.session, data)
    findings = compliance.check(db.session, draft)
    return jsonify({"findings": [
        {"code": f.code, "severity": f.severity, "field": f.field,
         "message": translate(f.message, dict(f.params)),
         "params": dict(f.params)} for f in findings],
        "errors": sum(1 for f in findings if f.severity == "error"),
        "warnings": sum(1 for f in findings if f.severity == "warning")})


# --- reviewer links -------------------------------------------------------------------------

@bp.post("/pieces/<int:piece_id>/links")
@requires_role("editor")
def create_link(piece_id: int):
    item = _piece_or_404(piece_id)
    raw = request.form.get("days", "7")
    try:
        _link, token = review.create_link(
            db.session, item, current_user._get_current_object(), utcnow(),
            secret_key=_secret(), days=int(raw) if raw.isdigit() else 0,
            note=request.form.get("note", ""))
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc) + " " + " ".join(
            m for msgs in error_fields(exc).values() for m in msgs), "error")
        return redirect(_safe_next(url_for("review.piece", piece_id=item.id)))
    db.session.commit()
    flash(gettext("Reviewer link created: %(url)s",
                  url=url_for("review.external", token=token, _external=True)), "success")
    return redirect(_safe_next(url_for("review.piece", piece_id=item.id)) + "#review-links")


@bp.post("/links/<int:link_id>/revoke")
@requires_role("editor")
def revoke_link(link_id: int):
    link = db.session.get(ReviewLink, link_id)
    if link is None:
        abort(404)
    review.revoke_link(db.session, link, current_user._get_current_object(), utcnow())
    db.session.commit()
    flash(gettext("The link no longer works."), "success")
    return redirect(_safe_next(url_for("review.piece", piece_id=link.piece_id))
                    + "#review-links")


@bp.route("/external/<token>", methods=["GET", "POST"])
@public
def external(token: str):
    now = utcnow()
    try:
        link = review.resolve_link(db.session, token, now, secret_key=_secret())
    except DomainError as exc:
        return render_template("review/external_invalid.html", title=gettext("Review link"),
                               message=error_message(exc)), 404 if exc.code == \
            "link_invalid" else 410
    item = link.piece
    rev = review.revision(db.session, item, link.version)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if request.form.get("decision"):
                review.external_decision(db.session, link, request.form.get("decision", ""),
                                         request.form.get("name", ""),
                                         request.form.get("comment", ""), now)
                message = gettext("Thank you, your decision was recorded.")
            else:
                name = " ".join(request.form.get("name", "").split())
                if not name:
                    raise ValidationError({"name": [N_("Tell us your name.")]})
                review.add_comment(db.session, item, request.form.get("comment", ""), now,
                                   author_label=name, nonce=request.form.get("nonce") or None)
                message = gettext("Thank you, your comment was added.")
        except DomainError as exc:
            db.session.rollback()
            errors = error_fields(exc) or {"_": [error_message(exc)]}
        else:
            db.session.commit()
            flash(message, "success")
            return redirect(url_for("review.external", token=token))
    previews = []
    if rev is not None and item.version == link.version:
        previews = _previews(item)
    from ..rendering import markdown_to_html

    return render_template("review/external.html", title=rev.title if rev else item.title,
                           link=link, piece=item, rev=rev,
                           body_html=Markup(markdown_to_html(rev.body if rev else "")),
                           previews=previews, errors=errors, form=request.form,
                           outdated=item.version != link.version)


# --- settings -------------------------------------------------------------------------------

@bp.route("/settings", methods=["GET", "POST"])
@requires_role("admin")
def settings():
    user = current_user._get_current_object()
    if request.method == "POST":
        app_settings.put(db.session, "review.allow_self_approval",
                         request.form.get("allow_self_approval") == "on", actor=user)
        app_settings.put(db.session, "compliance.allow_override",
                         request.form.get("allow_override") == "on", actor=user)
        db.session.commit()
        flash(gettext("Settings saved."), "success")
        return redirect(url_for("review.settings"))
    terms = compliance.list_terms(db.session)
    db.session.commit()
    return render_template(
        "review/settings.html", title=gettext("Review settings"), terms=terms,
        allow_self=app_settings.get(db.session, "review.allow_self_approval"),
        allow_override=app_settings.get(db.session, "compliance.allow_override"),
        errors={})


@bp.post("/settings/terms")
@requires_role("admin")
def add_term():
    try:
        compliance.add_term(db.session, request.form.get("term", ""),
                            request.form.get("severity", "error"),
                            actor=current_user._get_current_object())
    except DomainError as exc:
        db.session.rollback()
        errors = error_fields(exc)
        return render_template(
            "review/settings.html", title=gettext("Review settings"),
            terms=compliance.list_terms(db.session),
            allow_self=app_settings.get(db.session, "review.allow_self_approval"),
            allow_override=app_settings.get(db.session, "compliance.allow_override"),
            errors=errors, term_value=request.form.get("term", "")), 422
    db.session.commit()
    flash(gettext("Term added."), "success")
    return redirect(url_for("review.settings") + "#terms")


@bp.post("/settings/terms/<int:term_id>/delete")
@requires_role("admin")
def delete_term(term_id: int):
    compliance.remove_term(db.session, term_id, actor=current_user._get_current_object())
    db.session.commit()
    flash(gettext("Term removed."), "success")
    return redirect(url_for("review.settings") + "#terms")
