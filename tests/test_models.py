"""Model layer without running a model: spec parsing, usage accounting, light import, atomic conversion."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langgraph_stl.models import SPEC_FORMS, ModelSpec, TokenUsageCallback, load_chat_model, parse_spec
from langgraph_stl.models import embedded as embedded_mod
from langgraph_stl.models.usage import choice_usage


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("smollm2", ModelSpec("llamacpp", "", embedded=True)),
        ("smollm2+lora=/a/value.gguf", ModelSpec("llamacpp", "", lora="/a/value.gguf", embedded=True)),
        ("llamacpp:/m/x.gguf", ModelSpec("llamacpp", "/m/x.gguf")),
        ("llamacpp:/m/x.gguf+lora=/m/a.gguf", ModelSpec("llamacpp", "/m/x.gguf", lora="/m/a.gguf")),
        ("hf:smollm2", ModelSpec("hf", "smollm2", embedded=True)),
        ("hf:/models/qwen", ModelSpec("hf", "/models/qwen")),
        ("hf:HuggingFaceTB/SmolLM2-135M-Instruct", ModelSpec("hf", "HuggingFaceTB/SmolLM2-135M-Instruct")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("openai:qwen@http://127.0.0.1:8000/v1", ModelSpec("openai", "qwen", base_url="http://127.0.0.1:8000/v1")),
    ],
)
def test_parse_spec_forms(spec: str, expected: ModelSpec) -> None:
    assert parse_spec(spec) == expected


def test_spec_names_keep_policy_and_value_apart() -> None:
    assert parse_spec("smollm2").name == "smollm2"
    assert parse_spec("smollm2+lora=/runs/it1/value.gguf").name == "smollm2+lora=value"
    assert parse_spec("llamacpp:/m/qwen2.5-0.5b.Q8_0.gguf").name == "qwen2.5-0.5b.Q8_0"
    assert parse_spec("llamacpp:/m/x.gguf", lora=Path("/a/b.gguf")).lora == "/a/b.gguf"


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("gpt-4", "unknown form"),
        ("vllm:foo", "unknown backend 'vllm'"),
        ("hf:", "unknown form"),
        ("openai:m@localhost:8000", "expected openai:MODEL"),
        ("smollm2+lora=", "empty adapter path"),
        ("hf:/x+lora=/a.gguf", "GGUF models only"),
    ],
)
def test_bad_specs_list_accepted_forms(spec: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        parse_spec(spec)
    for form in SPEC_FORMS:
        assert form in str(info.value)


def test_lora_given_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="either in the spec or as lora="):
        parse_spec("smollm2+lora=/a.gguf", lora="/b.gguf")


def test_missing_gguf_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="GGUF model not found"):
        load_chat_model(f"llamacpp:{tmp_path / 'nope.gguf'}")


def test_openai_without_key_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="needs OPENAI_API_KEY"):
        load_chat_model("openai:gpt-4o-mini")


def test_openai_compatible_model_is_configured_without_network() -> None:
    model = load_chat_model("openai:qwen@http://127.0.0.1:9/v1", temperature=0.3, n=2, seed=7, name="policy")
    params = model._default_params  # type: ignore[attr-defined]
    assert (params["model"], params["temperature"], params["n"], params["seed"]) == ("qwen", 0.3, 2, 7)
    assert model.openai_api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
    assert model.reported_name == "policy"  # type: ignore[attr-defined]


def _result(messages: list[AIMessage], llm_output: dict[str, object] | None) -> LLMResult:
    return LLMResult(generations=[[ChatGeneration(message=m) for m in messages]], llm_output=llm_output)


def test_usage_callback_prefers_llm_output_and_sums_per_model() -> None:
    cb = TokenUsageCallback()
    # Stock ChatOpenAI with n=3 copies the whole call usage onto each choice; llm_output is the truth.
    full = {"input_tokens": 10, "output_tokens": 9, "total_tokens": 19}
    messages = [AIMessage("a", usage_metadata=full) for _ in range(3)]  # type: ignore[arg-type]
    token_usage = {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19}
    cb.on_llm_end(_result(messages, {"token_usage": token_usage, "model_name": "policy"}))
    cb.on_llm_end(_result(messages[:1], {"token_usage": token_usage, "model_name": "policy"}))
    assert cb.as_dict() == {"policy": {"input_tokens": 20, "output_tokens": 18, "calls": 2}}


def test_usage_callback_falls_back_to_message_usage() -> None:
    cb = TokenUsageCallback()
    messages = [
        AIMessage("a", usage_metadata=meta, response_metadata={"model_name": "value"})
        for meta in choice_usage(7, [3, 4])
    ]
    cb.on_llm_end(_result(messages, None))
    cb.on_llm_end(_result([AIMessage("no usage at all")], None))
    assert cb.as_dict() == {
        "value": {"input_tokens": 7, "output_tokens": 7, "calls": 1},
        "unknown": {"input_tokens": 0, "output_tokens": 0, "calls": 1},
    }
    cb.reset()
    assert cb.as_dict() == {}


def test_choice_usage_sums_to_call_total() -> None:
    metas = choice_usage(12, [5, 0, 7])
    assert [m["input_tokens"] for m in metas] == [12, 0, 0]
    assert sum(m["total_tokens"] for m in metas) == 12 + 12


def test_conversion_crash_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STL_CACHE_DIR", str(tmp_path))

    def crash(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half a file")
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(embedded_mod, "_convert_gguf", crash)
    with pytest.raises(RuntimeError, match="mid-conversion"):
        embedded_mod.embedded_hf_folder(progress=False)
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []

    def convert(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        (out / "stl_source.json").write_text("{}")

    monkeypatch.setattr(embedded_mod, "_convert_gguf", convert)
    folder = embedded_mod.embedded_hf_folder(progress=False)
    assert folder == models / "smollm2-135m-instruct" and (folder / "config.json").is_file()
    monkeypatch.setattr(embedded_mod, "_convert_gguf", crash)  # cached: no second conversion
    assert embedded_mod.embedded_hf_folder(progress=False) == folder


def test_default_threads_follow_env_and_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from langgraph_stl.models import threads

    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv(threads.THREADS_ENV, "many")
    with pytest.raises(ValueError, match="positive integer"):
        threads.default_threads()
    monkeypatch.delenv(threads.THREADS_ENV)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert threads.default_threads() == 5
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (40.0, 0.0, 0.0))
    assert threads.default_threads() == 1


def test_threads_do_not_split_the_server_registry() -> None:
    from langgraph_stl.models.server import ServerConfig

    assert ServerConfig("m.gguf", "m", threads=1) == ServerConfig("m.gguf", "m", threads=2, api_key="k")
    assert ServerConfig("m.gguf", "m", n_parallel=2) != ServerConfig("m.gguf", "m", n_parallel=4)
