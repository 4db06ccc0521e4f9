"""APScheduler wiring (built by the publishing engine)."""

from __future__ import annotations

from flask import Flask


class _NoScheduler:
    def shutdown(self) -> None:
        return None


def start_embedded(app: Flask) -> _NoScheduler:
    return _NoScheduler()


def run_forever(app: Flask) -> None:
    raise SystemExit("the scheduler is not built yet")
