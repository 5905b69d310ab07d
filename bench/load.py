"""A small HTTP/1.1 load generator: gevent greenlets on raw keep-alive sockets, so the client costs
tens of microseconds per request and is not what a benchmark measures (bench/order_throughput.py checks that
on a route that does nothing).

Closed loop (`rate` 0): each of `clients` connections sends its next request as soon as the last one
answered. Open loop (`rate` > 0): requests are due on a fixed schedule, `rate` per second spread
over the connections, and latency counts from when a request was due, not when it went out, so a
slow server is not flattered by a client that waited for it (coordinated omission).

Run as `python -m bench.load` with a JSON job on stdin; prints a JSON result on stdout.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import gevent
from gevent import socket

HEADER_END = b"\r\n\r\n"


class Connection:
    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, raw: bytes) -> int:
        """Send one request, read its whole response; returns the status code."""
        self.sock.sendall(raw)
        while HEADER_END not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(HEADER_END)
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self.buffer = rest
            self._fill()
            rest = self.buffer
        self.buffer = rest[length:]
        return status

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk


def build(job: dict, n: int, headers: dict) -> bytes:
    body = job.get("body")
    lines = [f"{job['method']} {job['path']} HTTP/1.1", f"Host: {job['host']}:{job['port']}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    data = b""
    if body is not None:
        data = body.replace("{n}", str(n)).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def run(job: dict) -> dict:
    clients, duration, warmup, rate = job["clients"], job["duration"], job.get("warmup", 1.0), job.get("rate", 0)
    header_sets = job.get("headers") or [{}]
    counter = itertools.count(job.get("first", 0))
    start = time.perf_counter() + 0.2
    measure_from, stop_at = start + warmup, start + warmup + duration
    # Open loop: every request due before stop_at is still sent (a slow server makes the run longer,
    # not the figures better), up to this hard stop; the ones left are reported as never sent.
    hard_stop = stop_at + max(duration, 5.0)
    records: list[tuple[float, float, int]] = []  # (due or sent, answered, status)
    errors: list[str] = []

    def client(index: int) -> None:
        conn = Connection(job["host"], job["port"])
        interval = clients / rate if rate else 0.0
        due = start + index * interval / clients if rate else start
        while True:
            now = time.perf_counter()
            if (rate and (due >= stop_at or now >= hard_stop)) or (not rate and now >= stop_at):
                return
            if rate:
                if due > now:
                    gevent.sleep(due - now)
                sent_at, due = due, due + interval
            else:
                sent_at = now
            n = next(counter)
            try:
                status = conn.request(build(job, n, header_sets[n % len(header_sets)]))
            except (OSError, ConnectionError, ValueError) as exc:
                errors.append(repr(exc))
                conn = Connection(job["host"], job["port"])
                continue
            records.append((sent_at, time.perf_counter(), status))

    cpu0 = time.process_time()
    gevent.joinall([gevent.spawn(client, i) for i in range(clients)])
    measured = [r for r in records if measure_from <= r[0] < stop_at and (rate or r[1] <= stop_at)]
    statuses: dict[str, int] = {}
    for _, _, status in measured:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    due_in_window = round(duration * rate) if rate else len(measured)
    return {
        "duration": duration,
        "rps": sum(1 for r in records if measure_from <= r[1] <= stop_at and r[2] < 300) / duration,
        "samples_ms": [(done - sent) * 1000 for sent, done, status in measured if status < 300],
        "statuses": statuses,
        "never_sent": max(due_in_window - len(measured), 0) if rate else 0,
        "errors": errors[:5],
        "error_count": len(errors),
        "client_cpu_s": time.process_time() - cpu0,
        "completed": len(records),  # every answer, warm-up included
    }


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
