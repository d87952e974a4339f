"""Benchmark the embedded model on both backends and write the "Models" section of docs/BENCHMARKS.md.

    python tools/bench_models.py                              # print the markdown
    python tools/bench_models.py --write docs/BENCHMARKS.md   # also replace the Models section

llama.cpp (managed server, raw HTTP so the server's own timings are visible):
  * generation: 8 short distinct prompts, 64 tokens each (``ignore_eos``), 1 vs 4 concurrent requests;
  * prompt processing: 8 long prompts (max_tokens=1), all distinct vs sharing a long prefix, 1 vs 4 concurrent.
transformers (``BatchedChatHuggingFace``, the ``hf:smollm2`` path):
  * generation through ``batch()`` at batch 1, 4, 8 (tokens actually generated / wall time);
  * prompt processing through ``next_token_logprobs`` (one batched forward pass) at batch 1, 4, 8.
Plus server start-up and HF load times (first conversion in a scratch cache, then the cached reload).
Every row records the 1-minute load average: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from langgraph_stl.models import embedded_gguf_path, load_chat_model, next_token_logprobs  # noqa: E402
from langgraph_stl.models.embedded import CHATML_TEMPLATE  # noqa: E402
from langgraph_stl.models.server import ManagedLlamaServer, ServerConfig  # noqa: E402

console = Console(stderr=True)
WORDS = [
    *("river", "market", "signal", "orange", "window", "garden", "silver", "rocket", "planet", "coffee"),
    *("mirror", "forest", "engine", "island", "paper", "lantern", "violin", "desert", "castle", "bridge"),
]


def load() -> float:
    return os.getloadavg()[0]


def filler(n_words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


@dataclass
class Row:
    backend: str
    threads: int
    scenario: str
    requests: int
    parallel: int
    prompt_tokens: int
    computed_prompt_tokens: int
    output_tokens: int
    wall_s: float
    load: float

    @property
    def prompt_rate(self) -> float:
        return self.prompt_tokens / self.wall_s

    @property
    def gen_rate(self) -> float:
        return self.output_tokens / self.wall_s


# ---------------------------------------------------------------- llama.cpp


async def _chat(client: httpx.AsyncClient, content: str, max_tokens: int, limit: asyncio.Semaphore) -> dict[str, Any]:
    body = {
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    async with limit:
        response = await client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


async def _llama_run(
    server: ManagedLlamaServer, scenario: str, prompts: list[str], max_tokens: int, parallel: int
) -> Row:
    headers = {"Authorization": f"Bearer {server.config.api_key}"}
    limit = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(base_url=server.address, headers=headers, timeout=600) as client:
        start = time.perf_counter()
        results = await asyncio.gather(*(_chat(client, p, max_tokens, limit) for p in prompts))
        wall = time.perf_counter() - start
    return Row(
        backend="llama.cpp server",
        threads=server.config.threads,
        scenario=scenario,
        requests=len(prompts),
        parallel=parallel,
        prompt_tokens=sum(r["usage"]["prompt_tokens"] for r in results),
        computed_prompt_tokens=sum(r["timings"]["prompt_n"] for r in results),
        output_tokens=sum(r["usage"]["completion_tokens"] for r in results),
        wall_s=wall,
        load=load(),
    )


def bench_llamacpp(seed: int, threads: int) -> tuple[list[Row], list[float]]:
    config = ServerConfig(
        model_path=str(embedded_gguf_path()),
        alias="smollm2",
        n_parallel=4,
        threads=threads,
        chat_template=CHATML_TEMPLATE,
        api_key="bench",
    )
    startups = []
    for _ in range(3):
        with console.status(f"llama.cpp ({threads} threads): server start-up"):
            server = ManagedLlamaServer(config)
        startups.append(server.startup_s)
        server.close()
    server = ManagedLlamaServer(config)
    rows: list[Row] = []
    try:
        asyncio.run(_llama_run(server, "warm-up", ["Say hi."], 8, 1))
        for parallel in (1, 4):
            with console.status(f"llama.cpp: generation, {parallel} concurrent"):
                prompts = [f"Write a long story about a {filler(3, seed + parallel * 100 + i)}." for i in range(8)]
                rows.append(asyncio.run(_llama_run(server, "generation (64 tok)", prompts, 64, parallel)))
        for shared in (False, True):
            for parallel in (1, 4):
                with console.status(f"llama.cpp: prompt processing, shared={shared}, {parallel} concurrent"):
                    base = seed + 1000 * (parallel + (10 if shared else 0))
                    prefix = filler(400, base) if shared else ""
                    prompts = [
                        f"{prefix or filler(400, base + i)}\nQuestion {i}: {filler(12, base + 50 + i)}?"
                        for i in range(8)
                    ]
                    label = "prompt, shared prefix" if shared else "prompt, distinct"
                    rows.append(asyncio.run(_llama_run(server, label, prompts, 1, parallel)))
    finally:
        server.close()
    return rows, startups


# ------------------------------------------------------------- transformers


def bench_hf_conversion() -> float:
    """Seconds for a first conversion of the embedded GGUF, in a scratch cache (fresh process)."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "STL_CACHE_DIR": scratch, "PYTHONPATH": str(REPO)}
        code = "from langgraph_stl.models import embedded_hf_folder; embedded_hf_folder(progress=False)"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
        return time.perf_counter() - start


def bench_hf(seed: int) -> tuple[list[Row], dict[str, float]]:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import HumanMessage

    from langgraph_stl.models import embedded_hf_folder
    from langgraph_stl.models.hf import BatchedChatHuggingFace

    times: dict[str, float] = {}
    start = time.perf_counter()
    import torch
    import transformers  # noqa: F401

    times["import torch + transformers"] = time.perf_counter() - start
    embedded_hf_folder(progress=False)
    for label in ("first in process, incl. lazy imports", "again"):
        start = time.perf_counter()
        model = load_chat_model("hf:smollm2", temperature=0, max_tokens=64)
        times[f"load hf:smollm2 from the cached folder ({label})"] = time.perf_counter() - start
    assert isinstance(model, BatchedChatHuggingFace)
    model.invoke("Say hi.", max_tokens=4)  # warm-up
    rows: list[Row] = []
    for size in (1, 4, 8):
        with console.status(f"transformers: generation, batch {size}"):
            stories: list[LanguageModelInput] = [
                f"Write a long story about a {filler(3, seed + 7 * size + i)}." for i in range(size)
            ]
            start = time.perf_counter()
            replies = model.batch(stories)
            wall = time.perf_counter() - start
        usage = [r.usage_metadata for r in replies if r.usage_metadata]
        rows.append(
            Row(
                "transformers",
                torch.get_num_threads(),
                "generation (≤64 tok)",
                size,
                size,
                sum(u["input_tokens"] for u in usage),
                sum(u["input_tokens"] for u in usage),
                sum(u["output_tokens"] for u in usage),
                wall,
                load(),
            )
        )
    for size in (1, 4, 8):
        with console.status(f"transformers: prompt processing, batch {size}"):
            chats = [[HumanMessage(f"{filler(300, seed + 31 * size + i)}\nValue?")] for i in range(size)]
            tokens = sum(len(model.encode(model.prompt_text(c))) for c in chats)
            start = time.perf_counter()
            next_token_logprobs(model, chats, "Value:", top_k=5)
            wall = time.perf_counter() - start
        rows.append(
            Row(
                "transformers",
                torch.get_num_threads(),
                "prompt (logprobs readout)",
                size,
                size,
                tokens,
                tokens,
                0,
                wall,
                load(),
            )
        )
    return rows, times


# ------------------------------------------------------------------ report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as handle:
        names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    return f"{names[0] if names else cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def render(rows: list[Row], startups: dict[int, list[float]], times: dict[str, float], command: str) -> str:
    lines = [
        f"Command: `{command}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}. "
        "The machine is shared with other jobs: every row shows the 1-minute load average when it finished.",
        "",
        "| backend | threads | scenario | requests | parallel | prompt tok (computed) | output tok | wall s "
        "| prompt tok/s | gen tok/s | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        prompt = f"{r.prompt_tokens} ({r.computed_prompt_tokens})"
        prompt_rate = f"{r.prompt_rate:.0f}" if r.output_tokens == 0 or "prompt" in r.scenario else "–"
        gen_rate = f"{r.gen_rate:.1f}" if "generation" in r.scenario else "–"
        lines.append(
            f"| {r.backend} | {r.threads} | {r.scenario} | {r.requests} | {r.parallel} | {prompt} | {r.output_tokens} "
            f"| {r.wall_s:.2f} | {prompt_rate} | {gen_rate} | {r.load:.2f} |"
        )
    lines += ["", "| start-up / load | seconds |", "|---|---:|"]
    lines += [
        f"| llama.cpp server start-up, {threads} threads (spawn → listening; median of {len(values)}) "
        f"| {statistics.median(values):.2f} |"
        for threads, values in startups.items()
    ]
    lines += [f"| {name} | {value:.2f} |" for name, value in times.items()]
    lines += [
        "",
        "*parallel* is the number of concurrent requests (llama.cpp, 4 server slots) or the batch size "
        "(transformers). Prompt tok/s counts all prompt tokens, including those the server served from its prefix "
        "cache (the computed ones are in parentheses); generation rows divide generated tokens by wall time.",
    ]
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    text = path.read_text()
    # The generated table replaces everything up to a hand-written "### Notes" subsection (kept) or the next section.
    pattern = re.compile(r"(## Models \(`tools/bench_models.py`\)\n\n)(.*?)(?=\n### Notes|\n## )", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no '## Models (`tools/bench_models.py`)' section in {path}")
    path.write_text(pattern.sub(lambda m: m.group(1) + body + "\n", text, count=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path, help="replace the Models section of this markdown file")
    parser.add_argument("--skip-hf", action="store_true", help="only benchmark the llama.cpp server")
    parser.add_argument("--skip-conversion", action="store_true", help="do not time a first conversion")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", default="1,2", help="llama.cpp thread counts to compare (comma-separated)")
    args = parser.parse_args()
    command = "python tools/bench_models.py " + " ".join(sys.argv[1:])
    rows: list[Row] = []
    startups: dict[int, list[float]] = {}
    for threads in (int(t) for t in args.threads.split(",")):
        llama_rows, startups[threads] = bench_llamacpp(args.seed, threads)
        rows += llama_rows
    times: dict[str, float] = {}
    if not args.skip_hf:
        if not args.skip_conversion:
            with console.status("transformers: first conversion of the GGUF (scratch cache)"):
                times["first conversion GGUF → HF folder (fresh process, incl. imports)"] = bench_hf_conversion()
        hf_rows, hf_times = bench_hf(args.seed)
        rows += hf_rows
        times.update(hf_times)
    body = render(rows, startups, times, command.strip())
    print(body)
    if args.write:
        write_section(args.write, body)
        console.print(f"wrote the Models section of {args.write}")


if __name__ == "__main__":
    main()
