"""How long a stand-up takes on real AWS, and in which order pointapp runs the steps.

Each step's time is the sum of its waits (the slow resources it must see available) and its API work,
from :data:`TYPICAL`. The steps form a graph (``StepInfo.depends_on``); :func:`simulate` runs the same
scheduling policy the orchestrator uses (:func:`pick`) on a virtual clock, so the schedule of ``up
--parallel N`` can be compared with the sequential sum and the critical path without waiting for AWS.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pointapp.plan import Change, Table
from pointapp.spec import Spec
from pointapp.steps import STEPS, StepInfo


@dataclass(frozen=True)
class Typical:
    """A typical time on AWS, what it covers, and where the figure comes from."""

    seconds: int
    what: str
    source: str


# Typical figures are what these resources usually take in ap-northeast-1 and similar regions; AWS
# publishes no promise. Each source names the documentation of the state being waited for and, as an
# upper bound, the budget of the AWS SDK's own waiter for it (botocore's waiter models: delay x attempts).
TYPICAL: dict[str, Typical] = {
    "api": Typical(1, "one create or update call with its tags, no wait",
                   "the API's round trip; CloudFormation's own pace for resources without a wait is similar"),
    "nat-gateway": Typical(120, "NAT gateway from pending to available",
                           "Amazon VPC User Guide, NAT gateways (states pending/available); botocore waiter "
                           "NatGatewayAvailable: 15 s x 40"),
    "vpc-endpoint": Typical(90, "interface endpoints from pendingAcceptance/pending to available (together)",
                            "AWS PrivateLink Guide, interface endpoint lifecycle; no botocore waiter"),
    "db-instance": Typical(600, "RDS MySQL, single-AZ, from creating to available",
                           "Amazon RDS User Guide, DB instance status; botocore waiter DBInstanceAvailable: 30 s x 60"),
    "db-instance-multi-az": Typical(900, "RDS MySQL, Multi-AZ (a standby in a second zone), to available",
                                    "Amazon RDS User Guide, Multi-AZ deployments; botocore waiter DBInstanceAvailable"),
    "replication-group": Typical(600, "ElastiCache Redis replication group from creating to available",
                                 "Amazon ElastiCache User Guide, cluster status; botocore waiter "
                                 "ReplicationGroupAvailable: 15 s x 40"),
    "load-balancer": Typical(180, "Application Load Balancer from provisioning to active",
                             "Elastic Load Balancing User Guide, load balancer state; botocore waiter "
                             "LoadBalancerAvailable: 15 s x 40"),
    "amplify-build": Typical(240, "the frontend's first Amplify build and deploy",
                             "AWS Amplify Hosting User Guide, build and deploy; no botocore waiter"),
    "ec2-instance": Typical(60, "the bastion from pending to running", "Amazon EC2 User Guide, instance lifecycle; "
                            "botocore waiter InstanceRunning: 15 s x 40"),
    "instance-profile": Typical(10, "a new instance profile becoming visible to EC2",
                                "IAM User Guide, eventual consistency of changes"),
}


#: The slow kinds of each step, in the order the step waits for them. The service waits for its load
#: balancer only: its ECS tasks start once CI pushes an image, and pointapp does not wait for them.
SLOW: dict[str, tuple[str, ...]] = {
    "endpoints": ("vpc-endpoint",), "database": ("db-instance",),
    "cache": ("replication-group",), "service": ("load-balancer",),
    "bastion": ("instance-profile", "ec2-instance"), "frontend": ("amplify-build",),
}


@dataclass(frozen=True)
class Deferred:
    """A wait a step starts and leaves running: only the steps in ``needed_by`` wait for it."""

    step: str
    kind: str
    needed_by: tuple[str, ...]


@dataclass(frozen=True)
class EarlyPart:
    """Resources of a step that need fewer steps than the rest: on a stand-up (creates only) they start
    as soon as ``needs`` are done, as a unit of their own named ``name``; the rest of the step follows."""

    name: str
    kinds: frozenset[str]
    needs: tuple[str, ...]
    waits: tuple[str, ...]


#: The load balancer, its target groups and listeners need only the network: on a stand-up they start
#: right after it, so the load balancer provisions while the database does; the task definition and
#: the ECS service wait for the data steps.
EARLY: dict[str, EarlyPart] = {
    "service": EarlyPart("service: load balancer", frozenset({"target-group", "load-balancer", "listener"}),
                         ("network",), ("load-balancer",)),
}


def split(step: str, changes: Sequence[Change]) -> tuple[list[Change], list[Change]]:
    """The changes of ``step`` run early (its :data:`EARLY` part) and those that follow; nothing is run
    early unless the step only creates (a rebuild with deletions keeps the step's own order)."""
    part = EARLY.get(step)
    early = [c for c in changes if part is not None and c.kind in part.kinds]
    if not early or len(early) == len(changes) or any(c.action != "create" for c in changes):
        return [], list(changes)
    return early, [c for c in changes if c not in early]


def run_apart(graph: dict[str, tuple[str, ...]], step: str) -> str:
    """Make ``step``'s :data:`EARLY` part a unit of ``graph`` (it needs what the part needs; the step
    needs it); returns the unit's name."""
    part = EARLY[step]
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
    """The waits of ``step`` or of an early part's unit (what, typical seconds): all of them, or those of
    the kinds being created; ``without_early``: those left to the step once its early part runs apart."""
    kinds = set(creating) if creating is not None else None
    part = next((p for p in EARLY.values() if p.name == step), None)
    slow = part.waits if part else tuple(k for k in SLOW.get(step, ())
                                         if not (without_early and step in EARLY and k in EARLY[step].waits))
    waits = []
    for kind in slow:
        if kinds is not None and kind not in kinds and not (kind == "instance-profile" and "ec2-instance" in kinds):
            continue
        typical = TYPICAL["db-instance-multi-az" if kind == "db-instance" and spec.database.multi_az else kind]
        waits.append((typical.what, typical.seconds))
    return waits


def step_seconds(spec: Spec, step: str, resources: int, creating: Iterable[str] | None = None,
                 without_early: bool = False) -> int:
    """Typical time of ``step``: its waits, one after another, and one API round per resource."""
    waits = step_waits(spec, step, creating, without_early)
    return sum(seconds for _, seconds in waits) + resources * TYPICAL["api"].seconds


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
    for step, part in EARLY.items():
        creating = work[step][1] if step in work else ()
        if step in work and (creating is None or set(part.waits) & set(creating)):
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
