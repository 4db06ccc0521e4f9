"""Where the app finds its templates, static files and migrations.

In a checkout they sit beside the package (``templates/``, ``static/``, ``migrations/``); a wheel
carries them inside it (``contentops/templates`` …) because site-packages has no "beside".
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def asset_dir(name: str) -> Path:
    """The folder ``name`` (templates, static or migrations) for this install."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name
