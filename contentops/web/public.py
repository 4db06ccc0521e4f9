"""Public pages of the web channel (no sign-in)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)
