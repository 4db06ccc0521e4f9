"""Demo data (filled in by the foundation work)."""

from __future__ import annotations

from sqlalchemy.orm import Session


def load_demo(session: Session, only_if_empty: bool = False) -> str:
    return "no demo data yet"
