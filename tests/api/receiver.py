"""A webhook receiver for the tests and the bench: verifies each request with the `standardwebhooks` package."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies, records and answers with the next scripted reply."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[dict] = []  # verified: {"id", "body", "headers"}
        self.rejected = 0
        self.replies: list[tuple[int, dict, float]] = []  # (status, headers, seconds to hang first)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, hang = receiver.next_reply()
                time.sleep(hang)
                try:
                    data = Webhook(receiver.secret).verify(body, dict(self.headers))
                except Exception:
                    with receiver.lock:
                        receiver.rejected += 1
                    status = 401
                else:
                    with receiver.lock:
                        receiver.received.append({"id": self.headers["webhook-id"], "body": data,
                                                  "raw": body, "headers": dict(self.headers)})  # fmt: skip
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_reply(self) -> tuple[int, dict, float]:
        with self.lock:
            return self.replies.pop(0) if self.replies else (200, {}, 0.0)

    def url(self, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.received]

    def dump(self) -> str:
        return json.dumps(self.bodies())
