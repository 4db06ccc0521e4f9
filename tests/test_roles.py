"""Every route declares who may use it, and the server enforces it for every role."""

from __future__ import annotations

import re

import pytest

from contentops.models import ROLES, role_rank
from contentops.security import PUBLIC


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        methods = sorted(m for m in rule.methods if m not in {"HEAD", "OPTIONS"})
        yield rule, view, methods


def _url(rule) -> str:
    # Fill every converter with an id that does not exist: the role check must come first.
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "999999" if "id" in m.group(1)
                  else "nosuchthing", rule.rule)


def test_every_route_declares_a_role(app):
    undeclared = [rule.rule for rule, view, _ in _routes(app)
                  if getattr(view, "required_role", None) is None]
    assert undeclared == []


@pytest.mark.parametrize("role", ROLES)
def test_roles_are_enforced_on_every_route(app, make_user, login, role):
    client = app.test_client()
    login(make_user(role), client)
    checked = 0
    for rule, view, methods in _routes(app):
        required = view.required_role
        if required == PUBLIC or rule.endpoint in {"auth.logout"}:
            continue
        for method in methods:
            response = client.open(_url(rule), method=method, json={} if rule.rule.startswith(
                "/api/") else None, data=None if rule.rule.startswith("/api/") else {})
            allowed = role_rank(role) >= role_rank(required)
            if allowed:
                assert response.status_code != 403, (method, rule.rule, role)
                assert response.status_code < 500, (method, rule.rule, role, response.data[:300])
            else:
                assert response.status_code == 403, (method, rule.rule, role,
                                                     response.status_code)
            checked += 1
    assert checked > 0


def test_anonymous_users_are_sent_to_login_or_refused(app):
    client = app.test_client()
    for rule, view, methods in _routes(app):
        if view.required_role == PUBLIC:
            continue
        for method in methods:
            response = client.open(_url(rule), method=method)
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401, (method, rule.rule)
            else:
                assert response.status_code in (302, 401), (method, rule.rule)
                if response.status_code == 302:
                    assert "/login" in response.headers["Location"]


# --- The same walk over pages that show real objects -----------------------------------------

# URL segment before an id converter → the model whose id fills it.
COLLECTION_MODELS = {
    "audiences": "Audience", "styles": "Style", "campaigns": "Campaign",
    "channels": "Channel", "pieces": "ContentPiece", "posts": "Post", "users": "User",
    "tokens": "ApiToken", "revisions": "PieceRevision", "attempts": "PublishAttempt",
}
PARAM_MODELS = {
    "piece_id": "ContentPiece", "post_id": "Post", "user_id": "User", "channel_id": "Channel",
    "audience_id": "Audience", "style_id": "Style", "campaign_id": "Campaign",
    "token_id": "ApiToken", "revision_id": "PieceRevision", "event_id": "AuditEvent",
}


def _real_url(rule, db) -> str | None:
    """Fill each id converter with an existing object's id, inferred from its name or from
    the path segment before it; None when a converter cannot be filled."""
    import contentops.models as models

    parts = rule.rule.split("/")
    out = []
    for index, part in enumerate(parts):
        match = re.fullmatch(r"<(?:([^:>]+):)?([^>]+)>", part)
        if not match:
            out.append(part)
            continue
        converter, name = match.groups()
        model_name = PARAM_MODELS.get(name)
        if model_name is None and index:
            model_name = COLLECTION_MODELS.get(parts[index - 1])
        if model_name is None or (converter and converter != "int"):
            return None
        model = getattr(models, model_name)
        first = db.session.query(model.id).order_by(model.id).first()
        if first is None:
            return None
        out.append(str(first[0]))
    return "/".join(out)


@pytest.mark.parametrize("role", ROLES)
def test_pages_with_demo_data_render_for_allowed_roles_only(app, db, make_user, login, role):
    from contentops.services.demo import load_demo

    login(make_user("admin"), app.test_client())  # an admin exists, as after `init`
    load_demo(db.session, secret_key="k" * 32, base_url="http://testserver")
    db.session.commit()
    client = app.test_client()
    login(make_user(role), client)
    checked = 0
    for rule, view, methods in _routes(app):
        if "GET" not in methods or view.required_role == PUBLIC:
            continue
        url = _real_url(rule, db) if rule.arguments else rule.rule
        if url is None:
            continue
        response = client.get(url)
        if role_rank(role) >= role_rank(view.required_role):
            assert response.status_code < 500, (url, role, response.data[:300])
            assert response.status_code != 403, (url, role)
        else:
            assert response.status_code == 403, (url, role, response.status_code)
        checked += 1
    assert checked >= 10
