"""Property-based fuzzing of the whole JSON API from its own OpenAPI document (schemathesis).

Every operation gets valid and invalid requests (body, query, path, headers) as each role,
against ids that exist and ids that do not, and every answer must be: not a 5xx, a documented
status, JSON, conforming to the document's schema for that status, and an error in the one
error shape. Invalid requests must be refused (4xx). Derandomized and bounded so the run is
the same every time and stays well within CI's time.
"""

from __future__ import annotations

import contextvars
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from contentops.api.openapi import build_document  # noqa: E402
from contentops.extensions import db as _db  # noqa: E402
from contentops.models import ROLES  # noqa: E402
from contentops.services.users import create_token  # noqa: E402

from .conftest import make_app  # noqa: E402

# Examples per operation (spread over the roles and the two generation modes).
MAX_EXAMPLES = 24
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


def _document() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp))
        with app.app_context():
            return build_document(app)


DOCUMENT = _document()
OPERATIONS = [f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items()
              for method in item]


def json_error_shape(response) -> None:
    """Every 4xx is JSON in the one documented error shape."""
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), response.text[:300]
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v)
               for v in error["fields"].values())


@pytest.fixture
def world(app, db, make):
    """One of everything, so real ids are there to be hit, and a token per role."""
    admin = make.user("admin")
    channel = make.channel("web")
    make.audience()
    make.style()
    make.campaign()
    piece = make.piece(channels=[channel])
    make.schedule(piece.posts[0], make.now + timedelta(days=2))
    tokens = {}
    for role in ROLES:
        user = admin if role == "admin" else make.user(role)
        _, plain = create_token(db.session, user, "fuzz")
        tokens[role] = plain
    # A token for DELETE /tokens/{id} to revoke: never one the fuzzer signs in with.
    spare, _ = create_token(db.session, admin, "spare")
    db.session.commit()
    ids = {"piece_id": piece.id, "post_id": piece.posts[0].id, "channel_id": channel.id,
           "record_id": 1, "token_id": spare.id}
    return tokens, ids


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_operation(app, db, world, label):
    tokens, ids = world
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    params = [p["name"] for p in DOCUMENT["paths"][path][method.lower()].get("parameters", [])
              if p["in"] == "path"]
    real = {name: ids[name] for name in params if name in ids}
    strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                  operation.as_strategy(GenerationMode.NEGATIVE)]
    if real:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE,
                                                path_parameters=real))
    seen: dict[str, int] = {}

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.generate))
    @given(case=st.one_of(strategies), role=st.sampled_from(ROLES))
    def run(case, role):
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        header_info = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
        if (header_info is not None and header_info.mode.is_negative
                and "Authorization" not in (case.headers or {})):
            # The case leaves the token out on purpose (its negative header is the missing
            # Authorization): adding ours back would undo the very thing it tests.
            headers = {}
        # A request of its own context, as in production (see conftest.IsolatedClient).
        response = contextvars.Context().run(case.call, base_url="http://localhost/api/v1",
                                             app=app, headers=headers)
        _db.session.expire_all()
        seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers,
                               transport_kwargs={"app": app, "headers": headers})
        json_error_shape(response)

    run()
    assert sum(seen.values()) > 0
