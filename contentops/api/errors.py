"""The one JSON error shape: {"error": {"code", "message", "fields"}} with a 4xx status."""

from __future__ import annotations

from flask import Response, jsonify


def json_error(status: int, code: str, message: str,
               fields: dict[str, list[str]] | None = None) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message, "fields": fields or {}}}), status
