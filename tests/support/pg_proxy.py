"""A TCP proxy in front of PostgreSQL that can lose a reply, as a failing network would.

Bytes pass through unchanged both ways. Armed with `drop_next_reply()`, it lets
the next statement reach the server and run to its end (the server's
ReadyForQuery), then closes both sides instead of forwarding the reply: the
client's statement ran, and the client never learns it. `cut()` closes every
connection at once, as a restarted pooler or a NAT that forgot them would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg.conninfo import conninfo_to_dict, make_conninfo


def _upstream_address(conninfo: str) -> tuple[int, str | tuple[str, int]]:
    params = conninfo_to_dict(conninfo)
    host = str(params.get("host") or "127.0.0.1").split(",")[0]
    port = int(str(params.get("port") or "5432").split(",")[0])
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (host, port)


class PgProxy:
    def __init__(self, upstream_conninfo: str) -> None:
        self.upstream_conninfo = upstream_conninfo
        self._family, self._address = _upstream_address(upstream_conninfo)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._drop_armed = False
        self.replies_dropped = 0
        self.accepted = 0
        self._open: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        threading.Thread(target=self._accept, name="pg-proxy-accept", daemon=True).start()

    @property
    def conninfo(self) -> str:
        """The upstream conninfo with host and port pointing at the proxy (plain TCP, no TLS)."""
        return make_conninfo(
            self.upstream_conninfo, host="127.0.0.1", port=str(self.port), sslmode="disable", gssencmode="disable"
        )

    def drop_next_reply(self) -> None:
        with self._lock:
            self._drop_armed = True

    def cut(self) -> None:
        """Close every open connection, both sides."""
        with self._lock:
            pairs, self._open = self._open, []
        for client, server in pairs:
            _close(client)
            _close(server)

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self.cut()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.socket(self._family, socket.SOCK_STREAM)
                server.connect(self._address)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self.accepted += 1
                self._open.append((client, server))
            threading.Thread(target=self._pump_client, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_server, args=(server, client), daemon=True).start()

    def _pump_client(self, client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                server.sendall(data)
        _close(server)

    def _pump_server(self, server: socket.socket, client: socket.socket) -> None:
        """Forward whole messages; after startup, an armed proxy swallows one reply and hangs up."""
        buffer = b""
        started = False  # the first ReadyForQuery ends the startup exchange
        dropping = False
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                buffer += data
                forward = b""
                while len(buffer) >= 5:
                    length = int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < 1 + length:
                        break
                    message, buffer = buffer[: 1 + length], buffer[1 + length :]
                    if started and not dropping:
                        with self._lock:
                            dropping, self._drop_armed = self._drop_armed, False
                    if not dropping:
                        forward += message
                    if message[:1] == b"Z":
                        if dropping:  # the statement ran to its end: lose its reply
                            with self._lock:
                                self.replies_dropped += 1
                            _close(client)
                            _close(server)
                            return
                        started = True
                if forward:
                    client.sendall(forward)
        _close(client)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextmanager
def pg_proxy(upstream_conninfo: str) -> Iterator[PgProxy]:
    proxy = PgProxy(upstream_conninfo)
    try:
        yield proxy
    finally:
        proxy.close()
