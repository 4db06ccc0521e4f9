"""The migrations create exactly the schema the models declare (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect

from contentops.extensions import db

from .conftest import make_app


def _diff_after_upgrade(app):
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
            tables = set(inspect(conn).get_table_names())
        db.engine.dispose()
    return diff, tables


def test_sqlite_migrations_match_models(tmp_path):
    diff, tables = _diff_after_upgrade(make_app(tmp_path))
    assert diff == []
    assert set(db.metadata.tables) <= tables


@pytest.mark.postgres
def test_postgres_migrations_match_models(tmp_path, pg_url):
    diff, tables = _diff_after_upgrade(make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url))
    assert diff == []
    assert set(db.metadata.tables) <= tables
