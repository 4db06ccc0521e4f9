"""Role checks for views: every route declares who may use it (a test walks them all)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import abort
from flask_login import current_user
from werkzeug.security import check_password_hash, generate_password_hash

F = TypeVar("F", bound=Callable)

PUBLIC = "public"


def requires_role(role: str) -> Callable[[F], F]:
    """Allow signed-in users whose role is at least `role`; others get 403 (or the login page)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                from .extensions import login_manager

                return login_manager.unauthorized()
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """Mark a view as deliberately reachable without signing in."""
    view.required_role = PUBLIC  # type: ignore[attr-defined]
    return view


def hash_password(password: str) -> str:
    # scrypt: memory-hard, Werkzeug's strongest built-in method.
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


def new_token() -> str:
    return "co_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
