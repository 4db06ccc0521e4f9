"""Domain errors raised by services and turned into pages/JSON by the web and API layers.

Messages are English msgids marked with N_() so services stay free of Flask; the web layer
translates them with gettext when it renders (invariant 6: clear, localised errors).
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:  # noqa: N802 - gettext marker convention
    return message


class DomainError(Exception):
    """A rule refused the operation. Nothing was changed."""

    code = "conflict"
    status = 409

    def __init__(self, message: str, params: Mapping[str, object] | None = None,
                 *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.params = dict(params or {})
        if code:
            self.code = code


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class ValidationError(DomainError):
    """Field-level problems. `fields` maps a field name to msgids (with shared params)."""

    code = "validation_error"
    status = 422

    def __init__(self, fields: Mapping[str, list[str]], message: str | None = None,
                 params: Mapping[str, object] | None = None) -> None:
        super().__init__(message or N_("Some fields are not valid."), params)
        self.fields = {k: list(v) for k, v in fields.items()}


class BadRequest(DomainError):
    code = "bad_request"
    status = 400
