"""User administration (admin) and everyone's own API tokens."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..errors import DomainError, ValidationError
from ..extensions import db
from ..i18n import error_fields, error_message
from ..labels import ROLE_DESCRIPTIONS, ROLE_LABELS
from ..models import ROLES, ApiToken, User
from ..security import requires_role
from ..services import users as user_service

bp = Blueprint("users", __name__, url_prefix="/users")


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(role, lazy_gettext(ROLE_LABELS[role])) for role in reversed(ROLES)]


class AddUserForm(FlaskForm):
    email = EmailField(lazy_gettext("E-mail"), validators=[
        DataRequired(message=lazy_gettext("Enter an e-mail address.")),
        Length(max=254, message=lazy_gettext("Use at most 254 characters."))])
    name = StringField(lazy_gettext("Name"), validators=[
        Optional(), Length(max=100, message=lazy_gettext("Use at most 100 characters."))])
    role = SelectField(lazy_gettext("Role"), default="editor")
    password = PasswordField(lazy_gettext("Password"), validators=[
        Optional(), Length(min=10, max=200,
                           message=lazy_gettext("Use between 10 and 200 characters."))])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


class RoleForm(FlaskForm):
    role = SelectField(lazy_gettext("Role"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


class TokenForm(FlaskForm):
    name = StringField(lazy_gettext("Label"), validators=[
        DataRequired(message=lazy_gettext("Give the token a label you will recognise.")),
        Length(max=100, message=lazy_gettext("Use at most 100 characters."))],
        render_kw={"placeholder": lazy_gettext("e.g. reporting script")})


def _actor() -> User:
    return current_user._get_current_object()


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _check_csrf() -> bool:
    if FlaskForm().validate_on_submit():
        return True
    flash(gettext("The form expired or was sent from elsewhere. Reload and try again."),
          "error")
    return False


@bp.get("/")
@requires_role("admin")
def index():
    users = user_service.list_users(db.session)
    return render_template("users/index.html", users=users, title=gettext("Users"),
                           role_descriptions=ROLE_DESCRIPTIONS, roles=list(reversed(ROLES)))


@bp.route("/new", methods=["GET", "POST"])
@requires_role("admin")
def new():
    form = AddUserForm()
    if form.validate_on_submit():
        try:
            user, generated = user_service.create_user(
                db.session, form.email.data, form.role.data, name=form.name.data or None,
                password=form.password.data or None, actor=_actor())
        except ValidationError as exc:
            db.session.rollback()
            for name, messages in error_fields(exc).items():
                getattr(form, name).errors = list(getattr(form, name).errors) + messages
        else:
            db.session.commit()
            # Rendered, not flashed: a generated password must never sit in a session cookie.
            return render_template("users/created.html", user=user, password=generated,
                                   title=gettext("User added"))
    return render_template("users/new.html", form=form, title=gettext("Add a user")), (
        422 if form.is_submitted() else 200)


@bp.get("/<int:user_id>")
@requires_role("admin")
def show(user_id: int):
    user = _user_or_404(user_id)
    tokens = user_service.tokens_of(db.session, user)
    return render_template("users/show.html", user=user, tokens=tokens,
                           role_form=RoleForm(role=user.role), title=user.name)


@bp.post("/<int:user_id>/role")
@requires_role("admin")
def change_role(user_id: int):
    user = _user_or_404(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        flash(gettext("Choose one of the roles."), "error")
        return redirect(url_for("users.show", user_id=user.id))
    try:
        user_service.set_role(db.session, user, form.role.data, _actor())
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc), "error")
    else:
        db.session.commit()
        flash(gettext("%(name)s is now: %(role)s.", name=user.name,
                      role=gettext(ROLE_LABELS[user.role])), "success")
    return redirect(url_for("users.show", user_id=user.id))


def _set_active(user_id: int, active: bool):
    user = _user_or_404(user_id)
    if not _check_csrf():
        return redirect(url_for("users.show", user_id=user.id))
    try:
        user_service.set_active(db.session, user, active, _actor())
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc), "error")
    else:
        db.session.commit()
        flash(gettext("%(name)s can sign in again.", name=user.name) if active else
              gettext("%(name)s can no longer sign in; their API tokens stop working.",
                      name=user.name), "success")
    return redirect(url_for("users.show", user_id=user.id))


@bp.post("/<int:user_id>/deactivate")
@requires_role("admin")
def deactivate(user_id: int):
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/activate")
@requires_role("admin")
def activate(user_id: int):
    return _set_active(user_id, True)


@bp.post("/<int:user_id>/tokens/<int:token_id>/revoke")
@requires_role("admin")
def revoke_user_token(user_id: int, token_id: int):
    user = _user_or_404(user_id)
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        abort(404)
    if _check_csrf():
        user_service.revoke_token(db.session, token.id, _actor())
        db.session.commit()
        flash(gettext("The token was revoked."), "success")
    return redirect(url_for("users.show", user_id=user.id))


# --- Everyone's own API tokens ----------------------------------------------------------------

@bp.route("/me/tokens", methods=["GET", "POST"])
@requires_role("viewer")
def my_tokens():
    form = TokenForm()
    created = None
    if form.validate_on_submit():
        _token, created = user_service.create_token(db.session, _actor(), form.name.data.strip())
        db.session.commit()
        form = TokenForm(formdata=None)
    tokens = user_service.tokens_of(db.session, current_user)
    status = 422 if form.errors else 200
    return render_template("users/tokens.html", form=form, tokens=tokens, created=created,
                           title=gettext("API tokens")), status


@bp.post("/me/tokens/<int:token_id>/revoke")
@requires_role("viewer")
def revoke_my_token(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    if _check_csrf():
        user_service.revoke_token(db.session, token.id, _actor())
        db.session.commit()
        flash(gettext("The token was revoked."), "success")
    return redirect(url_for("users.my_tokens"))
