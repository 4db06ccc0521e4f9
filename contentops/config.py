"""Settings from the environment (DESIGN.md §6) and the instance folder."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_TIMEZONE = "Asia/Shanghai"


def default_instance_path() -> Path:
    # The working directory, not the package directory: an installed wheel lives in a
    # read-only site-packages, and `make run` expects ./instance next to the checkout.
    return Path(os.environ.get("CONTENTOPS_INSTANCE_PATH") or Path.cwd() / "instance").resolve()


def _secret_key(instance: Path) -> str:
    """Return the instance's secret key, creating it on first use so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value not in (None, "") else default
    except ValueError:
        return default


def secure_cookies(base_url: str, explicit: str | None = None) -> bool:
    """Whether cookies carry the Secure flag: yes when the app is served over https.

    CONTENTOPS_SECURE_COOKIES overrides the guess, e.g. `1` when a proxy terminates TLS for a
    base URL that is still written http://, or `0` to try an https base URL over plain http.
    """
    return _bool(explicit, base_url.strip().lower().startswith("https://"))


def load_settings(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build the Flask config dict. Explicit overrides win over the environment."""
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    instance = Path(
        overrides.get("INSTANCE_PATH")
        or env.get("CONTENTOPS_INSTANCE_PATH")
        or default_instance_path()
    ).resolve()
    instance.mkdir(parents=True, exist_ok=True)

    db_url = env.get("CONTENTOPS_DATABASE_URL") or f"sqlite:///{instance / 'contentops.db'}"
    settings: dict[str, Any] = {
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SECRET_KEY": env.get("CONTENTOPS_SECRET_KEY") or None,
        "CONTENTOPS_TIMEZONE": env.get("CONTENTOPS_TIMEZONE") or DEFAULT_TIMEZONE,
        # Absolute base for links that leave the app (public pages, e-mails, feeds).
        "CONTENTOPS_BASE_URL": (env.get("CONTENTOPS_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "CONTENTOPS_SCHEDULER": _bool(env.get("CONTENTOPS_SCHEDULER"), True),
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto to believe: the
        # client address then is the real one (sign-in limits, read counts), not the proxy's.
        "CONTENTOPS_TRUSTED_PROXIES": _int(env.get("CONTENTOPS_TRUSTED_PROXIES"), 0),
        "CONTENTOPS_SMTP_URL": env.get("CONTENTOPS_SMTP_URL") or "",
        "CONTENTOPS_MAIL_FROM": env.get("CONTENTOPS_MAIL_FROM") or "contentops@localhost",
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": ["en", "zh"],
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
        "JSON_SORT_KEYS": False,
    }
    settings.update(overrides)
    secure = secure_cookies(settings["CONTENTOPS_BASE_URL"], env.get("CONTENTOPS_SECURE_COOKIES"))
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if name not in overrides:
            settings[name] = secure
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = _secret_key(instance)
    return settings
