"""The contract published: GET /api/v1/openapi.json, and the readable page at /api/docs
(Swagger UI served from static/vendor; a static script starts it, no inline script)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, url_for

from ..security import public
from . import api_bp
from .openapi import build_document, operation

# /api/docs is a page, not part of /api/v1: it lives on a blueprint of its own.
docs_bp = Blueprint("api_docs", __name__)


@api_bp.get("/openapi.json")
@public
@operation("This document", tag="System", response="OpenAPI",
           description="The OpenAPI 3.1 description of the API; no authentication.")
def openapi_document():
    return jsonify(build_document(current_app))


@docs_bp.get("/api/docs")
@public
def api_docs():
    return render_template("api/docs.html", spec_url=url_for("api.openapi_document"))
