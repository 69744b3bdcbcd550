"""A thin HTTP front for TorchServe that gives the workflow endpoint real status codes.

Why it exists: TorchServe 0.12's workflow frontend answers every successful DAG run with 200 and every
failed one with 500, whatever status the nodes set (``WorkflowManager.predict``; upstream is archived).
So a bad image sent to ``/wfpredict/thaiplate`` would come back as 200 + ``{"error": ...}`` while the
all-in-one endpoint says 400. The front forwards every request unchanged to TorchServe on a loopback
port and only rewrites the status of ``/wfpredict/...`` answers that carry our error document, using
the same code -> status table as the handlers (:mod:`thaiplate.errors`), and turns TorchServe's 404 for an
inference path into our error document naming the endpoints served. It also refuses oversized
bodies with our JSON error before they reach Java, and hands form-encoded inference bodies on as raw
bytes (:func:`raw_body_headers`).

It runs in the entrypoint's supervisor process (stdlib only: no numpy, ~no memory), one thread per
client connection, with a keep-alive upstream connection per thread. Measured cost: see the README's
performance section.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from thaiplate.errors import MAX_REQUEST_BYTES, http_status, reply_status

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
WORKFLOW_PREFIX = "/wfpredict/"
INFERENCE_PREFIXES = (WORKFLOW_PREFIX, "/predictions/")
FORM = "application/x-www-form-urlencoded"


def raw_body_headers(headers: dict[str, str]) -> dict[str, str]:
    """Forward a form-encoded body as ``application/octet-stream``. ``curl --data-binary @car.jpg`` without
    ``-H`` labels the image ``application/x-www-form-urlencoded``; TorchServe then parses it as form fields
    and answers 500 "Bad end of line" with no error of ours. The API has no form fields, so such a body can
    only be the image itself: decoded as one, it gets a reading or our 400."""
    return {
        k: "application/octet-stream" if k.lower() == "content-type" and v.split(";")[0].strip().lower() == FORM else v
        for k, v in headers.items()
    }


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


def not_served_body(path: str, upstream: bytes, hint: str) -> bytes:
    """Our error document for an inference path TorchServe has no model or workflow for (its own 404 says
    only "Model not found: pipeline"; a user who sent a photo to the endpoint of the other mode needs to
    know which endpoints this server answers)."""
    try:
        message = str(json.loads(upstream).get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    message = message or f"nothing is served at {path}"
    return error_body("not_served", f"{message}; {hint}" if hint else message)


def workflow_status(body: bytes) -> int:
    """The status a DAG answer should have had: from our error document(s), else 200.

    Same rule as the handlers (:func:`thaiplate.errors.reply_status`): a batch (JSON list) fails only
    when every item failed.
    """
    if not body[:64].lstrip().startswith((b'{"error"', b"[")):
        return HTTPStatus.OK  # fast path: results start with {"plates"...}
    try:
        doc = json.loads(body)
    except ValueError:
        return HTTPStatus.OK
    items = doc if isinstance(doc, list) else [doc]
    return reply_status([http_status(c) if (c := _error_code(i)) else None for i in items])


def _error_code(item: Any) -> str | None:
    err = item.get("error") if isinstance(item, dict) else None
    return err.get("code") if isinstance(err, dict) and isinstance(err.get("code"), str) else None


class _Upstream(threading.local):
    conn: http.client.HTTPConnection | None = None


class FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with clients (load tests reuse connections)
    server: Front

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._forward()

    do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - TorchServe logs requests
        pass

    def _forward(self) -> None:
        body = self._read_body()
        if body is None:
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.path.startswith(INFERENCE_PREFIXES):
            headers = raw_body_headers(headers)
        try:
            status, reason, resp_headers, data = self.server.call(self.command, self.path, body, headers)
        except OSError as e:
            self._send(HTTPStatus.BAD_GATEWAY, error_body("upstream_unavailable", f"TorchServe: {e}"))
            return
        if status == HTTPStatus.NOT_FOUND and self.path.startswith(INFERENCE_PREFIXES):
            self._send(status, not_served_body(self.path, data, self.server.not_found_hint))
            return
        if status == HTTPStatus.OK and self.path.startswith(WORKFLOW_PREFIX):
            status = workflow_status(data)
            reason = HTTPStatus(status).phrase
        self.send_response(status, reason)
        for k, v in resp_headers:
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None after answering 411/413 ourselves."""
        limit = self.server.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                size += n
                if size > limit:
                    return self._too_large(size)
                chunks.append(self.rfile.read(n))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            return self._too_large(length)
        return self.rfile.read(length) if length else b""

    def _too_large(self, size: int) -> None:
        self.close_connection = True  # the rest of the body is never read
        msg = f"request body is at least {size:,} bytes; the limit is {self.server.max_body:,}"
        self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, error_body("too_large", msg))
        return None

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Front(ThreadingHTTPServer):
    """``Front((host, port), upstream_port).serve_forever()``; ``shutdown()`` from another thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        max_body: int = MAX_REQUEST_BYTES,
        timeout: float = 120.0,
        not_found_hint: str = "",
    ) -> None:
        """``not_found_hint``: appended to a 404 on an inference path (which endpoints this server answers)."""
        super().__init__(address, FrontHandler)
        self.not_found_hint = not_found_hint
        self.upstream = (upstream_host, upstream_port)
        self.max_body = max_body
        self.timeout_s = timeout
        self._local = _Upstream()

    def call(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One upstream round trip on this thread's keep-alive connection (reopened once if stale)."""
        for attempt in (0, 1):
            conn = self._local.conn
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection(*self.upstream, timeout=self.timeout_s)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                    self._local.conn = None
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._local.conn = None
                if attempt:  # a stale keep-alive connection fails before TorchServe saw the request
                    raise
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                raise
        raise AssertionError("unreachable")

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


def serve_in_thread(front: Front) -> threading.Thread:
    t = threading.Thread(target=front.serve_forever, name="thaiplate-front", daemon=True)
    t.start()
    return t


def main(argv: list[str] | None = None) -> int:
    """``python -m thaiplate.serving.front``: the front alone, in front of any running TorchServe."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    ap.add_argument("--port", type=int, default=8080, help="public port")
    ap.add_argument("--upstream-port", type=int, required=True, help="TorchServe inference port (loopback)")
    ap.add_argument("--max-body", type=int, default=MAX_REQUEST_BYTES, help="bytes; larger bodies get 413")
    args = ap.parse_args(argv)
    front = Front((args.host, args.port), args.upstream_port, max_body=args.max_body)
    print(f"front: http://{args.host}:{front.server_address[1]} -> 127.0.0.1:{args.upstream_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        front.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
