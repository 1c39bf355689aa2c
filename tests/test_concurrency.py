"""Side-by-side reads and creates: the scheduler, the bound on requests in flight, and a run under latency.

Latency is a botocore ``before-send`` hook that sleeps (after the in-process emulator has answered, inside
the request's permit): what it measures is how many requests were in flight at once, counted, not a wall
time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import pointapp
from pointapp.concurrency import CHANGES_AT_ONCE, READS_AT_ONCE, InFlight, map_side_by_side, run_graph
from pointapp.target import READ_PREFIXES, Context
from tests.conftest import make_context


class Latency:
    """Each request waits ``seconds``; records when, so overlap is counted from the intervals."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {"all": 0, "changes": 0}
        self.most: dict[str, int] = {"all": 0, "changes": 0}
        self.spans: list[tuple[float, float]] = []

    def __call__(self, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]  # before-send.<service>.<Operation>
        kinds = ["all"] + ([] if operation.startswith(READ_PREFIXES) else ["changes"])
        with self.lock:
            for kind in kinds:
                self.in_flight[kind] += 1
                self.most[kind] = max(self.most[kind], self.in_flight[kind])
        started = time.monotonic()
        time.sleep(self.seconds)
        with self.lock:
            self.spans.append((started, time.monotonic()))
            for kind in kinds:
                self.in_flight[kind] -= 1

    def busy(self) -> float:
        """How long at least one request was waiting: the union of the intervals."""
        total, end = 0.0, 0.0
        for start, stop in sorted(self.spans):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


def slow_context(seconds: float, **kwargs: Any) -> tuple[Context, Latency]:
    """A context on a new session (so every client it makes carries the hook) whose requests take ``seconds``."""
    ctx = make_context(**kwargs)
    latency = Latency(seconds)
    ctx.session.events.register("before-send", latency)
    return ctx, latency


@pytest.fixture
def built(ctx: Context) -> Iterator[Context]:
    pointapp.up(ctx)
    yield ctx


def test_a_no_op_plan_reads_side_by_side(built: Context) -> None:
    ctx, latency = slow_context(0.1)  # well above the in-process emulator's own time per call, even on a busy machine
    planned = pointapp.plan(ctx)
    assert planned.empty, [c.line() for c in planned.changes]
    reads = [c for c in ctx.calls if not c.mutating]
    assert len(reads) == len(latency.spans) > 20
    assert 1 < latency.most["all"] <= READS_AT_ONCE
    assert ctx.in_flight.most <= READS_AT_ONCE
    # Requests overlapped: the time some request was waiting is well under the waits added up (read one
    # after another, it is all of it; side by side about a fifth, more on a busy machine).
    assert latency.busy() < len(reads) * latency.seconds * 0.6


def test_the_same_plan_read_side_by_side_as_one_after_another(built: Context) -> None:
    ctx, _ = slow_context(0.01)
    side_by_side = pointapp.plan(ctx)
    one_by_one, latency = slow_context(0.01, in_flight=InFlight(1))
    serial = pointapp.plan(one_by_one)
    assert latency.most["all"] == 1
    assert [c.line() for c in side_by_side.changes] == [c.line() for c in serial.changes]
    assert {name: step.inventory(side_by_side.observed[name]).rows for name, step in _steps()} == \
        {name: step.inventory(serial.observed[name]).rows for name, step in _steps()}
    assert sorted(c.operation for c in ctx.calls) == sorted(c.operation for c in one_by_one.calls)


def _steps() -> list[tuple[str, Any]]:
    from pointapp import steps

    return [(step.name, step.load()) for step in steps.STEPS if step.available]


def test_parallel_up_makes_a_steps_creates_side_by_side_and_parallel_1_one_at_a_time(ctx: Context) -> None:
    pointapp.up(ctx, only="network")
    one, one_latency = slow_context(0.02)
    pointapp.up(one, only="endpoints")  # the VPC endpoints, one after another
    assert one_latency.most["changes"] == 1
    pointapp.down(ctx, only="endpoints")
    four, four_latency = slow_context(0.02)
    outcome = pointapp.up(four, only="endpoints", parallel=4)
    assert len(outcome.applied) >= 4 and {c.action for c in outcome.applied} == {"create"}
    assert 1 < four_latency.most["changes"] <= CHANGES_AT_ONCE
    assert pointapp.plan(four, only="endpoints").empty


def test_run_graph_one_at_a_time_keeps_the_given_order() -> None:
    seen: list[str] = []
    tasks = [(key, (lambda key=key: seen.append(key) or key)) for key in "cab"]
    assert run_graph(tasks, {"c": ["b"]}, 1) == {"c": "c", "a": "a", "b": "b"}
    assert seen == ["c", "a", "b"]


def test_run_graph_waits_for_what_a_task_comes_after_and_bounds_how_many_run() -> None:
    lock, running, most, finished = threading.Lock(), [0], [0], []

    def task(key: str) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
            finished.append(key)
        return key

    keys = [f"t{i}" for i in range(8)]
    results = run_graph([(k, (lambda k=k: task(k))) for k in keys], {"t0": ["t7"]}, 3)
    assert set(results) == set(keys) and most[0] == 3
    assert finished.index("t7") < finished.index("t0")


def test_run_graph_raises_the_first_failure_and_starts_nothing_after_it() -> None:
    started: list[int] = []

    def task(i: int) -> int:
        started.append(i)
        if i == 0:
            raise RuntimeError("boom")
        time.sleep(0.05)
        return i

    with pytest.raises(RuntimeError, match="boom"):
        run_graph([(i, (lambda i=i: task(i))) for i in range(6)], {i: [0] for i in range(2, 6)}, 2)
    assert sorted(started) == [0, 1]


def test_map_side_by_side_keeps_the_items_order() -> None:
    assert map_side_by_side(lambda n: n * n, range(25), limit=4) == [n * n for n in range(25)]


def test_a_context_made_in_threads_reads_a_shared_listing_once(built: Context) -> None:
    ctx = make_context()
    loads = []

    def load() -> str:
        loads.append(1)
        time.sleep(0.05)
        return "listing"

    assert map_side_by_side(lambda _: ctx.read_once("listing", load), range(6)) == ["listing"] * 6
    assert len(loads) == 1
