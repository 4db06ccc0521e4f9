"""Review endpoints: POST /pieces/<id>/submit|approve|request-changes|comments (DESIGN.md §6)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from ..channels.base import Finding
from ..errors import N_, ValidationError
from ..extensions import db
from ..i18n import translate
from ..services import review
from ..timeutil import utcnow
from . import api_bp, json_body, schemas
from .auth import api_role, api_user
from .openapi import operation


def review_dict(piece, findings: list[Finding] | None = None) -> dict[str, Any]:
    return schemas.review_dict(piece, review.active_approvals(db.session, piece),
                               review.approvals_needed(piece), findings)


def _text(data: dict, name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({name: [N_("Enter text.")]})
    return value


def _version(data: dict) -> int | None:
    value = data.get("version")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({"version": [N_("Enter a whole number.")]})
    return value


def _compliance_error(exc: review.ComplianceBlocked):
    from .errors import json_error

    db.session.rollback()
    fields: dict[str, list[str]] = {}
    for finding in exc.findings:
        fields.setdefault(finding.field or "compliance", []).append(
            translate(finding.message, dict(finding.params)))
    response, status = json_error(422, exc.code, translate(exc.message), fields)
    body = response.get_json()
    body["error"]["findings"] = [schemas.finding_dict(f) for f in exc.findings]
    return jsonify(body), status


@api_bp.post("/pieces/<int:piece_id>/submit")
@api_role("editor")
@operation("Submit a piece for review", tag="Review", body="Submit", body_optional=True,
           response="Review", extra_errors=(422,))
def piece_submit(piece_id: int):
    piece = review.get_piece(db.session, piece_id)
    data = json_body() if _has_body() else {}
    try:
        findings = review.submit(db.session, piece, api_user(), utcnow(),
                                 comment=_text(data, "comment"),
                                 override_reason=_text(data, "override_reason") or None)
    except review.ComplianceBlocked as exc:
        return _compliance_error(exc)
    db.session.commit()
    return jsonify(review_dict(piece, findings))


@api_bp.post("/pieces/<int:piece_id>/approve")
@api_role("approver")
@operation("Approve a piece", tag="Review", body="Approve", body_optional=True,
           response="Review")
def piece_approve(piece_id: int):
    piece = review.get_piece(db.session, piece_id)
    data = json_body() if _has_body() else {}
    review.approve(db.session, piece, api_user(), utcnow(), version=_version(data),
                   comment=_text(data, "comment"))
    db.session.commit()
    return jsonify(review_dict(piece))


@api_bp.post("/pieces/<int:piece_id>/request-changes")
@api_role("approver")
@operation("Request changes", tag="Review", body="RequestChanges", response="Review")
def piece_request_changes(piece_id: int):
    piece = review.get_piece(db.session, piece_id)
    data = json_body()
    review.request_changes(db.session, piece, api_user(), utcnow(),
                           comment=_text(data, "comment"), version=_version(data))
    db.session.commit()
    return jsonify(review_dict(piece))


@api_bp.post("/pieces/<int:piece_id>/comments")
@api_role("editor")
@operation("Comment on a piece", tag="Review", body="CommentCreate", status=201,
           response="Comment")
def piece_comment(piece_id: int):
    piece = review.get_piece(db.session, piece_id)
    data = json_body()
    parent = data.get("parent_id")
    if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int)):
        raise ValidationError({"parent_id": [N_("Enter a whole number.")]})
    comment = review.add_comment(db.session, piece, _text(data, "body"), utcnow(),
                                 author=api_user(), parent_id=parent,
                                 nonce=_text(data, "nonce") or None)
    db.session.commit()
    return jsonify(schemas.comment_dict(comment)), 201


@api_bp.get("/pieces/<int:piece_id>/comments")
@api_role("viewer")
@operation("A piece's comments", tag="Review", response="CommentList")
def piece_comments(piece_id: int):
    piece = review.get_piece(db.session, piece_id)
    return jsonify({"items": [schemas.comment_dict(c)
                              for c in review.comments_of(db.session, piece)]})


def _has_body() -> bool:
    from flask import request

    return bool(request.get_data(cache=True))
