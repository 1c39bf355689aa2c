"""The gateways: the internet gateway, and the NAT gateways with their Elastic IPs.

A NAT gateway is started without waiting: it settles later (:attr:`NatGateway.deferred`), and the routes
to it follow once it is available, while the steps that do not need it start. On ``down`` its delete
finishes later (:attr:`NatGateway.lingers`): it is waited for before its Elastic IP is released, its subnet
deleted and the internet gateway detached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pointapp.context import StepContext
from pointapp.names import DEFERRED_NAT
from pointapp.resources import Desired, Found, Request, ignore_absent
from pointapp.spec import Spec
from pointapp.tags import tag_specifications
from pointapp.typical import Typical

from .discovery import Ec2Kind, collect, listing, primary_vpc
from .vpc import Id
from .waits import NAT_GATEWAY, await_interfaces, await_nats


def igw_request(tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateInternetGateway request, tagged in the call."""
    return dict(TagSpecifications=tag_specifications("internet-gateway", tags))


def attach_request(id: Id) -> dict[str, Any]:
    """The AttachInternetGateway request: the internet gateway to the VPC."""
    return dict(InternetGatewayId=id("igw"), VpcId=id("vpc"))


def address_request(tags: Mapping[str, str]) -> dict[str, Any]:
    """The AllocateAddress request of a NAT gateway's Elastic IP, tagged in the call."""
    return dict(Domain="vpc", TagSpecifications=tag_specifications("elastic-ip", tags))


def nat_request(id: Id, subnet: str, address: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateNatGateway request: a public NAT gateway in ``subnet`` with the Elastic IP ``address`` (keys)."""
    return dict(SubnetId=id(subnet), AllocationId=id(address), ConnectivityType="public",
                TagSpecifications=tag_specifications("natgateway", tags))


class InternetGateway(Ec2Kind):
    """The internet gateway, attached to the VPC."""

    name = "internet-gateway"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        vpc = primary_vpc(ctx)
        return collect(spec, self.name, listing(ctx, "internet-gateways"), "InternetGatewayId",
                       lambda i: not i.get("Attachments") or any(a["VpcId"] == vpc for a in i["Attachments"]))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        if not any(a.get("VpcId") == props["vpc"] for a in found.raw.get("Attachments", [])):
            return {"attach to": props["vpc"]}
        return {}

    def explain(self, desired: Desired, found: Found, differences: Mapping[str, Any]) -> str:
        return "attach to the VPC"

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_internet_gateway": igw_request(tags),
                "attach_internet_gateway": attach_request(lambda key: props["vpc"] if key == "vpc" else props.get("id"))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ec2 = ctx.client("ec2")
        igw = ec2.create_internet_gateway(**igw_request(tags))["InternetGateway"]
        found = Found(self.name, desired.key, igw["InternetGatewayId"], dict(tags), igw)
        self.update(ctx, desired, props, found, {})
        return found

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        request = self.request(ctx.spec, desired, {**props, "id": found.id}, {})["attach_internet_gateway"]
        ctx.client("ec2").attach_internet_gateway(**request)
        found.raw["Attachments"] = [{"VpcId": props["vpc"], "State": "available"}]

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ec2, attached = ctx.client("ec2"), [a["VpcId"] for a in found.raw.get("Attachments", [])]
        if attached:
            # EC2 refuses to detach an internet gateway while the VPC has public addresses mapped
            # (DependencyViolation, DetachInternetGateway in the EC2 API reference): a NAT gateway's
            # until it is deleted (the core waited for those), a deleted load balancer's until its
            # network interfaces are gone.
            await_interfaces(ctx, f"{self.name} {found.name}", [{"Name": "vpc-id", "Values": attached}],
                             "public addresses", lambda eni: bool(eni.get("Association", {}).get("PublicIp")))
        for vpc in attached:
            ignore_absent(ec2.detach_internet_gateway, InternetGatewayId=found.id, VpcId=vpc)
        ignore_absent(ec2.delete_internet_gateway, InternetGatewayId=found.id)
        return None

    def stands_on(self, found: Found) -> list[str]:
        return [a["VpcId"] for a in found.raw.get("Attachments", [])]

    def describe(self, found: Found) -> str:
        return ", ".join(a["VpcId"] for a in found.raw.get("Attachments", []))


class ElasticIp(Ec2Kind):
    """The Elastic IP of a NAT gateway."""

    name = "elastic-ip"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        return collect(spec, self.name, listing(ctx, "addresses"), "AllocationId")

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"allocate_address": address_request(tags)}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        address = ctx.client("ec2").allocate_address(**address_request(tags))
        return Found(self.name, desired.key, address["AllocationId"], dict(tags), dict(address))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_absent(ctx.client("ec2").release_address, AllocationId=found.id)  # after its NAT gateway is gone
        return None

    def describe(self, found: Found) -> str:
        return str(found.raw.get("PublicIp", ""))


class NatGateway(Ec2Kind):
    """A public NAT gateway in an ingress subnet with its Elastic IP. A failed one is replaced."""

    name = "nat-gateway"
    typical: ClassVar[Typical | None] = NAT_GATEWAY
    typical_delete: ClassVar[Typical | None] = NAT_GATEWAY
    deferred: ClassVar[str] = DEFERRED_NAT
    lingers: ClassVar[bool] = True
    # A public NAT gateway needs the VPC's internet gateway attached (the Terraform AWS provider's aws_nat_gateway
    # page: "it is recommended to add an explicit dependency on the Internet Gateway"): made after it.
    creates_after: ClassVar[tuple[str, ...] | None] = ("internet-gateway",)

    def waits(self, spec: Spec) -> tuple[Typical, ...]:
        """None: the create does not wait; its settling (:attr:`typical`) is deferred, and the schedule counts it
        apart (``schedule.DEFERRED``)."""
        return ()

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        vpc, nats = primary_vpc(ctx), listing(ctx, "nat-gateways")
        found = collect(spec, self.name, [n for n in nats if n["State"] not in ("deleting", "deleted")],
                        "NatGatewayId", lambda n: n.get("VpcId") == vpc)
        # One still deleting (an earlier down stopped) holds its Elastic IP and address: waited for on down.
        going = collect(spec, self.name, [n for n in nats if n["State"] == "deleting"], "NatGatewayId")
        return found + [Found(f.kind, f.key, f.id, f.tags, f.raw, leaving=True) for f in going]

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        return "failed" if found.raw.get("State") == "failed" else None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_nat_gateway": nat_request(lambda key: props[key], "subnet", "address", tags)}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        nat = ctx.client("ec2").create_nat_gateway(**self.request(ctx.spec, desired, props, tags)["create_nat_gateway"])
        # Waited for whatever state the answer gives (AWS answers pending; an emulator may say available).
        return Found(self.name, desired.key, nat["NatGateway"]["NatGatewayId"], dict(tags),
                     {**nat["NatGateway"], "Settled": False})

    def unsettled(self, found: Found) -> bool:
        return not found.raw.get("Settled", found.raw.get("State") != "pending")

    def settling(self, found: Sequence[Found]) -> str:
        return (f"NAT gateway {', '.join(f.name for f in found)} is starting (usually {NAT_GATEWAY.spoken} on AWS); "
                "its routes follow once it is available, before the service starts, while the steps that do not "
                "need it go on")

    def settle(self, ctx: StepContext, found: Sequence[Found]) -> None:
        await_nats(ctx, "nat_gateway_available", found, "available")
        for f in found:
            f.raw.update(State="available", Settled=True)

    def await_gone(self, ctx: StepContext, found: Sequence[Found]) -> None:
        await_nats(ctx, "nat_gateway_deleted", found, "deleted")

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_absent(ctx.client("ec2").delete_nat_gateway, NatGatewayId=found.id)
        return None

    def stands_on(self, found: Found) -> list[str]:
        return [found.raw.get("SubnetId", "")] + [a.get("AllocationId", "") for a in found.raw.get("NatGatewayAddresses", [])]

    def describe(self, found: Found) -> str:
        return f"{found.raw.get('State')} in {found.raw.get('SubnetId')}"
