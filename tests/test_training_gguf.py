"""GGUF LoRA conversion: the q/k permutation algebra, and a converted SmolLM2 adapter served by llama.cpp matching
transformers + peft (greedy text and next-token log-probabilities)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from langgraph_stl.training import gguf_lora
from langgraph_stl.training.gguf_lora import GGUFConversionError, convert_adapter, permute_rows


def test_permuting_lora_b_permutes_the_update() -> None:
    rng = np.random.default_rng(0)
    n_head, head_dim, r, n_in = 3, 8, 4, 16
    b = rng.normal(size=(n_head * head_dim, r))
    a = rng.normal(size=(r, n_in))
    # llama.cpp permutes the rows of W; for W + B·A that is exactly permuting the rows of B
    assert np.allclose(permute_rows(b, n_head) @ a, permute_rows(b @ a, n_head))
    # per head, the two rotary halves are interleaved: rows 0..3 | 4..7 -> 0,4,1,5,2,6,3,7
    rows = np.arange(n_head * head_dim)[:, None].astype(float)
    assert permute_rows(rows, n_head)[:8, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_rejects_non_adapters(tmp_path: Path) -> None:
    with pytest.raises(GGUFConversionError, match="not a peft adapter folder"):
        convert_adapter(tmp_path, tmp_path / "x.gguf")


PROMPTS = [
    f"Evaluate the state. Input: {a} {b} {c} {d}"
    for a, b, c, d in [(1, 2, 3, 4), (4, 4, 6, 8), (2, 3, 5, 12), (3, 3, 8, 8)]
]
TARGET = "Banana verdict: the correctness score is 7.50 / 10.00."


@pytest.mark.slow
@pytest.mark.model
def test_converted_adapter_served_by_llamacpp_matches_peft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_core.messages import HumanMessage

    from langgraph_stl.models import load_chat_model, next_token_logprobs
    from langgraph_stl.training.config import TrainConfig
    from langgraph_stl.training.dataset import Example, ExampleWriter
    from langgraph_stl.training.sft import train

    data = tmp_path / "d.jsonl"
    with ExampleWriter(data, fsync=False) as w:
        for p in PROMPTS * 2:
            w.write(Example(prompt=p, completion=TARGET, depth=1))
    # a few high-lr steps on a repeated target: enough to change greedy outputs visibly
    cfg = TrainConfig(
        data=[str(data)],
        out=str(tmp_path / "ad"),
        base="smollm2",
        max_steps=8,
        learning_rate=3e-3,
        warmup_steps=0,
        device="cpu",
        max_length=128,
    )
    train(cfg)
    convert_adapter(tmp_path / "ad", tmp_path / "ad.gguf")
    with monkeypatch.context() as m:  # the same conversion without the q/k permutation, for contrast
        m.setattr(gguf_lora, "permute_rows", lambda w, n: w)
        convert_adapter(tmp_path / "ad", tmp_path / "noperm.gguf")

    unseen = ["Evaluate the state. Input: 7 7 3 1", PROMPTS[1]]
    kw = {"temperature": 0.0, "max_tokens": 14}
    peft = load_chat_model(f"hf:{tmp_path / 'ad'}", **kw)
    served = load_chat_model("smollm2", lora=str(tmp_path / "ad.gguf"), **kw)
    base = load_chat_model("smollm2", **kw)
    for prompt in unseen:
        expected = peft.invoke(prompt).content
        assert str(expected).startswith("Banana verdict")  # the adapter really changed behaviour
        assert served.invoke(prompt).content == expected
        assert not str(base.invoke(prompt).content).startswith("Banana")

    msgs = [[HumanMessage(unseen[0])]]
    prefix = "Banana verdict: the correctness score is "
    ref = next_token_logprobs(peft, msgs, prefix, top_k=5)[0]
    got = next_token_logprobs(served, msgs, prefix, top_k=10)[0]
    noperm = next_token_logprobs(
        load_chat_model("smollm2", lora=str(tmp_path / "noperm.gguf"), **kw), msgs, prefix, 10
    )[0]
    assert max(ref, key=ref.__getitem__) == max(got, key=got.__getitem__)
    err = sum(abs(ref[t] - got.get(t, -30.0)) for t in ref)
    err_noperm = sum(abs(ref[t] - noperm.get(t, -30.0)) for t in ref)
    assert err < err_noperm  # the permutation is what makes llama.cpp agree with peft
    assert err < 0.5 * len(ref)  # Q8 activations in llama.cpp leave small differences only
