"""The stand-up schedule: typical times, the critical path, the virtual clock, and ``up --parallel``."""

from __future__ import annotations

import sys
from typing import Any

import pytest

import pointapp
from pointapp import cli, engine, resources, schedule
from pointapp.errors import StepError
from pointapp.spec import load_spec
from pointapp.steps import STEPS
from pointapp.target import Context
from pointapp.typical import Typical
from tests.conftest import make_context


def full(env: str = "prod") -> schedule.Estimate:
    """A clean stand-up of every step, from the spec alone."""
    spec = load_spec(env)
    return schedule.estimate(spec, {s.name: (10, None) for s in STEPS if s.name != "frontend"}, parallel=4)


def test_every_typical_time_names_its_source() -> None:
    for kind, typical in schedule.TYPICAL.items():
        assert typical.seconds > 0 and typical.what and len(typical.source) > 20, kind


def test_the_virtual_clock_schedule_is_within_5_percent_of_the_critical_path() -> None:
    estimate = full()
    assert estimate.critical_path == ["network", "database", "service", "delivery"]
    assert estimate.makespan <= 1.05 * estimate.critical
    assert estimate.sequential > 1.4 * estimate.makespan  # what doing it by hand, one after another, costs
    assert estimate.sequential > 30 * 60 and "sequential" in estimate.summary()


def test_multi_az_makes_the_database_the_longest_wait() -> None:
    prod, staging = full("prod"), full("staging")
    assert prod.durations["database"] - staging.durations["database"] == 300  # standby in a second zone
    assert prod.critical > staging.critical


def test_one_step_at_a_time_is_the_sequential_sum() -> None:
    durations = {"a": 5.0, "b": 3.0, "c": 4.0}
    slots = schedule.simulate(durations, {"a": (), "b": (), "c": ("a",)}, parallel=1)
    assert max(s.end for s in slots) == 12.0
    assert [s.step for s in slots] == ["a", "c", "b"]  # the longest remaining chain goes first


def test_dependencies_hold_in_the_schedule() -> None:
    estimate = full()
    slots = {slot.step: slot for slot in estimate.schedule}
    for step in STEPS:
        for need in step.depends_on:
            if step.name in slots and need in slots:
                assert slots[step.name].start >= slots[need].end, (step.name, need)


def test_a_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        schedule.simulate({"a": 1.0, "b": 1.0}, {"a": ("b",), "b": ("a",)}, parallel=2)


def test_estimate_of_a_plan_counts_only_what_changes(ctx: Context) -> None:
    first = engine.estimate(ctx, pointapp.plan(ctx))
    assert first.durations["database"] > 15 * 60 and first.durations["network: NAT gateway"] == 120
    pointapp.up(ctx, only="network")
    again = engine.estimate(ctx, pointapp.plan(ctx))
    assert "network" not in again.durations and again.critical < first.critical


def _order(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Where each step started and finished in the progress lines."""
    found: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        if line.startswith("[") and (line.endswith("changes)") or " done after " in line or " done at once " in line):
            found.setdefault(line[1:line.index("]")], []).append(i)
    return {step: (marks[0], marks[-1]) for step, marks in found.items()}


def test_parallel_up_follows_the_graph_and_builds_the_same(mocked: None) -> None:
    ctx = make_context()
    outcome = pointapp.up(ctx, parallel=4)
    assert outcome.summary().startswith("Created 89")
    order = _order(ctx.lines)  # type: ignore[attr-defined]
    for step in STEPS:
        for need in step.depends_on:
            if step.name in order and need in order:
                assert order[step.name][0] > order[need][1], f"{step.name} started before {need} was done"
    assert any(line.endswith("waits for network") for line in ctx.lines)  # type: ignore[attr-defined]
    again = make_context()
    assert pointapp.plan(again).empty


def test_a_failing_step_stops_the_steps_after_it(mocked: None, monkeypatch: pytest.MonkeyPatch) -> None:
    database = next(s for s in STEPS if s.name == "database").load()

    def broken(*_: Any) -> list[str]:
        raise StepError("database", "db-instance point-app-prod-mysql", "refused", "InvalidParameterCombination")

    ctx = make_context()
    with monkeypatch.context() as patch:
        patch.setattr(database, "apply", broken)
        with pytest.raises(StepError, match="refused"):
            pointapp.up(ctx, parallel=4)
    order = _order(ctx.lines)  # type: ignore[attr-defined]
    assert "service" not in order and "delivery" not in order  # never started
    assert {"network", "registry", "mail"} <= set(order)
    pointapp.up(make_context(), parallel=4)  # the next run continues and converges
    assert pointapp.plan(make_context()).empty


def test_the_cli_prints_the_estimate(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--estimate", "--parallel", "2", "--endpoint-url", server]) == 2
    out = capsys.readouterr().out
    assert "Expected stand-up on AWS, 2 step(s) at a time" in out
    assert "critical path" in out and "sequential" in out and "network -> database -> service -> delivery" in out


def test_ctrl_c_stops_running_steps_before_their_next_change(mocked: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import concurrent.futures

    real_wait = concurrent.futures.wait
    calls = {"n": 0}

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if sys._getframe(1).f_code.co_name != "apply_concurrently":  # discovery waits for its reads too
            return real_wait(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # after the first steps finished, while the next ones run
            raise KeyboardInterrupt
        return real_wait(*args, **kwargs)

    ctx = make_context()
    with monkeypatch.context() as patch:
        patch.setattr(concurrent.futures, "wait", interrupted)
        with pytest.raises(KeyboardInterrupt):
            pointapp.up(ctx, parallel=4)
    assert ctx.stopping
    assert "delivery" not in _order(ctx.lines)  # type: ignore[attr-defined]
    assert any("stops after its current change" in line for line in ctx.lines)  # type: ignore[attr-defined]
    pointapp.up(make_context(), parallel=4)  # the next run continues from what was done
    assert pointapp.plan(make_context()).empty


def test_the_nat_gateway_waits_beside_the_database_and_only_the_service_waits_for_it() -> None:
    estimate = full()
    slots = {slot.step: slot for slot in estimate.schedule}
    nat = slots["network: NAT gateway"]
    assert nat.start == slots["network"].end == slots["database"].start == slots["cache"].start
    assert estimate.graph["network: NAT gateway"] == ("network",)
    users = [step for step, needs in estimate.graph.items() if "network: NAT gateway" in needs]
    assert users == ["service"]
    assert slots["service"].start >= nat.end
    # The wait takes no step slot: with one step at a time the NAT gateway still starts at once.
    one = {slot.step: slot for slot in schedule.simulate(estimate.durations, estimate.graph, 1, ["network: NAT gateway"])}
    assert one["network: NAT gateway"].start == one["network"].end


def test_without_a_nat_gateway_there_is_no_nat_wait() -> None:
    spec = load_spec("prod", {"network": {"nat": "none"}})
    estimate = schedule.estimate(spec, {"network": (10, None), "service": (10, None)}, parallel=4)
    assert "network: NAT gateway" not in estimate.durations


def test_an_up_starts_the_database_before_the_nat_gateway_is_available(mocked: None) -> None:
    ctx = make_context()
    pointapp.up(ctx, parallel=4)
    lines: list[str] = ctx.lines  # type: ignore[attr-defined]
    nat_route = next(i for i, line in enumerate(lines) if line.startswith("[network] created route") and "nat" in line)
    assert lines.index("[database] started (2 changes)") < nat_route
    needs = lines.index("[service] needs network: NAT gateways and their routes first")
    assert needs < nat_route < next(i for i, line in enumerate(lines) if line.startswith("[service] done "))
    assert pointapp.plan(make_context()).empty


def test_the_network_alone_ends_with_its_nat_routes(mocked: None) -> None:
    ctx = make_context()
    pointapp.up(ctx, only="network")
    tables = ctx.client("ec2").describe_route_tables(
        Filters=[{"Name": "tag:Name", "Values": ["point-app-prod-rtb-app"]}])["RouteTables"]
    assert [r.get("NatGatewayId", "")[:4] for r in tables[0]["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"] == ["nat-"]


def test_a_nat_gateway_left_pending_is_waited_for_before_its_route(mocked: None) -> None:
    from pointapp.steps import network

    ctx = make_context()
    pointapp.up(ctx, only="network")
    observed = network.STEP.discover(ctx)
    (nat,) = [f for f in observed.found.values() if f.kind == "nat-gateway"]
    nat.raw["State"] = "pending"  # as a run that stopped after creating it would find it
    assert [(f.name, f.id) for f in observed.found.values() if network.STEP.kinds[f.kind].unsettled(f)] == [(nat.name, nat.id)]
    # That run stopped before the route to it: the next one waits for the NAT gateway, then adds the route.
    table = ctx.outputs("network")["rtb/app"]
    ctx.client("ec2").delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    planned = pointapp.plan(ctx, only="network")
    (pending,) = [f for f in planned.observed["network"].found.values() if f.kind == "nat-gateway"]
    pending.raw["State"] = "pending"
    before = len(ctx.lines)  # type: ignore[attr-defined]
    pointapp.apply(ctx, planned)
    lines = [line.strip() for line in ctx.lines[before:]]  # type: ignore[attr-defined]
    waited = next(i for i, line in enumerate(lines) if line.startswith(f"waiting for NAT gateway {nat.name}"))
    routed = next(i for i, line in enumerate(lines) if line.startswith("created route") and nat.name in line)
    assert waited < routed
    assert pointapp.plan(ctx, only="network").empty


def test_the_load_balancer_provisions_while_the_database_does(mocked: None) -> None:
    ctx = make_context()
    pointapp.up(ctx, parallel=4)
    lines: list[str] = ctx.lines  # type: ignore[attr-defined]

    def first(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    early = first("[service: load balancer] started (5 changes)")
    assert first("[network] done ") < early < first("[database] done ")
    assert early < first("[service: load balancer] created load-balancer") < first("[service] started (6 changes)")
    assert all(not line.startswith("[service] created load-balancer") for line in lines)
    assert pointapp.plan(make_context()).empty


def test_the_model_splits_the_service_like_the_orchestrator() -> None:
    estimate = full()
    # The HTTPS listener takes the domain step's certificate (nothing to wait for without a domain).
    assert estimate.graph["service: load balancer"] == ("network", "domain")
    assert "service: load balancer" in estimate.graph["service"]
    assert estimate.durations["service: load balancer"] == schedule.TYPICAL["load-balancer"].seconds
    assert estimate.durations["service"] < 60  # the rest of the step waits for nothing slow
    # An update of an existing service keeps the step whole (its order matters when something is replaced).
    changes = [pointapp.Change("service", "update", "listener", "listener/test", "x", "", "update", {}),
               pointapp.Change("service", "create", "ecs-service", "ecs-service", "x", "", "create", {})]
    assert schedule.split("service", changes) == ([], changes)


def test_a_wait_prints_the_figure_the_schedule_adds_up(mocked: None) -> None:
    ctx = make_context()  # prod: a Multi-AZ database
    typical = schedule.TYPICAL["db-instance-multi-az"]
    planned = pointapp.plan(ctx, only="network,database")
    assert engine.estimate(ctx, planned).durations["database"] == typical.seconds + 2 * schedule.API.seconds
    pointapp.apply(ctx, planned)
    waits = [line for line in ctx.lines if "waiting for Multi-AZ MySQL instance" in line]  # type: ignore[attr-defined]
    assert len(waits) == 1 and f"(usually {typical.spoken} on AWS)" in waits[0] and typical.spoken == "about 15 minutes"


def test_a_typical_time_is_spoken_in_whole_minutes() -> None:
    spoken = {seconds: Typical("x", seconds, "x", "x").spoken for seconds in (10, 59, 60, 89, 90, 180, 900)}
    assert spoken == {10: "under a minute", 59: "under a minute", 60: "about a minute", 89: "about a minute",
                      90: "about 2 minutes", 180: "about 3 minutes", 900: "about 15 minutes"}


def test_a_wait_that_gives_up_is_an_error_of_the_step_it_works_for(mocked: None) -> None:
    ctx = make_context()
    ec2 = ctx.client("ec2")
    typical = schedule.TYPICAL["ec2-instance"]
    with ctx.at_work("bastion"), pytest.raises(StepError) as raised:
        resources.wait_for(ctx, ec2, "instance_running", "bastion i-0123456789abcdef0 to run", typical,
                           max_attempts=1, InstanceIds=["i-0123456789abcdef0"])
    assert raised.value.step == "bastion" and raised.value.resource == "bastion i-0123456789abcdef0 to run"
    assert "(usually about a minute on AWS)" in ctx.lines[-1]  # type: ignore[attr-defined]
