"""How many CPU threads a local backend should use on a possibly shared machine.

llama.cpp and torch both split each matrix product over their threads and wait for the slowest, so one thread
descheduled by other processes stalls all of them. Measured on a 2-core machine at load 13-15: llama.cpp generated
1-4 tokens/s with 2 threads and 45 with 1; transformers 1.6 tokens/s with 2 threads and 8.7 with 1
(docs/BENCHMARKS.md). Sizing to the cores the current load leaves idle avoids that collapse.
"""

from __future__ import annotations

import os

THREADS_ENV = "STL_NUM_THREADS"


def default_threads() -> int:
    """``$STL_NUM_THREADS`` if set, else the cores left idle by the 1-minute load average (at least 1)."""
    configured = os.environ.get(THREADS_ENV)
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {configured!r}") from None
    cores = os.cpu_count() or 1
    return max(1, min(cores, cores - round(os.getloadavg()[0])))
