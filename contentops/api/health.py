"""GET /api/v1/health — no auth; for load balancers, monitoring and the status banner."""

from __future__ import annotations

from flask import jsonify
from sqlalchemy import text

from ..extensions import db
from ..security import public
from ..services import system
from ..timeutil import utcnow
from . import api_bp
from .openapi import operation


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
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "scheduler": {"alive": False, "last_heartbeat": None},
    }
    if database == "ok":
        try:
            body.update(system.health(db.session, now=utcnow()))
        except Exception:  # noqa: BLE001 - e.g. tables missing before `contentops init`
            db.session.rollback()
    return jsonify(body), 200 if database == "ok" else 503

