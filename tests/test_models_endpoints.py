"""Several OpenAI-compatible endpoints behind one spec: least-loaded routing, sticky per task, and a stalled
endpoint that times out, is skipped, and leaves the others serving (real loopback servers, real client)."""

from __future__ import annotations

import asyncio
import time

import pytest

from langgraph_stl.models import load_chat_model
from langgraph_stl.models.endpoints import EndpointPool, RoutedChat, endpoint_key
from langgraph_stl.models.loader import parse_spec
from tests.faults.hostile import stalled_endpoint
from tools.fake_openai import running


def test_pool_is_least_loaded_and_sticky() -> None:
    pool = EndpointPool(["a", "b", "c"], cooldown_s=60)
    first = [pool.acquire(f"t{i}") for i in range(3)]
    assert sorted(first) == [0, 1, 2]  # three tasks spread over three endpoints
    assert pool.acquire("t0") == first[0] and pool.acquire("t0") == first[0]  # later calls stick
    pool.release(first[1], failed=True)  # t1's endpoint failed: skipped during its cool-down
    assert pool.acquire("t1") != first[1]
    assert pool.acquire(None) in (0, 1, 2)


def test_a_cancelled_request_is_released_and_a_failed_one_cools_its_endpoint_down() -> None:
    pool = EndpointPool(["a", "b"])
    with pytest.raises(asyncio.CancelledError), pool.routed("t") as index:  # a task timeout cancels the call
        raise asyncio.CancelledError
    assert pool.in_flight == [0, 0] and pool.failed == [0, 0]
    with pytest.raises(ConnectionError), pool.routed("t"):
        raise ConnectionError
    assert pool.in_flight == [0, 0] and pool.failed[index] == 1
    assert pool.acquire("t") != index  # the failed endpoint is skipped while it cools down


def test_spec_lists_endpoints() -> None:
    parsed = parse_spec("openai:m@http://127.0.0.1:1/v1,http://127.0.0.1:2/v1")
    assert parsed.base_url == "http://127.0.0.1:1/v1,http://127.0.0.1:2/v1"
    with pytest.raises(ValueError, match="invalid model spec"):
        parse_spec("openai:m@http://127.0.0.1:1/v1,ftp://x")
    model = load_chat_model("openai:m@http://127.0.0.1:1/v1,http://127.0.0.1:2/v1")
    assert isinstance(model, RoutedChat) and model.pool.urls == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]


async def test_tasks_stick_to_one_endpoint_and_load_spreads() -> None:
    with running(latency_s=0.05) as (url_a, a), running(latency_s=0.05) as (url_b, b):
        model = load_chat_model(f"openai:m@{url_a},{url_b}", max_retries=0)

        async def task(i: int) -> None:
            endpoint_key.set(f"t{i}")
            for j in range(3):
                await model.ainvoke(f"task {i} call {j}")

        await asyncio.gather(*(task(i) for i in range(8)))
    by_server = {name: {s.split(" call")[0] for s in fake.seen} for name, fake in (("a", a), ("b", b))}
    assert len(a.seen) + len(b.seen) == 24
    assert not by_server["a"] & by_server["b"]  # no task was split across endpoints
    assert len(by_server["a"]) == len(by_server["b"]) == 4  # least-loaded: the 8 tasks spread evenly


async def test_a_stalled_endpoint_times_out_and_the_others_keep_serving() -> None:
    with stalled_endpoint() as stalled, running(latency_s=0.01) as (url, healthy):
        model = load_chat_model(f"openai:m@{stalled}/v1,{url}", timeout=0.5, max_retries=0)
        assert isinstance(model, RoutedChat)
        endpoint_key.set("t0")
        start = time.monotonic()
        with pytest.raises(Exception, match=r"[Tt]imed? ?out"):
            await model.ainvoke("first")  # least-loaded tie -> the first endpoint, which never answers
        assert time.monotonic() - start < 5
        replies = [await model.ainvoke(f"retry {i}") for i in range(3)]  # what the task's retry policy does
    assert [r.content for r in replies] == ["ok"] * 3 and len(healthy.seen) == 3
    assert model.pool.failed == [1, 0] and model.pool.served == [0, 3]
