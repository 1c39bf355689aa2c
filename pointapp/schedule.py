"""How long a stand-up takes on real AWS, and in which order pointapp runs the steps.

Each step's time is the sum of its waits (the slow resources it must see available: each kind's
``typical``, the figure its wait prints) and its API work (:data:`API`). The steps form a graph
(``StepInfo.depends_on``); :func:`simulate` runs the same scheduling policy the orchestrator uses
(:func:`pick`) on a virtual clock, so the schedule of ``up --parallel N`` can be compared with the
sequential sum and the critical path without waiting for AWS.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pointapp.plan import Change, Table
from pointapp.resources import NEW_ROLE, EarlyPart, Kind
from pointapp.spec import Spec
from pointapp.steps import STEPS, StepInfo
from pointapp.steps.network import NAT_GATEWAY
from pointapp.typical import Typical

#: One create or update call with its tags: what a resource without a wait costs.
API = Typical("api", 1, "one create or update call with its tags, no wait",
              "the API's round trip; CloudFormation's own pace for resources without a wait is similar")

def _loaded(step: str) -> Any:
    """The step module or object named ``step``, or None (not available, or an early part's unit)."""
    info = next((s for s in STEPS if s.name == step), None)
    return info.load() if info is not None and info.available else None


def _kinds(step: str) -> list[Kind]:
    """The kinds of ``step`` in creation order (none for a step that is not made of kinds)."""
    return list(getattr(_loaded(step), "kinds", {}).values())


def _early(step: str) -> EarlyPart | None:
    """The part of ``step`` that may start before the rest (:attr:`ResourceStep.early`), if it has one."""
    return getattr(_loaded(step), "early", None)


def _figures(kind: Kind) -> list[Typical]:
    """Every figure ``kind`` declares (its create's, its delete's, one the spec may choose instead)."""
    return [value for cls in type(kind).__mro__ for value in vars(cls).values() if isinstance(value, Typical)]


#: Every typical time pointapp knows, by name: the API round, and each kind's (its waits print the same).
TYPICAL: dict[str, Typical] = {API.name: API, NEW_ROLE.name: NEW_ROLE, NAT_GATEWAY.name: NAT_GATEWAY, **{
    typical.name: typical for info in STEPS if info.available for kind in _kinds(info.name) for typical in _figures(kind)}}


@dataclass(frozen=True)
class Deferred:
    """A wait a step starts and leaves running: only the steps in ``needed_by`` wait for it."""

    step: str
    kind: str
    needed_by: tuple[str, ...]


def _early_part(unit: str) -> tuple[str, EarlyPart] | None:
    """The step and early part whose unit is named ``unit``, if it is one."""
    for info in STEPS:
        part = _early(info.name)
        if part is not None and part.name == unit:
            return info.name, part
    return None


def split(step: str, changes: Sequence[Change]) -> tuple[list[Change], list[Change]]:
    """The changes of ``step`` run early (its :attr:`ResourceStep.early` part) and those that follow;
    nothing is run early unless the step only creates (a rebuild with deletions keeps the step's own order)."""
    part = _early(step)
    early = [c for c in changes if part is not None and c.kind in part.kinds]
    if not early or len(early) == len(changes) or any(c.action != "create" for c in changes):
        return [], list(changes)
    return early, [c for c in changes if c not in early]


def run_apart(graph: dict[str, tuple[str, ...]], step: str) -> str:
    """Make ``step``'s early part a unit of ``graph`` (it needs what the part needs; the step needs it);
    returns the unit's name."""
    part = _early(step)
    assert part is not None, step
    graph[part.name] = tuple(n for n in part.needs if n in graph)
    graph[step] = (*graph[step], part.name)
    return part.name


#: The network step starts its NAT gateways and goes on; the routes to them follow once they are
#: available, and only the service (whose tasks reach the internet through them) waits for that
#: (:data:`pointapp.steps.network.DEFERRED_NAT`). The database, cache and NAT gateway wait side by side.
DEFERRED: dict[str, Deferred] = {
    "network: NAT gateway": Deferred("network", "nat-gateway", ("service",)),
}


def step_waits(spec: Spec, step: str, creating: Iterable[str] | None = None,
               without_early: bool = False) -> list[tuple[str, int]]:
    """The waits of ``step`` or of an early part's unit (what, typical seconds): those of its kinds
    (:meth:`Kind.waits`, in creation order), all of them or those of the kinds being created;
    ``without_early``: those left to the step once its early part runs apart."""
    unit = _early_part(step)
    if unit is not None:
        kinds = [k for k in _kinds(unit[0]) if k.name in unit[1].kinds]
    else:
        part = _early(step) if without_early else None
        kinds = [k for k in _kinds(step) if part is None or k.name not in part.kinds]
    wanted = set(creating) if creating is not None else None
    waits = [typical for kind in kinds if wanted is None or kind.name in wanted for typical in kind.waits(spec)]
    return [(typical.what, typical.seconds) for typical in dict.fromkeys(waits)]  # a wait two kinds share: once


def step_seconds(spec: Spec, step: str, resources: int, creating: Iterable[str] | None = None,
                 without_early: bool = False) -> int:
    """Typical time of ``step``: its waits, one after another, and one API round per resource."""
    waits = step_waits(spec, step, creating, without_early)
    return sum(seconds for _, seconds in waits) + resources * API.seconds


@dataclass(frozen=True)
class Slot:
    step: str
    start: float
    end: float


def pick(ready: Iterable[str], remaining: Mapping[str, float]) -> list[str]:
    """The order to start ready steps in: the longest path to the end first (critical path first)."""
    return sorted(ready, key=lambda name: (-remaining[name], name))


def remaining_path(durations: Mapping[str, float], graph: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """For each step, its own time plus the longest chain of steps that wait for it."""
    users: dict[str, list[str]] = {name: [] for name in durations}
    for name, needs in graph.items():
        for need in needs:
            if need in users:
                users[need].append(name)
    memo: dict[str, float] = {}
    visiting: set[str] = set()

    def longest(name: str) -> float:
        if name not in memo:
            if name in visiting:
                raise ValueError(f"the step graph has a cycle through {name}")
            visiting.add(name)
            memo[name] = durations[name] + max((longest(user) for user in users[name]), default=0.0)
        return memo[name]

    return {name: longest(name) for name in durations}


def simulate(durations: Mapping[str, float], graph: Mapping[str, Sequence[str]], parallel: int,
             background: Iterable[str] = ()) -> list[Slot]:
    """Run the orchestrator's policy on a virtual clock: no sleeping, each step takes its duration.

    ``background`` nodes (a deferred wait) start as soon as they are ready and take none of the
    ``parallel`` slots: nothing runs for them but the resource on AWS.
    """
    remaining = remaining_path(durations, graph)
    needs = {name: {n for n in graph.get(name, ()) if n in durations} for name in durations}
    behind = set(background)
    done: set[str] = set()
    started: set[str] = set()
    running: list[tuple[float, str]] = []
    slots: list[Slot] = []
    now = 0.0
    while len(done) < len(durations):
        ready = [n for n in durations if n not in started and needs[n] <= done]
        busy = sum(1 for _, name in running if name not in behind)
        chosen = [n for n in ready if n in behind]
        chosen += pick([n for n in ready if n not in behind], remaining)[: max(parallel - busy, 0)]
        for name in chosen:
            started.add(name)
            heapq.heappush(running, (now + durations[name], name))
            slots.append(Slot(name, now, now + durations[name]))
        if not running:
            raise ValueError("the step graph has a cycle")
        now, finished = heapq.heappop(running)
        done.add(finished)
    return slots


@dataclass
class Estimate:
    durations: dict[str, float]
    sequential: float
    critical_path: list[str]
    critical: float
    schedule: list[Slot]
    parallel: int
    graph: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def makespan(self) -> float:
        return max((slot.end for slot in self.schedule), default=0.0)

    def table(self) -> Table:
        rows = []
        for slot in sorted(self.schedule, key=lambda s: (s.start, s.step)):
            rows.append((slot.step, _minutes(self.durations[slot.step]), ", ".join(self.graph.get(slot.step, ())) or "-",
                         _minutes(slot.start), _minutes(slot.end), "yes" if slot.step in self.critical_path else ""))
        return Table(["step", "typical", "waits for", "starts", "ends", "critical"], rows,
                     title=f"Expected stand-up on AWS, {self.parallel} step(s) at a time")

    def summary(self) -> str:
        return (f"sequential {_minutes(self.sequential)}, critical path {_minutes(self.critical)} "
                f"({' -> '.join(self.critical_path)}), pointapp's schedule {_minutes(self.makespan)} "
                f"with --parallel {self.parallel}")

    def __str__(self) -> str:
        return f"{self.table()}\n{self.summary()}\nTypical times and their sources: pointapp.schedule.TYPICAL"

    def _repr_html_(self) -> str:
        return self.table()._repr_html_() + f"<p>{self.summary()}</p>"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def graph_of(steps: Sequence[StepInfo]) -> dict[str, tuple[str, ...]]:
    names = {s.name for s in steps}
    return {s.name: tuple(d for d in s.depends_on if d in names) for s in steps}


def estimate(spec: Spec, work: Mapping[str, tuple[int, Iterable[str] | None]], parallel: int) -> Estimate:
    """The expected stand-up of the steps in ``work``: step -> (resources to change, kinds created or None
    for a clean stand-up of the step)."""
    steps = [s for s in STEPS if s.name in work]
    durations = {s.name: float(step_seconds(spec, s.name, work[s.name][0], work[s.name][1])) for s in steps}
    graph = graph_of(steps)
    for step in [s.name for s in steps]:
        part, creating = _early(step), work[step][1]
        if part is not None and (creating is None or step_waits(spec, part.name, creating)):
            durations[run_apart(graph, step)] = float(step_seconds(spec, part.name, 0, creating))
            durations[step] = float(step_seconds(spec, step, work[step][0], creating, without_early=True))
    background = []
    for node, deferred in DEFERRED.items():
        if deferred.step not in work or not _waits_for(spec, deferred.kind, work[deferred.step][1]):
            continue
        background.append(node)
        durations[node] = float(TYPICAL[deferred.kind].seconds)
        graph[node] = (deferred.step,)
        for user in deferred.needed_by:
            if user in graph:
                graph[user] = (*graph[user], node)
    remaining = remaining_path(durations, graph)
    path: list[str] = []
    current = [n for n in durations if not graph[n]]
    while current:  # follow the longest chain from its start
        head = max(current, key=lambda n: (remaining[n], n))
        path.append(head)
        current = [n for n in durations if head in graph[n]]
    critical = max(remaining.values(), default=0.0)
    return Estimate(durations, sum(durations.values()), path, critical,
                    simulate(durations, graph, parallel, background), parallel, graph)


def _waits_for(spec: Spec, kind: str, creating: Iterable[str] | None) -> bool:
    if kind == "nat-gateway" and spec.network.nat == "none":
        return False
    return creating is None or kind in set(creating)
