"""Settings pages (admin): overview, audiences, styles (tone guidelines), campaigns.

Forms render fields and carry the CSRF token; validation lives in services.taxonomy so the
pages and the JSON API refuse exactly the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from ..errors import N_, DomainError, ValidationError
from ..extensions import db
from ..i18n import error_fields, error_message
from ..models import User
from ..security import requires_role
from ..services import options as options_service
from ..services import taxonomy

bp = Blueprint("settings", __name__, url_prefix="/settings")


class AudienceForm(FlaskForm):
    name = StringField(lazy_gettext("Name"), render_kw={"maxlength": 100, "required": True})
    description = TextAreaField(lazy_gettext("Description"), render_kw={"rows": 3})


class StyleForm(FlaskForm):
    name = StringField(lazy_gettext("Name"), render_kw={"maxlength": 100, "required": True})
    description = TextAreaField(lazy_gettext("Description"), render_kw={"rows": 2})
    guidelines = TextAreaField(lazy_gettext("Tone guidelines"), render_kw={"rows": 8})


class CampaignForm(FlaskForm):
    name = StringField(lazy_gettext("Name"), render_kw={"maxlength": 100, "required": True})
    description = TextAreaField(lazy_gettext("Description"), render_kw={"rows": 2})
    starts_on = StringField(lazy_gettext("Starts on"), render_kw={"type": "date"})
    ends_on = StringField(lazy_gettext("Ends on"), render_kw={"type": "date"})
    goal = TextAreaField(lazy_gettext("Goal"), render_kw={"rows": 3})
    goal_reads = StringField(lazy_gettext("Target reads"),
                             render_kw={"inputmode": "numeric"})


@dataclass(frozen=True)
class Section:
    collection: str  # URL segment
    kind: str        # services.taxonomy kind
    form: type[FlaskForm]
    title: str       # msgid (plural)
    singular: str    # msgid
    intro: str       # msgid
    empty: str       # msgid


SECTIONS: dict[str, Section] = {
    "audiences": Section(
        "audiences", "audience", AudienceForm, N_("Audiences"), N_("Audience"),
        N_("Private-domain segments a piece is written for, e.g. new members or "
           "lapsed customers."),
        N_("No audiences yet. Add the segments you write for.")),
    "styles": Section(
        "styles", "style", StyleForm, N_("Styles"), N_("Style"),
        N_("Tones of voice, with guidelines writers see while they write."),
        N_("No styles yet. Add a tone of voice with guidelines for writers.")),
    "campaigns": Section(
        "campaigns", "campaign", CampaignForm, N_("Campaigns"), N_("Campaign"),
        N_("Marketing pushes with dates and a goal; pieces can belong to one."),
        N_("No campaigns yet. Add one to group pieces under a common goal.")),
}


@bp.get("/")
@requires_role("admin")
def index():
    counts = {name: len(taxonomy.list_records(db.session, s.kind))
              for name, s in SECTIONS.items()}
    channel_count = options_service.channel_count(db.session)
    user_count = options_service.active_user_count(db.session)
    return render_template("settings/index.html", sections=SECTIONS, counts=counts,
                           channel_count=channel_count, user_count=user_count,
                           title=gettext("Settings"))


def _form_data(form: FlaskForm) -> dict:
    return {name: field.data for name, field in form._fields.items() if name != "csrf_token"}


def _apply_errors(form: FlaskForm, exc: ValidationError) -> None:
    """Show each service error next to its field; others at the top of the form."""
    for name, messages in error_fields(exc).items():
        field = form._fields.get(name)
        if field is not None:
            field.errors = list(field.errors) + messages
        else:
            flash("; ".join(messages), "error")


def _register(section: Section) -> None:
    prefix = f"/{section.collection}"
    endpoint = section.collection

    def list_view():
        records = taxonomy.list_records(db.session, section.kind)
        usage = taxonomy.usage_counts(db.session, section.kind)
        return render_template("settings/list.html", section=section, records=records,
                               usage=usage, title=gettext(section.title))

    def new_view():
        form = section.form()
        if form.validate_on_submit():
            try:
                record = taxonomy.create_record(db.session, section.kind, _form_data(form),
                                                actor=_actor())
            except ValidationError as exc:
                db.session.rollback()
                _apply_errors(form, exc)
            else:
                db.session.commit()
                flash(gettext("%(name)s was added.", name=record.name), "success")
                return redirect(url_for(f"settings.{endpoint}_list"))
        return render_template("settings/form.html", section=section, form=form, record=None,
                               title=gettext(section.singular)), (
            422 if form.is_submitted() else 200)

    def edit_view(record_id: int):
        record = taxonomy.get_record(db.session, section.kind, record_id)
        form = section.form(obj=record)
        if form.validate_on_submit():
            try:
                taxonomy.update_record(db.session, section.kind, record, _form_data(form),
                                       actor=_actor())
            except ValidationError as exc:
                db.session.rollback()
                _apply_errors(form, exc)
            else:
                db.session.commit()
                flash(gettext("%(name)s was saved.", name=record.name), "success")
                return redirect(url_for(f"settings.{endpoint}_list"))
        elif not form.is_submitted() and section.kind == "campaign":
            # <input type=date> wants ISO dates, not the locale's format.
            form.starts_on.data = record.starts_on.isoformat() if record.starts_on else ""
            form.ends_on.data = record.ends_on.isoformat() if record.ends_on else ""
        usage = taxonomy.usage_count(db.session, section.kind, record.id)
        return render_template("settings/form.html", section=section, form=form,
                               record=record, usage=usage, title=record.name), (
            422 if form.is_submitted() else 200)

    def delete_view(record_id: int):
        record = taxonomy.get_record(db.session, section.kind, record_id)
        form = FlaskForm()
        if not form.validate_on_submit():
            flash(gettext("The form expired or was sent from elsewhere. Reload and try again."),
                  "error")
            return redirect(url_for(f"settings.{endpoint}_list"))
        name = record.name
        try:
            taxonomy.delete_record(db.session, section.kind, record, actor=_actor())
        except DomainError as exc:
            db.session.rollback()
            flash(error_message(exc), "error")
        else:
            db.session.commit()
            flash(gettext("%(name)s was deleted.", name=name), "success")
        return redirect(url_for(f"settings.{endpoint}_list"))

    admin = requires_role("admin")
    bp.add_url_rule(f"{prefix}/", f"{endpoint}_list", admin(list_view), methods=["GET"])
    bp.add_url_rule(f"{prefix}/new", f"{endpoint}_new", admin(new_view),
                    methods=["GET", "POST"])
    bp.add_url_rule(f"{prefix}/<int:record_id>", f"{endpoint}_edit", admin(edit_view),
                    methods=["GET", "POST"])
    bp.add_url_rule(f"{prefix}/<int:record_id>/delete", f"{endpoint}_delete",
                    admin(delete_view), methods=["POST"])


def _actor() -> User:
    from flask_login import current_user

    return current_user._get_current_object()


for _section in SECTIONS.values():
    _register(_section)
