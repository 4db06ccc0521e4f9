"""Audiences, styles and campaigns: validation, create/update/delete, API dictionaries.

One table-driven implementation serves the three kinds, so forms and the JSON API accept
and refuse exactly the same input (invariant 6). Deleting a record that pieces still use is
refused rather than leaving pieces pointing at nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import N_, DomainError, NotFound, ValidationError
from ..models import Audience, Campaign, ContentPiece, Style, User
from . import audit

TaxonomyRecord = Audience | Style | Campaign


@dataclass(frozen=True)
class TextField:
    name: str
    max_length: int
    required: bool = False


@dataclass(frozen=True)
class Kind:
    name: str  # "audience", "style", "campaign"
    model: type
    text_fields: tuple[TextField, ...]
    piece_column: str  # ContentPiece column that references it


# Literal msgids (not one parameterised message) so each field's limit reads naturally.
TOO_LONG: dict[int, str] = {
    100: N_("Use at most 100 characters."),
    2000: N_("Use at most 2000 characters."),
    10_000: N_("Use at most 10000 characters."),
}

NAME = TextField("name", 100, required=True)
DESCRIPTION = TextField("description", 2000)

KINDS: dict[str, Kind] = {
    "audience": Kind("audience", Audience, (NAME, DESCRIPTION), "audience_id"),
    "style": Kind("style", Style, (NAME, DESCRIPTION, TextField("guidelines", 10_000)),
                  "style_id"),
    "campaign": Kind("campaign", Campaign,
                     (NAME, DESCRIPTION, TextField("goal", 2000)), "campaign_id"),
}


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise NotFound(N_("No such object.")) from None


def _parse_date(raw: Any) -> tuple[date | None, str | None]:
    if raw in (None, ""):
        return None, None
    if isinstance(raw, date):
        return raw, None
    if not isinstance(raw, str):
        return None, N_("Enter a date like 2026-11-11.")
    try:
        return date.fromisoformat(raw.strip()), None
    except ValueError:
        return None, N_("Enter a date like 2026-11-11.")


def _validate(session: Session, k: Kind, data: dict[str, Any], record: TaxonomyRecord | None
              ) -> dict[str, Any]:
    """Return the cleaned values to set, or raise ValidationError with every problem.

    On update (record given) only the keys present in `data` are checked and changed.
    """
    if not isinstance(data, dict):
        raise ValidationError({}, message=N_("Send a JSON object with Content-Type: "
                                             "application/json."))
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for spec in k.text_fields:
        if record is not None and spec.name not in data:
            continue
        raw = data.get(spec.name)
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            errors[spec.name] = [N_("Enter text.")]
            continue
        value = raw.strip()
        if spec.required and not value:
            errors[spec.name] = [N_("This field is required.")]
        elif len(value) > spec.max_length:
            errors[spec.name] = [TOO_LONG[spec.max_length]]
        else:
            out[spec.name] = value
    if "name" in out:
        clash = session.scalar(select(k.model.id).where(
            func.lower(k.model.name) == out["name"].lower()))
        if clash is not None and (record is None or clash != record.id):
            errors["name"] = [N_("This name is already used.")]
    if k.model is Campaign:
        for name in ("starts_on", "ends_on"):
            if record is not None and name not in data:
                continue
            value, error = _parse_date(data.get(name))
            if error:
                errors[name] = [error]
            else:
                out[name] = value
        if "goal_reads" in data or record is None:
            raw = data.get("goal_reads")
            if raw in (None, ""):
                out["goal_reads"] = None
            else:
                try:
                    if isinstance(raw, bool | float):
                        raise ValueError
                    value = int(raw)
                    if not 1 <= value <= 1_000_000_000:
                        raise ValueError
                    out["goal_reads"] = value
                except (TypeError, ValueError):
                    errors["goal_reads"] = [N_("Enter a whole number between 1 and "
                                               "1,000,000,000.")]
        starts = out.get("starts_on", getattr(record, "starts_on", None))
        ends = out.get("ends_on", getattr(record, "ends_on", None))
        if starts and ends and ends < starts and "ends_on" not in errors:
            errors["ends_on"] = [N_("The end date must not be before the start date.")]
    if errors:
        raise ValidationError(errors)
    return out


def list_records(session: Session, kind_name: str) -> list[TaxonomyRecord]:
    k = kind(kind_name)
    return list(session.scalars(select(k.model).order_by(func.lower(k.model.name))))


def get_record(session: Session, kind_name: str, record_id: int) -> TaxonomyRecord:
    k = kind(kind_name)
    record = session.get(k.model, record_id)
    if record is None:
        raise NotFound(N_("No such object."))
    return record


def check(session: Session, kind_name: str, data: dict[str, Any],
          record: TaxonomyRecord | None = None) -> None:
    """Raise ValidationError with every problem `data` has; change nothing."""
    _validate(session, kind(kind_name), data, record)


def create_record(session: Session, kind_name: str, data: dict[str, Any], *,
                  actor: User | None = None) -> TaxonomyRecord:
    k = kind(kind_name)
    values = _validate(session, k, data, None)
    record = k.model(**values)
    session.add(record)
    session.flush()
    audit.record(session, f"{k.name}.created", k.name, record.id, actor=actor,
                 data={"name": record.name})
    return record


def update_record(session: Session, kind_name: str, record: TaxonomyRecord,
                  data: dict[str, Any], *, actor: User | None = None) -> TaxonomyRecord:
    k = kind(kind_name)
    values = _validate(session, k, data, record)
    for key, value in values.items():
        setattr(record, key, value)
    session.flush()
    audit.record(session, f"{k.name}.updated", k.name, record.id, actor=actor,
                 data={"fields": sorted(values)})
    return record


def usage_count(session: Session, kind_name: str, record_id: int) -> int:
    """How many pieces use the record."""
    column = getattr(ContentPiece, kind(kind_name).piece_column)
    return session.scalar(select(func.count()).select_from(ContentPiece)
                          .where(column == record_id)) or 0


def usage_counts(session: Session, kind_name: str) -> dict[int, int]:
    column = getattr(ContentPiece, kind(kind_name).piece_column)
    rows = session.execute(select(column, func.count()).where(column.is_not(None))
                           .group_by(column))
    return {record_id: count for record_id, count in rows}


def delete_record(session: Session, kind_name: str, record: TaxonomyRecord, *,
                  actor: User | None = None) -> None:
    k = kind(kind_name)
    used = usage_count(session, kind_name, record.id)
    if used:
        raise DomainError(N_("%(name)s is used by %(count)s pieces and cannot be deleted."),
                          {"name": record.name, "count": used}, code="in_use")
    audit.record(session, f"{k.name}.deleted", k.name, record.id, actor=actor,
                 data={"name": record.name})
    session.delete(record)
    session.flush()


def record_dict(record: TaxonomyRecord) -> dict[str, Any]:
    """The API's view of an audience, style or campaign."""
    out: dict[str, Any] = {"id": record.id, "name": record.name,
                           "description": record.description or ""}
    if isinstance(record, Style):
        out["guidelines"] = record.guidelines or ""
    if isinstance(record, Campaign):
        out.update({
            "starts_on": record.starts_on.isoformat() if record.starts_on else None,
            "ends_on": record.ends_on.isoformat() if record.ends_on else None,
            "goal": record.goal or "",
            "goal_reads": record.goal_reads,
        })
    return out


def get_or_create(session: Session, kind_name: str, name: str, **values: Any
                  ) -> TaxonomyRecord:
    """Find a record by name (case-insensitive) or create it with `values` (demo, imports)."""
    k = kind(kind_name)
    found = session.scalar(select(k.model).where(func.lower(k.model.name) == name.lower()))
    if found is not None:
        return found
    return create_record(session, kind_name, {"name": name, **values})
