"""In Chromium, under the real Content-Security-Policy: the main pages run their scripts
(FullCalendar, Chart.js, the public page's beacon) without a single CSP violation."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from contentops.timeutil import utcnow

from .builders import Make

pytestmark = pytest.mark.browser

# Recorded before any page script runs, so a violation during parsing is caught too.
LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '')
                    + ':' + e.lineNumber);
});
"""


def poll(page, expression: str, timeout: float = 5.0):
    """Evaluate until truthy. Not page.wait_for_function: its polling needs eval, and the CSP
    rightly refuses that."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(50)


class Watch:
    """Console errors, uncaught exceptions and CSP violations of one page."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.add_init_script(LISTEN)
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        # A failed load is reported on the console without its address; record it here,
        # minus the favicon the app does not have.
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

    def _console(self, message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def clean(self, what: str) -> None:
        violations = self.page.evaluate("window.__csp")
        assert violations == [], f"{what}: CSP violations {violations}"
        assert self.errors == [], f"{what}: console errors {self.errors}"


@pytest.fixture
def world(db, make_user):
    """A web post with feedback (public page, piece timeline, analytics) and a manual post
    (publishing page with copy-ready text), around today so the default ranges show them."""
    now = utcnow()
    make = Make(db.session, now=now)
    web = make.channel("web", name="Web")
    audience, style = make.audience("宝妈社群"), make.style("亲切")
    published = make.published(web, at=now - timedelta(days=2), slug="csp-check",
                               title="CSP 检查", audience=audience, style=style,
                               body="| 左 | 右 |\n|:--|--:|\n| a | b |\n\n![图](https://example.com/a.png)")
    for kind, count in (("read", 40), ("like", 5), ("share", 2)):
        make.feedback(published, kind, count, at=now - timedelta(days=1))
    manual = make.channel("manual", name="朋友圈")
    handed = make.post(manual, now + timedelta(days=3), title="朋友圈 预告")
    admin = make_user("admin")
    return {"post": published, "manual": handed, "admin": admin}


def test_main_pages_run_without_csp_violations(page, live_server, browser_login, world):
    watch = Watch(page)
    browser_login(world["admin"])
    base = live_server.url

    page.goto(f"{base}/calendar/")
    page.wait_for_selector("#calendar .fc-view")
    page.wait_for_selector('#calendar[data-loading="0"]', state="attached")
    assert page.locator("#calendar .fc-event").count() >= 1
    watch.clean("calendar")

    page.goto(f"{base}/analytics/")
    assert page.evaluate("typeof Chart !== 'undefined' && "
                         "!!Chart.getChart(document.getElementById('chart-over-time')) && "
                         "!!Chart.getChart(document.getElementById('chart-channels'))")
    watch.clean("analytics")

    piece_id = world["post"].piece_id
    page.goto(f"{base}/pieces/{piece_id}")
    assert page.evaluate("!!Chart.getChart(document.getElementById('piece-timeline'))")
    watch.clean("piece page")

    page.goto(f"{base}/pieces/{piece_id}/edit")
    page.wait_for_selector("form")
    watch.clean("piece form")

    page.goto(f"{base}/publishing/posts/{world['manual'].id}")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("[data-copy-target]")
    copied = poll(page, "navigator.clipboard.readText()")
    assert "朋友圈 预告" in copied
    watch.clean("publishing detail")

    page.goto(f"{base}/review/")
    watch.clean("review queue")

    with page.expect_response(lambda r: r.url.endswith("/p/csp-check/read")):
        page.goto(f"{base}/p/csp-check")
    assert page.locator(".markdown-body table").count() == 1
    watch.clean("public page")


def test_the_policy_really_blocks_inline_script(page, live_server, browser_login, world):
    """The watch above can fail: an injected inline script is refused and reported."""
    watch = Watch(page)
    page.goto(f"{live_server.url}/login")
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__ran = true';
        document.body.appendChild(s);
    }""")
    assert poll(page, "window.__csp.length > 0")
    assert page.evaluate("window.__ran") is None
    assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))
    assert watch.errors  # Chromium reports the refusal on the console too
