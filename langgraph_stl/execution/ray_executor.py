"""The Ray executor: N long-lived async actors, each building its own environment and models from a WorkSpec and
running up to K tasks at once; the driver (``execution.driver``) keeps the rest.

Workers return values and never open an output file. A worker that dies is restarted by Ray (``max_restarts=-1``)
and the task it held costs one attempt in the driver, which requeues it for any live worker: Ray itself retries
nothing (``max_task_retries=0``), so attempts are counted in one place. A timed-out attempt is cancelled inside its
actor (``ray.cancel`` on an async actor cancels the coroutine), so the worker keeps serving.

WebShop without ``--webshop-url``: the executor starts one embedded shop per node as a named actor it owns
(restarted by Ray if it dies); the node's workers look it up by name and point their environments at it, and a
worker whose task failed re-reads the shop's address, so a restarted shop (new port) is picked up by the retry.

``ray_address="local"`` starts a private cluster bound to 127.0.0.1 only and stops it with the driver, also when the
driver is SIGKILLed (a small reaper process watches the driver; Ray leaves two agent processes behind otherwise).
``import ray`` happens only here, inside functions: Ray is the optional extra ``[distributed]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from langgraph_stl.execution.driver import Finished, WorkerLostError
from langgraph_stl.execution.work import TaskRunner, WorkSpec, build_runner

if TYPE_CHECKING:
    from types import ModuleType

    from langgraph_stl.execution.options import Execution

_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray resolves ``_node_ip_address="127.0.0.1"`` to the machine's network address unless this is 0 (measured with
Ray 2.60: raylet, GCS and agents then bind 127.0.0.1 only)."""


def import_ray() -> ModuleType:
    """``ray``, or :class:`~langgraph_stl.extras.MissingExtraError` naming the extra to install."""
    from langgraph_stl.extras import require

    require("ray", feature="the ray executor")
    import ray

    return ray


def init_local_cluster(*, num_cpus: int, num_gpus: int | None = None) -> str:
    """Start a private Ray cluster on 127.0.0.1 for this process; returns its session folder."""
    os.environ[_LOOPBACK_ENV] = "0"  # inherited by every Ray process this starts
    ray = import_ray()
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # read at call time; the variable only at import
    ray.init(
        address="local",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
    )
    session: str = ray._private.worker._global_node.get_session_dir_path()
    return session


_SHOP_RESTART_S = 120.0
"""How long a worker waits for its node's shop to come back after a crash."""


_REVIVE_S = 120.0
"""How long the driver waits for a lost worker to be restarted and ready before it stops counting on it."""


def _shop_name(node_id: str, tag: str) -> str:
    return f"stl-webshop-{tag}-{node_id}"


def _needs_shop(work: WorkSpec) -> bool:
    return work.env == "webshop" and not work.env_kwargs.get("webshop_url")


class _WebShopServer:
    """The embedded WebShop of one node, shared by that node's workers (they reach it on 127.0.0.1)."""

    def __init__(self, site_options: dict[str, Any]) -> None:
        from langgraph_stl.envs.webshop.server import load_site, start_server

        self._server = start_server(load_site(**site_options))

    def address(self) -> tuple[str, int]:
        return self._server.url, len(self._server.site.goals)


class _Worker:
    """One Ray actor: builds its runner once (off the event loop), then runs tasks concurrently."""

    def __init__(self, work: dict[str, Any], name: str, shop_tag: str) -> None:
        self._spec = WorkSpec.from_json(work)
        self._name = name
        self._shop_tag = shop_tag
        self._runner: TaskRunner | None = None
        self._lock = asyncio.Lock()
        self._shop_url: str | None = None

    async def _shop_spec(self) -> WorkSpec:
        """The spec with this node's shared WebShop filled in (when the executor started one)."""
        if not _needs_shop(self._spec):
            return self._spec
        import ray
        from ray.exceptions import RayActorError

        shop = ray.get_actor(_shop_name(ray.get_runtime_context().get_node_id(), self._shop_tag))
        deadline = time.monotonic() + _SHOP_RESTART_S
        while True:  # a shop being restarted refuses calls for a while
            try:
                url, goals = await shop.address.remote()
                break
            except RayActorError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        self._shop_url = url
        return WorkSpec(
            self._spec.kind,
            self._spec.env,
            {**self._spec.env_kwargs, "webshop_url": url, "webshop_goals": goals},
            self._spec.options,
        )

    async def _get(self) -> TaskRunner:
        async with self._lock:
            if self._runner is None:
                self._runner = await asyncio.to_thread(build_runner, await self._shop_spec())
        return self._runner

    async def _after_failure(self) -> None:
        """A restarted shop listens on a new port: rebuild against it, so the task's retry can succeed."""
        if self._shop_url is None:
            return
        async with self._lock:
            current = self._shop_url
            spec = await self._shop_spec()
            if spec.env_kwargs["webshop_url"] != current:
                old, self._runner = self._runner, await asyncio.to_thread(build_runner, spec)
                if old is not None:
                    old.close()

    async def ready(self) -> int:
        await self._get()
        return os.getpid()

    async def run(self, task_id: str) -> tuple[Any, float]:
        runner = await self._get()
        t0 = time.perf_counter()
        try:
            value = await runner.run(task_id)
        except Exception:
            await self._after_failure()
            raise
        return value, time.perf_counter() - t0

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()


class RayExecutor:
    """``execution.workers`` actors × ``execution.concurrency`` tasks each, on the cluster at ``ray_address``."""

    def __init__(self, work: WorkSpec, execution: Execution) -> None:
        self._work = work
        self._execution = execution
        self._actors: list[Any] = []
        self._load: list[int] = []
        self._alive: list[bool] = []
        self._changed: asyncio.Condition | None = None
        self._owns_cluster = False
        self._reaper: subprocess.Popen[bytes] | None = None
        self._revivals: set[asyncio.Task[None]] = set()
        self._gave_up = ""
        self._shops: list[Any] = []
        self._shop_tag = uuid.uuid4().hex[:8]  # names are per executor: a later run never meets a dying shop

    @property
    def slots(self) -> int:
        return self._execution.workers * self._execution.concurrency

    def describe(self) -> dict[str, Any]:
        return self._execution.describe()

    async def start(self) -> None:
        """Connect (or start a private cluster) and wait until every worker has built its runner; idempotent."""
        if self._actors:
            return
        ray = import_ray()
        ex = self._execution
        if not ray.is_initialized():
            if ex.ray_address == "local":
                cpus = max(os.cpu_count() or 1, math.ceil(ex.workers * ex.worker_cpus))
                # on this thread: ray.init installs signal handlers, which only the main thread may do
                self._reaper = _start_reaper(init_local_cluster(num_cpus=cpus))
            else:
                ray.init(address=ex.ray_address, logging_level=logging.WARNING)
            self._owns_cluster = True
        env_vars = {} if "STL_NUM_THREADS" in os.environ else {"STL_NUM_THREADS": str(max(1, int(ex.worker_cpus)))}
        actor = ray.remote(_Worker).options(
            num_cpus=ex.worker_cpus,
            num_gpus=ex.worker_gpus,
            resources=dict(ex.worker_resources) or None,
            max_concurrency=ex.concurrency,
            max_restarts=-1,
            max_task_retries=0,
            runtime_env={"env_vars": env_vars} if env_vars else None,
        )
        if _needs_shop(self._work):
            await self._start_shops(ray)
        self._actors = [actor.remote(self._work.to_json(), f"w{i}", self._shop_tag) for i in range(ex.workers)]
        self._load = [0] * ex.workers
        self._alive = [True] * ex.workers
        self._changed = asyncio.Condition()
        await asyncio.gather(*(a.ready.remote() for a in self._actors))  # build errors surface here, once

    async def _start_shops(self, ray: ModuleType) -> None:
        """One embedded WebShop per alive node, owned by this executor (so it ends with the run)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        site = {k: self._work.env_kwargs[k] for k in ("goals", "seed", "show_attrs") if k in self._work.env_kwargs}
        shop = ray.remote(_WebShopServer)
        for node in ray.nodes():
            if node.get("Alive"):
                strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
                self._shops.append(
                    shop.options(
                        name=_shop_name(node["NodeID"], self._shop_tag),
                        scheduling_strategy=strategy,
                        num_cpus=0,
                        max_restarts=-1,
                    ).remote(site)
                )
        await asyncio.gather(*(s.address.remote() for s in self._shops))

    async def _pick(self) -> int:
        assert self._changed is not None, "start() first"
        async with self._changed:
            await self._changed.wait_for(lambda: any(self._alive) or not self._revivals)
            if not any(self._alive):
                raise WorkerLostError(f"every Ray worker was lost and none came back: {self._gave_up}")
            index = min((i for i, ok in enumerate(self._alive) if ok), key=lambda i: self._load[i])
            self._load[index] += 1
            return index

    async def run(self, task_id: str) -> Finished:
        ray = import_ray()
        from ray.exceptions import RayActorError, RayTaskError

        index = await self._pick()
        ref = self._actors[index].run.remote(task_id)
        try:
            value, seconds = await ref
        except RayActorError as exc:
            self._lost(index)
            raise WorkerLostError(f"worker w{index} was lost: {type(exc).__name__}") from None
        except RayTaskError as exc:
            cause = exc.cause
            raise cause if isinstance(cause, Exception) else exc from None
        except asyncio.CancelledError:
            ray.cancel(ref)  # an async actor cancels the coroutine and keeps serving
            raise
        finally:
            self._load[index] -= 1
        return Finished(task_id, value, f"w{index}", seconds)

    def _lost(self, index: int) -> None:
        """Take a dead worker out of rotation until Ray has restarted it."""
        if not self._alive[index]:
            return
        self._alive[index] = False
        task = asyncio.create_task(self._revive(index))
        self._revivals.add(task)
        task.add_done_callback(self._revivals.discard)

    async def _revive(self, index: int) -> None:
        """Wait until Ray has restarted the actor and it rebuilt its runner; give up after ``_REVIVE_S``."""
        deadline = time.monotonic() + _REVIVE_S
        revived = False
        while not revived:
            try:
                await self._actors[index].ready.remote()
                revived = True
            except Exception as exc:  # restarting (RayActorError), or its runner no longer builds
                if time.monotonic() > deadline:
                    self._gave_up = f"w{index}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}"
                    break
                await asyncio.sleep(0.5)
        assert self._changed is not None
        async with self._changed:
            self._alive[index] = revived
            self._revivals.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._changed.notify_all()

    async def close(self) -> None:
        if not self._actors and not self._owns_cluster:
            return
        ray = import_ray()
        for task in list(self._revivals):
            task.cancel()
        for actor in [*self._actors, *self._shops]:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self._actors, self._shops = [], []
        if self._owns_cluster:
            await asyncio.to_thread(ray.shutdown)
            self._owns_cluster = False
        if self._reaper is not None:
            self._reaper.terminate()
            self._reaper.wait()
            self._reaper = None


def _start_reaper(session: str) -> subprocess.Popen[bytes]:
    """A watcher that kills the local cluster's processes if this driver dies without shutting it down."""
    cmd = [sys.executable, "-m", "langgraph_stl.execution.reaper", str(os.getpid()), session]
    return subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL)
