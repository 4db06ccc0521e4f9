"""Sign in, sign out, language switch, own profile."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, lazy_gettext, ngettext
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from ..extensions import db
from ..i18n import LOCALE_COOKIE, translate
from ..security import public, requires_role
from ..services import login_throttle as throttle
from ..services import users as user_service
from ..services.passwords import password_errors
from ..timeutil import is_valid_timezone, utcnow

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(lazy_gettext("E-mail"), validators=[
        DataRequired(message=lazy_gettext("Enter your e-mail address.")),
        Email(message=lazy_gettext("Enter a valid e-mail address.")),
        Length(max=254, message=lazy_gettext("Use at most 254 characters."))])
    password = PasswordField(lazy_gettext("Password"), validators=[
        DataRequired(message=lazy_gettext("Enter your password.")),
        Length(max=200, message=lazy_gettext("Use at most 200 characters."))])
    remember = BooleanField(lazy_gettext("Keep me signed in"))


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


def throttled_message(seconds: int) -> str:
    return ngettext("Too many sign-in attempts; try again in %(num)d minute.",
                    "Too many sign-in attempts; try again in %(num)d minutes.",
                    throttle.minutes(seconds))


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    if form.validate_on_submit():
        secret = current_app.config["SECRET_KEY"]
        now = utcnow()
        account = throttle.account_subject(secret, form.email.data)
        subjects = [account, throttle.ip_subject(secret, request.remote_addr)]
        # Checked before the password, so a refused attempt reveals nothing about it.
        wait = throttle.retry_after(db.session, subjects, now=now)
        if wait is not None:
            db.session.rollback()
            response = make_response(render_template(
                "auth/login.html", form=form, throttled=throttled_message(wait)), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        user = user_service.authenticate(db.session, form.email.data, form.password.data)
        if user is None:
            throttle.record_failure(db.session, subjects, now=now)
            db.session.commit()
            form.password.errors.append(gettext("Wrong e-mail address or password."))
        else:
            throttle.clear(db.session, account)
            db.session.commit()
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")) or url_for("index"))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@requires_role("viewer")
def logout():
    logout_user()
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("auth.login"))


class LanguageForm(FlaskForm):
    lang = SelectField(choices=[SelectChoice("en", "English"), SelectChoice("zh", "简体中文")])


@bp.post("/language")
@public
def language():
    form = LanguageForm()
    lang = form.lang.data if form.validate_on_submit() else None
    target = _safe_next(request.form.get("next")) or url_for("index")
    response = make_response(redirect(target))
    if lang in ("en", "zh"):
        response.set_cookie(LOCALE_COOKIE, lang, max_age=365 * 86400, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"])
        if current_user.is_authenticated:
            current_user.locale = lang
            db.session.commit()
    return response


class ProfileForm(FlaskForm):
    locale = SelectField(lazy_gettext("Language"),
                         choices=[SelectChoice("", lazy_gettext("Browser default")),
                                  SelectChoice("en", "English"), SelectChoice("zh", "简体中文")])
    timezone = SelectField(lazy_gettext("Time zone"))
    new_password = PasswordField(lazy_gettext("New password"), validators=[
        Length(max=200, message=lazy_gettext("Use at most 200 characters."))])


@bp.route("/profile", methods=["GET", "POST"])
@requires_role("viewer")
def profile():
    from ..timeutil import timezone_choices

    form = ProfileForm(obj=current_user)
    form.timezone.choices = [SelectChoice("", gettext("Team time zone"))] + [
        SelectChoice(tz, tz) for tz in timezone_choices()]
    if form.validate_on_submit():
        if form.timezone.data and not is_valid_timezone(form.timezone.data):
            form.timezone.errors.append(gettext("Choose a time zone from the list."))
        elif form.new_password.data and (problems := password_errors(
                form.new_password.data, current_user.email)):
            form.new_password.errors.extend(translate(m) for m in problems)
        else:
            current_user.locale = form.locale.data or None
            current_user.timezone = form.timezone.data or None
            if form.new_password.data:
                user_service.set_password(db.session, current_user, form.new_password.data)
            db.session.commit()
            flash(gettext("Your settings were saved."), "success")
            return redirect(url_for("auth.profile"))
    return render_template("auth/profile.html", form=form)
