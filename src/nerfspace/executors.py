"""Where independent tasks run: inline, in local worker processes, or on a Ray cluster.

A task is a picklable function and its arguments. Tasks write their own outputs atomically and skip
outputs already written, so a task run twice (Ray retries one whose worker died) changes nothing, and
the outputs do not depend on the executor: every task gets the same thread count under each.
"""

from __future__ import annotations

import ctypes
import importlib.util
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from nerfspace.errors import InputError

EXECUTORS = ("local", "ray")
RAY_RETRIES = 3  # times Ray runs a task again whose worker died
ADDRESS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Executor:
    kind: str = "local"
    workers: int = 1  # tasks at once here (processes, or a local Ray cluster's tasks)
    address: str | None = None  # a running Ray cluster ("host:port"), whose CPUs set how many run at once
    threads: int | None = None  # torch threads (and Ray CPUs) per task; None: see `task_threads`

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise InputError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        if self.workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.workers}")
        if self.address is not None and self.kind != "ray":
            raise InputError("--ray-address needs --executor ray")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads per task must be >= 1, got {self.threads}")
        if self.kind == "ray":  # refused here, before any work or output
            if importlib.util.find_spec("ray") is None:
                raise InputError("--executor ray needs Ray: pip install 'nerfspace[scale]'")
            if self.address is not None:
                _check_answers(self.address)

    @property
    def task_threads(self) -> int:
        """Given, or one on a Ray cluster (it runs as many tasks as it has CPUs), or this machine's cores
        shared by the tasks that run at once."""
        if self.threads or self.address:
            return self.threads or 1
        return max(1, (os.cpu_count() or 1) // self.workers)

    def run(self, fn: Callable, tasks: Sequence[tuple]) -> Iterator[int]:
        """Run ``fn(*task, threads=self.task_threads)`` for every task; yield each task's index as it ends. A
        task's error is raised here (after the tasks already running end)."""
        if not tasks:
            return
        if self.kind == "ray":
            yield from _run_ray(self, fn, tasks)
        elif self.workers == 1:
            for i, task in enumerate(tasks):
                fn(*task, threads=self.task_threads)
                yield i
        else:
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(self.workers, spawn, _die_with_parent, (os.getpid(),)) as pool:
                futures = {
                    pool.submit(fn, *task, threads=self.task_threads): i for i, task in enumerate(tasks)
                }
                for f in as_completed(futures):
                    f.result()
                    yield futures[f]


PR_SET_PDEATHSIG = 1  # Linux prctl option: a signal the kernel sends a process when its parent dies


def _die_with_parent(parent: int) -> None:
    """Worker initializer: on Linux the kernel kills this worker when the parent process dies, so a killed
    command leaves no worker writing into the folder it no longer locks."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: workers end with their current task
        pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _run_ray(ex: Executor, fn: Callable, tasks: Sequence[tuple]) -> Iterator[int]:
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(
            address=ex.address,
            num_cpus=None if ex.address else ex.workers * ex.task_threads,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=False,
        )
    try:
        remote = ray.remote(num_cpus=ex.task_threads, max_retries=RAY_RETRIES)(fn)
        pending = {remote.remote(*task, threads=ex.task_threads): i for i, task in enumerate(tasks)}
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            ray.get(ready)
            yield pending.pop(ready)
    finally:
        if started:
            ray.shutdown()


def _check_answers(address: str) -> None:
    """Refuse a Ray address that is malformed or where nothing answers, before Ray waits on it."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--ray-address must be host:port, got {address[:100]!r}")
    try:
        socket.create_connection((host, int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as e:
        raise InputError(f"--ray-address {address[:100]}: nothing answers ({e.strerror or e})") from e
