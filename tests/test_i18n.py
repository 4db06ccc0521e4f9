"""The zh catalog is complete and compiled; pages follow the user's language."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "contentops"
ZH_PO = PKG / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
ZH_MO = PKG / "translations" / "zh" / "LC_MESSAGES" / "messages.mo"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
            "N_": None, "_l": None, "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3)}


def source_msgids() -> set[str]:
    ids: set[str] = set()
    for folder, method_map in ((PKG, [("**.py", "python")]),
                               (ROOT / "templates", [("**.html", "jinja2")])):
        for _file, _line, message, _comments, _context in extract_from_dir(
                str(folder), method_map=method_map, keywords=KEYWORDS):
            if isinstance(message, tuple):
                # ngettext: the catalog keys a plural message by its singular msgid.
                ids.add(message[0])
            elif message:
                ids.add(message)
    assert len(ids) > 500, "extraction found too few messages: are the folders right?"
    return ids


def test_every_msgid_in_the_source_has_a_chinese_translation():
    with ZH_PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh")
    untranslated = []
    for msgid in sorted(source_msgids()):
        message = catalog.get(msgid)
        strings = message.string if message else None
        ok = all(strings) if isinstance(strings, tuple) else bool(strings)
        if not ok or (message and message.fuzzy):
            untranslated.append(msgid)
    assert untranslated == [], "run `make i18n` and translate these:\n" + "\n".join(untranslated)


def _key(value):
    # Plural messages come back as lists from the .mo reader and tuples from the .po reader.
    return tuple(value) if isinstance(value, list | tuple) else value


def test_compiled_catalog_matches_the_po_file():
    with ZH_PO.open("rb") as fh:
        po = {_key(m.id): _key(m.string) for m in read_po(fh, locale="zh") if m.id}
    with ZH_MO.open("rb") as fh:
        mo = {_key(m.id): _key(m.string) for m in read_mo(fh) if m.id}
    assert po == mo, "messages.mo is stale: run `make i18n`"


def test_login_page_follows_accept_language(client):
    zh = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "登录 ContentOps" in zh.get_data(as_text=True)
    en = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Sign in to ContentOps" in en.get_data(as_text=True)


def test_user_setting_wins_over_browser(client, make_user, login, db):
    user = make_user("viewer")
    user.locale = "zh"
    db.session.commit()
    login(user)
    page = client.get("/profile", headers={"Accept-Language": "en"})
    assert "个人设置" in page.get_data(as_text=True)
