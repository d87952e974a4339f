"""GPU smoke check of ``hf:`` models: device/dtype choice, batched generation, streaming and the logits readout.

Weights cannot travel to a lent GPU machine, so the model is *constructed*: random weights in SmolLM2-135M's shape
(Llama, hidden 576, 30 layers, 9/3 heads) with a small locally trained tokenizer, whose 400-token vocabulary the
model keeps so that every generated id decodes to text (the streaming check needs that). Prints one JSON
object (device, dtype, timings); exits non-zero if a check fails. On a machine without a GPU it runs on CPU in fp32,
which is how it is tested here::

    python tools/gpu_smoke_hf.py                 # the real shape
    python tools/gpu_smoke_hf.py --layers 2      # a quick CPU check of the script itself
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.messages import HumanMessage

from langgraph_stl.models import anext_token_logprobs, load_chat_model
from langgraph_stl.models.hf import BatchedChatHuggingFace, pick_device
from tests.tiny_llama import build_tiny_llama


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=576)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    device, dtype = pick_device()
    report: dict[str, object] = {"device": device, "dtype": dtype, "torch": torch.__version__}
    if device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory(prefix="stl-gpu-smoke-") as tmp:
        folder = build_tiny_llama(Path(tmp) / "model")
        config = LlamaConfig.from_pretrained(folder)
        config.update(
            {
                "hidden_size": args.hidden,
                "intermediate_size": args.hidden * 8 // 3,
                "num_hidden_layers": args.layers,
                "num_attention_heads": 9,
                "num_key_value_heads": 3,
                "head_dim": args.hidden // 9,
                "tie_word_embeddings": True,
            }
        )
        AutoModelForCausalLM.from_config(config).save_pretrained(folder)
        start = time.perf_counter()
        # sampling with a seed: greedy decoding of random weights tends to repeat one token
        model = load_chat_model(f"hf:{folder}", temperature=1.0, seed=0, max_tokens=args.max_tokens)
        assert isinstance(model, BatchedChatHuggingFace)
        report["load_s"] = round(time.perf_counter() - start, 2)
        parameter = next(model.hf_model.parameters())
        report["parameters"] = sum(p.numel() for p in model.hf_model.parameters())
        checks = {"model on the picked device": parameter.device.type == device.split(":")[0]}
        checks["model in the picked dtype"] = parameter.dtype == getattr(torch, dtype)

        prompts = [f"Prompt number {i}: say something." for i in range(args.batch)]
        model.batch(prompts[:1])  # warm-up (CUDA kernels, caches)
        start = time.perf_counter()
        replies = model.batch(prompts)
        seconds = time.perf_counter() - start
        tokens = sum(int((r.usage_metadata or {}).get("output_tokens", 0)) for r in replies)
        report["batch_generate"] = {"prompts": len(prompts), "tokens": tokens, "tokens_per_s": round(tokens / seconds)}

        start = time.perf_counter()
        chunks = list(model.stream(prompts[0]))
        report["stream"] = {"chunks": len(chunks), "seconds": round(time.perf_counter() - start, 2)}
        checks["stream yields several chunks"] = len([c for c in chunks if c.content]) > 1
        checks["stream equals invoke"] = "".join(str(c.content) for c in chunks) == model.invoke(prompts[0]).content

        start = time.perf_counter()
        tops = asyncio.run(anext_token_logprobs(model, [[HumanMessage(p)] for p in prompts], top_k=5))
        report["logits_readout_s"] = round(time.perf_counter() - start, 3)
        checks["readout has top-k per prompt"] = len(tops) == len(prompts) and all(tops)
        if device.startswith("cuda"):
            report["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    report["checks"] = checks
    print(json.dumps(report, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
