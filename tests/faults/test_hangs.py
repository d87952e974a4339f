"""Nothing hangs: every network call has a finite default timeout, and a hung call fails its task, not the run.

The stalled endpoint is a loopback socket that completes TCP handshakes and never answers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from langgraph_stl.envs.base import InvalidTaskError
from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
from langgraph_stl.models import load_chat_model
from langgraph_stl.models.loader import DEFAULT_REQUEST_TIMEOUT_S, REQUEST_TIMEOUT_ENV
from tests.faults.hostile import scripted_server, stalled_endpoint


def test_openai_compatible_specs_have_a_finite_settable_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUEST_TIMEOUT_ENV, raising=False)
    url = "openai:m@http://127.0.0.1:9/v1"
    assert load_chat_model(url).request_timeout == DEFAULT_REQUEST_TIMEOUT_S["openai"]  # type: ignore[attr-defined]
    assert load_chat_model(url, timeout=7).request_timeout == 7  # type: ignore[attr-defined]
    assert load_chat_model(url, request_timeout=8).request_timeout == 8  # type: ignore[attr-defined]
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "3.5")
    assert load_chat_model(url).request_timeout == 3.5  # type: ignore[attr-defined]
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "never")
    with pytest.raises(ValueError, match="positive number of seconds"):
        load_chat_model(url)


@pytest.mark.slow
def test_stl_eval_against_a_stalled_model_server_records_a_failed_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from langgraph_stl.cli import app

    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "600")  # restored afterwards; --request-timeout must win
    out = tmp_path / "hung.jsonl"
    with stalled_endpoint() as url:
        spec = f"openai:m@{url}/v1"
        start = time.monotonic()
        args = ["eval", "--env", "game24", "--tasks", "0-0", "--policy", spec, "--value", spec]
        options = ["--max-retries", "0", "--max-attempts", "1", "--request-timeout", "0.5", "--out", str(out)]
        result = CliRunner().invoke(app, [*args, *options])
        elapsed = time.monotonic() - start
    records = [json.loads(line) for line in out.read_text().splitlines()]
    # finite, not fast: the client's own 2 retries and the graph's RetryPolicy each retry the 0.5 s timeout with backoff
    assert elapsed < 90, elapsed
    assert "1 failed" in result.output, result.output
    assert records[-1]["record"] == "task" and "Timeout" in records[-1]["error"]


def test_the_http_env_fails_within_its_timeout_on_a_stalled_shop() -> None:
    with stalled_endpoint() as url:
        env = WebShopHttpEnv(url, num_goals=1, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            env.reset("fixed_0")
        env.close()
    assert time.monotonic() - start < 5


def test_the_http_env_follows_redirects_only_on_its_origin() -> None:
    with scripted_server({"/fixed_0": (200, {}, "<html>the foreign page</html>")}) as (foreign, foreign_asked):
        pages = {
            "/fixed_0": (302, {"location": f"{foreign}/fixed_0"}, ""),
            "/fixed_1": (302, {"location": "/fixed_2"}, ""),
            "/fixed_2": (200, {}, "<html><body>search page</body></html>"),
        }
        with scripted_server(pages) as (shop, _asked):
            env = WebShopHttpEnv(shop, num_goals=3, observation_mode="html")
            with pytest.raises(InvalidTaskError, match="off its origin"):
                env.reset("fixed_0")
            assert env.reset("fixed_1")["url"] == f"{shop}/fixed_2"  # same origin: followed
            env.close()
    assert foreign_asked == []


@pytest.mark.slow
@pytest.mark.browser
def test_the_browser_env_fails_within_its_timeout_on_a_stalled_shop_and_a_frozen_page() -> None:
    from langgraph_stl.envs.webshop.browser_env import WebShopBrowserEnv
    from tests._webshop_fixtures import shared_browser

    runner = shared_browser()
    # the page freezes right after DOMContentLoaded: navigation succeeds, reading the DOM never can
    script = "document.addEventListener('DOMContentLoaded', () => setTimeout(() => { for (;;) {} }, 0))"
    frozen = f"<html><body>shop<script>{script}</script></body></html>"
    with stalled_endpoint() as stalled, scripted_server({"/fixed_0": (200, {}, frozen)}) as (busy, _asked):
        for url, what in ((stalled, "did not answer"), (busy, "reading the page")):
            env = WebShopBrowserEnv(url, num_goals=1, browser=runner, timeout_ms=1500)
            start = time.monotonic()
            with pytest.raises(TimeoutError, match=what):
                env.reset("fixed_0")
            assert time.monotonic() - start < 10
            env.close()


@pytest.mark.slow
def test_stl_search_against_a_stalled_model_server_fails_with_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from langgraph_stl.cli import app

    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "600")  # restored afterwards; --request-timeout must win
    with stalled_endpoint() as url:
        spec = f"openai:m@{url}/v1"
        start = time.monotonic()
        args = ["search", "--env", "game24", "--policy", spec, "--value", spec, "--rollouts", "1", "--json"]
        result = CliRunner().invoke(app, [*args, "--request-timeout", "0.3"])
        elapsed = time.monotonic() - start
    assert result.exit_code != 0 and "Timeout" in result.output, result.output
    assert elapsed < 90, elapsed
    improve = CliRunner().invoke(app, ["improve", "--help"], env={"COLUMNS": "200"})
    assert "--request-timeout" in improve.output
