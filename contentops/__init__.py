"""ContentOps: a self-hosted content marketing calendar and publishing manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Wire config, extensions, blueprints and CLI. No I/O beyond the instance folder."""
    from .config import load_settings
    from .paths import asset_dir

    settings = load_settings(config)
    app = Flask(
        __name__,
        instance_path=settings["INSTANCE_PATH"],
        template_folder=str(asset_dir("templates")),
        static_folder=str(asset_dir("static")),
    )
    app.config.update(settings)
    proxies = int(app.config.get("CONTENTOPS_TRUSTED_PROXIES") or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    # Every id in a URL is a database integer: a larger number must be "not found" (404),
    # never an overflow inside the database driver (500). Longer digit strings match no
    # route; a 10-digit number past the column's range becomes 0, which is no row's id
    # (refusing it in the converter would make werkzeug answer 405 instead).
    from werkzeug.routing import IntegerConverter

    class IdConverter(IntegerConverter):
        regex = r"\d{1,10}"

        def to_python(self, value: str) -> int:
            number = super().to_python(value)
            return number if number <= 2**31 - 1 else 0

    app.url_map.converters["int"] = IdConverter

    from . import models  # noqa: F401 - register the schema
    from .extensions import babel, csrf, db, login_manager, migrate
    from .i18n import select_locale, select_timezone

    db.init_app(app)
    migrate.init_app(app, db, directory=str(asset_dir("migrations")), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)

    from .web import register_web

    register_web(app)

    from .api import api_bp

    csrf.exempt(api_bp)  # the API authenticates with bearer tokens or checks CSRF itself
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    from .api.docs import docs_bp

    app.register_blueprint(docs_bp)

    from .cli import register_cli

    register_cli(app)
    return app
