"""Garbage-collector settings for long-running processes (the server, the scheduler)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move everything allocated so far (modules, the app, SQLAlchemy's metadata …) out of
    the collector's view.

    A request that builds thousands of small objects (a month of calendar events) triggers
    full collections, and each one walks every object in the process; the startup objects
    live for the whole process anyway, so leaving them out makes those collections cheap
    (~25% off the calendar month feed's median, see BENCHMARKS.md). Call once, after the
    app is created and before serving.
    """
    gc.collect()
    gc.freeze()
