"""The transformers backend on the real embedded model (converted once into the user cache)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langgraph_stl.models import (
    TokenUsageCallback,
    anext_token_logprobs,
    embedded_hf_folder,
    load_chat_model,
    next_token_logprobs,
)
from langgraph_stl.models.hf import BatchedChatHuggingFace
from langgraph_stl.models.openai_compat import OpenAICompatibleChat

pytestmark = [pytest.mark.slow, pytest.mark.model]

PROMPTS = ["What is the capital of France?", "Say hello.", "Name a color.", "What is 2+2?"]


@pytest.fixture(scope="module")
def hf() -> BatchedChatHuggingFace:
    model = load_chat_model("hf:smollm2", temperature=0, max_tokens=10)
    assert isinstance(model, BatchedChatHuggingFace)
    return model


@pytest.fixture
def generate_calls(hf: BatchedChatHuggingFace, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of the ``model.generate`` calls made during the test."""
    calls: list[int] = []
    original = hf.hf_model.generate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(hf.hf_model, "generate", counting)
    return calls


def test_cached_folder_reloads_fast() -> None:
    folder = embedded_hf_folder()
    assert (folder / "model.safetensors").is_file() and (folder / "chat_template.jinja").is_file()
    from transformers import AutoModelForCausalLM

    start = time.process_time()  # CPU time: a busy machine stretches wall time, not the work (no re-conversion)
    AutoModelForCausalLM.from_pretrained(folder)
    assert time.process_time() - start < 5  # ~0.3 s on an idle machine; a GGUF conversion takes far longer


def test_prompt_uses_chatml_without_default_system(hf: BatchedChatHuggingFace) -> None:
    text = hf.prompt_text([HumanMessage("hi")], assistant_prefix="Sure")
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nSure"


def test_batch_is_one_generate_call_and_equals_one_by_one(
    hf: BatchedChatHuggingFace, generate_calls: list[int]
) -> None:
    one_by_one = [hf.invoke(p).content for p in PROMPTS]
    assert generate_calls == [1, 1, 1, 1]
    batched = hf.batch(PROMPTS)
    assert generate_calls[4:] == [4]
    assert [m.content for m in batched] == one_by_one


async def test_abatch_and_ainvoke(hf: BatchedChatHuggingFace, generate_calls: list[int]) -> None:
    replies = await hf.abatch(PROMPTS)
    assert generate_calls == [4]
    assert [r.content for r in replies] == [r.content for r in hf.batch(PROMPTS)]
    assert (await hf.ainvoke(PROMPTS[0])).content == replies[0].content


def test_token_counts_use_the_model_tokenizer_offline(hf: BatchedChatHuggingFace) -> None:
    text = "The capital of France is Paris."
    assert hf.get_token_ids(text) == hf.encode(text)  # the base class would download GPT-2's tokenizer
    assert hf.get_num_tokens(text) == len(hf.encode(text))


def test_usage_is_counted_with_the_tokenizer(hf: BatchedChatHuggingFace) -> None:
    cb = TokenUsageCallback()
    replies = hf.batch(PROMPTS[:2], config={"callbacks": [cb]}, logprobs=True)
    prompt_tokens = [len(hf.encode(hf.prompt_text([HumanMessage(p)]))) for p in PROMPTS[:2]]
    for reply, expected_in in zip(replies, prompt_tokens, strict=True):
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["input_tokens"] == expected_in
        generated = len(reply.response_metadata["logprobs"]["content"])
        assert reply.usage_metadata["output_tokens"] == generated
        # the decoded text re-encodes to the generated tokens (+1 for the EOS when it stopped)
        eos = 1 if reply.response_metadata["finish_reason"] == "stop" else 0
        assert len(hf.encode(str(reply.content))) + eos == generated
    usage = cb.as_dict()["smollm2"]
    assert usage["calls"] == 2 and usage["input_tokens"] == sum(prompt_tokens)
    assert usage["output_tokens"] == sum(r.usage_metadata["output_tokens"] for r in replies if r.usage_metadata)


def test_n_samples_via_num_return_sequences(hf: BatchedChatHuggingFace, generate_calls: list[int]) -> None:
    cb = TokenUsageCallback()
    result = hf.generate([[HumanMessage("Tell a joke.")]], n=3, temperature=1.0, seed=11, callbacks=[cb])
    choices = result.generations[0]
    assert len(choices) == 3 and len({c.text for c in choices}) > 1
    assert generate_calls == [1]  # one prompt, three sequences
    outputs = [c.message.usage_metadata["output_tokens"] for c in choices]  # type: ignore[attr-defined]
    assert cb.as_dict()["smollm2"]["output_tokens"] == sum(outputs)
    again = hf.generate([[HumanMessage("Tell a joke.")]], n=3, temperature=1.0, seed=11)
    assert [c.text for c in again.generations[0]] == [c.text for c in choices]
    greedy = hf.generate([[HumanMessage("Tell a joke.")]], n=2, temperature=0)
    assert greedy.generations[0][0].text == greedy.generations[0][1].text


def test_stop_strings_cut_the_reply(hf: BatchedChatHuggingFace) -> None:
    full = str(hf.invoke(PROMPTS[0]).content)
    assert " is " in full
    reply = hf.invoke(PROMPTS[0], stop=[" is "])
    assert reply.content == full.split(" is ")[0]
    assert reply.response_metadata["finish_reason"] == "stop"


def test_unknown_generation_option_is_a_clear_error(hf: BatchedChatHuggingFace) -> None:
    with pytest.raises(ValueError, match="unsupported generation option"):
        hf.invoke("hi", frequency_penalty=1.0)


async def test_logprobs_readout_batched(hf: BatchedChatHuggingFace) -> None:
    prompts = [[HumanMessage(p)] for p in PROMPTS]
    batched = next_token_logprobs(hf, prompts, assistant_prefix="The", top_k=5)
    single = next_token_logprobs(hf, prompts[1:2], assistant_prefix="The", top_k=5)
    assert _close(batched[1], single[0])  # left padding changes nothing
    (async_top,) = await anext_token_logprobs(hf, prompts[:1], "The", 5)
    assert _close(async_top, batched[0])


async def test_logits_value_counts_the_tokens_it_reads(hf: BatchedChatHuggingFace) -> None:
    from langgraph_stl.search.value import SCORE_PREFIX, ValueItem, ValueModel

    value = ValueModel(hf, mode="logits")
    item = ValueItem("Input: 4 4 6 8\n", "4 + 8 = 12 (left: 4 6 12)", "(left: 4 6 12)")
    cb = TokenUsageCallback()
    (estimate,) = await value.aevaluate("game24", [item], config={"callbacks": [cb]})
    assert 0.0 <= estimate.value <= 1.0
    n = len(hf.encode(hf.prompt_text([HumanMessage(value.prompt("game24", item))], SCORE_PREFIX)))
    (usage,) = cb.as_dict().values()
    reads = usage["output_tokens"]  # one distribution per read: 2 when a leading "1" asked about 10
    assert reads in (1, 2) and usage["input_tokens"] == n * reads + (reads - 1) and usage["calls"] == 1


def _close(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-3 for k in a)


def test_logprobs_agree_with_llamacpp(hf: BatchedChatHuggingFace) -> None:
    server = load_chat_model("smollm2")
    assert isinstance(server, OpenAICompatibleChat)
    prompts = [[HumanMessage(p)] for p in PROMPTS]
    for prefix in ("", "The answer"):
        on_hf = next_token_logprobs(hf, prompts, prefix, top_k=5)
        on_server = next_token_logprobs(server, prompts, prefix, top_k=5)
        for a, b in zip(on_hf, on_server, strict=True):
            top_a, top_b = max(a, key=a.__getitem__), max(b, key=b.__getitem__)
            assert top_a == top_b
            assert abs(a[top_a] - b[top_b]) < 0.5  # same Q4_1 weights; llama.cpp quantizes activations


@pytest.fixture(scope="module")
def peft_adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(embedded_hf_folder())
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(folder)
    yield folder


def test_peft_adapter_folder_loads_base_plus_adapter(hf: BatchedChatHuggingFace, peft_adapter: Path) -> None:
    tuned = load_chat_model(f"hf:{peft_adapter}", temperature=0, max_tokens=6)
    assert isinstance(tuned, BatchedChatHuggingFace)
    assert type(tuned.hf_model).__name__.startswith("PeftModel")
    prompt = [[HumanMessage(PROMPTS[0])]]
    assert next_token_logprobs(tuned, prompt) != next_token_logprobs(hf, prompt)
    assert tuned.invoke(PROMPTS[0]).usage_metadata is not None


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a transformers model folder"):
        load_chat_model(f"hf:{tmp_path}")
