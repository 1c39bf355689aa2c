"""``pointapp export cloudformation``: templates that lint clean, pass checkov but for documented waivers,
and, deployed to the emulator's CloudFormation, build the same network as the ``network`` step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import pointapp
from pointapp import cli, cloudformation
from pointapp.spec import load_spec
from tests.conftest import MOTO_CONFIG, REGION, make_context

ROOT = Path(__file__).resolve().parents[1]
ZONES = ["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]  # what the region offers (the emulator agrees)


#: The spec variants the export is checked on: both environments, and prod with HTTPS and GitHub releases.
VARIANTS = {
    "prod": ("prod", None),
    "staging": ("staging", None),
    "prod-full": ("prod", {"service": {"certificate_arn": "arn:aws:acm:ap-northeast-1:123456789012:certificate/x"},
                           "delivery": {"github_repository": "acme/api"},
                           "frontend": {"repository": "https://github.com/acme/web", "api_domain": "api.example.com",
                                        "access_token_parameter": "/acme/github-token"}}),
}


#: Another variant for the check of each kind's request: the frontend without a domain of its own for the API.
REQUEST_VARIANTS = {**VARIANTS, "staging-frontend": ("staging", {"frontend": {
    "repository": "https://github.com/acme/web", "access_token_parameter": "secretsmanager:acme/github-token"}}),
    # and on the user's own domain: the certificate, the records and the frontend's custom domain
    "prod-domain": ("prod", {"domain": {"name": "example.com"}, "frontend": {
        "repository": "https://github.com/acme/web", "access_token_parameter": "secretsmanager:acme/github-token"}})}


def spec_of(variant: str) -> Any:
    env, overrides = REQUEST_VARIANTS[variant]
    return load_spec(env, overrides)


def templates(variant: str) -> dict[str, Any]:
    return cloudformation.templates(spec_of(variant), REGION, ZONES)


def name_of(item: dict[str, Any]) -> str:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}.get("Name", "")


def _destination(route: dict[str, Any]) -> str:
    return str(route.get("DestinationCidrBlock") or ("prefix list" if route.get("DestinationPrefixListId") else None))


def vpc_topology(vpc_id: str) -> dict[str, Any]:
    """Everything in one VPC, by Name: two VPCs built from the same spec compare equal."""
    ec2 = boto3.client("ec2", region_name=REGION)
    inside = [{"Name": "vpc-id", "Values": [vpc_id]}]
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(Filters=inside)["Subnets"]}
    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(Filters=inside)["SecurityGroups"]}
    nats = {n["NatGatewayId"]: n for n in ec2.describe_nat_gateways(Filter=inside)["NatGateways"]
            if n["State"] in ("pending", "available")}
    igws = {i["InternetGatewayId"]: i for i in ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]}
    # gateways by what they are and where: the emulator's CloudFormation drops their tags
    named = {**{k: name_of(v) for k, v in subnets.items()},
             **{k: f"NAT gateway in {name_of(subnets[v['SubnetId']])}" for k, v in nats.items()},
             **{k: "internet gateway" for k in igws}, **{k: g["GroupName"] for k, g in groups.items()}}
    dns = {a: ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=a)[a[0].upper() + a[1:]]["Value"]
           for a in ("enableDnsHostnames", "enableDnsSupport")}
    flow_logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
    return {
        "vpc": (name_of(vpc), vpc["CidrBlock"], dns),
        "subnets": sorted((name_of(s), s["CidrBlock"], s["AvailabilityZone"], s["MapPublicIpOnLaunch"])
                          for s in subnets.values()),
        "internet_gateways": len(igws),  # the emulator's CloudFormation drops an internet gateway's tags
        "nat_gateways": sorted(named[n["NatGatewayId"]] for n in nats.values()),
        "routes": sorted(tuple(sorted((_destination(r),
                                       named.get(r.get("NatGatewayId") or r.get("GatewayId"), "local"))
                                      for r in t["Routes"]))
                         for t in ec2.describe_route_tables(Filters=inside)["RouteTables"]),
        "associations": sorted((named[a["SubnetId"]], tuple(sorted(_destination(r) for r in t["Routes"])))
                               for t in ec2.describe_route_tables(Filters=inside)["RouteTables"]
                               for a in t["Associations"] if a.get("SubnetId")),
        "security_groups": sorted(set(
            (g["GroupName"], g["Description"], direction, p["IpProtocol"], p.get("FromPort"), source)
            for g in groups.values() if g["GroupName"] != "default"
            for direction, key in (("in", "IpPermissions"), ("out", "IpPermissionsEgress")) for p in g[key]
            for source in [r["CidrIp"] for r in p.get("IpRanges", [])] + [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]
            + [named[r["GroupId"]] for r in p.get("UserIdGroupPairs", [])])),
        "endpoints": sorted((e["VpcEndpointType"], e["ServiceName"], len(e.get("SubnetIds", [])), len(e.get("RouteTableIds", [])))
                            for e in ec2.describe_vpc_endpoints(Filters=inside)["VpcEndpoints"]),
        "flow_logs": sorted((f["TrafficType"], f["LogGroupName"], f["DeliverLogsPermissionArn"].rsplit("/", 1)[-1])
                            for f in flow_logs),
    }


def test_the_network_template_builds_what_the_network_step_builds() -> None:
    spec = load_spec("prod")
    with mock_aws(config=MOTO_CONFIG):  # the network step, on an empty emulator
        ctx = make_context(spec)
        pointapp.up(ctx, only=["network", "endpoints"])  # the steps of the network group
        from_step = vpc_topology(ctx.outputs("network")["vpc"])
        ec2 = boto3.client("ec2", region_name=REGION)
        rtbs = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [ctx.outputs("network")["vpc"]]}])["RouteTables"]
        subnets = {s["SubnetId"]: name_of(s) for s in ec2.describe_subnets()["Subnets"]}
        from_step_associations = sorted((subnets[a["SubnetId"]], name_of(t)) for t in rtbs
                                        for a in t["Associations"] if a.get("SubnetId"))
    with mock_aws(config=MOTO_CONFIG):  # the exported template, on another empty emulator
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="point-app-prod-network", TemplateBody=json.dumps(templates("prod")["network"]),
                         Capabilities=["CAPABILITY_NAMED_IAM"])
        stack = cfn.describe_stacks(StackName="point-app-prod-network")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        vpc = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["Vpc"]
        from_stack = vpc_topology(vpc)
        exported = {e["Name"] for e in cfn.list_exports()["Exports"]}
        tags = boto3.client("ec2", region_name=REGION).describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]
    assert from_step["subnets"] and from_step["security_groups"] and from_step["flow_logs"] and from_step["nat_gateways"]
    # the emulator's CloudFormation ignores a VPC's DNS settings and a subnet's MapPublicIpOnLaunch (AWS
    # applies them): for those two, the template itself is compared with what the step built
    resources = templates("prod")["network"]["Resources"]
    vpc_properties = resources["Vpc"]["Properties"]
    assert from_step["vpc"][2] == {"enableDnsHostnames": vpc_properties["EnableDnsHostnames"],
                                   "enableDnsSupport": vpc_properties["EnableDnsSupport"]}
    public = {name_of(r["Properties"]): r["Properties"]["MapPublicIpOnLaunch"]
              for r in resources.values() if r["Type"] == "AWS::EC2::Subnet"}
    assert {s[0]: s[3] for s in from_step["subnets"]} == public
    assert [s[:3] for s in from_stack["subnets"]] == [s[:3] for s in from_step["subnets"]]
    assert from_stack["vpc"][:2] == from_step["vpc"][:2]
    # nor does it show the subnet associations it makes: the template's must be the step's
    tables = {key: name_of(r["Properties"]) for key, r in resources.items() if r["Type"] == "AWS::EC2::RouteTable"}
    subnet_names = {key: name for key, name in ((k, name_of(r["Properties"])) for k, r in resources.items()) if name in public}
    associated = sorted((subnet_names[r["Properties"]["SubnetId"]["Ref"]], tables[r["Properties"]["RouteTableId"]["Ref"]])
                        for r in resources.values() if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation")
    assert associated == from_step_associations
    assert len(from_step["associations"]) == len(associated) == 12
    # nor IPv6 sources of ingress rules
    group_names = {key: r["Properties"]["GroupName"] for key, r in resources.items() if r["Type"] == "AWS::EC2::SecurityGroup"}
    ipv6 = sorted((group_names[r["Properties"]["GroupId"]["Fn::GetAtt"][0]], r["Properties"]["FromPort"], r["Properties"]["CidrIpv6"])
                  for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress" and "CidrIpv6" in r["Properties"])
    assert ipv6 == sorted((g[0], g[4], g[5]) for g in from_step["security_groups"] if ":" in g[5]) == [
        ("point-app-prod-sg-ingress", 80, "::/0")]
    assert from_stack["security_groups"] == [g for g in from_step["security_groups"] if ":" not in g[5]]
    for key in from_step:
        if key not in ("vpc", "subnets", "associations", "security_groups"):
            assert from_stack[key] == from_step[key], key
    assert {"point-app-prod-Vpc", "point-app-prod-SubnetDb0", "point-app-prod-SgContainer"} <= exported
    # the stack owns what it made: no pointapp ownership tag, so pointapp never changes or deletes it
    assert not [t for t in tags if t["Key"].startswith("pointapp:")]


@pytest.mark.parametrize("variant", VARIANTS)
def test_stacks_import_only_what_an_earlier_stack_exports(variant: str) -> None:
    bodies = templates(variant)
    owner = spec_of(variant).owner
    exported: set[str] = set()

    def imports(value: Any) -> set[str]:
        if isinstance(value, dict):
            found = {value["Fn::ImportValue"]} if "Fn::ImportValue" in value else set()
            return found.union(*(imports(item) for item in value.values()))
        if isinstance(value, list):
            return set().union(*(imports(item) for item in value))
        return set()

    for group, body in bodies.items():  # in deployment order
        needed = imports(body)
        assert needed <= exported, f"{group} imports {needed - exported} before any stack exports it"
        exported |= {o["Export"]["Name"] for o in body.get("Outputs", {}).values()}
    assert imports(bodies["service"]) >= {f"{owner}-DatabaseInstanceSecret", f"{owner}-SgContainer"}
    assert imports(bodies["delivery"]) >= {f"{owner}-ServiceListenerProduction", f"{owner}-ServiceListenerTest"}
    full = variant == "prod-full"
    # no frontend configured, no domain: no template of theirs
    assert list(bodies) == [g for g in cloudformation.GROUPS if (full or g != "frontend") and g != "domain"]
    assert ("Oidc" in bodies["delivery"]["Resources"]) == ("RoleGithub" in bodies["delivery"]["Resources"]) == full
    if full:  # the repository token stays out of the template: a NoEcho parameter
        assert bodies["frontend"]["Parameters"]["RepositoryAccessToken"]["NoEcho"] is True
        assert bodies["frontend"]["Resources"]["App"]["Properties"]["AccessToken"] == {"Ref": "RepositoryAccessToken"}
    listeners = {k: r["Properties"] for k, r in bodies["service"]["Resources"].items() if k.startswith("Listener")}
    assert (listeners["ListenerProduction"]["Protocol"], listeners["ListenerProduction"]["Port"]) == (
        ("HTTPS", 443) if full else ("HTTP", 80))


def _written(tmp_path: Path, variant: str) -> list[Path]:
    return cloudformation.write(spec_of(variant), REGION, ZONES, tmp_path / variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_cfn_lint_finds_no_error(tmp_path: Path, variant: str) -> None:
    paths = _written(tmp_path, variant)
    lint = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", *map(str, paths)],
                          capture_output=True, text=True, check=False)
    errors = [line for line in lint.stdout.splitlines() if ":E" in line]
    assert errors == [], "\n".join(errors)
    assert lint.returncode in (0, 4, 8, 12), lint.stderr  # warnings and informational notes only


def checkov_binary() -> Path:
    """checkov lives in its own environment (its pins clash with the product's); ``make test`` installs it."""
    path = Path(os.environ.get("POINTAPP_CHECKOV", ROOT / ".venv" / "checkov" / "bin" / "checkov"))
    assert path.exists(), f"checkov not found at {path}: run `make test` (it installs checkov), or set POINTAPP_CHECKOV"
    return path


def test_checkov_fails_only_documented_waivers(tmp_path: Path) -> None:
    failed: dict[str, set[str]] = {}
    for env in VARIANTS:
        folder = _written(tmp_path, env)[0].parent
        run = subprocess.run([str(checkov_binary()), "-d", str(folder), "--framework", "cloudformation", "-o", "json",
                              "--quiet", "--compact"], capture_output=True, text=True, check=False)
        reports = json.loads(run.stdout)
        for report in reports if isinstance(reports, list) else [reports]:
            assert report["summary"]["passed"] > 50, report["summary"]  # checkov really read the templates
            for check in report["results"]["failed_checks"]:
                failed.setdefault(check["check_id"], set()).add(f"{env}: {check['resource']}")
    unwaived = {check: where for check, where in failed.items() if check not in cloudformation.WAIVERS}
    assert unwaived == {}
    assert set(cloudformation.WAIVERS) == set(failed), "a waiver no check needs any more: remove it"


def test_the_cli_writes_one_template_per_step_group(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["export", "cloudformation", "--env", "staging", "--endpoint-url", server, "-o", str(tmp_path / "cfn")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "cfn").iterdir())
    assert names == sorted(f"point-app-staging-{group}.json" for group in cloudformation.GROUPS
                           if group not in ("frontend", "domain"))
    assert out.count("wrote ") == len(names)
    network = json.loads((tmp_path / "cfn" / "point-app-staging-network.json").read_text())
    assert network["Resources"]["SubnetDb1"]["Properties"]["AvailabilityZone"] == "ap-northeast-1c"
    data = json.loads((tmp_path / "cfn" / "point-app-staging-data.json").read_text())
    instance = data["Resources"]["Instance"]
    assert instance["Properties"]["MultiAZ"] is False and instance["DeletionPolicy"] == "Delete"


# --- one request per kind: the template's properties are the create's ------------------------------------

#: Where a template deliberately differs from the create request of its kind, and why. Per kind:
#: ``inputs``, props the template gives the request builder as its own expressions (what the create reads
#: from the target when it runs, or a template parameter); ``dropped``, request fields (``operation.field``)
#: the template leaves out; ``template``, properties the template sets itself, or to another value than
#: the request's. Not listed, since true of every kind: pointapp's ownership tags are never in a template
#: (a stack owns what it makes; checked below).
DIFFERENCES: dict[str, dict[str, set[str]]] = {
    # the network's layout
    "vpc": {},
    "internet-gateway": {},
    "gateway-attachment": {},
    # ModifySubnetAttribute names the subnet, which is the resource itself; a private subnet's
    # MapPublicIpOnLaunch is left at its default (false) by the step, and said by the template
    "subnet": {"dropped": {"modify_subnet_attribute.SubnetId"}, "template": {"MapPublicIpOnLaunch"}},
    "elastic-ip": {},
    "nat-gateway": {},
    "route-table": {},
    "route": {},
    "association": {},
    # the all-outbound rule EC2 gives every new group, written out with its description
    "security-group": {"template": {"SecurityGroupEgress"}},
    "ingress": {},
    # the resource steps' kinds
    "ecr-repository": {},
    "db-subnet-group": {},
    # the MySQL version is the template's parameter MysqlEngineVersion, which defaults to the spec's;
    # the template also exports the error and slow-query logs to CloudWatch Logs, which the create does not ask
    "db-instance": {"inputs": {"engine_version"}, "template": {"EnableCloudwatchLogsExports"}},
    "cache-subnet-group": {},
    "replication-group": {},
    "log-group": {},
    "iam-role": {},
    "flow-log": {},
    "ecs-cluster": {},
    "task-definition": {},
    "target-group": {},
    # the template drops HTTP headers with invalid fields; the create does not set the attribute
    "load-balancer": {"template": {"LoadBalancerAttributes"}},
    "listener": {},
    "ecs-service": {},
    # the bucket's name is the template's expression of pointapp's (owner, account, region): the stack's own;
    # CloudFormation makes a bucket in the stack's region and takes no location constraint
    "s3-bucket": {"inputs": {"bucket"}, "dropped": {"create_bucket.CreateBucketConfiguration"}},
    "oidc-provider": {},
    "codedeploy-application": {},
    "deployment-group": {},
    "pipeline": {},
    "event-rule": {},
    "ses-configuration-set": {},
    # the MAIL FROM domain is the identity's own call (PutEmailIdentityMailFromAttributes), a property in a stack
    "ses-identity": {"template": {"MailFromAttributes"}},
    # AWS::IAM::InstanceProfile has no Tags property
    "instance-profile": {"dropped": {"create_instance_profile.Tags"}},
    # the AMI is the stack's dynamic reference to the SSM parameter the create reads; one instance is what a
    # resource is (no MinCount, MaxCount); the template turns detailed monitoring off, the create leaves EC2's default
    # (basic monitoring)
    "ec2-instance": {"inputs": {"image"}, "dropped": {"run_instances.MinCount", "run_instances.MaxCount"},
                     "template": {"Monitoring"}},
    # the service is named with the stack's region (Fn::Sub)
    "vpc-endpoint": {"inputs": {"region"}},
    # Secrets Manager generates the basic-auth credentials in the stack; the value never is in the template
    "secret": {"inputs": {"value"}, "dropped": {"create_secret.SecretString"}, "template": {"GenerateSecretString"}},
    # the repository token: a dynamic reference or a NoEcho parameter; the rewrite's target is the imported DNS
    # name of the load balancer (Fn::Sub); AWS::Amplify::App has no enableBranchAutoBuild (each branch says EnableAutoBuild)
    "amplify-app": {"inputs": {"token", "api_origin"}, "dropped": {"create_app.enableBranchAutoBuild"},
                    "template": {"CustomRules"}},
    # the user's domain: the stack's certificate writes its validation records itself (DomainValidationOptions);
    # an idempotency token is a call's, not a resource's
    "acm-certificate": {"dropped": {"request_certificate.IdempotencyToken"}, "template": {"DomainValidationOptions"}},
    "dns-record": {},
    # a DKIM record's name and value are the stack's SES identity's (DkimDNSTokenName1, DkimDNSTokenValue1, ...)
    "dkim-record": {"inputs": {"name", "values"}},
    "amplify-domain": {},
    # the staging branch's credentials are the generated secret's, resolved by CloudFormation
    "amplify-branch": {"inputs": {"credentials"}, "dropped": {"create_branch.basicAuthCredentials"},
                       "template": {"BasicAuthConfig"}},
}


def _fields(request: dict[str, Any]) -> list[str]:
    """``operation.field`` for every field of a request; an operation called once per item counts as one field."""
    return [operation if isinstance(args, list) else f"{operation}.{name}"
            for operation, args in request.items() for name in ([""] if isinstance(args, list) else args)]


def _differences(shape: Any, request: dict[str, Any], properties: dict[str, Any], found: dict[str, set[str]]) -> None:
    """Add to ``found`` the request fields ``shape`` leaves out and the properties that are not the request's."""
    for field in _fields(request):
        operation, _, name = field.partition(".")
        table = shape.fields[operation]
        if (table[name] if name else table) is None:
            found["dropped"].add(field)
    mapped = cloudformation.request_properties(shape, request)
    if "Tags" in mapped:  # the create sends the ownership tags; a template never has them
        assert [t for t in mapped["Tags"] if t["Key"].startswith("pointapp:")], shape.type
        mapped["Tags"] = [t for t in mapped["Tags"] if not t["Key"].startswith("pointapp:")]
    found["template"] |= {name for name in set(mapped) | set(properties) if mapped.get(name) != properties.get(name)}


def test_each_exported_resource_is_its_create_request() -> None:
    """Kind by kind, over every variant: the exported properties are the create request's (mapped to
    CloudFormation's names), but for the deliberate differences DIFFERENCES lists, each of which is still there."""
    from pointapp.tags import ownership_tags

    seen: dict[str, dict[str, set[str]]] = {}

    def found(kind: str) -> dict[str, set[str]]:
        return seen.setdefault(kind, {"inputs": set(), "dropped": set(), "template": set()})

    for variant in REQUEST_VARIANTS:
        spec, bodies = spec_of(variant), templates(variant)
        for group in bodies:
            for item in cloudformation.exported_resources(spec, group):
                kind, shape = item.desired.kind, cloudformation.SHAPES[item.desired.kind]
                exported = bodies[group]["Resources"][item.logical]
                assert exported["Type"] == shape.type
                # the request as the create makes it: with the ownership tags
                owned = ownership_tags(spec, item.step, item.desired.key, item.desired.name)
                request = cloudformation.template_request(spec, item.kind, item.desired, item.resolve, owned)
                found(kind)["inputs"] |= set(shape.inputs(spec, item.desired))
                _differences(shape, request, exported["Properties"], found(kind))
        # the network's layout: the requests the network step's kinds send, for the same layout
        for key, what, request, _ in cloudformation.network_requests(
                spec, REGION, ZONES, lambda key, name, spec=spec: ownership_tags(spec, "network", key, name)):
            shape = cloudformation.NETWORK_SHAPES[what]
            exported = bodies["network"]["Resources"][cloudformation.logical_id(key)]
            assert exported["Type"] == shape.type
            _differences(shape, request, exported["Properties"], found(what))
    assert set(seen) == set(DIFFERENCES) == set(cloudformation.SHAPES) | set(cloudformation.NETWORK_SHAPES)
    assert seen == {kind: {"inputs": set(), "dropped": set(), "template": set(), **DIFFERENCES[kind]} for kind in seen}


def test_the_exported_registry_takes_a_second_push_of_latest() -> None:
    """Tags are immutable except the one CI moves, as the registry step makes the repository."""
    from pointapp.steps import registry

    repository = templates("prod")["registry"]["Resources"]["Repository"]["Properties"]
    made = registry.Repository().request(spec_of("prod"), registry.desired(spec_of("prod"))[0],
                                         registry.desired(spec_of("prod"))[0].props, {})["create_repository"]
    assert (repository["ImageTagMutability"], made["imageTagMutability"]) == ("IMMUTABLE_WITH_EXCLUSION",) * 2
    assert repository["ImageTagMutabilityExclusionFilters"] == [
        {"ImageTagMutabilityExclusionFilterType": "WILDCARD", "ImageTagMutabilityExclusionFilterValue": "latest"}]
