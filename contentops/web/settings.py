"""Settings pages."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext

from ..security import requires_role

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.get("/")
@requires_role("admin")
def index():
    # Placeholder until this area is built.
    return render_template("placeholder.html", title=gettext("Settings"))
