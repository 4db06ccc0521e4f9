"""The published contract: the OpenAPI document describes every API route, is a valid
OpenAPI 3.1 document, the endpoints enforce the same schemas, and requests past the limits
(size, nesting, field lengths, page sizes) are refused in the documented error shape."""

from __future__ import annotations

import json
import re

import pytest

from contentops.api.openapi import REQUESTS, SCHEMAS
from contentops.jsonutil import MAX_DEPTH, JSONTooDeep, loads
from contentops.services import content, review
from contentops.services.users import create_token


@pytest.fixture
def bearer(db, make_user):
    def headers(role: str) -> dict:
        _, plain = create_token(db.session, make_user(role))
        db.session.commit()
        return {"Authorization": f"Bearer {plain}"}

    return headers


def _document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def api_operations(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
            out |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def test_every_api_route_is_described(app, client):
    paths = _document(client)["paths"]
    described = {(path, method) for path, item in paths.items() for method in item}
    routes = api_operations(app)
    assert len(routes) >= 47
    assert routes - described == set(), "endpoints the OpenAPI document does not describe"
    assert described - routes == set()


def test_an_undescribed_route_fails_the_check(app, client):
    from contentops.api import api_bp

    @app.get("/api/v1/not-described")
    def not_described():
        return {}

    paths = _document(client)["paths"]
    described = {(p, m) for p, item in paths.items() for m in item}
    assert ("/not-described", "get") in api_operations(app) - described
    assert api_bp.name == "api"


def test_the_document_is_valid_openapi_3_1(client):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    document = _document(client)
    assert document["openapi"].startswith("3.1")
    validate(document)
    broken = json.loads(json.dumps(document))
    broken["paths"]["/pieces"]["get"]["responses"] = "nothing"
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_security_paths_and_error_responses(client):
    doc = _document(client)
    paths = doc["paths"]
    assert paths["/health"]["get"]["security"] == []
    assert paths["/openapi.json"]["get"]["security"] == []
    create = paths["/pieces"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    assert create["description"].startswith("Role: editor")
    assert {"201", "400", "401", "403", "413", "422"} <= set(create["responses"])
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    show = paths["/pieces/{piece_id}"]["get"]
    assert show["parameters"][0] == {"name": "piece_id", "in": "path", "required": True,
                                     "schema": SCHEMAS["Post"]["properties"]["id"] | {
                                         "minimum": 1, "maximum": 2**31 - 1}}
    assert "404" in show["responses"]
    # The limits are the services' own.
    piece = doc["components"]["schemas"]["PieceCreate"]["properties"]
    assert piece["title"]["maxLength"] == content.MAX_TITLE
    assert piece["body"]["maxLength"] == content.MAX_BODY
    assert piece["tags"]["maxItems"] == content.MAX_TAGS
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]


def test_docs_page_serves_swagger_ui_locally_without_inline_script(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert all('src="/' in attrs and not body.strip() for attrs, body in scripts)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "/static/js/api-docs.js" in html
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html
    asset = client.get("/static/js/api-docs.js")
    assert asset.status_code == 200 and b"SwaggerUIBundle" in asset.data
    asset.close()


# --- validation through the schemas ---------------------------------------------------------

def test_schema_errors_are_field_errors_in_the_callers_language(client, bearer):
    headers = bearer("editor")
    response = client.post("/api/v1/pieces", headers=headers, json={
        "title": 5, "body": "x", "audience_id": "a", "style_id": 1, "channel_ids": [1],
        "tags": ["t"] * (content.MAX_TAGS + 1), "bogus": 1})
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert fields["title"] == ["Enter text."]
    assert fields["audience_id"] == ["Enter a valid id."]
    assert fields["tags"] == [f"Use at most {content.MAX_TAGS} items."]
    assert fields["bogus"] == ["Unknown field."]
    zh = client.post("/api/v1/pieces", headers={**headers, "Accept-Language": "zh-CN"},
                     json={"title": "t" * (content.MAX_TITLE + 1)})
    zh_fields = zh.get_json()["error"]["fields"]
    assert re.search(r"[\u4e00-\u9fff]", zh_fields["title"][0])
    assert "200" in zh_fields["title"][0]
    assert re.search(r"[\u4e00-\u9fff]", zh_fields["body"][0])


@pytest.mark.parametrize(("method", "path", "field", "limit", "base"), [
    ("post", "/api/v1/pieces", "title", content.MAX_TITLE, {}),
    ("post", "/api/v1/pieces", "body", content.MAX_BODY, {}),
    ("post", "/api/v1/channels", "name", 100, {"kind": "web", "config": {}}),
    ("post", "/api/v1/audiences", "name", 100, {}),
    ("post", "/api/v1/styles", "guidelines", 10_000, {"name": "x"}),
    ("post", "/api/v1/campaigns", "goal", 2000, {"name": "x"}),
])
def test_string_length_limits_per_resource(client, bearer, method, path, field, limit, base):
    headers = bearer("admin")
    response = client.open(path, method=method, headers=headers,
                           json={**base, field: "字" * (limit + 1)})
    assert response.status_code == 422, response.data[:300]
    assert response.get_json()["error"]["fields"][field] == [
        f"Use at most {limit} characters."]


def test_string_length_limits_on_posts_comments_and_reviews(client, bearer, make):
    headers = bearer("admin")
    piece = make.piece()
    post = piece.posts[0]
    long_comment = "x" * (review.MAX_COMMENT + 1)
    for path, body, field in [
        (f"/api/v1/pieces/{piece.id}/comments", {"body": long_comment}, "body"),
        (f"/api/v1/pieces/{piece.id}/request-changes", {"comment": long_comment}, "comment"),
        (f"/api/v1/posts/{post.id}/mark-published", {"url": "http://" + "x" * 1000}, "url"),
        (f"/api/v1/posts/{post.id}/schedule", {"scheduled_at": "2" * 65}, "scheduled_at"),
    ]:
        response = client.post(path, headers=headers, json=body)
        assert response.status_code == 422, (path, response.data[:300])
        assert list(response.get_json()["error"]["fields"]) == [field]


def test_page_size_limits(client, bearer):
    headers = bearer("viewer")
    for path, limit in (("/api/v1/pieces", content.MAX_PER_PAGE), ("/api/v1/posts", 200)):
        assert client.get(f"{path}?per_page={limit}", headers=headers).status_code == 200
        too_many = client.get(f"{path}?per_page={limit + 1}", headers=headers)
        assert too_many.status_code == 422
        assert list(too_many.get_json()["error"]["fields"]) == ["per_page"]


def test_a_body_over_the_size_limit_is_a_json_413(app, client, bearer):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    response = client.post("/api/v1/pieces", headers=bearer("editor"),
                           data=json.dumps({"title": "x" * 70_000}),
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert response.get_json()["error"]["message"]


# --- nesting ------------------------------------------------------------------------------

def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def test_the_json_reader_refuses_deep_nesting():
    assert loads(nested(MAX_DEPTH)) is not None
    with pytest.raises(JSONTooDeep):
        loads(nested(MAX_DEPTH + 1))
    with pytest.raises(JSONTooDeep):
        loads("[" * 50_000 + "]" * 50_000)  # past the interpreter's own recursion limit
    with pytest.raises(ValueError):
        loads("{not json")


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 50_000])
def test_deeply_nested_bodies_are_a_clean_400_everywhere(app, db, client, bearer, login,
                                                         make_user, make, levels):
    body = "[" * levels + "]" * levels
    headers = {**bearer("admin"), "Content-Type": "application/json"}
    for path in ("/api/v1/pieces", "/api/v1/feedback", "/api/v1/audiences"):
        response = client.post(path, headers=headers, data=body)
        assert response.status_code == 400, (path, response.data[:200])
        error = response.get_json()["error"]
        assert error["code"] == "too_deep" and str(MAX_DEPTH) in error["message"]
    # The signed feedback hook reads its raw body itself.
    from contentops.services.feedback import hook
    from contentops.timeutil import utcnow

    channel = make.channel("web")
    key = hook.create_hook_key(db.session, channel, secret_key=app.config["SECRET_KEY"],
                               now=utcnow())
    db.session.commit()
    response = client.post(f"/api/v1/feedback/hooks/{channel.id}", data=body,
                           headers={hook.SIGNATURE_HEADER: hook.sign(body.encode(), key),
                                    "Content-Type": "application/json"})
    assert response.status_code == 400, response.data[:200]
    assert response.get_json()["error"]["code"] == "too_deep"
    # The editor's live preview and compliance checks (pages' JSON endpoints).
    page_client = app.test_client()
    login(make_user("editor"), page_client)
    for path in ("/pieces/preview", "/review/checks"):
        response = page_client.post(path, data=body, content_type="application/json",
                                    headers={"Accept": "application/json"})
        assert response.status_code == 400, (path, response.data[:200])


def test_every_request_schema_is_a_2020_12_schema():
    from jsonschema import Draft202012Validator

    for name, schema in REQUESTS.items():
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object", name


def test_ids_as_digit_strings_and_tags_as_one_string_are_still_accepted(client, bearer, make):
    """The contract as scripts were written against it: ids may be digit strings, tags one
    comma-separated string, an optional id may be empty."""
    channel, audience, style = make.channel(), make.audience(), make.style()
    response = client.post("/api/v1/pieces", headers=bearer("editor"), json={
        "title": "双11", "body": "正文", "audience_id": str(audience.id),
        "style_id": f" {style.id} ", "campaign_id": "", "channel_ids": [str(channel.id)],
        "tags": "会员, 双11"})
    assert response.status_code == 201, response.get_json()
    piece = client.get(f"/api/v1/pieces/{response.get_json()['id']}",
                       headers=bearer("viewer")).get_json()
    assert sorted(piece["tags"]) == ["会员", "双11"]
    bad = client.post("/api/v1/pieces", headers=bearer("editor"), json={
        "title": "x", "body": "x", "audience_id": "1a", "style_id": "0",
        "channel_ids": ["-3"]})
    assert bad.status_code == 422
    fields = bad.get_json()["error"]["fields"]
    assert fields["audience_id"] == ["Enter a valid id."]
    assert fields["channel_ids.0"] == ["Enter a valid id."]
