"""The managed llama.cpp server with the real embedded model (one shared server for the module)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from langgraph_stl.models import LlamaServerError, TokenUsageCallback, load_chat_model, next_token_logprobs
from langgraph_stl.models.openai_compat import OpenAICompatibleChat
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.model]

QUESTION = [HumanMessage("What is the capital of France?")]


@pytest.fixture(scope="module")
def smollm2() -> Iterator[OpenAICompatibleChat]:
    model = load_chat_model("smollm2", temperature=0, max_tokens=16)
    assert isinstance(model, OpenAICompatibleChat)
    yield model
    model.close()


def _server_prompt_tokens(model: OpenAICompatibleChat, messages: list[BaseMessage]) -> int:
    """Token count of the chat-templated prompt, asked from the server itself."""
    server = model.server
    assert server is not None
    headers = {"Authorization": f"Bearer {server.config.api_key}"}
    chat = [{"role": "system" if m.type == "system" else "user", "content": m.content} for m in messages]
    prompt = httpx.post(f"{server.address}/apply-template", json={"messages": chat}, headers=headers).json()["prompt"]
    tokens = httpx.post(f"{server.address}/tokenize", json={"content": prompt}, headers=headers).json()["tokens"]
    return len(tokens)


def test_server_starts_once_and_is_reused(smollm2: OpenAICompatibleChat) -> None:
    server = smollm2.server
    assert server is not None and server.alive()
    assert server.startup_s < 30
    again = load_chat_model("smollm2", temperature=0.7)
    assert isinstance(again, OpenAICompatibleChat) and again.server is server
    assert server.config.n_parallel == 4


def test_chatml_without_default_system_prompt(smollm2: OpenAICompatibleChat) -> None:
    server = smollm2.server
    assert server is not None
    headers = {"Authorization": f"Bearer {server.config.api_key}"}
    body = {"messages": [{"role": "user", "content": "hi"}]}
    prompt = httpx.post(f"{server.address}/apply-template", json=body, headers=headers).json()["prompt"]
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert httpx.get(f"{server.base_url}/models").status_code == 401  # the per-server key keeps others out


def test_greedy_answer_and_exact_usage(smollm2: OpenAICompatibleChat) -> None:
    cb = TokenUsageCallback()
    messages: list[BaseMessage] = [SystemMessage("Answer briefly."), *QUESTION]
    reply = smollm2.invoke(messages, config={"callbacks": [cb]})
    assert reply.content  # a 135M model's answer: not pinned (it differs between llama.cpp builds)
    usage = cb.as_dict()["smollm2"]
    assert usage["calls"] == 1
    assert usage["input_tokens"] == _server_prompt_tokens(smollm2, messages)
    assert reply.usage_metadata is not None
    assert usage["output_tokens"] == reply.usage_metadata["output_tokens"] > 0


async def test_concurrent_requests(smollm2: OpenAICompatibleChat) -> None:
    prompts = [[HumanMessage("Name a fruit.")], [HumanMessage("Name a color.")]]
    sequential = [(await smollm2.ainvoke(p)).content for p in prompts]
    concurrent = await asyncio.gather(*(smollm2.ainvoke(p) for p in prompts))
    assert [r.content for r in concurrent] == sequential


def test_n_choices_have_their_own_metadata_and_exact_usage(smollm2: OpenAICompatibleChat) -> None:
    cb = TokenUsageCallback()
    result = smollm2.generate([QUESTION], n=3, temperature=1.0, seed=5, max_tokens=12, callbacks=[cb])
    choices = result.generations[0]
    assert len(choices) == 3
    counts = [len(c.generation_info["logprobs"]["content"]) for c in choices]  # type: ignore[index]
    outputs = [c.message.usage_metadata["output_tokens"] for c in choices]  # type: ignore[attr-defined]
    assert outputs == counts  # each choice counted, not the first one three times
    assert len({c.text for c in choices}) > 1
    usage = cb.as_dict()["smollm2"]
    assert usage["output_tokens"] == sum(counts)
    assert usage["input_tokens"] == _server_prompt_tokens(smollm2, QUESTION)


def test_seed_makes_sampling_repeatable(smollm2: OpenAICompatibleChat) -> None:
    runs = [smollm2.invoke(QUESTION, temperature=1.0, seed=1234, max_tokens=12).content for _ in range(2)]
    assert runs[0] == runs[1]


def test_stop_and_logprobs_pass_through(smollm2: OpenAICompatibleChat) -> None:
    reply = smollm2.invoke(QUESTION, stop=[" is"], logprobs=True, top_logprobs=3)
    assert " is" not in reply.content
    entries = reply.response_metadata["logprobs"]["content"]
    assert entries and len(entries[0]["top_logprobs"]) == 3


def test_openai_spec_against_the_server(smollm2: OpenAICompatibleChat) -> None:
    server = smollm2.server
    assert server is not None
    client = load_chat_model(
        f"openai:smollm2@{server.base_url}", api_key=server.config.api_key, temperature=0, max_tokens=16
    )
    cb = TokenUsageCallback()
    assert client.invoke(QUESTION, config={"callbacks": [cb]}).content == smollm2.invoke(QUESTION).content
    assert cb.as_dict()["smollm2"]["input_tokens"] == _server_prompt_tokens(smollm2, QUESTION)


def test_server_logprobs_readout(smollm2: OpenAICompatibleChat) -> None:
    (top,) = next_token_logprobs(smollm2, [QUESTION], assistant_prefix="The capital", top_k=5)
    assert len(top) == 5
    assert max(top, key=top.__getitem__) == " of"
    assert all(v <= 0 for v in top.values())


def test_logits_value_reads_10_in_two_cached_steps_and_counts_tokens(smollm2: OpenAICompatibleChat) -> None:
    from langgraph_stl.models.logprobs import aread_logprobs
    from langgraph_stl.search.value import SCORE_PREFIX, ValueItem, ValueModel

    (plain,) = next_token_logprobs(smollm2, [QUESTION], assistant_prefix=SCORE_PREFIX)
    (both,) = asyncio.run(aread_logprobs(smollm2, [QUESTION], SCORE_PREFIX, follow_up="1", ask=lambda d: True))
    assert both.first == pytest.approx(plain) and both.second is not None and both.reads == 2
    prompt_tokens = _server_prompt_tokens(smollm2, QUESTION)
    assert prompt_tokens < both.prompt_tokens <= 2 * prompt_tokens + 20  # both steps' prompts, the second one longer

    value = ValueModel(smollm2, mode="logits")
    item = ValueItem("Input: 4 4 6 8\n", "4 + 8 = 12 (left: 4 6 12)", "(left: 4 6 12)")
    cb = TokenUsageCallback()
    (estimate,) = asyncio.run(value.aevaluate("game24", [item], config={"callbacks": [cb]}))
    assert 0.0 <= estimate.value <= 1.0
    usage = cb.as_dict()["smollm2"]
    assert usage["calls"] == 1 and usage["output_tokens"] in (1, 2) and usage["input_tokens"] > 300


def test_token_counts_come_from_the_server_not_a_download(smollm2: OpenAICompatibleChat) -> None:
    text = "The capital of France is Paris."
    server = smollm2.server
    assert server is not None
    headers = {"Authorization": f"Bearer {server.config.api_key}"}
    tokens = httpx.post(f"{server.address}/tokenize", json={"content": text}, headers=headers).json()["tokens"]
    assert smollm2.get_token_ids(text) == tokens
    assert smollm2.get_num_tokens(text) == len(tokens) > 3


def test_a_closed_server_is_reported_and_specs_load_a_fresh_one() -> None:
    from langgraph_stl.models.embedded import embedded_gguf_path
    from langgraph_stl.search.specs import make_value
    from langgraph_stl.search.value import ValueItem

    spec = f"llamacpp:{embedded_gguf_path()}"  # its own server, not the module fixture's
    item = ValueItem("Input: 4 4 6 8\n", "4 + 8 = 12 (left: 4 6 12)", "(left: 4 6 12)")
    first = make_value(spec, temperature=0.0, mode="logits")
    assert isinstance(first.model, OpenAICompatibleChat) and first.model.server is not None
    first.model.close()
    with pytest.raises(LlamaServerError, match="was closed"):
        asyncio.run(first.aevaluate("game24", [item]))
    again = make_value(spec, temperature=0.0, mode="logits")
    assert isinstance(again.model, OpenAICompatibleChat) and again.model.server is not None
    assert again.model.server.usable and again.model.server is not first.model.server
    (estimate,) = asyncio.run(again.aevaluate("game24", [item]))
    assert 0.0 <= estimate.value <= 1.0
    again.model.close()


def test_multi_prompt_generate_merges_usage_without_warnings(smollm2: OpenAICompatibleChat) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # langchain-openai warns on the server's null usage details
        result = smollm2.generate([QUESTION, QUESTION])
    assert result.llm_output is not None
    usage = result.llm_output["token_usage"]
    assert usage["prompt_tokens"] == 2 * _server_prompt_tokens(smollm2, QUESTION)


def _write_lora(path: Path, rank: int = 4) -> None:
    """A random GGUF LoRA on a few attention projections (the format of local-models.md)."""
    import gguf

    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for layer in range(3):
        for name, (rows, cols) in {"attn_q": (576, 576), "attn_v": (192, 576)}.items():
            writer.add_tensor(
                f"blk.{layer}.{name}.weight.lora_a", (rng.standard_normal((rank, cols)) * 0.5).astype("f4")
            )
            writer.add_tensor(
                f"blk.{layer}.{name}.weight.lora_b", (rng.standard_normal((rows, rank)) * 0.5).astype("f4")
            )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_lora_adapter_with_per_request_scale(smollm2: OpenAICompatibleChat, tmp_path: Path) -> None:
    adapter = tmp_path / "value.gguf"
    _write_lora(adapter)
    base_text = smollm2.invoke(QUESTION).content
    off = load_chat_model(f"smollm2+lora={adapter}", lora_scale=0.0, temperature=0, max_tokens=16)
    on = load_chat_model("smollm2", lora=adapter, temperature=0, max_tokens=16)
    assert isinstance(off, OpenAICompatibleChat) and isinstance(on, OpenAICompatibleChat)
    assert off.server is on.server and on.server is not smollm2.server
    assert on.model_name == "smollm2+lora=value"
    assert off.invoke(QUESTION).content == base_text
    assert on.invoke(QUESTION).content != base_text
    on.close()


def test_dead_server_gives_a_clear_error_and_restarts() -> None:
    model = load_chat_model("smollm2", n_parallel=1, ctx_per_slot=512, max_tokens=4)
    assert isinstance(model, OpenAICompatibleChat) and model.server is not None
    os.kill(model.server.pid, signal.SIGKILL)
    with pytest.raises(LlamaServerError, match="died"):
        model.invoke("hi")
    fresh = load_chat_model("smollm2", n_parallel=1, ctx_per_slot=512, max_tokens=4)
    assert isinstance(fresh, OpenAICompatibleChat) and fresh.server is not None
    assert fresh.server.pid != model.server.pid
    assert fresh.invoke("hi").content
    fresh.close()
    with pytest.raises(LlamaServerError, match="was closed"):
        fresh.invoke("hi")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_server_dies_with_its_owner(signum: int) -> None:
    code = (
        "import time\nfrom langgraph_stl.models import load_chat_model\n"
        "m = load_chat_model('smollm2', n_parallel=1, ctx_per_slot=512)\n"
        "print(m.server.pid, flush=True)\ntime.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    server_pid = int(owner.stdout.readline())
    owner.send_signal(signum)  # no atexit either way: the server must notice the closed pipe by itself
    owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(server_pid, signal.SIGKILL)
    pytest.fail("the llama.cpp server outlived its owner")


def test_structured_output_json_schema(smollm2: OpenAICompatibleChat) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        city: str

    answer = smollm2.with_structured_output(Answer, method="json_schema").invoke(QUESTION, max_tokens=40)
    assert isinstance(answer, Answer) and answer.city


async def test_sync_logprobs_inside_an_event_loop_points_to_the_async_twin(smollm2: OpenAICompatibleChat) -> None:
    with pytest.raises(RuntimeError, match="await anext_token_logprobs"):
        next_token_logprobs(smollm2, [QUESTION])
