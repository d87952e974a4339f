"""The WebShop server under hostile input: no 5xx for any malformed URL or body, and memory that stays flat under
floods of bodies, session ids and slow clients. The server runs in a child process so its RSS is measured alone."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator

import httpx
import pytest

from langgraph_stl.envs.webshop import server as server_module
from langgraph_stl.envs.webshop.server import MAX_BODY, start_server
from langgraph_stl.envs.webshop.urls import MAX_SESSION_ID
from tests._webshop_fixtures import webshop_site
from tests.faults.hostile import HOSTILE_BODIES, NAMED_BAD_PATHS, ChildServer, child_server, hostile_paths, rss_mb

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def child() -> Iterator[ChildServer]:
    with child_server() as running:
        yield running


def test_every_hostile_url_and_body_is_a_4xx_never_a_5xx(child: ChildServer) -> None:
    paths = hostile_paths()
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=child.url, timeout=30) as client:
        for path in paths:
            statuses[path] = client.get(path).status_code
        posted = [client.post("/fixed_0", content=body).status_code for body in HOSTILE_BODIES]
    assert [p for p, s in statuses.items() if s >= 500] == []
    assert all(400 <= statuses[p] < 500 for p in NAMED_BAD_PATHS), {p[:60]: statuses[p] for p in NAMED_BAD_PATHS}
    assert len(paths) > 900 and all(s < 500 for s in posted) and posted[-1] == 413


def _stream(total: int, sent: list[int]) -> Iterator[bytes]:
    chunk = b"search_query=" + b"a" * (1 << 20)
    while sent[0] < total:
        sent[0] += len(chunk)
        yield chunk


def test_a_300_mb_post_is_refused_while_streaming(child: ChildServer) -> None:
    before = rss_mb(child.pid)
    # declared: refused from the header, before any of the body is read
    headers = {"content-length": str(300 << 20)}
    with socket.create_connection(("127.0.0.1", int(child.url.rsplit(":", 1)[1])), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /fixed_0 HTTP/1.1\r\nhost: x\r\n{head}\r\n".encode() + b"a" * 65536)
        assert sock.recv(200).startswith(b"HTTP/1.1 413")
    # chunked, no length: refused once MAX_BODY bytes have arrived; the server closes instead of reading the rest
    sent = [0]
    try:
        status = httpx.post(child.url + "/fixed_0", content=_stream(300 << 20, sent), timeout=30).status_code
    except httpx.TransportError:  # the server closed while the client was still sending: also a refusal
        status = 413
    assert status == 413 and sent[0] < 64 << 20, sent[0]
    assert rss_mb(child.pid) - before < 20, (before, rss_mb(child.pid))


def test_a_flood_of_session_ids_leaves_memory_flat(child: ChildServer) -> None:
    with httpx.Client(base_url=child.url, timeout=30) as client:
        for i in range(300):  # warm-up: templates, allocator arenas
            client.get(f"/warm{i}")
        before = rss_mb(child.pid)
        long_ids = [client.get("/" + f"{i:04d}" + "x" * 4096).status_code for i in range(1000)]
        short_ids = [client.get("/" + f"{i:06d}" + "y" * (MAX_SESSION_ID - 6)).status_code for i in range(1000)]
        after = rss_mb(child.pid)
    assert set(long_ids) == {400} and set(short_ids) == {200}
    assert after - before < 10, (before, after)


def test_the_session_table_is_a_bounded_lru() -> None:
    site = dataclasses.replace(webshop_site(), sessions=OrderedDict(), lock=threading.Lock(), max_sessions=50)
    with start_server(site) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        for i in range(200):
            assert client.get(f"/s{i}").status_code == 200
        assert len(site.sessions) == 50 and next(iter(site.sessions)) == "s150"
        assert client.get("/search_results/s0/%5B%27a%27%5D/1").status_code == 404  # evicted: open /s0 again
        assert client.get("/search_results/s199/%5B%27a%27%5D/1").status_code == 200
        assert client.get("/search_results/fixed_3/%5B%27a%27%5D/1").status_code == 200  # fixed ones come back


def test_slow_loris_clients_are_cut_off_and_others_are_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module.bounded_h11_protocol(), "head_timeout_s", 1.0)
    with start_server(webshop_site()) as running:
        port = int(running.url.rsplit(":", 1)[1])
        slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(50)]
        for sock in slow:
            sock.sendall(b"GET /fixed_0 HTTP/1.1\r\nhost: x\r\n")  # a head that never ends
        latencies = []
        with httpx.Client(base_url=running.url, timeout=10) as client:
            for _ in range(10):
                start = time.perf_counter()
                assert client.get("/fixed_1").status_code == 200
                latencies.append(time.perf_counter() - start)
                for sock in slow:  # trickle one more header line, as a slow-loris client does
                    with contextlib.suppress(OSError):  # the server may have closed it already
                        sock.sendall(b"x-a: b\r\n")
                time.sleep(0.2)
        # the head deadline is per head, not per byte: every trickling connection has been closed by now
        closed = 0
        for sock in slow:
            try:
                closed += sock.recv(1) == b""
            except OSError:  # reset: closed too
                closed += 1
            sock.close()
        assert closed == len(slow)
        assert max(latencies) < 2.0, latencies


def test_bodies_over_the_cap_are_413_in_process() -> None:
    with start_server(webshop_site()) as running:
        response = httpx.post(running.url + "/fixed_0", content=b"search_query=" + b"a" * MAX_BODY)
        assert response.status_code == 413 and response.headers["connection"] == "close"
