"""GET /api/v1/health — no auth; for load balancers, monitoring and the status banner.

`status` is `ok` or `degraded`; when degraded, `reasons` lists why as codes for machines
(`database_error`, `scheduler_down`: no scheduler alive while posts are due) and `message`
says it in the caller's language. A dead database answers 503; a missing scheduler answers
200 (the web side still serves), degraded.
"""

from __future__ import annotations

from flask import jsonify
from sqlalchemy import text

from ..errors import N_
from ..extensions import db
from ..i18n import translate
from ..security import public
from ..services import system
from ..timeutil import utcnow
from . import api_bp
from .openapi import operation

DATABASE_ERROR = N_("The database does not answer.")


@api_bp.get("/health")
@public
@operation("Health", tag="System", response="Health", others=((503, "Health"),),
           description="No authentication; for load balancers and monitoring.")
def health():
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - health must answer, whatever the database does
        db.session.rollback()
        database = "error"
    problems: list[dict] = []
    body = {
        "status": "ok",
        "database": database,
        "scheduler": {"alive": False, "last_heartbeat": None},
    }
    if database == "ok":
        try:
            figures = system.health(db.session, now=utcnow())
            problems = figures.pop("problems")
            body.update(figures)
        except Exception:  # noqa: BLE001 - e.g. tables missing before `contentops init`
            db.session.rollback()
    else:
        problems = [{"code": "database_error", "message": DATABASE_ERROR, "params": {}}]
    body["status"] = "degraded" if problems else "ok"
    body["reasons"] = [p["code"] for p in problems]
    body["message"] = " ".join(translate(p["message"], p["params"]) for p in problems)
    return jsonify(body), 200 if database == "ok" else 503

