"""GET /api/v1/health — no auth; for load balancers and the status banner."""

from __future__ import annotations

from flask import jsonify
from sqlalchemy import text

from ..extensions import db
from ..security import public
from . import api_bp


@api_bp.get("/health")
@public
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
    return jsonify(body), 200 if database == "ok" else 503
