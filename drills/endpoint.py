"""A database endpoint that can be moved: a TCP forwarder on a loopback port (RDS's writer endpoint).

On an RDS failover the endpoint's DNS name moves to the promoted standby and open connections drop;
`switch(port)` does the same here: connections open now are closed, new ones reach the new server.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from devenv.servers import free_port


class Endpoint:
    def __init__(self, target_port: int) -> None:
        self.port, self.target_port = free_port(), target_port
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def switch(self, target_port: int) -> None:
        """Send new connections to `target_port`; close every connection open now."""
        with self._lock:
            self.target_port = target_port
            doomed, self._open = self._open, set()
        for sock in doomed:
            _close(sock)

    def close(self) -> None:
        _close(self._listener)
        self.switch(self.target_port)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)  # like a name pointing at a server that is down: refused
                continue
            with self._lock:
                self._open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
