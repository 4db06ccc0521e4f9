"""Inline diffs of piece text that stay readable for Chinese: Han characters are compared one
by one (Chinese has no spaces between words), Latin text word by word."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from html import escape

# One token: a run of Latin letters/digits, a run of spaces, or any other single character
# (each Han character, each punctuation mark).
_TOKEN = re.compile(r"[A-Za-z0-9_]+|[ \t]+|\n|.", re.DOTALL)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text or "")


def _span(kind: str, text: str) -> str:
    if not text:
        return ""
    body = escape(text).replace("\n", "↵\n") if kind != "eq" else escape(text)
    if kind == "eq":
        return body
    tag = "ins" if kind == "ins" else "del"
    return f'<{tag} class="diff-{kind}">{body}</{tag}>'


def _token_diff(a: str, b: str) -> str:
    ta, tb = tokens(a), tokens(b)
    out: list[str] = []
    matcher = SequenceMatcher(None, ta, tb, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(_span("eq", "".join(ta[i1:i2])))
        else:
            out.append(_span("del", "".join(ta[i1:i2])))
            out.append(_span("ins", "".join(tb[j1:j2])))
    return "".join(out)


def inline_diff(a: str, b: str) -> str:
    """HTML (escaped, safe to embed) showing b against a with <del>/<ins> marks.

    Lines are matched first so a long body stays fast; changed line blocks are then compared
    token by token."""
    la, lb = (a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True)
    out: list[str] = []
    matcher = SequenceMatcher(None, la, lb, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = "".join(la[i1:i2]), "".join(lb[j1:j2])
        if op == "equal":
            out.append(_span("eq", old))
        elif op == "replace":
            out.append(_token_diff(old, new))
        else:
            out.append(_span("del", old))
            out.append(_span("ins", new))
    return "".join(out)


def changed(a: str, b: str) -> bool:
    return (a or "") != (b or "")
