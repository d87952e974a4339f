"""Data-parallel LoRA SFT: ``stl train --nproc N`` runs every rank of :func:`langgraph_stl.training.sft.train`
under ``torchrun`` (gloo on CPU, nccl on GPU; rank 0 alone writes the adapter and the summary).

torchrun, not ``accelerate launch``: with accelerate 1.16, ``accelerate launch --cpu --num_processes 2`` silently
runs one process. Each rank reads the same request file (the configs as dicts, :func:`sft.write_request`).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from langgraph_stl.lifeline import child_env
from langgraph_stl.training.config import TrainConfig
from langgraph_stl.training.sft import SUMMARY_FILE, TrainSummary, read_summaries, training_dir, write_request


@dataclass(frozen=True, slots=True)
class Launch:
    """torchrun's topology options. One node: ``--standalone``; several: a c10d rendezvous at ``rdzv_endpoint``."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int | None = None
    rdzv_endpoint: str = ""
    rdzv_id: str = "stl-train"
    rdzv_backend: str = "c10d"

    def __post_init__(self) -> None:
        if self.nproc < 1 or self.nnodes < 1:
            raise ValueError("--nproc and --nnodes must be >= 1")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("a multi-node run needs --rdzv-endpoint HOST:PORT (the same on every node)")

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1


def torchrun_argv(request: Path, launch: Launch) -> list[str]:
    """The torchrun command line that trains ``request`` on every rank."""
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if launch.nnodes == 1 and not launch.rdzv_endpoint:
        cmd.append("--standalone")
    else:
        cmd += ["--nnodes", str(launch.nnodes), "--rdzv_backend", launch.rdzv_backend]
        cmd += ["--rdzv_endpoint", launch.rdzv_endpoint, "--rdzv_id", launch.rdzv_id]
        if launch.node_rank is not None:
            cmd += ["--node_rank", str(launch.node_rank)]
    return [*cmd, "--nproc_per_node", str(launch.nproc), "-m", "langgraph_stl.training.sft", str(request)]


def train_distributed(
    config: TrainConfig,
    launch: Launch,
    *,
    sft: Mapping[str, Any] | None = None,
    peft: Mapping[str, Any] | None = None,
    stdout: IO[str] | None = None,
) -> list[TrainSummary]:
    """Run ``config`` under torchrun and return rank 0's summaries (empty on nodes other than rank 0's, unless the
    output folder is on a shared filesystem)."""
    from langgraph_stl.training.sft import resolve_base

    resolve_base(config.base)  # fail in the launcher, not in N ranks at once
    out = Path(config.out).expanduser().resolve()
    summary = training_dir(out) / SUMMARY_FILE
    summary.unlink(missing_ok=True)  # what we read back must be this run's
    config = dataclasses.replace(config, out=str(out))
    request = write_request(training_dir(out) / "request.json", config, sft, peft)
    env = child_env()  # every rank ends itself if this launcher is killed
    # One rank per core share; torchrun would otherwise force 1 thread and warn about it.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // launch.nproc)))
    proc = subprocess.run(torchrun_argv(request, launch), env=env, stdout=stdout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited with status {proc.returncode} (the ranks' errors are printed above)")
    if not summary.is_file() and launch.nnodes > 1:
        return []
    return read_summaries(out)
