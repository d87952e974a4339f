"""Managed llama.cpp servers: one child process per distinct :class:`ServerConfig`, started lazily, shared, closed.

The registry is process-wide: every chat model built for the same GGUF/adapter/slot layout talks to the same
server, so concurrent requests from a whole LangGraph run land in one server's parallel slots and are batched
there (continuous batching). Servers stop at interpreter exit (atexit), on :func:`close_all_servers`, on
:meth:`ManagedLlamaServer.close`, or by themselves when this process dies (their stdin pipe closes; during the model
load, the kernel's parent-death signal). Each server's log is an anonymous temporary file (unlinked when created), so
nothing is left in the temp dir whoever dies; its tail goes into every :class:`LlamaServerError`, and a running
server's log can be read at ``/proc/<pid>/fd/2``. The server's API key travels on the child's stdin, never on a
command line.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace

from langgraph_stl.models._llamacpp_launcher import ServerConfig

__all__ = [
    "LlamaServerError",
    "ManagedLlamaServer",
    "ServerConfig",
    "close_all_servers",
    "get_server",
]

STARTUP_TIMEOUT_S = 120.0


class LlamaServerError(RuntimeError):
    """The llama.cpp server could not start or is no longer running; the message includes its log tail."""


class ManagedLlamaServer:
    """One llama.cpp server in a child process, reachable at :attr:`base_url` (OpenAI-compatible ``/v1``)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._log = tempfile.TemporaryFile(prefix="langgraph-stl-llamacpp-", suffix=".log")  # noqa: SIM115 (lives with the server)
        self._closed = False
        start = time.perf_counter()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "langgraph_stl.models._llamacpp_launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(config.to_json().encode() + b"\n")
            self._proc.stdin.flush()
            ready = self._wait_ready()
        except BaseException:
            self._terminate()
            self._log.close()
            raise
        self.address: str = ready["address"]
        self.startup_s = time.perf_counter() - start
        """Wall time from spawning the process to a listening server (includes Python start and model load)."""

    @property
    def base_url(self) -> str:
        return f"{self.address}/v1"

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def wait_exit(self, timeout: float) -> None:
        """Give a crashing process up to ``timeout`` seconds to report its exit status."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout)

    @property
    def usable(self) -> bool:
        """Not closed and still running."""
        return not self._closed and self.alive()

    def check_alive(self) -> None:
        """Raise :class:`LlamaServerError` (with the log tail) if the server process has exited."""
        if self._closed:
            raise LlamaServerError(f"the llama.cpp server for {self.config.alias!r} was closed; load the model again")
        if not self.alive():
            raise LlamaServerError(
                f"the llama.cpp server for {self.config.alias!r} (pid {self.pid}) died with exit code "
                f"{self._proc.returncode}; a new load_chat_model() call starts a fresh one. {self._log_tail()}"
            )

    def close(self, timeout: float = 5.0) -> None:
        """Stop the server (idempotent) and drop its log."""
        self._closed = True
        _forget(self)
        self._terminate(timeout)
        self._log.close()

    def _terminate(self, timeout: float = 5.0) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()  # EOF asks the launcher to shut down cleanly
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def _wait_ready(self) -> dict[str, str]:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.1):
                    line = self._proc.stdout.readline()
                    if line:
                        ready: dict[str, str] = json.loads(line)
                        return ready
                if self._proc.poll() is not None:
                    raise LlamaServerError(
                        f"the llama.cpp server for {self.config.model_path} exited during start-up "
                        f"(code {self._proc.returncode}). {self._log_tail()}"
                    )
        raise LlamaServerError(
            f"the llama.cpp server did not start within {STARTUP_TIMEOUT_S:.0f} s. {self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15, max_bytes: int = 16384) -> str:
        try:
            fd = self._log.fileno()
            size = os.fstat(fd).st_size
            data = os.pread(fd, max_bytes, max(0, size - max_bytes))
        except (OSError, ValueError):  # closed
            return ""
        text = data.decode(errors="replace").strip().splitlines()[-lines:]
        return "Server log, last lines:\n" + "\n".join(text)


_LOCK = threading.RLock()  # close() re-enters it through _forget()
_SERVERS: dict[ServerConfig, ManagedLlamaServer] = {}


def get_server(config: ServerConfig) -> ManagedLlamaServer:
    """The running server for ``config``, starting one (or replacing a dead one) if needed."""
    with _LOCK:
        server = _SERVERS.get(config)
        if server is not None and server.alive():
            return server
        if server is not None:
            server.close()
        if not config.api_key:  # a per-server key keeps other local users of the machine out
            config = replace(config, api_key=secrets.token_urlsafe(16))
        server = ManagedLlamaServer(config)
        _SERVERS[config] = server
        return server


def close_all_servers() -> None:
    """Stop every managed server of this process (also registered with atexit)."""
    with _LOCK:
        servers = list(_SERVERS.values())
    for server in servers:
        server.close()


def _forget(server: ManagedLlamaServer) -> None:
    with _LOCK:
        if _SERVERS.get(server.config) is server:
            del _SERVERS[server.config]


atexit.register(close_all_servers)
