"""Security headers on every response: Content-Security-Policy and friends.

The policy forbids inline script outright (no 'unsafe-inline', no nonces): every page's
behaviour lives in static/js/*.js and reads its data from data-* attributes or
<script type="application/json"> blocks, which CSP does not execute. A test loads the main
pages in Chromium and fails on any CSP violation.
"""

from __future__ import annotations

from flask import Flask, Response

CSP_DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    # 'unsafe-inline' for styles only, and only because it cannot be avoided yet:
    # FullCalendar 6 injects its stylesheet as a <style> element at run time, the Markdown
    # renderer emits style="text-align:…" on table cells (rendering.py allows nothing else),
    # and per-row data (channel colours, heat-map shades, goal bars) is drawn with style
    # attributes. Injected CSS cannot run script; script-src stays strict.
    "style-src": "'self' 'unsafe-inline'",
    # Piece bodies are Markdown and may show images from anywhere on the web (rendering.py
    # allows http and https image URLs and adds referrerpolicy=no-referrer); Bootstrap draws
    # some icons as data: SVGs. Images cannot run script.
    "img-src": "'self' data: https: http:",
    # FullCalendar's injected stylesheet embeds its arrow icons as a data: font.
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    # No page is meant to be framed, the public post pages included: WeChat and browsers open
    # them as top-level pages, and framing is what clickjacking needs.
    "frame-ancestors": "'none'",
}

CONTENT_SECURITY_POLICY = "; ".join(f"{name} {value}" for name, value in CSP_DIRECTIVES.items())

HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # frame-ancestors supersedes this where supported; older browsers only know this one.
    "X-Frame-Options": "DENY",
    # Links to other sites get the origin only, never a path with ids or tokens in it.
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        # setdefault: a view that chose a stricter value (tracking's no-referrer) keeps it.
        response.headers.setdefault(name, value)
    return response


def register(app: Flask) -> None:
    app.after_request(add_security_headers)
