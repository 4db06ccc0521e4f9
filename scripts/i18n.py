"""Message catalog upkeep.

    i18n.py update            extract msgids, merge into the zh catalog, compile .mo
    i18n.py merge A.po ...    fill empty zh translations from other catalogs (after a git
                              merge conflict: `git show :2:PATH > a.po; git show :3:PATH > b.po`)
    i18n.py missing           list msgids without a zh translation
    i18n.py fill FILE.tsv     set zh translations from "msgid<TAB>msgstr" lines
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "contentops" / "translations"
POT = ROOT / "contentops" / "translations" / "messages.pot"
ZH = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po"
KEYWORDS = ["-k", "N_", "-k", "lazy_gettext", "-k", "_l"]


def pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def extract() -> None:
    pybabel("extract", "-F", "babel.cfg", *KEYWORDS, "--no-location", "--sort-output",
            "--omit-header", "-o", str(POT), "contentops", "templates")


def update() -> None:
    extract()
    if ZH.exists():
        pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", "zh",
                "--no-fuzzy-matching", "--ignore-obsolete")
    else:
        pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", "zh")
    compile_catalog()
    missing()


def compile_catalog() -> None:
    pybabel("compile", "-d", str(TRANSLATIONS), "-l", "zh")


def merge(others: list[str]) -> None:
    with ZH.open("rb") as fh:
        catalog = read_po(fh, locale="zh")
    filled = 0
    for other in others:
        with open(other, "rb") as fh:
            source = read_po(fh, locale="zh")
        for message in source:
            if not message.id or not message.string:
                continue
            if message.id in catalog and not catalog[message.id].string:
                catalog[message.id].string = message.string
                filled += 1
            elif message.id not in catalog:
                catalog.add(message.id, message.string)
                filled += 1
    _save(catalog)
    print(f"filled {filled} translations")
    update()


def _save(catalog) -> None:
    catalog.fuzzy = False
    catalog.project = "ContentOps"
    catalog.version = ""
    with ZH.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, width=100)


def fill(path: str) -> None:
    with ZH.open("rb") as fh:
        catalog = read_po(fh, locale="zh")
    count = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or "\t" not in line:
            continue
        msgid, msgstr = line.split("\t", 1)
        msgid = msgid.replace("\\n", "\n")
        msgstr = msgstr.replace("\\n", "\n")
        if msgid in catalog:
            catalog[msgid].string = msgstr
            catalog[msgid].flags.discard("fuzzy")
        else:
            catalog.add(msgid, msgstr)
        count += 1
    _save(catalog)
    print(f"set {count} translations")
    update()


def missing() -> int:
    with ZH.open("rb") as fh:
        catalog = read_po(fh, locale="zh")
    todo = [m.id for m in catalog if m.id and (not m.string or m.fuzzy
                                                 or (isinstance(m.string, tuple)
                                                     and not all(m.string)))]
    for msgid in todo:
        print(f"untranslated: {msgid!r}")
    print(f"{len(todo)} untranslated")
    return len(todo)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "update"
    if command == "update":
        update()
    elif command == "merge":
        merge(sys.argv[2:])
    elif command == "fill":
        fill(sys.argv[2])
    elif command == "missing":
        sys.exit(1 if missing() else 0)
    else:
        print(__doc__)
        sys.exit(2)
