"""Reading untrusted JSON: one place that refuses bodies nested too deeply.

Python's JSON decoder recurses once per level: a body like `[[[[…]]]]` 50,000 levels deep
raises RecursionError (a 500) and even a few thousand levels make every later walk over the
value slow. No request this app accepts needs more than a handful of levels, so anything
deeper than MAX_DEPTH is refused before a service sees it.
"""

from __future__ import annotations

from typing import Any

from .errors import N_, BadRequest

MAX_DEPTH = 32


class JSONTooDeep(ValueError):
    """The document nests arrays/objects more than MAX_DEPTH levels."""


def depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0, `{}` and `[]` are 1).
    Iterative, so it cannot itself run out of stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` that raises JSONTooDeep (a ValueError) past `max_depth` levels and
    ValueError for anything that is not JSON."""
    import json

    try:
        value = json.loads(raw)
    except RecursionError:
        raise JSONTooDeep() from None
    if depth(value) > max_depth:
        raise JSONTooDeep()
    return value


def too_deep_error() -> BadRequest:
    return BadRequest(N_("The JSON is nested too deeply (at most %(max)s levels)."),
                      {"max": MAX_DEPTH}, code="too_deep")


def request_json() -> Any:
    """The current request's JSON like `request.get_json(silent=True)` (None when the body
    is not JSON or not sent as JSON), but a body nested too deeply is a 400, never a 500."""
    from flask import g, request

    cached = g.get("_request_json", _MISSING)
    if cached is not _MISSING:
        return cached
    value = None
    if request.is_json:
        try:
            value = loads(request.get_data(cache=True))
        except JSONTooDeep:
            raise too_deep_error() from None
        except ValueError:
            value = None
    g._request_json = value
    return value


_MISSING = object()
