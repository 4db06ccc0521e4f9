"""Content pieces in the JSON API: POST/GET /pieces, GET/PATCH /pieces/<id> (DESIGN.md §6)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from ..channels.base import Finding
from ..errors import N_, ValidationError
from ..extensions import db
from ..services import content as content_service
from ..timeutil import utcnow
from . import api_bp, json_body
from .auth import api_role, api_user
from .openapi import operation
from .schemas import piece_dict, piece_summary_dict, warning_dict


def _warnings(findings: list[Finding]) -> list[dict[str, Any]]:
    return [warning_dict(f) for f in findings]


def _check_list_args() -> None:
    """Every problem of the list's parameters at once, in the service's words."""
    fields: dict[str, list[str]] = {}
    for parse in (content_service.parse_filters, content_service.parse_page):
        try:
            parse(request.args, strict=True)
        except ValidationError as exc:
            fields.update(exc.fields)
    if fields:
        raise ValidationError(fields)


@api_bp.get("/pieces")
@api_role("viewer")
@operation("List pieces", tag="Pieces", query="pieces", response="PieceList",
           query_check=lambda: _check_list_args())
def list_pieces():
    filters = content_service.parse_filters(request.args, strict=True)
    page, per_page = content_service.parse_page(request.args, strict=True)
    items, total = content_service.list_pieces(db.session, filters, page=page,
                                               per_page=per_page)
    return jsonify({"items": [piece_summary_dict(p) for p in items],
                    "total": total, "page": page, "per_page": per_page})


@api_bp.post("/pieces")
@api_role("editor")
@operation("Create a piece", tag="Pieces", body="PieceCreate", status=201,
           response="PieceSaved",
           service_check=lambda data: content_service.check(db.session, data))
def create_piece():
    result = content_service.create_piece(db.session, json_body(), author=api_user(),
                                          now=utcnow())
    db.session.commit()
    body = piece_dict(result.piece)
    body["warnings"] = _warnings(result.warnings)
    return jsonify(body), 201


@api_bp.get("/pieces/<int:piece_id>")
@api_role("viewer")
@operation("Show a piece", tag="Pieces", response="Piece")
def get_piece(piece_id: int):
    return jsonify(piece_dict(content_service.get_piece(db.session, piece_id)))


@api_bp.patch("/pieces/<int:piece_id>")
@api_role("editor")
@operation("Change a piece", tag="Pieces", body="PieceUpdate", response="PieceSaved",
           service_check=lambda data, piece_id: content_service.check(
               db.session, {k: v for k, v in data.items() if k != "version"},
               content_service.get_piece(db.session, piece_id)))
def update_piece(piece_id: int):
    piece = content_service.get_piece(db.session, piece_id)
    data = dict(json_body())
    # Optional precondition: the version the client last saw (409 stale_version otherwise).
    expected = data.pop("version", None)
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise ValidationError({"version": [N_("Enter a whole number.")]})
    result = content_service.update_piece(db.session, piece, data, actor=api_user(),
                                          now=utcnow(), expected_version=expected)
    db.session.commit()
    body = piece_dict(result.piece)
    body["warnings"] = _warnings(result.warnings)
    return jsonify(body)
