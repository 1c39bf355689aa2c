"""The ``endpoints`` step: private doors from the VPC to AWS services, so tasks need no internet for them.

Interface endpoints (``ecr.api``, ``ecr.dkr``, ``logs``, ``secretsmanager`` by default) sit in the egress
subnets behind the egress security group, with private DNS so the usual service names resolve to them.
The S3 gateway endpoint is a route on the container route table(s): ECR keeps image layers in S3.

Each endpoint has a policy (the default one allows any principal of any account): only this account's
principals, and through the S3 gateway also ECR's image layers, which ECR's own signed URLs fetch. When
the bastion's subnets have no way out (no NAT gateway), the SSM agent's endpoints are added.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.names import route_table_keys
from pointapp.resources import ACCOUNT, Desired, Found, Kind, Ref, Request, ResourceStep
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, from_aws_tags, owner_filters, tag_specifications
from pointapp.typical import Typical

NAME = "endpoints"

#: What the SSM agent calls to register and open sessions: without a NAT gateway, the bastion needs their
#: endpoints (AWS Systems Manager User Guide, "Improve the security of EC2 instances by using VPC endpoints
#: for Systems Manager": ssm, ssmmessages, ec2messages).
SSM_AGENT_SERVICES = ("ssm", "ssmmessages", "ec2messages")


def endpoint_policy(service: str, account: str, partition: str, region: str, vpc: Any) -> dict[str, Any]:
    """The endpoint's policy: every action of this account's principals, and for the S3 gateway ECR's layers.

    ECR hands out image layers as S3 URLs it signs itself, so the layer bucket's statement cannot name the
    account: it names the bucket, GetObject only, and this VPC (Amazon ECR User Guide, "Amazon ECR interface
    VPC endpoints": the S3 gateway endpoint's policy must allow ``prod-<region>-starport-layer-bucket/*``;
    aws:SourceVpc is in the request context of every request through a VPC endpoint, IAM User Guide, "AWS
    global condition context keys"). ECR, CloudWatch Logs, Secrets Manager, S3 and the SSM services
    support endpoint policies (AWS PrivateLink Guide, "AWS services that integrate with AWS PrivateLink").
    """
    statements: list[dict[str, Any]] = [{
        "Sid": "ThisAccountOnly", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalAccount": account}}}]
    if service == "s3":
        statements.append({
            "Sid": "EcrImageLayers", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*",
            "Condition": {"StringEquals": {"aws:SourceVpc": vpc}}})
    return {"Version": "2012-10-17", "Statement": statements}


def _policy(props: Mapping[str, Any]) -> dict[str, Any]:
    return endpoint_policy(props["service"], props["account"], props["partition"], props["region"], props["vpc"])


def found_policy(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The policy an endpoint's description holds (a JSON document), or None when it has none."""
    text = raw.get("PolicyDocument")
    return json.loads(text) if text else None


class VpcEndpoint(Kind):
    name = "vpc-endpoint"
    service = "ec2"
    # The endpoints become available on AWS while the steps after this one run: nothing here waits for them.
    typical = Typical("vpc-endpoint", 90, "interface endpoints from pendingAcceptance/pending to available (together)",
                      "AWS PrivateLink Guide, interface endpoint lifecycle; no botocore waiter")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        pages = ctx.client("ec2").get_paginator("describe_vpc_endpoints").paginate(Filters=owner_filters(spec, step))
        return [Found(self.name, from_aws_tags(e.get("Tags"))[KEY], e["VpcEndpointId"], from_aws_tags(e.get("Tags")), e)
                for page in pages for e in page["VpcEndpoints"]
                if e.get("State", "").lower() not in ("deleting", "deleted")]

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        raw = found.raw
        if raw.get("VpcEndpointType") != props["type"] or not raw["ServiceName"].endswith("." + props["service"]):
            return f"now {raw.get('VpcEndpointType')} {raw['ServiceName']}"
        if raw.get("VpcId") != props["vpc"] and not str(props["vpc"]).startswith("<"):
            return f"in another VPC ({raw.get('VpcId')})"
        return None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        current = {
            "subnets": sorted(raw.get("SubnetIds", [])),
            "groups": sorted(g["GroupId"] for g in raw.get("Groups", [])),
            "route_tables": sorted(raw.get("RouteTableIds", [])),
            "private_dns": bool(raw.get("PrivateDnsEnabled")),
            "policy": found_policy(raw),
        }
        wanted = {"subnets": sorted(props.get("subnets", [])), "groups": sorted(props.get("groups", [])),
                  "route_tables": sorted(props.get("route_tables", [])), "private_dns": props["type"] == "Interface",
                  "policy": _policy(props)}
        if props["type"] != "Interface":  # private DNS is a property of interface endpoints only
            del current["private_dns"], wanted["private_dns"]
        return changed(current, wanted)

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        """``props["region"]`` is the target's region, which names the service."""
        args: dict[str, Any] = {"VpcEndpointType": props["type"], "VpcId": props["vpc"],
                                "ServiceName": f"com.amazonaws.{props['region']}.{props['service']}",
                                "PolicyDocument": json.dumps(_policy(props)),
                                "TagSpecifications": tag_specifications("vpc-endpoint", tags)}
        if props["type"] == "Interface":
            args.update(SubnetIds=list(props["subnets"]), SecurityGroupIds=list(props["groups"]),
                        PrivateDnsEnabled=True)
        else:
            args.update(RouteTableIds=list(props["route_tables"]))
        return {"create_vpc_endpoint": args}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["create_vpc_endpoint"]
        endpoint = ctx.client("ec2").create_vpc_endpoint(**request)["VpcEndpoint"]
        return Found(self.name, desired.key, endpoint["VpcEndpointId"], dict(tags), endpoint)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "ec2", found.id, tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ec2 = ctx.client("ec2")
        have = {"subnets": set(found.raw.get("SubnetIds", [])),
                "groups": {g["GroupId"] for g in found.raw.get("Groups", [])},
                "route_tables": set(found.raw.get("RouteTableIds", []))}
        names = {"subnets": "SubnetIds", "groups": "SecurityGroupIds", "route_tables": "RouteTableIds"}
        args: dict[str, Any] = {}
        for field, api_name in names.items():
            if field in changes:
                want = set(changes[field])
                if want - have[field]:
                    args[f"Add{api_name}"] = sorted(want - have[field])
                if have[field] - want:
                    args[f"Remove{api_name}"] = sorted(have[field] - want)
        if "private_dns" in changes:
            args["PrivateDnsEnabled"] = changes["private_dns"]
        if "policy" in changes:  # ModifyVpcEndpoint replaces the policy (Amazon EC2 API Reference, PolicyDocument)
            args["PolicyDocument"] = json.dumps(changes["policy"])
        if args:
            ec2.modify_vpc_endpoint(VpcEndpointId=found.id, **args)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ctx.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[found.id])
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        where = raw.get("SubnetIds") or raw.get("RouteTableIds") or []
        policy = found_policy(raw)
        limited = policy is not None and all(s.get("Condition") for s in policy.get("Statement", []))
        return (f"{raw.get('VpcEndpointType')} {raw.get('ServiceName')} {raw.get('State')} in {len(where)} place(s), "
                + ("policy limited to the account" if limited else "policy open to any principal"))


#: What every endpoint's policy names of the target (see :func:`endpoint_policy`).
TARGET = {"account": ACCOUNT, "partition": Ref("runtime", "partition"), "region": Ref("runtime", "region")}


def bastion_has_no_way_out(spec: Spec) -> bool:
    """Whether the bastion's subnets have no route out (no NAT gateway), so SSM is reached by endpoints only."""
    network = spec.network
    route = network.route_tables[network.tiers[spec.bastion.tier].route_table].default_route
    return route == "none" or (route == "nat_gateway" and network.nat == "none")


def interface_services(spec: Spec) -> list[str]:
    """The interface endpoints' services: the spec's, and the SSM agent's when the bastion needs them."""
    services = list(spec.endpoints.interface)
    if bastion_has_no_way_out(spec):
        services += [service for service in SSM_AGENT_SERVICES if service not in services]
    return services


def desired(spec: Spec) -> list[Desired]:
    """One interface endpoint per service, and the S3 gateway endpoint; each with its policy."""
    settings = spec.endpoints
    subnets = [Ref("network", f"subnet/{settings.tier}/{i}") for i in range(spec.network.zones)]
    wanted = [Desired("vpc-endpoint", f"endpoint/{service}", spec.name("vpce", service.replace(".", "-")),
                      {"type": "Interface", "service": service, "vpc": Ref("network", "vpc"), "subnets": subnets,
                       "groups": [Ref("network", f"sg/{settings.security_group}")], **TARGET},
                      f"interface endpoint for {service} in the {settings.tier} subnets, private DNS, "
                      "policy: this account only")
              for service in interface_services(spec)]
    if settings.s3_gateway:
        tables = [Ref("network", key) for table in settings.gateway_route_tables for key in route_table_keys(spec, table)]
        wanted.append(Desired("vpc-endpoint", "endpoint/s3", spec.name("vpce", "s3"),
                              {"type": "Gateway", "service": "s3", "vpc": Ref("network", "vpc"), "route_tables": tables,
                               **TARGET},
                              "S3 gateway endpoint on the " + ", ".join(settings.gateway_route_tables) + " route table, "
                              "policy: this account, and ECR's image layers"))
    return wanted


STEP = ResourceStep(NAME, [VpcEndpoint()], desired, uses=("network",))
