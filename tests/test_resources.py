"""The core: ARNs in the target's partition, waiting for a new role to be usable, tags, and what it offers any step
(facts discovery reads, parts of a resource, creates that settle later, deletes that finish later, clearing updates)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.exceptions
import pytest

import pointapp
from pointapp.resources import (
    CODEDEPLOY_ROLE,
    CODEPIPELINE_ROLE,
    FLOW_LOGS_ROLE,
    INSTANCE_PROFILE,
    Arn,
    Desired,
    Found,
    Kind,
    LeftStanding,
    Ref,
    ResourceStep,
    ignore_absent,
    resolve,
    retry_refused,
    step_error,
)
from pointapp.spec import load_spec
from pointapp.steps import STEPS, delivery, network
from pointapp.tags import ownership_tags
from pointapp.target import EMULATOR_POLL_SECONDS, Context
from tests.conftest import aws_context, make_context, stub

ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::123456789012:role/pointapp/point-app-prod/point-app-prod-codedeploy"
REFUSED = f"AWS CodeDeploy does not have the permissions required to assume the role {ROLE}."


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _china(ref: Ref) -> Any:
    return {"partition": "aws-cn", "region": "cn-north-1", "account": "123456789012"}.get(ref.key, f"<{ref.key}>")


def test_an_arn_takes_the_partition_region_and_account_of_the_target() -> None:
    assert resolve(Arn("ses", "identity/example.com", None, None), _china) == (
        "arn:aws-cn:ses:cn-north-1:123456789012:identity/example.com")
    assert resolve({"Resource": [Arn("logs", "log-group:x:*")]}, _china) == {"Resource": ["arn:aws-cn:logs:*:*:log-group:x:*"]}
    assert resolve(Arn("iam", "policy/AmazonSSMManagedInstanceCore", "", "aws"), _china) == (
        "arn:aws-cn:iam::aws:policy/AmazonSSMManagedInstanceCore")


def test_every_policy_names_the_targets_partition() -> None:
    spec = load_spec("prod", {"delivery": {"github_repository": "example/api"}})
    documents = [d.props for info in STEPS if info.available and info.name != "network" for d in info.load().desired(spec)
                 if d.kind == "iam-role"]
    documents += [d.props for d in network.flow_log_resources(spec) if d.kind == "iam-role"]
    arns = [text for props in documents for text in _strings(resolve(props, _china)) if text.startswith("arn:")]
    assert len(arns) > 15 and [a for a in arns if not a.startswith("arn:aws-cn:")] == []


def test_no_arn_in_the_product_hard_codes_the_partition() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in sorted((ROOT / "pointapp").rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if "arn:aws:" in line or '"arn:aws' in line]
    # The documented exceptions are patterns that accept every partition.
    assert [line for line in found if not re.search(r"arn:aws\(|arn:aws\[", line)] == [], found


# --- a new role is waited for -----------------------------------------------------------------------------------


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _timed(ctx: Context) -> FakeTime:
    fake = FakeTime()
    ctx.clock, ctx.sleep = fake.clock, fake.sleep
    return fake


def _deployment_group(ctx: Context) -> None:
    props = {"application": "point-app-prod-api", "role": ROLE, "config": "CodeDeployDefault.ECSAllAtOnce",
             "termination_wait": 60, "cluster": "point-app-prod-cluster", "service": "point-app-prod-api",
             "target_groups": ["point-app-prod-tg-blue", "point-app-prod-tg-green"],
             "production_listener": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/a/b/c",
             "test_listener": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/a/b/d"}
    desired = Desired("deployment-group", "deployment-group", "point-app-prod-api-blue-green", props)
    delivery.DeploymentGroup().create(ctx, desired, props, {})


def test_codedeploy_refusing_a_new_role_is_retried_until_it_accepts() -> None:
    ctx = aws_context()
    fake = _timed(ctx)
    codedeploy = stub(ctx, "codedeploy")
    for _ in range(2):
        codedeploy.add_client_error("create_deployment_group", "InvalidRoleException", REFUSED)
    codedeploy.add_response("create_deployment_group", {"deploymentGroupId": "g-1"})
    _deployment_group(ctx)
    codedeploy.assert_no_pending_responses()
    assert fake.sleeps == [2, 4]  # backoff, real delays on AWS
    said = [line for line in ctx.lines if "waiting for IAM" in line]  # type: ignore[attr-defined]
    assert said == ["    waiting for IAM to make point-app-prod-codedeploy usable by CodeDeploy "
                    "(usually under a minute on AWS) ..."]


@pytest.mark.parametrize(("code", "message"), [
    ("InvalidRoleException", "The service role ARN was specified in an invalid format."),  # another reason
    ("InvalidRoleException", REFUSED.replace("point-app-prod-codedeploy", "someone-elses-role")),  # another role
    ("AccessDeniedException", REFUSED),  # another code
])
def test_other_errors_are_not_retried(code: str, message: str) -> None:
    ctx = aws_context()
    fake = _timed(ctx)
    codedeploy = stub(ctx, "codedeploy")
    codedeploy.add_client_error("create_deployment_group", code, message)
    with pytest.raises(botocore.exceptions.ClientError):
        _deployment_group(ctx)
    assert fake.sleeps == []


@pytest.mark.parametrize(("aws", "bound", "pause"), [(True, 120, 15), (False, 10, EMULATOR_POLL_SECONDS)])
def test_the_wait_is_bounded(aws: bool, bound: float, pause: float) -> None:
    ctx = aws_context() if aws else make_context()
    fake = _timed(ctx)
    attempts = []

    def refuse() -> None:
        attempts.append(fake.now)
        raise botocore.exceptions.ClientError({"Error": {"Code": "InvalidRoleException", "Message": REFUSED}},
                                              "CreateDeploymentGroup")

    with pytest.raises(botocore.exceptions.ClientError, match="does not have the permissions required"):
        retry_refused(ctx, CODEDEPLOY_ROLE, ROLE, refuse)
    assert sum(fake.sleeps) <= bound and sum(fake.sleeps) > bound - 2 * pause
    assert max(fake.sleeps) == pause and len(attempts) == len(fake.sleeps) + 1
    assert "still refuses point-app-prod-codedeploy" in ctx.lines[-1]  # type: ignore[attr-defined]


def test_each_refusal_matches_its_own_answer_only() -> None:
    def error(code: str, message: str) -> botocore.exceptions.ClientError:
        return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, "Create")

    pipeline_role = "arn:aws:iam::123456789012:role/pointapp/point-app-prod/point-app-prod-pipeline"
    assert CODEPIPELINE_ROLE.matches(error("InvalidStructureException",
                                           f"CodePipeline is not authorized to perform AssumeRole on role {pipeline_role}"),
                                     "point-app-prod-pipeline")
    # a pipeline role that may not assume an action's role is a configuration error, not propagation
    assert not CODEPIPELINE_ROLE.matches(error("InvalidStructureException", f"Pipeline role {pipeline_role} is not authorized "
                                               "to perform AssumeRole on action role arn:aws:iam::1:role/x"),
                                         "point-app-prod-pipeline")
    assert FLOW_LOGS_ROLE.matches(error("InvalidParameter", f"Unable to assume given IAM role: '{pipeline_role}'"),
                                  "point-app-prod-pipeline")
    assert INSTANCE_PROFILE.matches(error("InvalidParameterValue", "Value (point-app-prod-bastion) for parameter "
                                          "iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"),
                                    "point-app-prod-bastion")
    assert not INSTANCE_PROFILE.matches(error("InvalidParameterValue", "Value (t9.huge) for parameter instanceType is "
                                              "invalid."), "point-app-prod-bastion")


def test_delivery_converges_while_new_roles_are_refused_for_a_while(ctx: Context) -> None:
    """In-process moto, with CodeDeploy and CodePipeline refusing the new roles twice each."""
    fake = _timed(ctx)
    refusals = {"CreateDeploymentGroup": 2, "CreatePipeline": 2}

    def refuse(model: Any, params: dict[str, Any], **_: Any) -> Any:
        if refusals.get(model.name, 0) <= 0:
            return None
        refusals[model.name] -= 1
        params = json.loads(params["body"])
        if model.name == "CreateDeploymentGroup":
            code, message = "InvalidRoleException", (f"AWS CodeDeploy does not have the permissions required to assume "
                                                     f"the role {params['serviceRoleArn']}.")
        else:
            code, message = "InvalidStructureException", ("CodePipeline is not authorized to perform AssumeRole on role "
                                                          f"{params['pipeline']['roleArn']}")
        return (SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}})

    for service in ("codedeploy", "codepipeline"):
        ctx.client(service).meta.events.register(f"before-call.{service}.*", refuse)
    steps = "network,endpoints,registry,database,cache,mail,service,delivery"
    pointapp.up(ctx, only=steps)
    assert refusals == {"CreateDeploymentGroup": 0, "CreatePipeline": 0}
    assert fake.sleeps == [EMULATOR_POLL_SECONDS] * 4  # the emulator is polled quickly
    assert pointapp.plan(ctx, only=steps).empty


def test_every_create_sends_its_kinds_request(ctx: Context) -> None:
    """What a create sends is its kind's request (the one the CloudFormation export maps), call for call."""
    from botocore import xform_name

    from pointapp.resources import ResourceStep
    from pointapp.steps import get
    from pointapp.tags import ownership_tags

    sent: list[tuple[str, dict[str, Any]]] = []
    ctx.session.events.register("before-parameter-build.*.*",
                                lambda params, model, **_: sent.append((xform_name(model.name), dict(params))))
    steps = ["registry", "database", "cache", "mail", "service", "delivery", "bastion"]
    pointapp.up(ctx, only=["network", "endpoints", *steps])
    checked = set()
    for name in steps:
        step = get(name).load()
        assert isinstance(step, ResourceStep)
        state = step.discover(ctx)
        resolver = step._resolver(state, strict=True)  # noqa: SLF001 - the props as apply resolves them
        for desired in step.wanted(ctx.spec, state):  # what the target makes (the emulator: no option group)
            if desired.kind in state.unavailable:
                continue
            kind, props = step.kinds[desired.kind], resolve(desired.props, resolver)
            if desired.kind == "ec2-instance":  # what the create reads when it runs: the AMI the parameter names
                props["image"] = ctx.client("ssm").get_parameter(Name=props["ami_parameter"])["Parameter"]["Value"]
            if desired.kind == "load-balancer":  # and the ARN CreateLoadBalancer answers, which its attributes name
                props["arn"] = state.found[desired.key].id
            request = kind.request(ctx.spec, desired, props, ownership_tags(ctx.spec, name, desired.key, desired.name))
            for operation, args in request.items():
                for call in args if isinstance(args, list) else [args]:
                    assert (operation, call) in sent, f"{desired.kind} {desired.key}: {operation}"
            checked.add(desired.kind)
    assert {"ecr-repository", "db-instance", "replication-group", "iam-role", "task-definition", "ecs-service",
            "listener", "s3-bucket", "deployment-group", "pipeline", "event-rule", "ses-identity", "ec2-instance"} <= checked


# --- tags are the core's: a kind's update never sees them ----------------------------------------------------


class Recorded(Kind):
    """A kind that records what the core asks of it: one resource with a size, missing the tag ``team``."""

    name = "recorded"
    service = "recorded"
    operations = {"update": ("recorded", "UpdateRecorded")}

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: list[tuple[str, Any]] = []

    def find(self, ctx: Any, spec: Any, step: str, known: Any) -> list[Found]:
        tags = {k: v for k, v in ownership_tags(spec, step, "thing", "thing").items() if k != "team"}
        return [Found(self.name, "thing", "thing-1", tags, {"size": self.size})]

    def differences(self, desired: Desired, props: Any, found: Found) -> dict[str, Any]:
        return {"size": props["size"]} if found.raw["size"] != props["size"] else {}

    def tag(self, ctx: Any, found: Found, tags: Any) -> None:
        self.calls.append(("tag", dict(tags)))

    def update(self, ctx: Any, desired: Desired, props: Any, found: Found, changes: Any) -> None:
        self.calls.append(("update", dict(changes)))


def _recorded_step(kind: Recorded) -> ResourceStep:
    return ResourceStep("recorded", [kind], lambda spec: [Desired("recorded", "thing", "thing",
                                                                                      {"size": 2})])


@pytest.mark.parametrize(("size", "calls"), [
    (2, [("tag", {"team": "web"})]),  # only the tags differ: the tagging call alone
    (1, [("tag", {"team": "web"}), ("update", {"size": 2})]),  # tags first, then the rest without them
])
def test_the_core_sets_tags_and_the_kind_updates_the_rest(size: int, calls: list[tuple[str, Any]]) -> None:
    spec = load_spec("prod", {"tags": {"team": "web"}})
    ctx = make_context(spec)
    kind = Recorded(size)
    step = _recorded_step(kind)
    state = step.discover(ctx)
    changes = step.plan(spec, state)
    assert [(c.action, c.kind) for c in changes] == [("update", "recorded")]
    step.apply(ctx, changes, state)
    assert kind.calls == calls


def test_a_target_without_the_update_still_gets_the_tags() -> None:
    spec = load_spec("prod", {"tags": {"team": "web"}})
    ctx = make_context(spec)
    ctx.lacks = lambda service, operation: "the emulator lacks it" if operation == "UpdateRecorded" else None  # type: ignore[method-assign]
    kind = Recorded(1)
    step = _recorded_step(kind)
    state = step.discover(ctx)
    changes = step.plan(spec, state)
    assert [c.args["skip"] for c in changes] == [None, "the emulator lacks it"]
    step.apply(ctx, changes, state)
    assert kind.calls == [("tag", {"team": "web"})]


def _refusing(code: str) -> Any:
    def call(**_: Any) -> None:
        raise botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "it is not there"}}, "DeleteSubnet")

    return call


@pytest.mark.parametrize("code", ["InvalidSubnetID.NotFound", "InvalidAssociationID.NotFound", "Gateway.NotAttached"])
def test_not_found_is_absent(code: str) -> None:
    assert ignore_absent(_refusing(code), SubnetId="subnet-1") is None


@pytest.mark.parametrize("code", ["DependencyViolation", "UnauthorizedOperation", "InvalidParameterValue"])
def test_other_refusals_are_not_absent(code: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError):
        ignore_absent(_refusing(code), SubnetId="subnet-1")


def test_an_aws_refusal_is_one_line_naming_step_resource_and_code() -> None:
    change = pointapp.Change("network", "delete", "subnet", "subnet/db/0", "point-app-prod-subnet-private-db-1a",
                             "subnet-1", "delete", {})
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        _refusing("DependencyViolation")()
    assert str(step_error("network", change, refused.value)) == (
        "step network: subnet point-app-prod-subnet-private-db-1a: it is not there (DependencyViolation)")


# --- what the network needed, as features of the core any step can use ----------------------------------------
# A small world kept in memory: shelves (one per zone the facts give), the books a shelf's description holds
# (parts of the shelf), and a lamp that settles and goes later, with the plug that needs it lit.


class World:
    """What exists, by id, and every call the kinds made, in order."""

    def __init__(self, zones: list[str]) -> None:
        self.zones = zones
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def add(self, kind: str, key: str, spec: Any, **raw: Any) -> Found:
        self.calls.append(f"create {key}")
        item_id = f"{kind}-{len(self.items)}"
        self.items[item_id] = {"kind": kind, "key": key, **raw}
        return Found(kind, key, item_id, ownership_tags(spec, "world", key, key), dict(raw))

    def owned(self, kind: str, spec: Any) -> list[Found]:
        return [Found(kind, item["key"], item_id, ownership_tags(spec, "world", item["key"], item["key"]), dict(item))
                for item_id, item in self.items.items() if item["kind"] == kind]


class WorldKind(Kind):
    service = "world"

    def __init__(self, world: World) -> None:
        self.world = world

    def find(self, ctx: Any, spec: Any, step: str, known: Any) -> list[Found]:
        return self.world.owned(self.name, spec)

    def create(self, ctx: Any, desired: Desired, props: Any, tags: Any) -> Found:
        return self.world.add(self.name, desired.key, ctx.spec, **{k: v for k, v in props.items() if k != "shelf"})

    def tag(self, ctx: Any, found: Found, tags: Any) -> None:
        self.world.calls.append(f"tag {found.key}")

    def delete(self, ctx: Any, found: Found) -> str | None:
        self.world.calls.append(f"delete {found.key}")
        self.world.items.pop(found.id, None)
        return None


class Shelf(WorldKind):
    """A shelf; emptied of its books before any delete (:attr:`Kind.clears`). Another zone replaces it."""

    name = "shelf"
    clears = "empty"

    def replace(self, desired: Desired, props: Any, found: Found) -> str | None:
        return "moved" if found.raw["zone"] != props["zone"] else None

    def to_clear(self, found: Found) -> str | None:
        return "take its books off" if self.world.items.get(found.id, {}).get("books") else None

    def clear(self, ctx: Any, found: Found) -> None:
        self.world.calls.append(f"empty {found.key}")


class Book(WorldKind):
    """A book on a shelf: found in the shelf's description; a new shelf comes with its first book."""

    name = "book"
    tagged = False
    finds_after = ("shelf",)
    goes_with = ("shelf",)

    def find(self, ctx: Any, spec: Any, step: str, known: Any) -> list[Found]:
        return [Found(self.name, f"{shelf.key}/{title}", f"{shelf.id}/{title}", {}, {"title": title}, parent=shelf.key)
                for shelf in known.values() if shelf.kind == "shelf" for title in shelf.raw.get("books", [])]

    def as_made(self, desired: Desired) -> Found | None:
        return Found(self.name, desired.key, "", {}, {}, parent=desired.parent) if desired.props["first"] else None

    def create(self, ctx: Any, desired: Desired, props: Any, tags: Any) -> Found:
        self.world.calls.append(f"create {desired.key}")
        shelf = next(item for item_id, item in self.world.items.items() if item_id == props["shelf"])
        shelf.setdefault("books", []).append(props["title"])
        return Found(self.name, desired.key, f"{props['shelf']}/{props['title']}", {}, {}, parent=desired.parent)


class Lamp(WorldKind):
    """A lamp: lit a while after it is made (what needs it waits, deferred), and gone a while after its delete."""

    name = "lamp"
    deferred = "lamp"
    lingers = True

    def unsettled(self, found: Found) -> bool:
        return not self.world.items.get(found.id, {}).get("lit")

    def settle(self, ctx: Any, found: Any) -> None:
        self.world.calls.append("wait until lit: " + ", ".join(f.key for f in found))
        for f in found:
            self.world.items[f.id]["lit"] = True

    def await_gone(self, ctx: Any, found: Any) -> None:
        self.world.calls.append("wait until gone: " + ", ".join(f.key for f in found))


class Plug(WorldKind):
    """What needs the lamp lit (its props Ref it)."""

    name = "plug"


def _world_step(world: World) -> ResourceStep:
    def desired(spec: Any, facts: Any) -> list[Desired]:
        found = []
        for i, zone in enumerate(facts["zones"]):
            found.append(Desired("shelf", f"shelf/{i}", f"shelf-{i}", {"zone": zone}))
            found += [Desired("book", f"shelf/{i}/{title}", f"shelf-{i}", {"shelf": Ref("world", f"shelf/{i}"),
                                                                            "title": title, "first": title == "a"},
                              parent=f"shelf/{i}") for title in ("a", "b")]
        return [*found, Desired("lamp", "lamp", "lamp", {}), Desired("plug", "plug", "plug", {"lamp": Ref("world", "lamp")})]

    read: list[str] = []

    def facts(ctx: Any) -> dict[str, Any]:
        read.append("facts")
        return {"zones": list(world.zones)}

    step = ResourceStep("world", [Shelf(world), Book(world), Lamp(world), Plug(world)], desired, facts=facts)
    step.read = read  # type: ignore[attr-defined]
    return step


def test_facts_read_in_discovery_decide_the_desired_list_and_the_plan_stays_pure() -> None:
    ctx, world = make_context(), World(["1a", "1c"])
    step = _world_step(world)
    state = step.discover(ctx)
    assert state.facts == {"zones": ["1a", "1c"]} and step.read == ["facts"]  # type: ignore[attr-defined]
    world.zones.append("1d")  # the plan reads no fact itself: what discovery read decides it
    first = step.plan(ctx.spec, state)
    assert first == step.plan(ctx.spec, state) and step.read == ["facts"]  # type: ignore[attr-defined]
    assert [c.key for c in first if c.kind == "shelf"] == ["shelf/0", "shelf/1"]


def test_parts_count_as_their_parent_and_a_new_parent_comes_with_what_aws_makes_with_it() -> None:
    ctx, world = make_context(), World(["1a"])
    step = _world_step(world)
    state = step.discover(ctx)
    planned = step.plan(ctx.spec, state)
    # the first book comes with its shelf: only the second is made; its change carries the shelf's key
    assert [(c.action, c.kind, c.key) for c in planned] == [
        ("create", "shelf", "shelf/0"), ("create", "book", "shelf/0"), ("create", "lamp", "lamp"),
        ("create", "plug", "plug")]
    step.apply(ctx, planned, state)
    ctx.finish_deferred()
    state = step.discover(ctx)
    assert set(step.outputs(state)) == {"shelf/0", "lamp", "plug"}  # a part has no output of its own
    assert step.resource_count(ctx.spec, state) == 3 and len(step.inventory(state)) == 3
    assert [c.key for c in step.plan(ctx.spec, state) if c.kind == "book"] == ["shelf/0"]  # the first book, missing
    destroy = step.plan_destroy(ctx.spec, state)
    assert "book" not in {c.kind for c in destroy}  # a part goes with its parent


def test_a_change_that_needs_an_unsettled_resource_waits_for_it_deferred_under_the_kinds_name() -> None:
    ctx, world = make_context(), World([])
    step = _world_step(world)
    state = step.discover(ctx)
    step.apply(ctx, step.plan(ctx.spec, state), state)
    assert world.calls == ["create lamp"]  # the plug waits, and the apply goes on without waiting
    assert any("lamp lamp is starting" in line for line in ctx.lines)  # type: ignore[attr-defined]
    ctx.finish_deferred("lamp")  # when a later step needs it, or at the end of up
    assert world.calls == ["create lamp", "wait until lit: lamp", "create plug"]
    # One found unsettled (made by a run that stopped) is waited for like a new one.
    world.items[state.found["lamp"].id]["lit"] = False
    world.items.pop(state.found["plug"].id)
    state = step.discover(ctx)
    step.apply(ctx, step.plan(ctx.spec, state), state)
    ctx.finish_deferred("lamp")
    assert world.calls[3:] == ["wait until lit: lamp", "create plug"]


def _built(zones: list[str]) -> tuple[Context, World, ResourceStep]:
    """The world with its shelves in ``zones``, its lamp lit and its plug in."""
    ctx, world = make_context(), World(zones)
    step = _world_step(world)
    state = step.discover(ctx)
    step.apply(ctx, step.plan(ctx.spec, state), state)
    ctx.finish_deferred()
    return ctx, world, step


def test_a_delete_that_finishes_later_is_waited_for_before_what_it_may_stand_on() -> None:
    ctx, world, step = _built(["1a"])
    world.calls.clear()
    state = step.discover(ctx)
    destroy = step.plan_destroy(ctx.spec, state)
    assert [(c.op, c.key) for c in destroy] == [("empty", "shelf/0"), ("delete", "plug"), ("delete", "lamp"),
                                                ("delete", "shelf/0")]
    step.apply(ctx, destroy, state)
    # the shelf (an earlier kind) goes only once the lamp is gone; its books came off before any delete
    assert world.calls == ["empty shelf/0", "delete plug", "delete lamp", "wait until gone: lamp", "delete shelf/0"]
    # An earlier run's delete that is not finished yet (found leaving) is waited for too.
    leaving = Found("lamp", "lamp", "lamp-9", {}, {}, leaving=True)
    world.calls.clear()
    step.apply(ctx, [], replace(step.discover(ctx), leaving=[leaving]))
    assert world.calls == ["wait until gone: lamp"]


def test_a_part_goes_with_the_resource_it_stood_on_when_that_is_replaced() -> None:
    ctx, world, step = _built(["1a"])
    world.zones[0] = "1c"
    planned = step.plan(ctx.spec, step.discover(ctx))
    assert [(c.action, c.kind) for c in planned if c.kind in ("shelf", "book")] == [
        ("delete", "shelf"), ("create", "shelf"), ("create", "book")]  # the second book anew; the first comes with it
    assert [c.key for c in planned if c.kind == "book"] == ["shelf/0"]


def test_a_delete_the_kind_declines_leaves_the_resource_with_a_warning(ctx: Context) -> None:
    world = World([])

    class Kept(Plug):
        def delete(self, ctx: Any, found: Found) -> str | None:
            raise LeftStanding(f"kept {found.name}: it holds what others own")

    step = ResourceStep("world", [Kept(world)], lambda spec: [])
    world.add("plug", "plug", ctx.spec)
    state = step.discover(ctx)
    assert step.apply(ctx, step.plan_destroy(ctx.spec, state), state) == ["kept plug: it holds what others own"]
    assert [item["key"] for item in world.items.values()] == ["plug"]
