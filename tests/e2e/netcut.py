"""A TCP proxy whose connections a test can cut: the network dropping, for real.

    with CuttableProxy(target_port=8000) as proxy:
        page.goto(f"http://127.0.0.1:{proxy.port}/")
        proxy.cut(down_seconds=1.5)      # open connections die; new ones fail for 1.5 s

Chromium's offline emulation leaves a response that is already streaming alone, so a test
of "the connection dropped mid-answer" needs the socket itself closed under the page.
Loopback only, and it stops with the test.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Self


class CuttableProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._stopped = False
        self.cuts = 0

    def start(self) -> Self:
        self._listener.listen(64)
        threading.Thread(target=self._accept, name="netcut-accept", daemon=True).start()
        return self

    def cut(self, down_seconds: float = 0.0) -> None:
        """Close every open connection; refuse new ones for `down_seconds`."""
        self._down_until = time.monotonic() + down_seconds
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)
        self.cuts += 1

    def stop(self) -> None:
        self._stopped = True
        _close(self._listener)
        self.cut()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                _close(client)  # the network is down: the browser sees an empty response
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with self._lock:
                    self._open.discard(sock)
                _close(sock)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
