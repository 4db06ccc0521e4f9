"""Users pages."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext

from ..security import requires_role

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.get("/")
@requires_role("admin")
def index():
    # Placeholder until this area is built.
    return render_template("placeholder.html", title=gettext("Users"))
