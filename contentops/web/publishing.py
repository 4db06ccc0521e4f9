"""Publishing pages."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext

from ..security import requires_role

bp = Blueprint("publishing", __name__, url_prefix="/publishing")


@bp.get("/")
@requires_role("editor")
def index():
    # Placeholder until this area is built.
    return render_template("placeholder.html", title=gettext("Publishing"))
