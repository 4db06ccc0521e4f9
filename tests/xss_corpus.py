"""A corpus of XSS payloads and a checker for "no active content survived" in an HTML page.

The checker parses the page the way a browser tokenises it and fails on anything that could
run script or hijack the page: script elements that are not our own static files, event
handler attributes, script-capable URL schemes, frames/objects/SVG/MathML, <base>, refresh
meta tags, CSS expressions. Text that merely *shows* a payload (escaped) is fine.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

PAYLOADS: list[str] = [
    "<script>alert('XSS')</script>",
    "<img src=x onerror=alert('XSS')>",
    "<svg onload=alert('XSS')>",
    "<svg><script>alert('XSS')</script></svg>",
    "<body onload=alert('XSS')>",
    "<iframe src=\"javascript:alert('XSS')\"></iframe>",
    "<iframe srcdoc=\"<script>alert('XSS')</script>\"></iframe>",
    "<a href=\"javascript:alert('XSS')\">click</a>",
    "[click](javascript:alert('XSS'))",
    "[click](JaVaScRiPt:alert('XSS'))",
    "[click](  javascript:alert('XSS'))",
    "[click](java&#x09;script:alert('XSS'))",
    "[click](&#106;avascript:alert('XSS'))",
    "[click](vbscript:msgbox('XSS'))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4=)",
    "![img](javascript:alert('XSS'))",
    "![img](x\" onerror=\"alert('XSS'))",
    "[a](x\"onmouseover=\"alert('XSS'))",
    "<javascript:alert('XSS')>",
    "[ref]\n\n[ref]: javascript:alert('XSS')",
    "\"><script>alert('XSS')</script>",
    "'><img src=x onerror=alert('XSS')>",
    "</textarea><script>alert('XSS')</script>",
    "</title><script>alert('XSS')</script>",
    "<details open ontoggle=alert('XSS')>",
    "<input autofocus onfocus=alert('XSS')>",
    "<object data=\"javascript:alert('XSS')\"></object>",
    "<embed src=\"javascript:alert('XSS')\">",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('XSS')>",
    "<style>@import 'javascript:alert(\"XSS\")';</style>",
    "<div style=\"background:url(javascript:alert('XSS'))\">x</div>",
    "<div style=\"width: expression(alert('XSS'))\">x</div>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert('XSS')\">",
    "<base href=\"javascript:alert('XSS')//\">",
    "<form action=\"javascript:alert('XSS')\"><button>x</button></form>",
    "<button formaction=\"javascript:alert('XSS')\">x</button>",
    "<video><source onerror=\"alert('XSS')\"></video>",
    "<audio src=x onerror=alert('XSS')>",
    "<marquee onstart=alert('XSS')>",
    "<isindex type=image src=1 onerror=alert('XSS')>",
    "<link rel=stylesheet href=\"javascript:alert('XSS')\">",
    "<img src=\"x` `<script>alert('XSS')</script>\"` `>",
    "<!--<img src=\"--><img src=x onerror=alert('XSS')//\">",
    "<scr<script>ipt>alert('XSS')</scr</script>ipt>",
    "&lt;script&gt;alert('XSS')&lt;/script&gt;",
    "{{ 7*7 }}{{ config }}{% raw %}x",
    "```html\n<script>alert('XSS')</script>\n```",
    "```\" onmouseover=\"alert('XSS')\ncode\n```",
    "```position-fixed top-0 start-0 w-100 h-100 bg-white\nfake login\n```",
    "<a href=\"&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;"
    "alert('XSS')\">x</a>",
    "![x](https://example.com/x.png \"t\\\" onerror=\\\"alert('XSS')\")",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<svg><animate onbegin=alert('XSS') attributeName=x dur=1s>",
    "<a href=\"#\" onclick=\"alert('XSS')\">x</a>",
    "javascript:alert('XSS')",
    "<noscript><p title=\"</noscript><img src=x onerror=alert('XSS')>\">",
    "<table><td background=\"javascript:alert('XSS')\">",
    "<x onclick=alert('XSS')>click</x>",
    "<img srcset=\"javascript:alert('XSS')\">",
    "<template><script>alert('XSS')</script></template>",
    "<select><noembed></select><script>alert('XSS')</script>",
    "<a href=\" &#14;  javascript:alert('XSS')\">x</a>",
    "`<img src=x onerror=alert('XSS')>`",
    "| a | b |\n|---|---|\n| <script>alert('XSS')</script> | x |",
    "<a href=\"javascript&colon;alert('XSS')\">x</a>",
    "[x](javascript&colon;alert('XSS'))",
    "<svg><a xlink:href=\"javascript:alert('XSS')\"><text x=20 y=20>x</text></a></svg>",
    "<img src=\"http://example.com/a.png\" style=\"position:fixed;top:0\">",
    "abc\u202egnp.exe\u0000\u0007<b onmouseover=alert('XSS')>x</b>",
    "<p class=\"position-fixed top-0 start-0 w-100 h-100\">overlay</p>",
]

SCRIPT_SCHEMES = ("javascript:", "vbscript:", "livescript:", "data:")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster",
                  "background", "srcset", "lowsrc", "dynsrc", "ping", "codebase", "cite"}
FORBIDDEN_TAGS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base", "svg",
                  "math", "isindex", "marquee", "noembed", "template", "video", "audio",
                  "source", "x"}
_CONTROL = re.compile(r"[\x00-\x20]+")
PAGE_CLASS_BAIT = {"position-fixed", "position-absolute", "fixed-top", "vh-100"}


def _scheme_of(value: str) -> str:
    # Browsers decode entities and drop whitespace/control characters inside a scheme.
    return _CONTROL.sub("", html.unescape(value)).lower()


class _Checker(HTMLParser):
    def __init__(self, where: str) -> None:
        super().__init__(convert_charrefs=True)
        self.where = where
        self.problems: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def _problem(self, text: str) -> None:
        self.problems.append(f"{self.where}: {text}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k.lower(): (v or "") for k, v in attrs}
        if tag in FORBIDDEN_TAGS:
            self._problem(f"<{tag}> element")
        if tag == "script":
            src = attr.get("src", "")
            if src and not src.startswith("/static/"):
                self._problem(f"foreign script src={src!r}")
            self._in_script = {"src": src or None, "type": attr.get("type")}
        if tag == "style":
            self._problem("<style> element in the page body")
        if tag == "meta" and "http-equiv" in attr:
            self._problem("meta http-equiv")
        if tag == "link" and not attr.get("href", "").startswith("/static/"):
            self._problem(f"link to {attr.get('href')!r}")
        if tag == "form" and attr.get("action") and not attr["action"].startswith("/"):
            self._problem(f"form action {attr['action']!r}")
        for name, value in attr.items():
            if name.startswith("on"):
                self._problem(f"<{tag} {name}=…> event handler")
            if name in ("srcdoc", "formaction"):
                self._problem(f"<{tag} {name}=…>")
            if name in URL_ATTRIBUTES:
                scheme = _scheme_of(value)
                for candidate in scheme.split(",") if name == "srcset" else [scheme]:
                    if candidate.strip().startswith(SCRIPT_SCHEMES):
                        self._problem(f"<{tag} {name}={value!r}>")
            if name == "style":
                lowered = _scheme_of(value)
                if any(bad in lowered for bad in ("expression(", "url(", "javascript",
                                                    "position:", "@import", "behavior")):
                    self._problem(f"<{tag} style={value!r}>")
            if name == "class" and set(value.split()) & PAGE_CLASS_BAIT and tag in (
                    "p", "code", "pre", "span", "div", "a", "img"):
                self._problem(f"<{tag} class={value!r}> borrows page layout classes")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        script = self._in_script
        if (script is not None and script.get("type") != "application/json"
                and (script.get("src") or "alert(" in data or "XSS" in data)):
            self._problem(f"inline script content {data[:80]!r}")


def active_content(markup: str, where: str = "page") -> list[str]:
    """Everything in `markup` that could run script or take over the page."""
    checker = _Checker(where)
    checker.feed(markup)
    checker.close()
    return checker.problems


def assert_no_active_content(markup: str, where: str = "page") -> None:
    problems = active_content(markup, where)
    assert not problems, "\n".join(problems[:20])
