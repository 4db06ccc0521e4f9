"""A small threaded WSGI server on 127.0.0.1 with switchable failure modes, the base of the
robot fakes: each can be told to answer an error code, time out, or close the connection."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _QuietHandler(WSGIRequestHandler):
    # The request line carries robot keys; a fake must not leak them into captured logs.
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeService:
    """Subclasses implement `handle(request) -> dict` (the JSON reply) and set `per_minute`."""

    per_minute: int = 20

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []  # messages the service accepted
        self.received_at: list[float] = []  # when (service clock), in the same order
        self.raw: list[bytes] = []  # every request body, accepted or not
        self.fail_codes: deque[int] = deque()  # error codes to answer next, in order
        self.mode: str | None = None  # None | "timeout" | "drop" | "html" | "huge"
        self.delay = 3.0  # seconds a "timeout" answer takes
        self.clock: Callable[[], float] = time.time
        self._sent: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeService:
        self._server = make_server("127.0.0.1", 0, self, threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- helpers for subclasses -----------------------------------------------------------

    def fail_next(self, *codes: int) -> None:
        self.fail_codes.extend(codes)

    def rate_ok(self, robot: str) -> bool:
        """A sliding one-minute window per robot, as the services count."""
        now = self.clock()
        with self._lock:
            window = self._sent[robot]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.per_minute:
                return False
            window.append(now)
            return True

    def accept(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(msg)
            self.received_at.append(self.clock())

    def handle(self, request: Request) -> tuple[dict[str, Any], int]:
        raise NotImplementedError

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.raw.append(body)
        if self.mode == "timeout":
            self._stop.wait(self.delay)
        elif self.mode == "drop":
            # Close the socket without a reply, as a crashing proxy would.
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("dropped by the fake on purpose")
        elif self.mode == "html":
            return Response("<html>502 Bad Gateway</html>", status=502,
                            content_type="text/html")(environ, start_response)
        reply, status = self.handle(request)
        if self.mode == "huge":  # the message is taken; the answer is padded past any limit
            reply = {**reply, "padding": "x" * (5 * 1024 * 1024)}
        return Response(json.dumps(reply, ensure_ascii=False), status=status,
                        content_type="application/json; charset=utf-8")(environ, start_response)

    def next_failure(self) -> int | None:
        with self._lock:
            return self.fail_codes.popleft() if self.fail_codes else None


def byte_len(text: Any) -> int:
    return len(str(text).encode("utf-8"))
