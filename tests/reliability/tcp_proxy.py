"""A TCP proxy on loopback that a test can cut, black-hole and restore.

- ``stop()``: refuse new connections and cut the open ones, as a crashed server would.
- ``blackhole()``: accept connections and keep them open, but forward nothing either way,
  as a server that hangs (or a network that drops packets) would; ``restore()`` ends it.
"""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port: int | None = None
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    def start(self) -> "TcpProxy":
        self._flowing.set()
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port or 0))
        server.listen(256)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a crashed server would."""
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._server.close()
            self._server = None
        self._flowing.set()  # wake held pumps so that they see their sockets closed
        self._cut_all()

    def blackhole(self) -> None:
        """Keep accepting and keep every connection open, but let no byte through."""
        self._flowing.clear()

    def restore(self) -> None:
        """End a black hole: connections opened during it are cut (their bytes are lost), new ones flow."""
        self._cut_all()
        self._flowing.set()

    def _cut_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            if not self._flowing.is_set():
                with self._lock:  # held open, never answered
                    self._sockets.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):  # small request/answer round trips: no Nagle delay
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self._flowing.is_set():
                    # Black hole: the bytes are swallowed and this connection stays silent
                    # until it is cut by restore() or stop().
                    self._flowing.wait()
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # shutdown() first: close() alone does not end a socket that the opposite pump is
            # blocked reading, so the far end would never see the connection go (a killed
            # client's transaction would stay open on the server, holding its locks).
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    sock.close()
                except OSError:
                    pass
