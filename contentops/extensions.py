"""Flask extensions, created unbound so create_app() can wire them; SQLite pragmas."""

from __future__ import annotations

import sqlite3

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

# Stable constraint names make Alembic batch migrations on SQLite possible.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no branch
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cur = dbapi_connection.cursor()
    # WAL lets the scheduler write while pages read; the busy timeout turns lock
    # contention between web and scheduler threads into a short wait, not an error.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Reads through a memory map skip a copy into SQLite's page cache for every page; the
    # calendar and post list read thousands of scattered rows per request. The map only
    # reserves address space: memory is used as pages are touched, and shared by processes.
    cur.execute("PRAGMA mmap_size=268435456")
    # A feedback batch dirties pages all over the event and bucket indexes. Checkpointing
    # the WAL every ~40 MB instead of every 4 MB writes a page that several batches touched
    # once, not once per batch (~25% more events/s, see BENCHMARKS.md); the size limit
    # truncates the WAL file back after a checkpoint so it does not keep the peak size.
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    # Room for the dirty pages of a large write transaction (a batch of 1,000 feedback
    # events touches thousands of index pages) so they are not spilled to the WAL early.
    cur.execute("PRAGMA cache_size=-16384")
    cur.execute("PRAGMA journal_size_limit=67108864")
    cur.close()
