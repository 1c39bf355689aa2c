"""What the network's kinds read: one tag-filtered listing per EC2 type, shared through ``ctx.read_once``,
the environment's VPC among the owned ones, and the zones the layout is built in (the step's facts)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.resources import Desired, Found, Kind, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, from_aws_tags, is_owned, owner_filters

NAME = "network"

T = TypeVar("T")

#: The tag-filtered listings: the describe operation, the key of its items, and its filter argument.
LISTINGS = {"vpcs": ("describe_vpcs", "Vpcs", "Filters"), "subnets": ("describe_subnets", "Subnets", "Filters"),
            "internet-gateways": ("describe_internet_gateways", "InternetGateways", "Filters"),
            "nat-gateways": ("describe_nat_gateways", "NatGateways", "Filter"),
            "addresses": ("describe_addresses", "Addresses", "Filters"),
            "route-tables": ("describe_route_tables", "RouteTables", "Filters")}


def paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a describe call, all pages read (one call where the operation has no paginator)."""
    if client.can_paginate(operation):
        items: list[dict[str, Any]] = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(result_key, []))
        return items
    return list(getattr(client, operation)(**kwargs).get(result_key, []))


def read_once(ctx: StepContext, what: Hashable, load: Callable[[], T]) -> T:
    """``load()``, read once for every kind that needs it (until the next change, or the next discovery)."""
    return ctx.read_once(("network", what, ctx.spec.owner), load)


def listing(ctx: StepContext, what: str) -> list[dict[str, Any]]:
    """The items of one EC2 type the network owns in this environment: one tag-filtered call, read once for
    every kind that needs it (the VPCs and subnets decide which VPC is the environment's)."""
    operation, result_key, argument = LISTINGS[what]
    filters = owner_filters(ctx.spec, NAME)
    return read_once(ctx, what, lambda: paginate(ctx.client("ec2"), operation, result_key, **{argument: filters}))


def primary_vpc(ctx: StepContext) -> str | None:
    """The id of the environment's VPC: of the owned VPCs, the one holding most owned subnets (any other
    owned VPC is a duplicate, deleted as a stray)."""
    vpcs, subnets = listing(ctx, "vpcs"), listing(ctx, "subnets")
    holding = {v["VpcId"]: sum(s["VpcId"] == v["VpcId"] for s in subnets) for v in vpcs}
    owned = [v for v in vpcs if is_owned(from_aws_tags(v.get("Tags")), ctx.spec, NAME)]
    return str(max(owned, key=lambda v: (holding[v["VpcId"]], v["VpcId"]))["VpcId"]) if owned else None


def collect(spec: Spec, kind: str, items: Iterable[dict[str, Any]], id_field: str,
            in_use: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[Found]:
    """The owned items as :class:`Found`, those in use first: one outside the environment's VPC is a stray
    (the core also takes the second of a key as one)."""
    found = []
    for item in sorted(items, key=lambda i: (not in_use(i), i[id_field])):
        tags = from_aws_tags(item.get("Tags"))
        if is_owned(tags, spec, NAME):
            found.append(Found(kind, tags[KEY], item[id_field], tags, item, stray=not in_use(item)))
    return found


def available_zones(ctx: StepContext) -> list[str]:
    """The region's availability zones, in the order the step uses them (the first ``network.zones``)."""
    zones = ctx.client("ec2").describe_availability_zones(Filters=[
        {"Name": "zone-type", "Values": ["availability-zone"]}, {"Name": "state", "Values": ["available"]}])
    return sorted(z["ZoneName"] for z in zones["AvailabilityZones"])


def zones_in_use(spec: Spec, subnets: Iterable[Found]) -> list[str] | None:
    """The zones the built subnets sit in, by zone index (``subnet/<tier>/<i>``), when they cover exactly
    the ``network.zones`` the spec asks for; None otherwise (nothing built yet, or the count changed)."""
    by_index: dict[int, set[str]] = {}
    for found in subnets:
        index = found.key.rsplit("/", 1)[-1]
        if index.isdigit():
            by_index.setdefault(int(index), set()).add(found.raw["AvailabilityZone"])
    if sorted(by_index) != list(range(spec.network.zones)) or any(len(z) != 1 for z in by_index.values()):
        return None  # not all zones built, or a zone index split over two zones
    zones = [by_index[i].pop() for i in range(spec.network.zones)]
    return zones if len(set(zones)) == len(zones) else None


def facts(ctx: StepContext) -> Mapping[str, Any]:
    """What the network's desired list depends on: the region, and the zones it is built in.

    A built network keeps the zones its subnets are in (the region's zone list is read only before the
    first subnet exists, or when ``network.zones`` changes), so a zone that AWS marks impaired for a
    while never makes a plan move subnets.
    """
    map_side_by_side(lambda what: listing(ctx, what), LISTINGS)  # every listing at once, for the kinds too
    vpc = primary_vpc(ctx)
    subnets = [f for f in collect(ctx.spec, "subnet", listing(ctx, "subnets"), "SubnetId",
                                  lambda s: s["VpcId"] == vpc) if not f.stray]
    first = {f.key: f for f in reversed(subnets)}.values()  # the first of a key, as the core takes it
    return {"region": ctx.target.region, "zones": zones_in_use(ctx.spec, first) or available_zones(ctx)}


class Ec2Kind(Kind):
    """A kind of the network's topology: EC2 tags it in its create call and with CreateTags after; its
    creates wait only for what their props Ref (and :attr:`creates_after` names)."""

    service = "ec2"
    creates_after: ClassVar[tuple[str, ...] | None] = ()

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "ec2", found.id, tags)

    def send(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], operation: str,
             done_already: str) -> tuple[dict[str, Any], Any]:
        """The create request's ``operation``, sent: the request and the answer (None when EC2 answers
        ``done_already``, as it does to a rerun after a lost answer)."""
        request = self.request(ctx.spec, desired, props, {})[operation]
        return request, ignore_codes(getattr(ctx.client("ec2"), operation), [done_already], **request)
