"""Data-parallel SFT on CPU: ``stl train --nproc 2`` (torchrun, gloo) against one process, same data and settings.

Each configuration is one ``stl train --json`` run in a fresh folder; the script reports what the summary measured
(optimizer steps/s, tokens/s and examples/s of ``trainer.train()``, per-rank batches) plus the command's wall time
(process start, model load and, for torchrun, the rendezvous) and the 1-minute load average. With N processes each
optimizer step consumes N times the examples (per-device batch × N), so examples/s is the comparable rate.

    python tools/bench_train_nproc.py --base smollm2 --data ../shared/data/.../gpt-35-turbo_depth1.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(args: argparse.Namespace, nproc: int, out: Path) -> dict[str, object]:
    cmd = [
        sys.executable,
        "-m",
        "langgraph_stl",
        "train",
        *("--base", args.base, "--out", str(out), "--device", "cpu", "--json"),
        *("--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length)),
        *("--warmup-steps", "0", "--save-steps", "1000", "--nproc", str(nproc)),
    ]
    for data in args.data:
        cmd += ["--data", data]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // nproc))}
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"nproc {nproc} failed:\n{res.stderr[-3000:]}")
    summary = json.loads(res.stdout)
    (adapter,) = summary["adapters"]
    examples = args.steps * args.batch_size * nproc
    return {
        "nproc": nproc,
        "threads per process": max(1, args.threads // nproc),
        "steps": adapter["steps"],
        "batches per rank": adapter["batches_per_rank"],
        "train s": round(adapter["seconds"], 1),
        "steps/s": round(adapter["steps_per_second"], 3),
        "examples/s": round(examples / adapter["seconds"], 2),
        "tokens/s": round(adapter["tokens_per_second"], 1),
        "wall s": round(wall, 1),
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="smollm2")
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads shared by the ranks")
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-nproc-") as tmp:
        for nproc in args.nproc:
            rows.append(run(args, nproc, Path(tmp) / f"n{nproc}"))
            print(json.dumps(rows[-1]), file=sys.stderr)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---:|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
