"""The gateways: the internet gateway, and the NAT gateways with their Elastic IPs.

A NAT gateway is started and waited for later (:mod:`.waits`): the routes to it follow once it is
available. On ``down`` it is deleted and waited for before its Elastic IP is released and the internet
gateway detached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.plan import Change
from pointapp.resources import ignore_absent
from pointapp.tags import tag_specifications

from .base import Id, Planner
from .destroy import deletions
from .waits import Waits


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



class GatewayPlan(Planner):
    def internet_gateway(self) -> None:
        found = self.observed.igw
        tags = self.tags("internet-gateway", "igw", found)
        if found is None:
            self.add("create", "internet-gateway", "igw", "attached to the VPC", "create_igw", tags=tags)
        elif not any(a.get("VpcId") == getattr(self.observed.vpc, "id", None)
                     for a in found.raw.get("Attachments", [])):
            self.add("update", "internet-gateway", "igw", "attach to the VPC", "attach_igw")


    def nat_gateways(self) -> None:
        for nat in self.layout.nats:
            address = self.observed.addresses.get(nat.address)
            tags = self.tags("elastic-ip", nat.address, address)
            if address is None:
                self.add("create", "elastic-ip", nat.address, f"for {nat.name}", "allocate_address", tags=tags)
            found = self.observed.nat_gateways.get(nat.key)
            tags = self.tags("nat-gateway", nat.key, found)
            if found is not None and found.raw["State"] == "failed":
                self.changes += deletions([found], reason="failed; replaced")
                self.replaced.add(nat.key)
                found = None
            subnet = self.names[nat.subnet]
            if found is None:
                self.add("create", "nat-gateway", nat.key, f"in {subnet} with {nat.address_name}",
                         "create_nat", subnet=nat.subnet, address=nat.address, tags=tags)



class GatewayWork(Waits):
    def op_create_igw(self, change: Change) -> None:
        igw = self.ec2.create_internet_gateway(**igw_request(change.args["tags"]))
        self.ids["igw"] = igw["InternetGateway"]["InternetGatewayId"]
        self.op_attach_igw(change)

    def op_attach_igw(self, change: Change) -> None:
        self.ec2.attach_internet_gateway(**attach_request(self.id))


    def op_allocate_address(self, change: Change) -> None:
        address = self.ec2.allocate_address(**address_request(change.args["tags"]))
        self.ids[change.key] = address["AllocationId"]

    def op_create_nat(self, change: Change) -> None:
        nat = self.ec2.create_nat_gateway(**nat_request(self.id, change.args["subnet"], change.args["address"],
                                                        change.args["tags"]))
        self.ids[change.key] = nat["NatGateway"]["NatGatewayId"]
        self.nats_pending.append((change.name, self.ids[change.key]))

    def delete_nat_gateway(self, change: Change, nat_id: str) -> None:
        self.ec2.delete_nat_gateway(NatGatewayId=nat_id)
        self.nats_deleting.append((change.name, nat_id))

    def delete_elastic_ip(self, change: Change, allocation_id: str) -> None:
        self.await_nat_deletions()  # a NAT gateway holds its address until it is deleted
        self.ec2.release_address(AllocationId=allocation_id)

    def delete_internet_gateway(self, change: Change, igw_id: str) -> None:
        raw = self.found(igw_id).raw
        if raw.get("Attachments"):
            # EC2 refuses to detach an internet gateway while the VPC has public addresses mapped
            # (DependencyViolation, DetachInternetGateway in the EC2 API reference): a NAT gateway's
            # until it is deleted, a deleted load balancer's until its network interfaces are gone.
            self.await_nat_deletions()
            self.await_interfaces(change, [{"Name": "vpc-id", "Values": [a["VpcId"] for a in raw["Attachments"]]}],
                                  "public addresses", lambda eni: bool(eni.get("Association", {}).get("PublicIp")))
        for attachment in raw.get("Attachments", []):
            ignore_absent(self.ec2.detach_internet_gateway, InternetGatewayId=igw_id, VpcId=attachment["VpcId"])
        self.ec2.delete_internet_gateway(InternetGatewayId=igw_id)
