"""The network's waits: NAT gateways to be available or deleted, and network interfaces to go.

These set the network's order of work: the routes to a NAT gateway follow once it is available (the
executor defers them so later steps start meanwhile); on ``down`` the NAT gateways are deleted and waited
for before their Elastic IPs are released, their subnets deleted and the internet gateway detached; a
subnet or a security group is deleted once no network interface is left in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import botocore.exceptions

from pointapp.errors import StepError
from pointapp.plan import Change
from pointapp.resources import client_error_code, ignore_codes
from pointapp.typical import Typical

from .base import Executor
from .discovery import NAME, paginate

#: A NAT gateway from pending to available; its deletion is waited for with the same figure.
NAT_GATEWAY = Typical("nat-gateway", 120, "NAT gateway from pending to available",
                      "Amazon VPC User Guide, NAT gateways (states pending/available); botocore waiter "
                      "NatGatewayAvailable: 15 s x 40")


class Waits(Executor):
    """The waits of the network's executor: the resource mixins call them where AWS needs the order."""

    #: What the waits for a NAT gateway say it usually takes (the schedule adds up the same figure), and
    #: what the wait for network interfaces says.
    nat_typical: ClassVar[Typical] = NAT_GATEWAY
    interfaces_usually: ClassVar[str] = "a few minutes"

    def await_nats(self) -> None:
        """Wait for NAT gateways created in this run (started together, waited for together)."""
        if not self.nats_pending:
            return
        self._wait("nat_gateway_available", self.nats_pending, "available", real_delay=15)
        self.nats_pending = []

    def await_nat_deletions(self) -> None:
        """Wait for the NAT gateways deleted so far (this run's and an earlier run's): each holds its Elastic IP,
        a public address in the VPC and a network interface in its subnet until it is deleted."""
        if not self.nats_deleting:
            return
        self._wait("nat_gateway_deleted", self.nats_deleting, "deleted", real_delay=15)
        ids = {nat_id for _, nat_id in self.nats_deleting}
        self.gone_interfaces |= {address["NetworkInterfaceId"]
                                 for f in [*self.observed.nat_gateways.values(), *self.observed.nats_deleting]
                                 if f.id in ids for address in f.raw.get("NatGatewayAddresses", [])
                                 if address.get("NetworkInterfaceId")}
        self.nats_deleting = []

    def _wait(self, waiter: str, nats: list[tuple[str, str]], state: str, real_delay: int) -> None:
        names = ", ".join(f"{name} ({nat_id})" for name, nat_id in nats)
        self.ctx.say(f"  waiting for NAT gateway {names} to be {state} (usually {self.nat_typical.spoken} on AWS) ...")
        started = time.monotonic()
        try:
            self.ec2.get_waiter(waiter).wait(NatGatewayIds=[nat_id for _, nat_id in nats],
                                             WaiterConfig={"Delay": self.ctx.wait_delay(real_delay), "MaxAttempts": 60})
        except botocore.exceptions.WaiterError as error:
            raise StepError(NAME, f"NAT gateway {names}", f"did not become {state}: {error.last_response.get('Error', error)}") from None
        self.ctx.say(f"  NAT gateway {names} {state} after {time.monotonic() - started:.0f}s")

    # Interface endpoints, load balancers, NAT gateways, databases and tasks hold network interfaces in
    # subnets and security groups, and AWS removes them some minutes after the resource is deleted
    # (hashicorp/terraform-provider-aws#40: "its network interfaces can take a while to go away (some
    # minutes)"); EC2 refuses to delete a subnet or a group that still has one (DependencyViolation). So the
    # step waits for them (polls of 15 s, 80 at most: 20 minutes, terraform-provider-aws's own bound for a
    # subnet's deletion), and retries a deletion refused meanwhile, within the same bound.
    _FREE_POLLS = 80

    def _deadline(self) -> float:
        return float(self.ctx.clock() + self._FREE_POLLS * self.ctx.wait_delay(15))

    def delete_when_free(self, change: Change, filter_name: str, delete: Callable[..., Any], **kwargs: Any) -> None:
        """Delete a subnet or a security group once no network interface is left in it (bounded)."""
        started, deadline = self.ctx.clock(), self._deadline()
        while True:
            self.await_interfaces(change, [{"Name": filter_name, "Values": [change.args["id"]]}], deadline=deadline)
            try:
                delete(**kwargs)
                return
            except botocore.exceptions.ClientError as error:
                if client_error_code(error) != "DependencyViolation" or self.ctx.clock() >= deadline:
                    raise
                refused = error.response.get("Error", {}).get("Message", "")
            self.ctx.say(f"    {change.kind} {change.name} still in use ({refused}); trying again "
                         f"(for up to {deadline - started:.0f}s in all)")
            self.pause()

    def await_interfaces(self, change: Change, filters: list[dict[str, Any]], what: str = "",
                          holds: Callable[[dict[str, Any]], bool] = lambda _: True, deadline: float | None = None) -> None:
        """Wait, saying for what, until no network interface matching ``filters`` (and ``holds``) is left."""
        started, deadline = self.ctx.clock(), deadline or self._deadline()
        told = ""
        while True:
            left = [eni for eni in paginate(self.ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters)
                    if holds(eni)]
            left = self._without_stale(left)
            if not left:
                if told:
                    self.ctx.say(f"    {change.kind} {change.name}: free after {self.ctx.clock() - started:.0f}s")
                return
            holders = self._holders(left)
            if self.ctx.clock() >= deadline:
                raise StepError(NAME, f"{change.kind} {change.name}", f"still holds {holders} after "
                                f"{self.ctx.clock() - started:.0f}s; delete them, then run down again", "DependencyViolation")
            if holders != told:
                told = holders
                of = f" ({what})" if what else ""
                self.ctx.say(f"    waiting for {holders}{of} to go from {change.kind} {change.name} "
                             f"(usually {self.interfaces_usually} on AWS) ...")
            self.pause()

    def _without_stale(self, interfaces: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Less the interfaces that go with their owner: a NAT gateway that is deleted, an instance that is
        terminated (AWS deletes them with it; the emulator keeps them). Should one still be there, the
        deletion is refused and tried again, within the same bound."""
        if not interfaces:
            return interfaces
        instances = sorted({eni.get("Attachment", {}).get("InstanceId") for eni in interfaces} - {None})
        answer = ignore_codes(self.ec2.describe_instances, ["InvalidInstanceID.NotFound"], InstanceIds=instances) \
            if instances else None
        terminated = {i["InstanceId"] for r in (answer or {}).get("Reservations", []) for i in r["Instances"]
                      if i["State"]["Name"] == "terminated"}
        return [eni for eni in interfaces if eni["NetworkInterfaceId"] not in self.gone_interfaces
                and eni.get("Attachment", {}).get("InstanceId") not in terminated]

    def pause(self) -> None:
        self.ctx.check_stopping()
        self.ctx.sleep(self.ctx.wait_delay(15))

    def _holders(self, interfaces: Sequence[Mapping[str, Any]]) -> str:
        """``2 network interfaces of vpc-endpoint point-app-prod-vpce-ecr-api``: grouped by what they belong to,
        named after what this run deleted where the description says (an endpoint's, a load balancer's)."""
        names: dict[str, str] = {f.id: f"{f.kind} {f.name}" for f in self.observed.everything() + self.observed.nats_deleting}
        for done in self.ctx.done:
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

