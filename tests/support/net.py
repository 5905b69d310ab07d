"""Sockets for tests: a free port, a listening check, a TCP relay that can be cut, slowed and restored."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

LOWEST_PORT = 20000
_handed_out: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range and not handed out before in
    this run. A port the kernel picked (bind to 0) comes from the range it also gives outgoing
    connections, so a server binding it seconds later (a Patroni node, a restarted PostgreSQL) could
    find it taken by one of the test's own clients."""
    low = ephemeral_range()[0]
    top = low if low - LOWEST_PORT > 1000 else 65535
    for _ in range(500):
        port = random.randrange(LOWEST_PORT, top)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found in {LOWEST_PORT}-{top}")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class TcpProxy:
    """A TCP relay in front of a service (RabbitMQ by default): the network between the app and the
    service, as the app sees it.

    - cut(): every connection is dropped and new ones are refused (a broker restart, a partition
      that resets connections); restore() (or start() again) accepts again.
    - latency: seconds added to every chunk relayed, each way (0: none).
    - reset(): drop the connections open now but keep accepting (a connection reset storm).
    A service that refuses the relay's own connection (down, restarting) closes the client's: the
    relay itself never stops."""

    def __init__(self, port: int, target=("127.0.0.1", 5672)):
        self.port, self.target = port, target
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.latency = 0.0
        self.accepted = 0  # connections relayed since start
        self._lock = threading.Lock()

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    restore = start

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if listener is not self.listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst) -> None:
        try:
            while data := src.recv(65536):
                if self.latency:
                    time.sleep(self.latency)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def conns(self) -> int:
        """Sockets held open (two per relayed connection)."""
        with self._lock:
            return sum(1 for s in self.sockets if s.fileno() != -1)

    def reset(self) -> None:
        with self._lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self) -> None:
        with self._lock:
            listener, self.listener = self.listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
            except OSError:
                pass
            listener.close()
        self.reset()

    def close(self) -> None:
        self.cut()
