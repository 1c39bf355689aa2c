"""``down`` finishes: what a kept resource stands on is kept, group references go before the groups, and
network interfaces that outlive their resource are waited for (in-process moto)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

import pointapp
from pointapp.errors import StepError
from pointapp.plan import Change
from pointapp.resources import Found, StepState
from pointapp.spec import load_spec
from pointapp.steps import network
from pointapp.target import READ_PREFIXES, Context
from tests.conftest import REGION, AwsLikeServer, aws_context, aws_like_context, aws_like_session, make_context, stub
from tests.steps.helpers import down_leaves_nothing

#: What the prod database stands on in the network, and why each is kept (keys of the network step).
DATABASE_NEEDS = {"vpc", "subnet/db/0", "subnet/db/1", "rtb/db", "sg/db", "sg/container", "sg/management", "sg/ingress"}


def ec2() -> Any:
    return boto3.client("ec2", region_name=REGION)


def everything(state: StepState) -> list[Found]:
    """Every resource the network step found (its resources' parts aside), strays included."""
    return [f for f in [*state.found.values(), *state.strays] if not f.parent]


def kept_keys(changes: list[Any]) -> dict[str, str]:
    return {c.key: c.args["why"] for c in changes if c.action == "keep"}


def test_the_network_keeps_what_a_kept_resource_stands_on(ctx: Context) -> None:
    pointapp.up(ctx, only="network")
    observed = network.STEP.discover(ctx)
    kept = {("network", "subnet/db/0"): "the database stands on it", ("network", "subnet/db/1"): "the database",
            ("network", "sg/db"): "the database stands on it", ("elsewhere", "sg/cache"): "not this step's"}
    changes = network.STEP.plan_destroy(ctx.spec, observed, kept)
    keeps = kept_keys(changes)
    assert set(keeps) == DATABASE_NEEDS
    assert keeps["sg/db"] == "the database stands on it"
    assert keeps["rtb/db"].startswith("subnet point-app-prod-subnet-private-db-1") and "stands on it" in keeps["rtb/db"]
    assert keeps["sg/ingress"] == "security-group point-app-prod-sg-container (kept) stands on it"
    # Everything else goes; nothing kept is deleted or changed.
    touched = {c.key for c in changes if c.action != "keep"}
    assert touched.isdisjoint(keeps)
    assert {c.key for c in changes if c.action == "delete"} == {f.key for f in everything(observed)} - DATABASE_NEEDS
    assert network.STEP.plan_destroy(ctx.spec, observed) == network.STEP.plan_destroy(ctx.spec, observed, {})  # pure
    assert not kept_keys(network.STEP.plan_destroy(ctx.spec, observed))


#: What a prod down keeps of the database step: the instance, what it uses (its groups, its monitoring role) and
#: its backup plan (with the vault and the role its selection runs as).
DATABASE_KEPT = {f"database {key}" for key in ("instance", "subnet-group", "parameter-group", "role/monitoring",
                                               "backup/plan", "backup/vault", "role/backup")}


def test_prod_down_keeps_the_database_and_what_it_stands_on(mocked: None) -> None:
    ctx = make_context()
    pointapp.up(ctx, only="network,database")
    outcome = pointapp.down(ctx, only="network,database")
    kept = {f"{c.step} {c.key}" for c in outcome.kept}
    assert kept == DATABASE_KEPT | {f"network {key}" for key in DATABASE_NEEDS}
    assert outcome.remaining == [] and outcome.warnings == []
    assert "Kept on purpose (15):" in str(outcome) and "Final check: nothing else owned by pointapp" in str(outcome)
    # RDS was never asked to delete the subnet group in use, nor EC2 the subnets and groups under it.
    assert not [c for c in ctx.calls if c.operation in ("DeleteDBSubnetGroup", "DeleteDBInstance", "DeleteVpc")]
    again = pointapp.plan_destroy(ctx, only="network,database")
    assert again.empty and len(again.kept) == 15 and again.summary().startswith("Nothing to delete. 15 kept")


def test_the_readme_recipe_deletes_a_protected_database_after_a_prod_down(mocked: None) -> None:
    ctx = make_context()
    pointapp.up(ctx, only="network,database")
    pointapp.down(ctx)
    lifted = make_context(load_spec("prod", {"database": {"deletion_protection": False}}))
    pointapp.up(lifted, only="database")
    outcome = pointapp.down(lifted)
    assert outcome.kept == [] and outcome.remaining == []
    assert ec2().describe_vpcs(Filters=[{"Name": "tag:pointapp:environment", "Values": ["point-app-prod"]}])["Vpcs"] == []


def test_groups_to_delete_lose_every_reference_to_a_group_first(ctx: Context) -> None:
    pointapp.up(ctx, only="network")
    groups = {f.key: f.id for f in network.security_groups(network.STEP.discover(ctx))}
    # An outbound rule that names another group: EC2 would refuse to delete that group while it stands.
    ec2().authorize_security_group_egress(GroupId=groups["sg/cache"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": groups["sg/egress"]}]}])
    planned = pointapp.plan_destroy(ctx, only="network")
    revokes = [c for c in planned.changes if c.op == "revoke_all"]
    assert {c.key for c in revokes} == {"sg/cache", "sg/container", "sg/db", "sg/egress", "sg/ingress"}
    network.STEP.apply(ctx, revokes, planned.observed["network"])
    for group in ec2().describe_security_groups(GroupIds=list(groups.values()))["SecurityGroups"]:
        assert group["IpPermissions"] == [], group["GroupName"]  # every rule that names a group is gone
        assert [p for p in group["IpPermissionsEgress"] if p["UserIdGroupPairs"]] == [], group["GroupName"]
    before = len(ctx.calls)
    pointapp.down(ctx, only="network")
    calls = [c.operation for c in ctx.calls[before:]]
    assert "DeleteSecurityGroup" in calls and not [op for op in calls if op.startswith("Revoke")]  # done already


def _interface(ctx: Context, key: str, description: str) -> str:
    observed = network.STEP.discover(ctx).found
    subnet = observed["subnet/egress/0"].id
    group = observed[key].id
    return str(ec2().create_network_interface(SubnetId=subnet, Groups=[group], Description=description)
               ["NetworkInterface"]["NetworkInterfaceId"])


def test_lingering_network_interfaces_are_waited_for(ctx: Context) -> None:
    pointapp.up(ctx, only="network")
    # What a deleted interface endpoint leaves behind on AWS for a while: its network interface.
    eni = _interface(ctx, "sg/egress", "VPC Endpoint Interface vpce-0123456789abcdef0")
    threading.Timer(3, lambda: ec2().delete_network_interface(NetworkInterfaceId=eni)).start()
    outcome = pointapp.down(ctx, only="network")
    assert outcome.remaining == []
    lines = ctx.lines  # type: ignore[attr-defined]
    waiting = [line for line in lines if line.strip().startswith("waiting for 1 network interface")]
    assert waiting == ["    waiting for 1 network interface of vpce-0123456789abcdef0 to go from security-group "
                       "point-app-prod-sg-egress (usually a few minutes on AWS) ..."]
    assert any(line.strip().startswith("security-group point-app-prod-sg-egress: free after") for line in lines)


def test_an_interface_that_stays_is_one_clear_line(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    pointapp.up(ctx, only="network")
    _interface(ctx, "sg/egress", "someone else's interface")
    monkeypatch.setattr(network.waits, "FREE_POLLS", 2)
    with pytest.raises(StepError) as raised:
        pointapp.down(ctx, only="network")
    assert raised.value.code == "DependencyViolation"
    assert str(raised.value).startswith("step network: security-group point-app-prod-sg-egress: still holds 1 network "
                                        "interface of someone else's interface after ")
    assert "\n" not in str(raised.value)


# --- with the AWS-behaviour layer on (tests/aws_behaviour.py): AWS's refusals and lingering interfaces ----

#: Every step but delivery (its roles are another part's) and frontend (no Amplify on the emulator).
LAYER_STEPS = "network,endpoints,registry,database,cache,mail,service,bastion"


def refusals(ctx: Context) -> list[tuple[str, str]]:
    """Record every change AWS (the layer) refuses on ``ctx`` from now on, as (operation, error code)."""
    refused: list[tuple[str, str]] = []

    def record(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if http_response.status_code >= 400 and not model.name.startswith(READ_PREFIXES):
            refused.append((model.name, str(parsed.get("Error", {}).get("Code"))))

    ctx.session.events.register("after-call.*.*", record)
    return refused


def test_prod_down_on_the_layer_keeps_the_database_and_asks_nothing_aws_refuses(
        aws_like: str, aws_like_server: AwsLikeServer) -> None:
    # The load balancer's interfaces outlast the steps deleted between it and the network (AWS: minutes).
    aws_like_server.layer.rule("elbv2-interfaces-linger").window = 15
    ctx = aws_like_context(aws_like)
    pointapp.up(ctx, only=LAYER_STEPS)
    ctx = aws_like_context(aws_like)
    refused = refusals(ctx)
    outcome = pointapp.down(ctx)
    assert refused == []
    assert {f"{c.step} {c.key}" for c in outcome.kept} == DATABASE_KEPT | {f"network {key}" for key in DATABASE_NEEDS}
    # What is left besides: only what the emulator cannot delete (said so, and skipped).
    assert [f"{c.kind} {c.name}" for c in outcome.remaining] == ["cache-subnet-group point-app-prod-cache-subnets"]
    lines = ctx.lines  # type: ignore[attr-defined]
    assert any(line.startswith("    waiting for 2 network interfaces of vpc-endpoint point-app-prod-vpce-") for line in lines)
    # Its interfaces have public addresses: the internet gateway is detached once they are gone.
    assert ("    waiting for 2 network interfaces of load-balancer point-app-prod-alb (public addresses) to go from "
            "internet-gateway point-app-prod-igw (usually a few minutes on AWS) ...") in lines
    assert any("NAT gateway point-app-prod-nat-1a" in line and "to be deleted" in line for line in lines)


def test_the_readme_recipe_on_the_layer_leaves_nothing_pointapp_owns(aws_like: str) -> None:
    pointapp.up(aws_like_context(aws_like), only=LAYER_STEPS)
    pointapp.down(aws_like_context(aws_like))
    lifted = aws_like_context(aws_like, load_spec("prod", {"database": {"deletion_protection": False}}))
    refused = refusals(lifted)
    pointapp.up(lifted, only="database")
    outcome = pointapp.down(lifted)
    assert refused == []
    assert outcome.kept == []
    assert [f"{c.kind} {c.name}" for c in outcome.remaining] == ["cache-subnet-group point-app-prod-cache-subnets"]


def test_a_nat_gateway_an_earlier_run_left_deleting_is_waited_for(aws_like: str) -> None:
    ctx = aws_like_context(aws_like)
    pointapp.up(ctx, only="network")
    nat = network.STEP.discover(ctx).found["nat/0"].id
    # A down that stopped right after DeleteNatGateway: the gateway is 'deleting' and holds its address.
    aws_like_session().client("ec2", endpoint_url=aws_like).delete_nat_gateway(NatGatewayId=nat)
    again = aws_like_context(aws_like)
    refused = refusals(again)
    outcome = pointapp.down(again, only="network")
    assert refused == [] and outcome.remaining == []
    assert any(f"waiting for NAT gateway point-app-prod-nat-1a ({nat}) to be deleted" in line
               for line in again.lines)  # type: ignore[attr-defined]


def _stubbed_network_delete(responses: list[tuple[str, Any]]) -> tuple[Context, Any]:
    """A context on (stubbed) real AWS whose EC2 answers ``responses`` in turn; a clock that sleeps instantly."""
    ctx = aws_context()
    now = [0.0]
    ctx.clock = lambda: now[0]
    ctx.sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    ec2_stub = stub(ctx, "ec2")
    for operation, answer in responses:
        if isinstance(answer, str):
            ec2_stub.add_client_error(operation, answer, "The subnet 'subnet-1' has dependencies and cannot be deleted.")
        else:
            ec2_stub.add_response(operation, answer)
    return ctx, ec2_stub


SUBNET = Change("network", "delete", "subnet", "subnet/db/0", "point-app-prod-subnet-private-db-1a", "subnet-1",
                "delete", {"found": Found("subnet", "subnet/db/0", "subnet-1",
                                          {"Name": "point-app-prod-subnet-private-db-1a"}, {})})


def nothing_found() -> StepState:
    """The network step's state when nothing was found (the zones as a region offers them)."""
    return StepState(facts={"region": REGION, "zones": [f"{REGION}a", f"{REGION}c"]})


def test_a_deletion_refused_meanwhile_is_tried_again(mocked: None) -> None:
    free: dict[str, Any] = {"NetworkInterfaces": []}
    ctx, ec2_stub = _stubbed_network_delete([("describe_network_interfaces", free), ("delete_subnet", "DependencyViolation"),
                                             ("describe_network_interfaces", free), ("delete_subnet", {})])
    network.STEP.apply(ctx, [SUBNET], nothing_found())
    ec2_stub.assert_no_pending_responses()
    assert any("still in use (The subnet 'subnet-1' has dependencies" in line and "trying again (for up to 1200s" in line
               for line in ctx.lines)  # type: ignore[attr-defined]


def test_a_deletion_refused_past_the_bound_is_one_line(mocked: None) -> None:
    free: dict[str, Any] = {"NetworkInterfaces": []}
    refusals_then = [("describe_network_interfaces", free), ("delete_subnet", "DependencyViolation")] * 81
    ctx, ec2_stub = _stubbed_network_delete(refusals_then)
    with pytest.raises(StepError) as raised:
        network.STEP.apply(ctx, [SUBNET], nothing_found())
    ec2_stub.assert_no_pending_responses()  # 81 tries: every 15 s for 20 minutes
    assert str(raised.value) == ("step network: subnet point-app-prod-subnet-private-db-1a: The subnet 'subnet-1' has "
                                 "dependencies and cannot be deleted. (DependencyViolation)")


def test_down_of_some_steps_keeps_what_the_steps_left_standing_stand_on(aws_like: str) -> None:
    staging = load_spec("staging")  # no deletion protection: only --only keeps the database here
    pointapp.up(aws_like_context(aws_like, staging), only="network,database,bastion")
    ctx = aws_like_context(aws_like, staging)
    refused = refusals(ctx)
    outcome = pointapp.down(ctx, only="network")
    assert refused == [] and outcome.remaining == []
    kept = {f"{c.step} {c.key}": c.args["why"] for c in outcome.kept}
    assert kept["database instance"] == "the database step is not part of this down (--only network)"
    assert kept["bastion instance"] == "the bastion step is not part of this down (--only network)"
    assert {key.split(" ", 1)[1] for key in kept if key.startswith("network ")} >= {"subnet/db/0", "sg/db", "vpc"}
    assert "network subnet/cache/0" not in kept  # nothing stands on it: deleted
    # The database and the bastion stand as they were, and a full down then removes everything.
    assert not [c for c in ctx.calls if c.service in ("rds",) and not c.operation.startswith(READ_PREFIXES)]
    final = pointapp.down(aws_like_context(aws_like, staging))
    assert final.kept == [] and final.remaining == []


def test_staging_down_leaves_nothing_but_what_the_emulator_cannot_delete(mocked: None) -> None:
    staging = make_context(load_spec("staging"))
    pointapp.up(staging, only="network,database,cache,bastion,mail")
    warnings = down_leaves_nothing(staging, "mail,bastion,cache,database,network")
    assert [w.split(":")[0] for w in warnings] == ["cache-subnet-group point-app-staging-cache-subnets"]
    assert boto3.client("rds", region_name=REGION).describe_db_snapshots()["DBSnapshots"] == []  # staging takes no final snapshot
