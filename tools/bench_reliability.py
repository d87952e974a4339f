"""The WebShop server under hostile input, for docs/RELIABILITY.md ("Hostile input and hangs").

    python tools/bench_reliability.py                 # ~1 min on a quiet 2-core machine
    python tools/bench_reliability.py --seconds 10 --json out.json

Everything runs on loopback against ``stl webshop serve`` in a child process (its RSS is measured alone):

1. the hostile URL and body corpus of ``tests/faults/hostile.py``, once: the status of every request;
2. floods: a 300 MB POST (declared, then chunked), 5000 session ids of 4 KB, 5000 new sessions; RSS before/after;
3. the load held: ``--clients`` concurrent keep-alive clients for ``--seconds``, each request drawn from ordinary
   navigation (index, results, item and sub-pages) with one in three taken from the hostile corpus, while
   ``--slow-loris`` connections trickle a request head that never ends: requests/s, p50/p99 latency, 5xx count.

The clients share the machine with the server (one Python process, asyncio), so requests/s is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.hostile import ASIN, HOSTILE_BODIES, child_server, hostile_paths, rss_mb

WORDS = ["shoes", "tea", "candle", "lamp", "shorts", "phone case", "hair", "chair", "pillow", "socks"]


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def ordinary_path(rng: random.Random) -> str:
    """A page a shopping agent asks for."""
    session = f"fixed_{rng.randrange(500)}"
    keywords = "%5B" + "%2C%20".join(f"%27{w.replace(' ', '%20')}%27" for w in rng.sample(WORDS, 2)) + "%5D"
    page = rng.randint(1, 3)
    return rng.choice(
        [
            f"/{session}",
            f"/search_results/{session}/{keywords}/{page}",
            f"/item_page/{session}/{ASIN}/{keywords}/{page}/%7B%7D",
            f"/item_sub_page/{session}/{ASIN}/{keywords}/{page}/Description/%7B%7D",
        ]
    )


def corpus(url: str) -> dict[str, Any]:
    paths = hostile_paths()
    statuses: list[int] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        statuses += [client.get(p).status_code for p in paths]
        statuses += [client.post("/fixed_0", content=body).status_code for body in HOSTILE_BODIES]
    return {
        "bad_inputs": len(statuses),
        "status_4xx": sum(400 <= s < 500 for s in statuses),
        "status_5xx": sum(s >= 500 for s in statuses),
        "other": sum(s < 400 for s in statuses),
    }


def floods(url: str, pid: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_start_mb": round(rss_mb(pid), 1)}
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST /fixed_0 HTTP/1.1\r\nhost: x\r\ncontent-length: {300 << 20}\r\n\r\n".encode())
        out["declared_300mb_status"] = sock.recv(12).decode()[9:12]
    sent = [0]

    def chunks() -> Any:
        chunk = b"a" * (1 << 20)
        while sent[0] < 300 << 20:
            sent[0] += len(chunk)
            yield chunk

    start = time.perf_counter()
    try:
        out["chunked_300mb_status"] = httpx.post(url + "/fixed_0", content=chunks(), timeout=60).status_code
    except httpx.TransportError as err:
        out["chunked_300mb_status"] = f"closed by the server ({type(err).__name__})"
    out["chunked_300mb_client_sent_mb"] = round(sent[0] / (1 << 20), 1)
    out["chunked_300mb_s"] = round(time.perf_counter() - start, 2)
    out["rss_after_bodies_mb"] = round(rss_mb(pid), 1)
    with httpx.Client(base_url=url, timeout=30) as client:
        long_ids = [client.get(f"/{i:05d}" + "x" * 4096).status_code for i in range(5000)]
        out["rss_after_4kb_ids_mb"] = round(rss_mb(pid), 1)
        new_sessions = [client.get(f"/flood{i:05d}").status_code for i in range(5000)]
        out["rss_after_new_sessions_mb"] = round(rss_mb(pid), 1)
    out["4kb_id_statuses"] = sorted(set(long_ids))
    out["new_session_statuses"] = sorted(set(new_sessions))
    return out


async def held_load(url: str, *, clients: int, seconds: float, slow_loris: int, seed: int) -> dict[str, Any]:
    hostile = hostile_paths(seed=seed + 1)
    port = int(url.rsplit(":", 1)[1])
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    stop = asyncio.Event()

    async def loris() -> int:
        """Slow connections: a head that never ends, one more header line a second; returns how many the server cut."""
        conns = []
        for _ in range(slow_loris):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /fixed_0 HTTP/1.1\r\nhost: x\r\n")
            conns.append((reader, writer))

        def closed(reader: asyncio.StreamReader) -> bool:  # a FIN gives EOF, a reset an exception
            return reader.at_eof() or reader.exception() is not None

        while not stop.is_set():
            await asyncio.sleep(1)
            for reader, writer in conns:
                if not closed(reader):
                    writer.write(b"x-a: b\r\n")
        cut = sum(closed(reader) for reader, _writer in conns)
        for _reader, writer in conns:
            writer.close()
        return cut

    async def client(index: int) -> None:
        rng = random.Random(f"{seed}|{index}")
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                path = rng.choice(hostile) if rng.random() < 1 / 3 else ordinary_path(rng)
                start = time.perf_counter()
                try:
                    status = (await http.get(path)).status_code
                except httpx.HTTPError as err:
                    errors.append(type(err).__name__)
                    continue
                latencies.append(time.perf_counter() - start)
                statuses[status] = statuses.get(status, 0) + 1

    loris_task = asyncio.create_task(loris())
    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    stop.set()
    cut = await loris_task
    latencies.sort()
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "status_5xx": sum(n for s, n in statuses.items() if s >= 500),
        "statuses": dict(sorted(statuses.items())),
        "client_errors": len(errors),
        "slow_loris_connections": slow_loris,
        "slow_loris_cut_by_server": cut,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--slow-loris", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {"load_avg_start": _load()}
    with child_server() as server:
        result["rss_idle_mb"] = round(rss_mb(server.pid), 1)
        result["corpus"] = corpus(server.url)
        result["floods"] = floods(server.url, server.pid)
        result["held"] = asyncio.run(
            held_load(
                server.url, clients=args.clients, seconds=args.seconds, slow_loris=args.slow_loris, seed=args.seed
            )
        )
        result["rss_end_mb"] = round(rss_mb(server.pid), 1)
    result["load_avg_end"] = _load()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
