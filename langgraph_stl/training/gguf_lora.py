"""Convert a peft LoRA adapter of a Llama-family model into a GGUF LoRA for llama.cpp.

Why: an improved value model trained with transformers is served at llama.cpp speed (≈10× transformers on CPU) by
loading the GGUF base (the embedded SmolLM2 Q4_1) plus this adapter. The adapter must have been trained on the
dequantized base (``embedded_hf_folder()``), so the low-rank update applies to exactly the weights llama.cpp has.

Three details make the result match transformers + peft:

* **Names**: ``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` → ``blk.3.attn_q.weight.lora_a``,
  through ``gguf.TensorNameMap`` (the same table llama.cpp's converters use).
* **Shapes**: GGUF stores numpy arrays with reversed dims, and llama.cpp wants ``lora_a`` with ne = [n_in, r] and
  ``lora_b`` with ne = [r, n_out], i.e. the numpy arrays A (r × in) and B (out × r) exactly as peft holds them.
* **Q/K permutation**: ``convert_hf_to_gguf.py`` permutes the rows of ``q_proj``/``k_proj`` (Hugging Face's rotary
  layout → GGML's interleaved one). ΔW = B·A, and a row permutation P gives P·ΔW = (P·B)·A, so the same
  permutation is applied to B of q/k (with the KV-head count for k), and A is left alone.

The scale llama.cpp applies is ``alpha / r`` (peft's), so ``adapter.lora.alpha`` is peft's ``lora_alpha``; for rsLoRA
(scale ``alpha / sqrt(r)``) the written alpha is adjusted so that the product is the same.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$")


class GGUFConversionError(ValueError):
    """The adapter cannot be converted (unsupported layout, missing files); the message says why."""


@dataclass(frozen=True, slots=True)
class ConversionInfo:
    path: Path
    tensors: int
    rank: int
    alpha: float


def permute_rows(weight: Any, n_head: int) -> Any:
    """llama.cpp's q/k permutation on the output dim: per head, interleave the two rotary halves."""
    out_dim = weight.shape[0]
    return weight.reshape(n_head, 2, out_dim // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _load_adapter(adapter_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg_path = adapter_dir / "adapter_config.json"
    weights_path = adapter_dir / "adapter_model.safetensors"
    if not cfg_path.is_file() or not weights_path.is_file():
        raise GGUFConversionError(
            f"{adapter_dir} is not a peft adapter folder (needs adapter_config.json and adapter_model.safetensors)"
        )
    from safetensors.numpy import load_file

    return json.loads(cfg_path.read_text()), load_file(str(weights_path))


def config_problems(cfg: Mapping[str, Any]) -> list[str]:
    """Why a peft config (``adapter_config.json``, or LoraConfig fields) cannot become a GGUF LoRA; empty if it can.

    ``stl improve`` checks the user's LoRA fields with this before collecting, as it checks the base."""
    problems = []
    if cfg.get("peft_type", "LORA") != "LORA":
        problems.append(f"only LoRA adapters convert, this one is {cfg.get('peft_type')}")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        problems.append("per-module rank/alpha patterns are not supported by GGUF LoRA (one alpha per file)")
    if cfg.get("use_dora"):
        problems.append("DoRA adapters cannot be expressed as a GGUF LoRA")
    if cfg.get("modules_to_save") or cfg.get("trainable_token_indices"):
        problems.append("modules_to_save / trained token embeddings have no GGUF LoRA form")
    return problems


def _base_config(base: str) -> Path:
    """The base's ``config.json``: in its folder, or in the Hugging Face cache for a Hub id."""
    folder = Path(base) / "config.json"
    if folder.is_file():
        return folder
    if base and not Path(base).is_absolute():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(base, "config.json")
        if isinstance(cached, str):
            return Path(cached)
    raise GGUFConversionError(
        f"base model config not found for {base!r}: the adapter's base_model_name_or_path must be the folder it was "
        "trained on or a Hub id in the local Hugging Face cache"
    )


def convert_adapter(adapter_dir: str | Path, out_path: str | Path) -> ConversionInfo:
    """Write ``out_path`` (GGUF LoRA, f32 tensors) from the peft adapter in ``adapter_dir``."""
    import gguf
    import numpy as np

    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    cfg, tensors = _load_adapter(adapter_dir)
    problems = config_problems(cfg)
    if problems:
        raise GGUFConversionError("; ".join(problems))
    base_cfg_path = _base_config(str(cfg.get("base_model_name_or_path", "")))
    base_cfg = json.loads(base_cfg_path.read_text())
    if base_cfg.get("model_type") != "llama":
        raise GGUFConversionError(f"only Llama-family bases are supported, got model_type={base_cfg.get('model_type')}")
    n_head = int(base_cfg["num_attention_heads"])
    n_kv = int(base_cfg.get("num_key_value_heads", n_head))
    n_blocks = int(base_cfg["num_hidden_layers"])
    name_map = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, n_blocks)

    pairs: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        m = _LORA_KEY.match(key)
        if m is None:
            raise GGUFConversionError(f"unexpected tensor {key!r} (modules_to_save / trained embeddings unsupported)")
        pairs.setdefault(m["module"], {})[m["ab"]] = value
    rank = int(cfg["r"])
    alpha = float(cfg["lora_alpha"])
    if cfg.get("use_rslora"):
        alpha *= math.sqrt(rank)  # llama.cpp scales by alpha/r; rsLoRA means alpha/sqrt(r)

    writer = gguf.GGUFWriter(str(out_path), arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    count = 0
    for module in sorted(pairs):
        ab = pairs[module]
        if set(ab) != {"A", "B"}:
            raise GGUFConversionError(f"{module}: needs both lora_A and lora_B")
        gguf_name = name_map.get_name(module + ".weight", try_suffixes=(".weight",))
        if gguf_name is None:
            raise GGUFConversionError(f"no GGUF tensor corresponds to {module!r}")
        lora_a = np.ascontiguousarray(ab["A"], dtype=np.float32)
        lora_b = np.ascontiguousarray(ab["B"], dtype=np.float32)
        if module.endswith("q_proj"):
            lora_b = np.ascontiguousarray(permute_rows(lora_b, n_head))
        elif module.endswith("k_proj"):
            lora_b = np.ascontiguousarray(permute_rows(lora_b, n_kv))
        writer.add_tensor(gguf_name + ".lora_a", lora_a)
        writer.add_tensor(gguf_name + ".lora_b", lora_b)
        count += 2
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return ConversionInfo(out_path, count, rank, alpha)
