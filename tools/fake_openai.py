"""A loopback OpenAI-compatible chat server that answers every request after a fixed latency (the I/O-bound regime
of real clusters, without a model): ``python tools/fake_openai.py --latency 0.2`` prints its ``.../v1`` URL.

Plain asyncio (stdlib only), HTTP/1.1 with keep-alive, one coroutine per connection, so hundreds of requests can wait
at once. ``POST /v1/chat/completions`` returns ``n`` choices of a fixed reply with usage counts; everything else is a
404. It records each request's last user message, which tests use to see where requests went.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any


class FakeOpenAI:
    """The server; :func:`running` starts it on a private event-loop thread."""

    def __init__(self, *, latency_s: float, reply: str = "ok") -> None:
        self.latency_s = latency_s
        self.reply = reply
        self.seen: list[str] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                method, path, _ = request_line.split(" ", 2)
                if method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                    status, payload = 200, await self.complete(json.loads(body or b"{}"))
                else:
                    status, payload = 404, {"error": {"message": f"no route {method} {path}"}}
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        messages = request.get("messages") or [{}]
        self.seen.append(str(messages[-1].get("content", "")))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency_s)
        finally:
            self.in_flight -= 1
        n = int(request.get("n") or 1)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(self.reply.split())
        return {
            "id": f"fake-{len(self.seen)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": self.reply},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": n * completion_tokens,
                "total_tokens": prompt_tokens + n * completion_tokens,
            },
        }


@contextlib.contextmanager
def running(*, latency_s: float, reply: str = "ok", port: int = 0) -> Iterator[tuple[str, FakeOpenAI]]:
    """Serve on 127.0.0.1 in a background thread; yields (``http://127.0.0.1:PORT/v1``, the server)."""
    fake = FakeOpenAI(latency_s=latency_s, reply=reply)
    loop = asyncio.new_event_loop()
    started: asyncio.Future[asyncio.Server] = loop.create_future()

    async def main() -> None:
        server = await asyncio.start_server(fake.handle, "127.0.0.1", port, backlog=1024)
        started.set_result(server)
        async with server:
            await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(_quietly(main())), daemon=True)
    thread.start()
    while not started.done():
        time.sleep(0.01)
    server = started.result()
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", fake
    finally:
        loop.call_soon_threadsafe(server.close)
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=5)


async def _quietly(coro: Any) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await coro


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", default="ok")
    args = parser.parse_args()
    with running(latency_s=args.latency, reply=args.reply, port=args.port) as (url, _):
        print(url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
