"""The README's code map matches the tree: every path it names exists, and every service
module is placed on it (a new module means a new line on the map)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code_map_rows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")][2:]


def named(row: str) -> list[str]:
    return re.findall(r"`([^`]+)`", row)


def test_every_path_on_the_map_exists():
    rows = code_map_rows()
    assert len(rows) > 10
    for row in rows:
        dirs = [ROOT / n.rstrip("/") for n in named(row) if "/" in n]
        for name in named(row):
            if name.endswith(".py") and "/" not in name:
                # A bare module name lives beside a path named on the same row.
                bases = dirs + [d.parent for d in dirs]
                assert any((base / name).exists() for base in bases), (name, row)
            elif "/" in name and not name.startswith("__"):
                assert (ROOT / name.rstrip("/")).exists(), (name, row)


def test_every_service_module_is_on_the_map():
    mentioned = {Path(n).name for row in code_map_rows() for n in named(row)}
    services = ROOT / "contentops" / "services"
    for module in sorted(services.glob("*.py")) + sorted(services.glob("publishing/*.py")):
        if module.name == "__init__.py":
            continue
        assert module.name in mentioned, f"{module.relative_to(ROOT)} is not on the code map"
