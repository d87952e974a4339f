"""Child-process entry point that runs one llama.cpp server (``python -m langgraph_stl.models._llamacpp_launcher``).

Running the server outside the caller's process isolates native crashes and makes it killable by PID. Protocol:
the JSON :class:`ServerConfig` arrives as the first line on stdin (never on the command line, which every local user
can read in ``/proc/<pid>/cmdline``: it holds the server's API key); once listening, the child prints one JSON line
``{"address": ..., "startup_s": ...}`` on stdout and then blocks reading stdin. End of stdin (the parent closed the
pipe or died) or SIGTERM stops the server cleanly, so no server outlives its owner.

Model loading runs in native code holding the GIL, so no Python code (thread or signal handler) runs until it ends.
During the load, SIGTERM therefore keeps its default action (the process ends at once), and on Linux the kernel kills
the child if its parent dies (``PR_SET_PDEATHSIG``); both are handed back to the stdin protocol once the server is up.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from types import FrameType


@dataclass(frozen=True)
class ServerConfig:
    """Everything that shapes a server; equal configs share one server (threads and key do not count)."""

    model_path: str
    alias: str
    lora_paths: tuple[str, ...] = ()
    n_parallel: int = 4
    ctx_per_slot: int = 4096
    threads: int = field(default=1, compare=False)
    chat_template: str = ""
    api_key: str = field(default="", compare=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        data = json.loads(text)
        data["lora_paths"] = tuple(data["lora_paths"])
        return cls(**data)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(signum: int) -> None:
    """Linux: ask the kernel for ``signum`` when the parent dies (0 cancels); elsewhere a no-op."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _serve(config: ServerConfig) -> None:
    start = time.perf_counter()
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = config.model_path
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_parallel = config.n_parallel
    params.n_ctx = config.ctx_per_slot * config.n_parallel
    params.cpuparams.n_threads = config.threads
    params.cpuparams_batch.n_threads = config.threads
    params.model_alias = {config.alias}
    params.verbosity = 1
    if config.chat_template:
        params.chat_template = config.chat_template
    if config.api_key:
        params.api_keys = [config.api_key]
    if config.lora_paths:
        # Loaded at scale 0: clients choose the scale per request, which avoids the stale-cache pitfall of
        # changing the global scale (see docs/MODELS.md).
        params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(path, 0.0) for path in config.lora_paths]
    server = xllamacpp.Server(params)  # the load: holds the GIL for seconds
    signal.signal(signal.SIGTERM, _stop)
    _die_with_parent(0)  # from here on, end of stdin stops the server cleanly
    address = server.listening_address
    print(json.dumps({"address": address, "startup_s": round(time.perf_counter() - start, 3)}), flush=True)
    try:
        sys.stdin.read()  # returns at EOF: the parent is gone or asked us to stop
    finally:
        # Not ``del server``: its destructor can wait forever on the HTTP thread (seen with the pinned xllamacpp), and a
        # server has nothing to save. The kernel frees the model, the slots and the socket.
        sys.stdout.flush()
        os._exit(0)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python -m langgraph_stl.models._llamacpp_launcher < '<ServerConfig JSON line>'", file=sys.stderr)
        return 2
    _die_with_parent(signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the request above: nobody will ever stop us
        return 1
    line = sys.stdin.readline()
    if not line:  # the parent closed stdin (or died) before sending the configuration
        return 1
    _serve(ServerConfig.from_json(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
