"""Helpers for the publishing-engine tests: data builders, a settable clock, fake adapters and
a real HTTP webhook receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import struct
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contentops.channels.base import (
    Capabilities,
    ChannelAdapter,
    OutgoingPost,
    PermanentError,
    PublishResult,
    TransientError,
)
from contentops.models import Channel, Post, User

from .builders import NOW, Make

SECRET_KEY = "test-secret-key"


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 11, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def make_channel(session, kind: str = "webhook", *, name: str | None = None,
                 config: dict | None = None, **settings: Any) -> Channel:
    """Through the channel service (tests/builders.py)."""
    return Make(session, secret_key=SECRET_KEY).channel(
        kind, name=name or f"{kind}-{time.perf_counter_ns()}", config=config, **settings)


def _make_at(session, at: datetime | None) -> Make:
    # The builders act at the post's time, so approval and scheduling happen "before" it.
    return Make(session, now=at or NOW, secret_key=SECRET_KEY)


def make_post(session, channel: Channel, author: User, at: datetime | None, *,
              approved: bool = True, status: str = "scheduled", title: str = "双11 预告",
              body: str = "**限时** 五折，[详情](https://example.com/sale)") -> Post:
    """An approved (or draft) post at `at`, built through the services (tests/builders.py).
    Kept for the tests that import it; new tests use the `make` fixture. As the old helper
    did, the time is set without the schedule-time quota checks (dispatch checks again)."""
    return _make_at(session, at).post(
        channel, at, approved=approved, title=title, body=body, author=author,
        status=None if status == "scheduled" and at is not None else status, checked=False)


def make_posts(session, channel: Channel, author: User, at: datetime, n: int) -> list[int]:
    """Many approved posts at once (bursts)."""
    return _make_at(session, at).posts(channel, at, n, author=author, checked=False)


class FakeAdapter(ChannelAdapter):
    """Scripted outcomes: a list of "ok" | "transient" | "permanent" | Exception, then "ok"."""

    kind = "fake"
    label = "Fake"

    def __init__(self, script: list | None = None, *, capabilities: Capabilities | None = None,
                 existing: PublishResult | None = None, config: dict | None = None) -> None:
        super().__init__(config or {})
        self.script = list(script or [])
        self.calls: list[tuple[int, str]] = []
        self.existing = existing
        if capabilities is not None:
            self.capabilities = capabilities
        self.lock = threading.Lock()

    def render(self, post: OutgoingPost) -> str:
        return post.title

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        with self.lock:
            self.calls.append((post.post_id, idempotency_key))
            step = self.script.pop(0) if self.script else "ok"
        if step == "transient":
            raise TransientError("The receiver is busy or failing (HTTP %(status)s).",
                                 {"status": 503}, detail="HTTP 503")
        if step == "permanent":
            raise PermanentError("The receiver refused the post (HTTP %(status)s).",
                                 {"status": 400}, detail="HTTP 400")
        if isinstance(step, Exception):
            raise step
        return PublishResult(external_id=f"ext-{post.post_id}",
                             url=f"https://example.com/{post.post_id}")

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        return self.existing


def send_json(handler: BaseHTTPRequestHandler, status: int, reply: Any,
              headers: dict[str, str] | None = None) -> None:
    """Answer an http.server request with a JSON body (keep-alive safe: Content-Length)."""
    data = json.dumps(reply).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), as a crashing proxy or a load
    balancer killing an idle backend does: the client sees "connection reset by peer"."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


class Receiver:
    """A webhook receiver on 127.0.0.1 speaking HTTP/1.1 with keep-alive.

    It dedupes on Idempotency-Key like a well-behaved receiver: a repeated key gets the first
    reply back and does not count as a new effect. `statuses` scripts replies by call order.
    `faults` scripts faults by call order, one dict per request (then none):
    {"status": 429, "headers": {"Retry-After": "2"}} answers that status and headers;
    {"late": s} processes the request, then waits s seconds before the reply;
    {"reset": "before"} resets the connection without processing the request;
    {"reset": "after"} processes it, then resets the connection instead of replying.
    """

    def __init__(self, secret: str = "s3cret", *, delay: float = 0.0,
                 statuses: list[int] | None = None, faults: list[dict] | None = None) -> None:
        self.secret = secret
        self.delay = delay
        self.statuses = list(statuses or [])
        self.faults = list(faults or [])
        self.lock = threading.Lock()
        self.deliveries: list[dict[str, Any]] = []  # every request, duplicates included
        self.effects: dict[str, dict[str, Any]] = {}  # first delivery per key
        self.times: dict[str, float] = {}  # key -> time.time() of first delivery
        self.connections: set[tuple[str, int]] = set()
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.time()
                key = self.headers.get("Idempotency-Key", "")
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body,
                                                hashlib.sha256).hexdigest()
                signature_ok = hmac.compare_digest(
                    expected, self.headers.get("X-ContentOps-Signature", ""))
                with receiver.lock:
                    fault = receiver.faults.pop(0) if receiver.faults else {}
                if fault.get("reset") == "before":
                    with receiver.lock:
                        receiver.deliveries.append({"key": key, "status": "reset",
                                                    "headers": dict(self.headers),
                                                    "body": body, "at": arrived})
                    reset_connection(self)
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.connections.add(self.client_address)
                    if "status" in fault:
                        status = fault["status"]
                    else:
                        status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.deliveries.append({"key": key, "status": status,
                                                "headers": dict(self.headers),
                                                "body": body, "at": arrived})
                    if not signature_ok:
                        receiver.bad_signatures += 1
                        status = 401
                    reply: dict[str, Any] = {}
                    if status == 200:
                        if key not in receiver.effects:
                            receiver.effects[key] = json.loads(body)
                            receiver.times[key] = arrived
                        post_id = receiver.effects[key]["post_id"]
                        reply = {"id": f"r-{post_id}", "url": f"https://recv.example/{post_id}"}
                if fault.get("late"):
                    time.sleep(fault["late"])  # processed; the reply comes too late
                if fault.get("reset") == "after":
                    reset_connection(self)
                    return
                send_json(self, status, reply, fault.get("headers"))

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request, client_address) -> None:
                return None  # a client that gave up (timeout test) is not an error here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def key_counts(self) -> Counter:
        with self.lock:
            return Counter(d["key"] for d in self.deliveries if d["status"] == 200)


class Redirector:
    """A loopback address that answers every request with a redirect (`status`, Location =
    the same path and query on `/landing`), and a landing page that answers 200 with a reply
    every channel would take for success ({"id", "errcode": 0, "metrics": {}}). A client that
    follows the redirect shows up in `landed`: a POST turned into a GET (301/302/303), or
    repeated (307/308) — either way not the request the channel meant to make."""

    def __init__(self, status: int = 301) -> None:
        self.status = status
        self.lock = threading.Lock()
        self.redirected: list[tuple[str, str]] = []  # (method, path) answered with a 3xx
        self.landed: list[tuple[str, str]] = []  # (method, path) that reached the landing
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                return None

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/landing"):
                    with redirector.lock:
                        redirector.landed.append((self.command, self.path))
                    send_json(self, 200, {"id": "landed", "errcode": 0, "errmsg": "ok",
                                          "metrics": {}})
                    return
                with redirector.lock:
                    redirector.redirected.append((self.command, self.path))
                body = b"Moved"
                self.send_response(redirector.status)
                self.send_header("Location", f"{redirector.base}/landing{self.path}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 - http.server naming

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Redirector:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
