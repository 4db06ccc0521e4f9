"""Accounts and API tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import N_, DomainError, NotFound, ValidationError
from ..models import ROLES, ApiToken, User
from ..security import hash_password, new_token, token_digest, verify_password
from ..timeutil import utcnow
from . import audit
from .passwords import (
    MIN_PASSWORD_LENGTH,  # noqa: F401 - the rule's old home
    check_password,
    password_errors,
)


def normalise_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError({"email": [N_("Enter a valid e-mail address.")]}) from exc


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(
    session: Session,
    email: str,
    role: str,
    *,
    name: str | None = None,
    password: str | None = None,
    actor: User | None = None,
) -> tuple[User, str | None]:
    """Create a user. Returns (user, generated_password or None when one was given)."""
    errors: dict[str, list[str]] = {}
    try:
        email = normalise_email(email)
    except ValidationError as exc:
        errors.update(exc.fields)
    if role not in ROLES:
        errors["role"] = [N_("Choose one of the roles.")]
    if password is not None and (problems := password_errors(password, email)):
        errors["password"] = problems
    if name is not None and len(name) > 100:
        errors["name"] = [N_("Use at most 100 characters.")]
    if not errors.get("email") and find_by_email(session, email):
        errors["email"] = [N_("A user with this e-mail address already exists.")]
    if errors:
        raise ValidationError(errors)
    generated = None
    if password is None:
        generated = secrets.token_urlsafe(12)
        password = generated
    user = User(
        email=email,
        name=(name or email.split("@")[0])[:100],
        role=role,
        password_hash=hash_password(password),
        active=True,
        notification_prefs={},
    )
    session.add(user)
    session.flush()
    audit.record(session, "user.created", "user", user.id, actor=actor, data={"role": role})
    return user, generated


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = find_by_email(session, email)
    if user is None or not user.active or not verify_password(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    return user


def set_role(session: Session, user: User, role: str, actor: User) -> None:
    if role not in ROLES:
        raise ValidationError({"role": [N_("Choose one of the roles.")]})
    if user.id == actor.id and role != "admin":
        raise DomainError(N_("You cannot remove your own admin role."))
    old = user.role
    user.role = role
    audit.record(session, "user.role_changed", "user", user.id, actor=actor,
                 data={"from": old, "to": role})


def set_active(session: Session, user: User, active: bool, actor: User) -> None:
    if user.id == actor.id and not active:
        raise DomainError(N_("You cannot deactivate yourself."))
    user.active = active
    audit.record(session, "user.activated" if active else "user.deactivated", "user", user.id,
                 actor=actor)


def set_password(session: Session, user: User, password: str) -> None:
    check_password(password, user.email)
    user.password_hash = hash_password(password)


def create_token(session: Session, user: User, name: str = "") -> tuple[ApiToken, str]:
    """Create a bearer token; the plain token is returned once and never stored."""
    plain = new_token()
    token = ApiToken(user_id=user.id, name=name[:100], prefix=plain[:10],
                     token_hash=token_digest(plain))
    session.add(token)
    session.flush()
    audit.record(session, "token.created", "user", user.id, actor=user, data={"token": token.id})
    return token, plain


def revoke_token(session: Session, token_id: int, user: User, now: datetime | None = None) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != user.id and user.role != "admin"):
        raise NotFound(N_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        audit.record(session, "token.revoked", "user", token.user_id, actor=user,
                     data={"token": token.id})


def user_for_token(session: Session, plain: str, now: datetime | None = None) -> User | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(plain)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    token.last_used_at = now or utcnow()
    return token.user


def list_users(session: Session) -> list[User]:
    """Active users first, then by e-mail (the users page)."""
    return list(session.scalars(select(User).order_by(User.active.desc(),
                                                      func.lower(User.email))))


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """A user's API tokens, newest first."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc())))


def locale_of(session: Session, email: str, languages: Iterable[str]) -> str | None:
    """The chosen language of the person with this address, if they have an account and a
    language the app speaks (pages for people who are not signed in, e.g. confirm links)."""
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    locale = user.locale if user is not None else None
    return locale if locale in set(languages) else None
