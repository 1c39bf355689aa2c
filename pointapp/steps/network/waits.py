"""The network's waits: NAT gateways to be available or deleted, and network interfaces to go.

A NAT gateway settles later (:meth:`pointapp.resources.Kind.settle`: the routes to it follow once it is
available) and its delete finishes later (:meth:`pointapp.resources.Kind.await_gone`: its Elastic IP, its
subnet and the internet gateway wait for it); a subnet, a security group or the internet gateway is
deleted once no network interface is left in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import botocore.exceptions

from pointapp.context import StepContext
from pointapp.errors import StepError
from pointapp.resources import Found, client_error_code, ignore_codes, is_absent
from pointapp.typical import Typical, finished

from .discovery import NAME, paginate

#: A NAT gateway from pending to available; its deletion is waited for with the same figure.
NAT_GATEWAY = Typical("nat-gateway", 120, "NAT gateway from pending to available",
                      "Amazon VPC User Guide, NAT gateways (states pending/available); botocore waiter "
                      "NatGatewayAvailable: 15 s x 40")

#: What the wait for network interfaces says it usually takes.
INTERFACES_USUALLY = "a few minutes"


def await_nats(ctx: StepContext, waiter: str, nats: Sequence[Found], state: str) -> None:
    """Wait for the NAT gateways ``nats`` (started or deleted together) to be ``state``, saying so."""
    names = ", ".join(f"{f.name} ({f.id})" for f in nats)
    ctx.say(f"  waiting for NAT gateway {names} to be {state} (usually {NAT_GATEWAY.spoken} on AWS) ...")
    started = time.monotonic()
    try:
        ctx.client("ec2").get_waiter(waiter).wait(NatGatewayIds=[f.id for f in nats],
                                                  WaiterConfig={"Delay": ctx.wait_delay(15), "MaxAttempts": 60})
    except botocore.exceptions.WaiterError as error:
        raise StepError(ctx.work_of_step or NAME, f"NAT gateway {names}",
                        f"did not become {state}: {error.last_response.get('Error', error)}") from None
    ctx.say(f"  {finished(f'NAT gateway {names} {state}', time.monotonic() - started, NAT_GATEWAY, ctx.target.is_real_aws)}")


# Interface endpoints, load balancers, NAT gateways, databases and tasks hold network interfaces in
# subnets and security groups, and AWS removes them some minutes after the resource is deleted
# (hashicorp/terraform-provider-aws#40: "its network interfaces can take a while to go away (some
# minutes)"); EC2 refuses to delete a subnet or a group that still has one (DependencyViolation). So the
# step waits for them (polls of 15 s, 80 at most: 20 minutes, terraform-provider-aws's own bound for a
# subnet's deletion), and retries a deletion refused meanwhile, within the same bound.
FREE_POLLS = 80


def _deadline(ctx: StepContext) -> float:
    return float(ctx.clock() + FREE_POLLS * ctx.wait_delay(15))


def pause(ctx: StepContext) -> None:
    ctx.check_stopping()
    ctx.sleep(ctx.wait_delay(15))


def delete_when_free(ctx: StepContext, what: str, filter_name: str, resource_id: str, delete: Callable[..., Any],
                     **kwargs: Any) -> None:
    """Delete a subnet or a security group (``what``: its kind and name) once no network interface is left
    in it (bounded); gone already counts as done."""
    started, deadline = ctx.clock(), _deadline(ctx)
    while True:
        await_interfaces(ctx, what, [{"Name": filter_name, "Values": [resource_id]}], deadline=deadline)
        try:
            delete(**kwargs)
            return
        except botocore.exceptions.ClientError as error:
            code = client_error_code(error)
            if is_absent(code):
                return
            if code != "DependencyViolation" or ctx.clock() >= deadline:
                raise
            refused = error.response.get("Error", {}).get("Message", "")
        ctx.say(f"    {what} still in use ({refused}); trying again (for up to {deadline - started:.0f}s in all)")
        pause(ctx)


def await_interfaces(ctx: StepContext, what: str, filters: list[dict[str, Any]], of: str = "",
                     holds: Callable[[dict[str, Any]], bool] = lambda _: True, deadline: float | None = None) -> None:
    """Wait, saying for what, until no network interface matching ``filters`` (and ``holds``) is left in
    ``what`` (a resource's kind and name)."""
    started, deadline = ctx.clock(), deadline or _deadline(ctx)
    ec2 = ctx.client("ec2")
    told = ""
    while True:
        left = [eni for eni in paginate(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters)
                if holds(eni)]
        left = _without_stale(ctx, left)
        if not left:
            if told:
                ctx.say(f"    {what}: free after {ctx.clock() - started:.0f}s")
            return
        holders = _holders(ctx, left)
        if ctx.clock() >= deadline:
            raise StepError(ctx.work_of_step or NAME, what, f"still holds {holders} after {ctx.clock() - started:.0f}s; delete them, "
                            "then run down again", "DependencyViolation")
        if holders != told:
            told = holders
            ctx.say(f"    waiting for {holders}{f' ({of})' if of else ''} to go from {what} "
                    f"(usually {INTERFACES_USUALLY} on AWS) ...")
        pause(ctx)


def _without_stale(ctx: StepContext, interfaces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Less the interfaces that go with their owner: a NAT gateway that is deleted, an instance that is
    terminated (AWS deletes them with it; the emulator keeps them). Should one still be there, the
    deletion is refused and tried again, within the same bound."""
    if not interfaces:
        return interfaces
    ec2 = ctx.client("ec2")
    instances = sorted({eni.get("Attachment", {}).get("InstanceId") for eni in interfaces} - {None})
    answer = ignore_codes(ec2.describe_instances, ["InvalidInstanceID.NotFound"], InstanceIds=instances) \
        if instances else None
    terminated = {i["InstanceId"] for r in (answer or {}).get("Reservations", []) for i in r["Instances"]
                  if i["State"]["Name"] == "terminated"}
    vpcs = sorted({eni["VpcId"] for eni in interfaces if eni.get("VpcId")})
    nats = paginate(ec2, "describe_nat_gateways", "NatGateways", Filter=[{"Name": "vpc-id", "Values": vpcs}]) \
        if vpcs else []
    gone = {address["NetworkInterfaceId"] for nat in nats if nat["State"] == "deleted"
            for address in nat.get("NatGatewayAddresses", []) if address.get("NetworkInterfaceId")}
    return [eni for eni in interfaces if eni["NetworkInterfaceId"] not in gone
            and eni.get("Attachment", {}).get("InstanceId") not in terminated]


def _holders(ctx: StepContext, interfaces: Sequence[Mapping[str, Any]]) -> str:
    """``2 network interfaces of vpc-endpoint point-app-prod-vpce-ecr-api``: grouped by what they belong to,
    named after what this run deleted where the description says (an endpoint's, a load balancer's)."""
    names: dict[str, str] = {}
    for done in ctx.done:
        found = done.args.get("found")
        if done.action == "delete" and found is not None:
            names[found.id] = f"{done.kind} {done.name}"
            if ":loadbalancer/" in found.id:  # its interfaces say "ELB app/<name>/<id>"
                names[found.id.split(":loadbalancer/", 1)[1]] = names[found.id]
    counts: dict[str, int] = {}
    for eni in interfaces:
        owner = _interface_owner(eni)
        label = names.get(owner, owner)
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} network interface{'s' if n > 1 else ''} of {label}" for label, n in sorted(counts.items()))


# How AWS describes the network interfaces it makes for a service (the Description of each, as EC2 shows
# it: "VPC Endpoint Interface vpce-...", "ELB app/<name>/<id>", "Interface for NAT Gateway nat-...").
_INTERFACE_PREFIXES = ("VPC Endpoint Interface ", "Interface for NAT Gateway ", "ELB ")


def _interface_owner(eni: Mapping[str, Any]) -> str:
    """The id of what a network interface belongs to, from its description; else the description or its id."""
    description = str(eni.get("Description") or "")
    for prefix in _INTERFACE_PREFIXES:
        if description.startswith(prefix):
            return description[len(prefix):].strip()
    return description or f"{eni.get('InterfaceType', 'interface')} {eni.get('NetworkInterfaceId')}"
