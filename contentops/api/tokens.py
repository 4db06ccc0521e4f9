"""/api/v1/tokens: list your API tokens and revoke one (admins may revoke anyone's).

Tokens are created with `contentops token create` or on the API tokens page, where the secret
is shown once; the API never returns a token's secret.
"""

from __future__ import annotations

from flask import jsonify

from ..extensions import db
from ..models import ApiToken
from ..services import users as user_service
from . import api_bp
from .auth import api_role, api_user
from .openapi import array, operation, ref
from .schemas import token_dict


@api_bp.get("/tokens")
@api_role("viewer")
@operation("Your API tokens", tag="Tokens", response=array(ref("Token")))
def list_tokens():
    tokens = sorted(user_service.tokens_of(db.session, api_user()), key=lambda t: t.id)
    return jsonify([token_dict(t) for t in tokens])


@api_bp.delete("/tokens/<int:token_id>")
@api_role("viewer")
@operation("Revoke an API token", tag="Tokens", response="Token")
def revoke_token(token_id: int):
    user_service.revoke_token(db.session, token_id, api_user())
    db.session.commit()
    return jsonify(token_dict(db.session.get(ApiToken, token_id)))
