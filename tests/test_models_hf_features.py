"""``hf:`` models: device/dtype choice, token streaming, tools and structured output (tiny random Llama, CPU).

No test needs a GPU: the CUDA branch of :func:`pick_device` is checked with torch's CUDA probes mocked, and the real
run is on CPU. Tool calls and structured output need a model that writes them; a random model cannot, so those tests
script ``generate``'s output tokens and check the prompt it was given and how the reply is parsed.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel

from langgraph_stl.models import load_chat_model, next_token_logprobs
from langgraph_stl.models.hf import BatchedChatHuggingFace, pick_device
from tests.tiny_llama import build_tiny_llama

pytestmark = pytest.mark.slow

TOOLS_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\nTools: ' + (tools | tojson) + '<|im_end|>\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="module")
def tiny(tiny_folder: Path) -> BatchedChatHuggingFace:
    model = load_chat_model(f"hf:{tiny_folder}", temperature=0, max_tokens=12)
    assert isinstance(model, BatchedChatHuggingFace)
    return model


def test_pick_device_prefers_cuda_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_device() == ("cuda", "bfloat16")
    assert pick_device("cuda:1", "float32") == ("cuda:1", "float32")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_device("auto") == ("cuda", "float16")
    assert pick_device("cpu") == ("cpu", "float32")


def test_pick_device_on_a_machine_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == ("cpu", "float32")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="unknown torch dtype 'bf17'"):
        pick_device("cpu", "bf17")


def test_model_inputs_and_readout_on_the_model_device(
    tiny: BatchedChatHuggingFace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real CPU run: the model is where pick_device said, and generate/forward get inputs on that device."""
    expected_device, expected_dtype = pick_device()
    parameter = next(tiny.hf_model.parameters())
    assert (parameter.device.type, parameter.dtype) == (expected_device, getattr(torch, expected_dtype))
    seen: list[torch.device] = []
    generate, forward = tiny.hf_model.generate, tiny.hf_model.forward

    def spy_generate(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["input_ids"].device)
        return generate(*args, **kwargs)

    def spy_forward(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["input_ids"].device)
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny.hf_model, "generate", spy_generate)
    tiny.batch(["a", "bb"])
    monkeypatch.setattr(tiny.hf_model, "forward", spy_forward)
    next_token_logprobs(tiny, [[HumanMessage("a")], [HumanMessage("bb")]], top_k=3)
    assert seen and all(d == tiny.device for d in seen)


SAMPLED = {"temperature": 1.0, "seed": 7}  # greedy decoding of the random model only repeats newlines


def test_stream_yields_tokens_that_add_up_to_invoke(tiny: BatchedChatHuggingFace) -> None:
    reply = tiny.invoke("Say something.", **SAMPLED)
    chunks = list(tiny.stream("Say something.", **SAMPLED))
    assert len([c for c in chunks if c.content]) > 1  # token by token, not one final chunk
    assert "".join(str(c.content) for c in chunks) == reply.content
    assert chunks[-1].usage_metadata == reply.usage_metadata
    assert chunks[-1].response_metadata["finish_reason"] == reply.response_metadata["finish_reason"]


async def test_astream_and_stop_strings(tiny: BatchedChatHuggingFace) -> None:
    full = str(tiny.invoke("Say something.", **SAMPLED).content)
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    expected = tiny.invoke("Say something.", stop=[stop], **SAMPLED)
    chunks = [c async for c in tiny.astream("Say something.", stop=[stop], **SAMPLED)]
    assert "".join(str(c.content) for c in chunks) == expected.content == full[: full.find(stop)]
    assert chunks[-1].response_metadata["finish_reason"] == "stop"


def test_stream_refuses_what_it_cannot_stream(tiny: BatchedChatHuggingFace) -> None:
    with pytest.raises(ValueError, match="one choice without logprobs"):
        list(tiny.stream("hi", n=2, temperature=1.0))


def _script(model: BatchedChatHuggingFace, monkeypatch: pytest.MonkeyPatch, reply: str) -> list[str]:
    """Make ``generate`` answer ``reply`` (plus EOS); returns the prompts it was given."""
    prompts: list[str] = []
    ids = [*model.encode(reply), model.tokenizer.eos_token_id]

    def scripted(input_ids: torch.Tensor, **kwargs: Any) -> Any:
        prompts.extend(model.tokenizer.decode(row, skip_special_tokens=False) for row in input_ids.tolist())
        tail = torch.tensor([ids] * input_ids.shape[0], device=input_ids.device)
        return SimpleNamespace(sequences=torch.cat([input_ids, tail], dim=1), logits=None)

    monkeypatch.setattr(model.hf_model, "generate", scripted)
    return prompts


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_bind_tools_needs_a_template_that_shows_tools(tiny: BatchedChatHuggingFace) -> None:
    with pytest.raises(NotImplementedError, match="chat template takes no tools"):
        tiny.bind_tools([add])


def test_tool_calls_are_prompted_and_parsed(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_chat_model(f"hf:{tiny_folder}", temperature=0, max_tokens=64)
    assert isinstance(model, BatchedChatHuggingFace)
    model.tokenizer.chat_template = TOOLS_TEMPLATE
    call = {"name": "add", "arguments": {"a": 2, "b": 3}}
    prompts = _script(model, monkeypatch, f"Sure.<tool_call>{json.dumps(call)}</tool_call>")
    message = model.bind_tools([add], tool_choice="add").invoke("What is 2 + 3?")
    assert isinstance(message, AIMessage)
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert message.content == "Sure."
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert '"name": "add"' in prompts[0] and "You must call the tool add." in prompts[0]
    # the call and its result go back into the template on the next turn
    history = [HumanMessage("What is 2 + 3?"), message, ToolMessage("5", tool_call_id=message.tool_calls[0]["id"])]
    prompts.clear()
    model.bind_tools([add]).invoke(history)
    assert "<|im_start|>tool\n5<|im_end|>" in prompts[0]


class Answer(BaseModel):
    answer: int


def test_structured_output_json_schema(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_chat_model(f"hf:{tiny_folder}", temperature=0, max_tokens=64)
    assert isinstance(model, BatchedChatHuggingFace)
    prompts = _script(model, monkeypatch, '{"answer": 5}')
    assert model.with_structured_output(Answer).invoke("What is 2 + 3?") == Answer(answer=5)
    assert "JSON schema" in prompts[0] and '"answer"' in prompts[0]
    raw = model.with_structured_output(Answer, include_raw=True).invoke("What is 2 + 3?")
    assert isinstance(raw, dict) and raw["parsed"] == Answer(answer=5) and raw["parsing_error"] is None
    assert model.with_structured_output(None, method="json_mode").invoke("What is 2 + 3?") == {"answer": 5}


def test_unparseable_structured_reply_is_an_error(tiny: BatchedChatHuggingFace) -> None:
    """The random model writes no JSON: the parser says so (no constrained decoding on transformers)."""
    from langchain_core.exceptions import OutputParserException

    with pytest.raises(OutputParserException):
        tiny.with_structured_output(Answer).invoke("What is 2 + 3?")


def test_stream_chunk_type(tiny: BatchedChatHuggingFace) -> None:
    assert all(isinstance(c, AIMessageChunk) for c in tiny.stream("hi", max_tokens=3))


def test_gpu_smoke_script_runs_on_cpu() -> None:
    """tools/gpu_smoke_hf.py (for lent GPU machines) runs its checks on whatever device pick_device chooses."""
    import subprocess
    import sys

    from tests.conftest import REPO

    script = [sys.executable, "tools/gpu_smoke_hf.py", "--layers", "2", "--batch", "3", "--max-tokens", "6"]
    result = subprocess.run(script, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert (report["device"], report["dtype"]) == pick_device()
    assert all(report["checks"].values())
