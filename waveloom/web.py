"""What waveloom's local web servers share (the listening test and the studio).

Both bind to 127.0.0.1 only and defend against what a hostile page in the user's browser
could do to a server on their own machine:

* a request whose ``Host`` (or ``Origin``, when sent) is not localhost / 127.0.0.1 with this
  port is refused with 403 (DNS rebinding: a page that points its own name at 127.0.0.1 still
  sends its own Host);
* every socket read has a timeout (:data:`READ_TIMEOUT`): a half-sent request cannot hold a
  thread forever;
* a JSON body over the handler's ``max_body`` bytes is 413; a bad ``Content-Length``, a body
  that is not JSON, or JSON nested deeper than ``max_json_depth`` is 400 (the depth is checked
  before parsing, so 4,000 ``[`` are a 400, not a RecursionError).

:class:`LocalHandler` carries these and the JSON/file responses; a server's handler adds its
routes. :class:`LocalServer` binds to :data:`HOST`, and :func:`serve_until_interrupted` runs one
until Ctrl-C.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
#: Seconds any read from a client may block (headers and body).
READ_TIMEOUT = 10.0
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


def json_depth(text: str) -> int:
    """Deepest nesting of brackets in ``text`` outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


class LocalHandler(BaseHTTPRequestHandler):
    """A request handler for a server on 127.0.0.1 (see the module docstring). The server
    object may set ``quiet`` (no access log)."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT  # socketserver sets it on the connection: every read is bounded
    max_body = 4096
    max_json_depth = 4

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        if not getattr(self.server, "quiet", True):
            super().log_message(format, *args)

    # ------------------------------------------------------------------ responses

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _refuse(self, status: int, message: str) -> None:
        """Answer an error and close the connection (what is left of a body is not read)."""
        self.close_connection = True
        self._error(status, message)
        return None

    # ------------------------------------------------------------------ checks

    def _local_origin(self) -> bool:
        port = self.server.server_address[1]
        allowed = {f"{h}:{port}" for h in _LOCAL_HOSTS}
        if self.headers.get("Host", "").strip().lower() not in allowed:
            return False
        origin = self.headers.get("Origin")
        return origin is None or origin.strip().lower() in {f"http://{a}" for a in allowed}

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if not self._local_origin():
            self._error(HTTPStatus.FORBIDDEN, "only http://127.0.0.1 or localhost on this port")
            self.close_connection = True
            return False
        return True

    def _read_json(self):
        """The request's JSON body, or None after answering 400/408/413."""
        text = self.headers.get("Content-Length", "")
        if not text.strip().isdigit():
            return self._refuse(HTTPStatus.BAD_REQUEST, "Content-Length must be a number")
        length = int(text)
        if length == 0:
            return self._refuse(HTTPStatus.BAD_REQUEST, "expected a small JSON body")
        if length > self.max_body:
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                f"body over {self.max_body} bytes")
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            return self._refuse(HTTPStatus.REQUEST_TIMEOUT, "body not sent in time")
        if len(raw) < length:
            return self._refuse(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length")
        try:
            text = raw.decode("utf-8")
            if json_depth(text) > self.max_json_depth:
                return self._refuse(HTTPStatus.BAD_REQUEST, "JSON nested too deeply")
            return json.loads(text)
        except (ValueError, RecursionError):
            return self._refuse(HTTPStatus.BAD_REQUEST, "body is not JSON")


class LocalServer(ThreadingHTTPServer):
    """A threaded server on :data:`HOST` (``port`` 0: a free one); ``quiet``: no access log."""

    daemon_threads = True

    def __init__(self, port: int, handler: type[LocalHandler], quiet: bool = True) -> None:
        self.quiet = quiet
        super().__init__((HOST, port), handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"


def serve_until_interrupted(server: LocalServer) -> None:
    """``serve_forever`` until Ctrl-C, then close the server (and what it holds)."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
