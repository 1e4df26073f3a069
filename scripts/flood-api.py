#!/usr/bin/env python3
"""Floods a `proofpool api` on loopback the way the hardening issue probed it,
and prints its RSS and /metrics size before and after each flood.

    scripts/flood-api.py --url http://127.0.0.1:8080 --pid PID

Floods (every loop bounded, loopback only):
  methods   500 requests with 60 KB method names, then 500 with 12 KB ones
            (under the 16 KB head limit), and 2,000 odd paths
  silent    3,000 connections from 50 loopback addresses that send nothing,
            then waits past the header-read timeout
  slowloris 200 connections sending one byte every 3 s
"""

import argparse
import os
import socket
import sys
import time
import urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metrics(url):
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        return r.read().decode()


def value(page, name):
    for line in page.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line.rsplit(" ", 1)[1]
    return "?"


def report(label, url, pid):
    page = metrics(url)
    print(
        f"{label:<28} rss {rss_kib(pid) / 1024:7.1f} MiB   /metrics {len(page):7d} bytes "
        f"{len(page.splitlines()):5d} lines   open {value(page, 'proofpool_api_connections_open')}"
        f"   refused {value(page, 'proofpool_api_connections_refused_total')}",
        flush=True,
    )


def request(host, port, raw, src="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=10, source_address=(src, 0))
    try:
        s.sendall(raw)
        return s.recv(4096)
    except OSError:
        return b""
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--wait", type=float, default=12.0, help="seconds past the header-read timeout")
    a = ap.parse_args()
    host, port = a.url.removeprefix("http://").split(":")
    port = int(port)
    report("start", a.url, a.pid)

    statuses = {}
    for size, n in ((60_000, 500), (12_000, 500)):
        for i in range(n):
            method = ("X" * size + str(i)).encode()
            head = request(host, port, method + b" /api/v1/summary HTTP/1.1\r\nhost: x\r\n\r\n")
            code = head[9:12].decode(errors="replace")
            statuses[code] = statuses.get(code, 0) + 1
    for i in range(2000):
        request(host, port, f"GET /x/{i}/{'p' * (i % 300)} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    print(f"  method flood answers: {statuses}")
    report("after methods and paths", a.url, a.pid)

    silent = []
    for i in range(3000):
        src = f"127.0.1.{i % 50 + 1}"
        try:
            silent.append(socket.create_connection((host, port), timeout=5, source_address=(src, 0)))
        except OSError as e:
            print(f"  connect {i}: {e}")
            break
    report("3,000 silent connections", a.url, a.pid)

    slow = []
    for i in range(200):
        s = socket.create_connection((host, port), timeout=5, source_address=(f"127.0.2.{i % 50 + 1}", 0))
        s.setblocking(False)
        slow.append(s)
    head = b"GET /api/v1/summary HTTP/1.1\r\nhost: x\r\n"
    deadline = time.time() + a.wait
    sent = 0
    while time.time() < deadline:
        for s in slow:
            try:
                s.send(head[sent % len(head) : sent % len(head) + 1])
            except OSError:
                pass
        sent += 1
        time.sleep(3)
    closed = 0
    for s in silent + slow:
        try:
            s.setblocking(False)
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print(f"  after {a.wait:.0f} s: {closed} of {len(silent) + len(slow)} silent/slow connections closed by the server")
    report("after the timeout", a.url, a.pid)


if __name__ == "__main__":
    sys.exit(main())
