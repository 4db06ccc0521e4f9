"""Channel settings pages (kinds, config, secrets, test connection)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext

from ..security import requires_role

bp = Blueprint("channels", __name__, url_prefix="/settings/channels")


@bp.get("/")
@requires_role("admin")
def index():
    # Placeholder until this area is built.
    return render_template("placeholder.html", title=gettext("Channels"))
