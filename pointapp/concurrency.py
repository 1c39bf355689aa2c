"""Running independent AWS calls side by side, a bounded number at a time.

Discovery reads steps, kinds and items side by side (:data:`READS_AT_ONCE` requests in flight at most, as
Terraform refreshes ten resources at a time: its ``-parallelism`` default), and ``up --parallel N``
creates a step's independent resources side by side (:data:`CHANGES_AT_ONCE` at most). With a bound of
one, everything runs in the calling thread in the given order, exactly as a plain loop would.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
V = TypeVar("V")

#: Requests in flight at once in one run (Terraform's default ``-parallelism`` is 10).
READS_AT_ONCE = 10
#: Changes of one step made at once under ``up --parallel N`` (N > 1). EC2 throttles each API per account
#: and Region with a token bucket and answers RequestLimitExceeded past it (EC2 Developer Guide, "Request
#: throttling for the Amazon EC2 API"); a few at a time stays far below it, and the clients' standard
#: retries back off on a throttling answer.
CHANGES_AT_ONCE = 4


def run_graph(tasks: Sequence[tuple[K, Callable[[], T]]], after: Mapping[K, Collection[K]], limit: int,
              done: Callable[[K, T], None] | None = None) -> dict[K, T]:
    """Run each task once the tasks it comes ``after`` are done, at most ``limit`` at a time; return the
    results by key. ``done`` is called (in the calling thread) as each one finishes.

    A key in ``after`` that is not a task is ignored. With ``limit`` 1 (or one task) the tasks run in
    the calling thread in the given order. A failure stops new tasks from starting; those running finish,
    then the first failure is raised. Ctrl-C cancels the tasks not yet started.
    """
    keys = {key for key, _ in tasks}
    waits = {key: {k for k in after.get(key, ()) if k in keys and k != key} for key, _ in tasks}
    results: dict[K, T] = {}
    if limit <= 1 or len(tasks) <= 1:
        for key, task in tasks:
            results[key] = task()
            if done is not None:
                done(key, results[key])
        return results
    work = dict(tasks)
    order = [key for key, _ in tasks]
    failures: list[BaseException] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=limit, thread_name_prefix="pointapp-call") as pool:
        running: dict[concurrent.futures.Future[T], K] = {}
        try:
            while True:
                if not failures:
                    for key in order:
                        if len(running) >= limit:
                            break
                        if key not in results and key not in running.values() and waits[key] <= set(results):
                            running[pool.submit(work[key])] = key
                if not running:
                    break
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: order.index(running[f])):
                    key = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        failures.append(error)
                        continue
                    results[key] = future.result()
                    if done is not None:
                        done(key, results[key])
        except KeyboardInterrupt:
            for future in running:
                future.cancel()
            raise
    if failures:
        raise failures[0]
    unrun = [key for key in order if key not in results]
    if unrun:  # only a cycle in ``after`` leaves tasks that can never start
        raise ValueError(f"tasks wait for each other: {', '.join(map(str, unrun))}")
    return results


def map_side_by_side(work: Callable[[V], T], items: Iterable[V], limit: int = READS_AT_ONCE) -> list[T]:
    """``[work(item) for item in items]``, at most ``limit`` at a time; the results in the items' order."""
    listed = list(items)
    results = run_graph([(i, functools.partial(work, item)) for i, item in enumerate(listed)], {}, limit)
    return [results[i] for i in range(len(listed))]


class InFlight:
    """A bound on the requests a botocore session has in flight at once, over all its clients and threads.

    It holds a permit from ``before-send`` (each HTTP attempt) until the attempt's answer (or failure) is
    received, so nested side-by-side work (steps, then kinds, then items) never sends more than ``limit``
    requests at a time. A thread holds one permit at most: a retry's attempt reuses it.
    """

    def __init__(self, limit: int = READS_AT_ONCE) -> None:
        self.limit = limit
        self._permits = threading.BoundedSemaphore(limit)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most = 0  # the most requests that were in flight at once (tests and the benchmark read it)

    def register(self, events: Any) -> None:
        events.register("before-send", self._acquire)
        events.register("response-received", self._release)
        events.register("after-call", self._release)
        events.register("after-call-error", self._release)

    def _acquire(self, **_: Any) -> None:
        if getattr(self._local, "holding", False):
            return
        self._permits.acquire()
        self._local.holding = True
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)

    def _release(self, **_: Any) -> None:
        if not getattr(self._local, "holding", False):
            return
        self._local.holding = False
        with self._lock:
            self.in_flight -= 1
        self._permits.release()
