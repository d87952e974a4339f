"""Hostile material shared by the fault tests and ``tools/bench_reliability.py``: a URL and body corpus against the
WebShop server, a server in a child process (so its memory is measured alone), and a stalled loopback endpoint."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
ASIN = "B07B6DVG41"
"""A catalogue product (used by the server tests too)."""

NAMED_BAD_PATHS = [
    "/fixed_²",
    "/search_results/fixed_0/%5B%27a%27%5D/²",
    "/search_results/fixed_0/%5B%27a%27%5D/" + "9" * 5000,
    "/fixed_" + "9" * 5000,
    "/fixed_٣",
    "/search_results/fixed_٣/%5B%27a%27%5D/1",
    "/" + "s" * 4000,
    "/search_results/" + "s" * 300 + "/%5B%27a%27%5D/1",
    "/search_results/fixed_0/%5B%27a%27%5D/1e3",
    "/search_results/fixed_0/%5B%27a%27%5D/-1",
    "/item_page/fixed_0/" + ASIN + "/%5B%27a%27%5D/%C2%B2/%7B%7D",
]
"""The issue's 500s and their relatives: each must be a 4xx."""

_SEGMENTS = [
    "fixed_0", "fixed_²", "fixed_" + "9" * 5000, "fixed_-1", "fixed_1e3", "abc", "%00", "%ff", "%2F", "..", "%2e%2e",
    "²", "٣", "1" * 5000, "0", "-1", "1.5", "%201", "%5B%27a%27%5D", "%5B%5D", "%7B%7D", "%7B%27a%27%3A%27b%27%7D",
    "%5B%27a", "%5B%27%5Cx%27%5D", "%5B%27%5CU99999999%27%5D", "%5B%27%5CN%7Bx%7D%27%5D", "%5B%27%5Cu12%27%5D", ASIN,
    ASIN.lower(), "Description", "Secrets", "%3Cscript%3E", "%27", "%22", "x" * 300, "a%20b", "a+b", "%5B%27%27%5D",
    "%5B%27a%27%2C%5D", "%7B%27a%27%3A%27b%27%2C%7D", "%5B%27%3Cr%3E%27%5D", "%5B%27%3Cq%3E%27%2C%27x%27%5D",
    "%3Cr%3E", "%3Cq%3E", "%F0%9F%98%80", "%ED%A0%80", "%C0%AF", "%5B" * 2000, "%7B%27" + "a" * 5000 + "%27%7D",
]  # fmt: skip
_ROUTES = ["", "search_results", "item_page", "item_sub_page", "done", "nope"]


def hostile_paths(n_random: int = 400, seed: int = 0) -> list[str]:
    """The named bad paths, every segment in every slot of every route, and ``n_random`` random mixes."""
    paths = list(NAMED_BAD_PATHS)
    for seg in _SEGMENTS:
        paths += [
            f"/{seg}",
            f"/search_results/{seg}/%5B%27a%27%5D/1",
            f"/search_results/fixed_0/{seg}/1",
            f"/search_results/fixed_0/%5B%27a%27%5D/{seg}",
            f"/item_page/fixed_0/{seg}/%5B%27a%27%5D/1/%7B%7D",
            f"/item_page/fixed_0/{ASIN}/{seg}/1/%7B%7D",
            f"/item_page/fixed_0/{ASIN}/%5B%27a%27%5D/1/{seg}",
            f"/item_sub_page/fixed_0/{ASIN}/%5B%27a%27%5D/1/{seg}/%7B%7D",
            f"/done/{seg}/{ASIN}/%7B%7D",
            f"/done/fixed_0/{seg}/%7B%7D",
        ]
    rng = random.Random(seed)
    for _ in range(n_random):
        route = rng.choice(_ROUTES)
        parts = ([route] if route else []) + [rng.choice(_SEGMENTS) for _ in range(rng.randint(0, 6))]
        paths.append("/" + "/".join(parts))
    return paths


HOSTILE_BODIES = [
    b"search_query=%ff",
    b"search_query=\xff\xfe",
    b"search_query=" + b"%" * 100,
    b"search_query=a&search_query=b",
    b"\x00" * 100,
    b"=&=&&&" * 100,
    b"search_query=" + b"a" * 70_000,
]
"""Form bodies POSTed to ``/fixed_0``: a 4xx or a redirect, never a 5xx."""


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class ChildServer:
    url: str
    pid: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def child_server(timeout: float = 120.0) -> Iterator[ChildServer]:
    """``stl webshop serve`` on a free loopback port in a child process; killed at exit."""
    port = _free_port()
    cmd = [sys.executable, "-m", "langgraph_stl", "webshop", "serve", "--port", str(port), "--attrs"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(url + "/fixed_0", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"the WebShop server did not start: {err[-2000:]}") from None
                time.sleep(0.2)
        yield ChildServer(url, proc.pid)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@contextmanager
def stalled_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT``: the kernel completes every TCP handshake, nothing ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def scripted_server(pages: dict[str, tuple[int, dict[str, str], str]]) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server answering ``path -> (status, headers, body)`` (404 otherwise); yields its URL and the
    list of paths it was asked for."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            status, headers, body = pages.get(self.path, (404, {}, "not found"))
            data = body.encode()
            self.send_response(status)
            for name, value in {"content-type": "text/html; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
