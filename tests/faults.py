"""Fault injection over a full ``up`` on a moto server.

The harness makes the k-th mutating AWS call of ``up`` fail, either before it is sent (an error
response) or after it took effect (the response is lost), then runs ``up`` again without faults and
compares everything the emulator holds with a clean run, by name: the same resources, none twice. Then
``down`` must leave nothing pointapp owns. :func:`census` lists resources without looking at tags, so a
resource created but never tagged (and so invisible to pointapp) still counts.
"""

from __future__ import annotations

import threading
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

import pointapp
from pointapp.target import READ_PREFIXES, Context, share_service_models
from tests.aws_behaviour import ACCOUNT

REGION = "ap-northeast-1"
#: How long the quick emulator's "for a while" lasts (tests/conftest.py ``quick_aws_like``), in seconds.
WINDOW = 0.5
#: The pause of the runs' waits between attempts: just past a window, so a call refused "for a while" is
#: refused once and then accepted, whatever the machine's load, as with the product's emulator pause
#: (:data:`pointapp.emulator.EMULATOR_POLL_SECONDS`), in less time. The calls made stay the same.
PAUSE = WINDOW + 0.1


class InjectedFault(Exception):
    """The failure the harness injects (never raised by pointapp itself)."""


def _name(item: dict[str, Any], default: str = "untagged") -> str:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}.get("Name", default)


_CLIENTS: dict[tuple[str, str], Any] = {}


def client_for(endpoint: str, service: str) -> Any:
    if (endpoint, service) not in _CLIENTS:
        session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        _CLIENTS[(endpoint, service)] = share_service_models(session).client(service, endpoint_url=endpoint)
    return _CLIENTS[(endpoint, service)]


#: The kinds of the census that are EC2's.
EC2_KINDS = frozenset({"vpc", "subnet", "security-group", "security-group-rule", "route-table", "route", "route-association",
                       "internet-gateway", "nat-gateway", "elastic-ip", "flow-log", "vpc-endpoint", "instance"})
#: Adds resources of a kind to a census: ``add(kind, names)``.
Add = Callable[[str, Any], None]


def census(endpoint: str, *, ec2_by_api: bool = False) -> Counter[tuple[str, str]]:
    """Every resource of the kinds pointapp makes, by (kind, name), whoever owns it and whatever its tags.

    EC2's are read from the emulator's EC2 backend in this process (they are the most, and listing them
    through the API took half of a census's time): the same resources and fields the API answers, named
    alike (``ec2_by_api`` lists them through the API instead; tests/test_faults.py checks that both count
    the same). They are read after the other kinds' calls, each of which first lets the AWS-behaviour layer
    finish what its windows ended, as a call to EC2 would."""

    def client(service: str) -> Any:
        return client_for(endpoint, service)

    seen: Counter[tuple[str, str]] = Counter()

    def add(kind: str, names: Any) -> None:
        seen.update((kind, str(name)) for name in names)

    iam = client("iam")
    roles = iam.get_account_authorization_details(Filter=["Role"])["RoleDetailList"]  # each with its inline policies
    add("iam-role", (r["RoleName"] for r in roles))
    add("iam-role-policy", (f"{r['RoleName']}/{p['PolicyName']}" for r in roles for p in r.get("RolePolicyList", [])))
    add("instance-profile", (p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]))
    add("oidc-provider", (p["Arn"].rsplit("/", 1)[-1] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]))
    add("log-group", (g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]))
    add("ecr-repository", (r["repositoryName"] for r in client("ecr").describe_repositories()["repositories"]))
    ecs = client("ecs")
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
    add("ecs-cluster", (c["clusterName"] for c in clusters if c["status"] == "ACTIVE"))
    for cluster in clusters:
        arns = ecs.list_services(cluster=cluster["clusterArn"])["serviceArns"]
        services = ecs.describe_services(cluster=cluster["clusterArn"], services=arns)["services"] if arns else []
        add("ecs-service", (s["serviceName"] for s in services if s["status"] == "ACTIVE"))
    add("task-definition", (arn.rsplit("/", 1)[-1].split(":")[0] for arn in
                            ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]))
    elbv2 = client("elbv2")
    balancers = elbv2.describe_load_balancers()["LoadBalancers"]
    add("load-balancer", (b["LoadBalancerName"] for b in balancers))
    add("listener", (f"{b['LoadBalancerName']}:{listener['Port']}" for b in balancers
                     for listener in elbv2.describe_listeners(LoadBalancerArn=b["LoadBalancerArn"])["Listeners"]))
    add("target-group", (g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]))
    rds = client("rds")
    add("db-instance", (d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
                        if d["DBInstanceStatus"] != "deleting"))
    add("db-subnet-group", (g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]))
    elasticache = client("elasticache")
    add("replication-group", (g["ReplicationGroupId"] for g in elasticache.describe_replication_groups()["ReplicationGroups"]
                              if g["Status"] != "deleting"))
    add("cache-subnet-group", (g["CacheSubnetGroupName"] for g in elasticache.describe_cache_subnet_groups()["CacheSubnetGroups"]
                               if g["CacheSubnetGroupName"] != "default"))
    secrets = client("secretsmanager").list_secrets()["SecretList"]
    add("secret", [("rds!db-<managed>" if s["Name"].startswith("rds!db-") else s["Name"])  # RDS names its own secret
                   for s in secrets if not s.get("DeletedDate")])
    s3 = client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        add("s3-bucket", [bucket["Name"]])
        add("s3-object", (f"{bucket['Name']}/{o['Key']}" for o in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])))
    add("codedeploy-application", client("codedeploy").list_applications()["applications"])
    add("pipeline", (p["name"] for p in client("codepipeline").list_pipelines()["pipelines"]))
    add("event-rule", (r["Name"] for r in client("events").list_rules()["Rules"]))
    sesv2 = client("sesv2")
    add("email-identity", (i["IdentityName"] for i in sesv2.list_email_identities()["EmailIdentities"]))
    add("configuration-set", sesv2.list_configuration_sets()["ConfigurationSets"])
    if ec2_by_api:
        _ec2_by_api(client("ec2"), add)
    else:
        _ec2_of_the_backend(add)
    return seen


def _ec2_by_api(ec2: Any, add: Add) -> None:
    """EC2's resources of the census, through the API: those of every VPC but the default one."""
    vpcs = [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    ours = [{"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs] or ["none"]}]
    add("vpc", (f"{_name(v)} {v['CidrBlock']}" for v in vpcs))
    add("subnet", (f"{_name(s)} {s['CidrBlock']}" for s in ec2.describe_subnets(Filters=ours)["Subnets"]))
    groups = ec2.describe_security_groups(Filters=ours)["SecurityGroups"]
    add("security-group", (g["GroupName"] for g in groups))
    names = {g["GroupId"]: g["GroupName"] for g in groups}
    for group in groups:
        for direction, key in (("in", "IpPermissions"), ("out", "IpPermissionsEgress")):
            for perm in group[key]:
                sources = [r["CidrIp"] for r in perm.get("IpRanges", [])] + [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
                sources += [names.get(r["GroupId"], r["GroupId"]) for r in perm.get("UserIdGroupPairs", [])]
                add("security-group-rule", (f"{group['GroupName']} {direction} {perm['IpProtocol']} {perm.get('FromPort')} {source}"
                                            for source in sources))
    tables = ec2.describe_route_tables(Filters=ours)["RouteTables"]
    add("route-table", (_name(t, "main") for t in tables))
    add("route", (f"{_name(t, 'main')} {r.get('DestinationCidrBlock')}" for t in tables for r in t["Routes"]))
    add("route-association", (_name(t, "main") for t in tables for a in t["Associations"] if a.get("SubnetId")))
    add("internet-gateway", (_name(i) for i in ec2.describe_internet_gateways()["InternetGateways"]
                             if any(a["VpcId"] in {v["VpcId"] for v in vpcs} for a in i.get("Attachments", []))
                             or not i.get("Attachments")))
    add("nat-gateway", (_name(n) for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] in ("pending", "available")))
    add("elastic-ip", (_name(a) for a in ec2.describe_addresses()["Addresses"]))
    add("flow-log", (f["LogGroupName"] for f in ec2.describe_flow_logs()["FlowLogs"]))
    add("vpc-endpoint", (e["ServiceName"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
                         if e["State"].lower() not in ("deleted", "deleting")))
    add("instance", (_name(i) for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": [
        "pending", "running"]}])["Reservations"] for i in r["Instances"]))


def _ec2_of_the_backend(add: Add) -> None:
    """What :func:`_ec2_by_api` lists, read from moto's EC2 backend of this process."""
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[ACCOUNT][REGION]

    def name(resource_id: str | None, default: str = "untagged") -> str:
        return str((ec2.tags.get(resource_id) or {}).get("Name", default))

    vpcs = [v for v in list(ec2.vpcs.values()) if not v.is_default]
    ours = {v.id for v in vpcs}
    add("vpc", (f"{name(v.id)} {v.cidr_block}" for v in vpcs))
    add("subnet", (f"{name(s.id)} {s.cidr_block}" for zone in list(ec2.subnets.values()) for s in list(zone.values())
                   if s.vpc_id in ours))
    groups = [g for vpc, kept in list(ec2.groups.items()) if vpc in ours for g in list(kept.values())]
    add("security-group", (g.name for g in groups))
    names = {g.id: g.name for g in groups}
    for group in groups:
        for direction, permissions in (("in", group.ip_permissions), ("out", group.ip_permissions_egress)):
            for perm in permissions:
                sources = [r["CidrIp"] for r in perm.ip_ranges] + [r["CidrIpv6"] for r in perm.ipv6_ranges]
                sources += [names.get(p["GroupId"], p["GroupId"]) for p in perm.user_id_group_pairs]
                add("security-group-rule", (f"{group.name} {direction} {perm.ip_protocol} {perm.from_port} {source}"
                                            for source in sources))
    tables = [t for t in list(ec2.route_tables.values()) if t.vpc_id in ours]
    add("route-table", (name(t.id, "main") for t in tables))
    add("route", (f"{name(t.id, 'main')} {r.destination_cidr_block}" for t in tables for r in t.routes))
    add("route-association", (name(t.id, "main") for t in tables for a in t.associations if a.get("SubnetId")))
    add("internet-gateway", (name(i.id) for i in list(ec2.internet_gateways.values())
                             if i.vpc is None or i.vpc.id in ours))
    add("nat-gateway", (name(n.id) for n in list(ec2.nat_gateways.values()) if n.state in ("pending", "available")))
    add("elastic-ip", (name(a.allocation_id) for a in list(ec2.addresses)))
    add("flow-log", (f.log_group_name for f in list(ec2.flow_logs.values())))
    add("vpc-endpoint", (e.service_name for e in list(ec2.vpc_end_points.values())
                         if e.state.lower() not in ("deleted", "deleting")))
    add("instance", (name(i.id) for r in list(ec2.reservations.values()) for i in r.instances
                     if i.state in ("pending", "running")))


def reset(endpoint: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).read()


def connect(endpoint: str) -> Context:
    ctx = pointapp.connect(endpoint_url=endpoint, progress=lambda _: None)
    ctx.wait_delay = lambda real_seconds: PAUSE  # type: ignore[method-assign]
    return ctx


def inject(ctx: Context, k: int, lost: bool, operation: str | None = None) -> list[str]:
    """Make the k-th mutating call of ``ctx`` fail, or with ``operation`` (``service:Operation#n``) the n-th
    call of that operation whichever thread makes it; returns a list that names it once it happened."""
    wanted, _, nth = (operation or "").partition("#")
    seen: Counter[str] = Counter()
    hit: list[str] = []
    lock = threading.Lock()

    def hook(model: Any, **_: Any) -> None:
        if model.name.startswith(READ_PREFIXES):
            return
        name = f"{model.service_model.service_name}:{model.name}"
        with lock:
            seen["all"] += 1
            seen[name] += 1
            chosen = (name == wanted and seen[name] == int(nth or 1)) if operation else seen["all"] == k
            if not chosen or hit:
                return
            hit.append(name)
        raise InjectedFault(f"call {operation or k} ({name}) {'lost its response' if lost else 'failed'}")

    ctx.session.events.register("after-call.*.*" if lost else "before-call.*.*", hook)
    return hit


@dataclass
class Clean:
    """A clean run, for comparison: what exists after ``up`` and after ``down``, and the mutating calls."""

    built: Counter[tuple[str, str]]
    emptied: Counter[tuple[str, str]]
    left_owned: list[str]
    calls: list[tuple[str, str]] = field(default_factory=list)  # (step, service:operation) in order

    def calls_of(self, step: str) -> list[int]:
        """The positions (1-based) of the mutating calls ``step`` makes in a clean ``up``."""
        return [i + 1 for i, (name, _) in enumerate(self.calls) if name == step]


def clean_run(endpoint: str) -> Clean:
    """A full ``up`` as the faulty runs make it, recording each mutating call with the step whose work it is
    (the network's NAT routes, added once the NAT gateway is available, count as the network's)."""
    reset(endpoint)
    calls: list[tuple[str, str]] = []
    with connect(endpoint) as ctx:

        def record(model: Any, **_: Any) -> None:
            if not model.name.startswith(READ_PREFIXES):
                calls.append((ctx.work_of_step or "-", f"{model.service_model.service_name}:{model.name}"))

        ctx.session.events.register("before-call.*.*", record)
        pointapp.up(ctx)
    built = census(endpoint)
    with connect(endpoint) as ctx:
        outcome = pointapp.down(ctx)
    return Clean(built, census(endpoint), sorted(f"{c.kind} {c.name}" for c in outcome.remaining or []), calls)


def difference(found: Counter[tuple[str, str]], wanted: Counter[tuple[str, str]]) -> str:
    extra, missing = found - wanted, wanted - found
    parts = [f"extra {kind} {name} x{n}" for (kind, name), n in sorted(extra.items())]
    parts += [f"missing {kind} {name} x{n}" for (kind, name), n in sorted(missing.items())]
    return "; ".join(parts)


def fail_then_converge(endpoint: str, clean: Clean, k: int, lost: bool,
                       check: Callable[[str], None] | None = None, *, operation: str | None = None,
                       parallel: int = 1) -> str:
    """One fault point: fail at call k (or at ``operation``, see :func:`inject`), run ``up`` again, compare;
    ``down``, compare. ``parallel`` is that of both ``up`` runs. Returns the call hit."""
    reset(endpoint)
    with connect(endpoint) as broken:
        hit = inject(broken, k, lost, operation)
        try:
            pointapp.up(broken, parallel=parallel)
        except InjectedFault:
            pass
        else:
            raise AssertionError(f"up never made call {operation or k}")
    assert hit, f"call {operation or k} was never made"
    where = f"after a fault at call {operation or k} ({hit[0]}, {'lost response' if lost else 'error'})"
    with connect(endpoint) as retry:
        pointapp.up(retry, parallel=parallel)
        assert not [c for c in retry.skipped if c.action != "create"], where
    built = census(endpoint)
    assert built == clean.built, f"{where}: {difference(built, clean.built)}"
    with connect(endpoint) as again:
        assert pointapp.plan(again).actionable == [], f"{where}: a second plan is not empty"
        outcome = pointapp.down(again)
    left = sorted(f"{c.kind} {c.name}" for c in outcome.remaining or [])
    assert left == clean.left_owned, f"{where}: down left {left}"
    emptied = census(endpoint)
    assert emptied == clean.emptied, f"{where}: after down, {difference(emptied, clean.emptied)}"
    return hit[0]
