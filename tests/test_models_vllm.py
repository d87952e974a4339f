"""vLLM LoRA hot-loading against a loopback fake of vLLM's endpoints that checks every request's shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.models import load_chat_model
from langgraph_stl.models.vllm import VLLMError, VLLMLoraClient, adapter_name

BASE = "Qwen/Qwen2.5-0.5B-Instruct"


class FakeVLLM(ThreadingHTTPServer):
    """vLLM's OpenAI server as far as LoRA serving goes: answers and errors shaped like vLLM's."""

    def __init__(self, *, lora_routes: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lora_routes = lora_routes
        self.adapters: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeVLLM

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any, *, text: bool = False) -> None:
        data = body.encode() if text else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, message: str, kind: str) -> None:
        self._reply(code, {"object": "error", "message": message, "type": kind, "code": code})

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, None))
        if self.path != "/v1/models":
            return self._reply(404, {"detail": "Not Found"})
        cards = [{"id": BASE, "object": "model", "root": BASE}]
        cards += [{"id": n, "object": "model", "root": p, "parent": BASE} for n, p in self.server.adapters.items()]
        self._reply(200, {"object": "list", "data": cards})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(("POST", self.path, body))
        adapters = self.server.adapters
        lora = self.path.endswith("_lora_adapter")
        if lora and not self.server.lora_routes:
            return self._reply(404, {"detail": "Not Found"})
        if self.path == "/v1/load_lora_adapter":
            assert set(body) == {"lora_name", "lora_path"}, body
            if body["lora_name"] in adapters:
                msg = f"The lora adapter '{body['lora_name']}' has already been loaded."
                return self._error(400, msg, "InvalidUserInput")
            adapters[body["lora_name"]] = body["lora_path"]
            return self._reply(200, f"Success: LoRA adapter '{body['lora_name']}' added successfully.", text=True)
        if self.path == "/v1/unload_lora_adapter":
            assert set(body) == {"lora_name"}, body
            if adapters.pop(body["lora_name"], None) is None:
                return self._error(404, f"The lora adapter '{body['lora_name']}' cannot be found.", "NotFoundError")
            return self._reply(200, f"Success: LoRA adapter '{body['lora_name']}' removed successfully.", text=True)
        if self.path == "/v1/chat/completions":
            if body["model"] != BASE and body["model"] not in adapters:
                return self._error(404, f"The model `{body['model']}` does not exist.", "NotFoundError")
            reply = f"served by {body['model']}. Thus the correctness score is 8.00 / 10.00."  # an STL-format score
            message = {"role": "assistant", "content": reply}
            usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return self._reply(
                200,
                {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"]}
                | {"choices": [choice], "usage": usage},
            )
        self._reply(404, {"detail": "Not Found"})


def _serve(server: FakeVLLM) -> Iterator[FakeVLLM]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def vllm() -> Iterator[FakeVLLM]:
    yield from _serve(FakeVLLM())


def _adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": BASE, "r": 8}))
    return folder


def test_swap_loads_the_new_adapter_then_unloads_the_old(vllm: FakeVLLM, tmp_path: Path) -> None:
    client = VLLMLoraClient(vllm.url + "/v1/")  # the /v1 suffix and a trailing slash are accepted
    v1, v2 = _adapter(tmp_path / "iter_1" / "model"), _adapter(tmp_path / "iter_2" / "model")
    assert client.swap("run-v1", v1) == f"openai:run-v1@{vllm.url}/v1"
    assert client.swap("run-v2", v2, previous="run-v1") == f"openai:run-v2@{vllm.url}/v1"
    assert [(m, p, b) for m, p, b in vllm.requests] == [
        ("POST", "/v1/load_lora_adapter", {"lora_name": "run-v1", "lora_path": str(v1.resolve())}),
        ("POST", "/v1/load_lora_adapter", {"lora_name": "run-v2", "lora_path": str(v2.resolve())}),
        ("POST", "/v1/unload_lora_adapter", {"lora_name": "run-v1"}),
    ]
    assert client.models() == [BASE, "run-v2"]


def test_reloading_and_unloading_are_idempotent(vllm: FakeVLLM, tmp_path: Path) -> None:
    """A resumed run re-loads V_k (already there) and unloads V_{k-1} (maybe gone): neither is an error."""
    client = VLLMLoraClient(vllm.url)
    adapter = _adapter(tmp_path / "a")
    client.load("run-v1", adapter)
    client.load("run-v1", adapter)
    client.unload("never-loaded")
    with pytest.raises(VLLMError, match="cannot be found"):
        client.unload("never-loaded", missing_ok=False)
    assert client.models() == [BASE, "run-v1"]


def test_bad_input_fails_before_any_request(vllm: FakeVLLM, tmp_path: Path) -> None:
    client = VLLMLoraClient(vllm.url)
    (tmp_path / "not-an-adapter").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no adapter_config\.json"):
        client.load("x", tmp_path / "not-an-adapter")
    assert vllm.requests == []
    with pytest.raises(ValueError, match="http"):
        VLLMLoraClient("127.0.0.1:8000")


def test_server_without_runtime_lora_says_how_to_start_it(tmp_path: Path) -> None:
    for server in _serve(FakeVLLM(lora_routes=False)):
        with pytest.raises(VLLMError, match="--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING"):
            VLLMLoraClient(server.url).load("x", _adapter(tmp_path / "a"))


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    server = FakeVLLM()
    url = server.url
    server.server_close()  # nothing listens there any more
    with pytest.raises(VLLMError, match="unreachable"):
        VLLMLoraClient(url, timeout=5).load("x", _adapter(tmp_path / "a"))


def test_the_spec_routes_chat_requests_to_the_adapter(vllm: FakeVLLM, tmp_path: Path) -> None:
    client = VLLMLoraClient(vllm.url)
    spec = client.swap(adapter_name("runs/game24 #1", 2), _adapter(tmp_path / "a"))
    assert spec == f"openai:runs-game24--1-v2@{vllm.url}/v1"
    reply = load_chat_model(spec, max_retries=0).invoke("hi")
    assert str(reply.content).startswith("served by runs-game24--1-v2.")
    assert vllm.requests[-1][2] is not None and vllm.requests[-1][2]["model"] == "runs-game24--1-v2"


@pytest.mark.slow
def test_improve_serves_each_iteration_from_vllm(vllm: FakeVLLM, tmp_path: Path) -> None:
    """``stl improve --serve vllm``: V_k is hot-loaded after training, V_{k-1} unloaded, and V_k's searches name it."""
    from langgraph_stl.training.improve import run_improve, value_spec_of
    from tests.test_training_improve import _config
    from tests.tiny_llama import build_tiny_llama

    base = build_tiny_llama(tmp_path / "tiny-llama")
    out = tmp_path / "run"
    manifest = run_improve(_config(out, base, iterations=2, gguf=False, serve="vllm", vllm_url=f"{vllm.url}/v1"))
    lora_calls = [(path, body) for _, path, body in vllm.requests if path.endswith("_lora_adapter")]
    assert lora_calls == [
        ("/v1/load_lora_adapter", {"lora_name": "run-v1", "lora_path": str(out / "iter_1" / "model")}),
        ("/v1/load_lora_adapter", {"lora_name": "run-v2", "lora_path": str(out / "iter_2" / "model")}),
        ("/v1/unload_lora_adapter", {"lora_name": "run-v1"}),
    ]
    models = manifest.data["models"]
    assert value_spec_of(models["2"]) == f"stl:openai:run-v2@{vllm.url}/v1"
    asked = {body["model"] for _, path, body in vllm.requests if path == "/v1/chat/completions" and body}
    assert asked == {"run-v1", "run-v2"}  # iteration 2's collection used V_1; each evaluation its own V_k
    assert vllm.adapters == {"run-v2": str(out / "iter_2" / "model")}
