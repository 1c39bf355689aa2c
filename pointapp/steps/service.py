"""The ``service`` step: the API on ECS Fargate behind an Application Load Balancer, ready for blue/green.

A log group and two roles (the task execution role that ECS uses to pull the image, write logs and
inject secrets; the task role the API itself runs with, allowed to send mail from the configured SES
identity and read only its own secrets); an ECS cluster with Container Insights; a Fargate task
definition; the load balancer with a blue and a green target group, the production listener and a
test listener; the ECS service with deployment controller ``CODE_DEPLOY``.

Once CodeDeploy has switched traffic, the listeners forward to the green group: either group is
accepted, so ``up`` never fights a release.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.diffs import Differences, changed
from pointapp.errors import StepError
from pointapp.kinds import (
    DNS_CHANGE,
    Bucket,
    BucketPolicy,
    DnsRecord,
    LogGroup,
    Role,
    bucket_policy_props,
    bucket_policy_runtime,
    customer_key,
    listed_tags,
    policy,
    trust_policy,
)
from pointapp.names import DEFERRED_NAT, api_host, repository_name, sending_configuration_sets
from pointapp.outputs import (
    CERTIFICATE,
    DOMAIN_ZONE,
    LOAD_BALANCER,
    LOAD_BALANCER_DNS,
    PRODUCTION_LISTENER,
    TEST_LISTENER,
)
from pointapp.resources import (
    Arn,
    Desired,
    EarlyPart,
    Found,
    Kind,
    PassingRefusal,
    Ref,
    Request,
    ResourceStep,
    ignore_codes,
    retry_refused,
    wait_for,
)
from pointapp.spec import Spec
from pointapp.tags import ENVIRONMENT, KEY, add_tags, aws_tags, foreign_owner, from_aws_tags, is_owned
from pointapp.taskdef import SCRATCH_VOLUME, revision_request
from pointapp.taskdef import runtime_values as task_runtime
from pointapp.typical import Typical

NAME = "service"


def _ecs_tags(item: Mapping[str, Any]) -> dict[str, str]:
    return from_aws_tags(item.get("tags"), lower=True)


class Cluster(Kind):
    name = "ecs-cluster"
    service = "ecs"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        answer = ctx.client("ecs").describe_clusters(clusters=[spec.name("cluster")], include=["TAGS", "SETTINGS"])
        active = [c for c in answer["clusters"] if c.get("status") == "ACTIVE"]
        return self.owned(spec, step, active, lambda c: c["clusterArn"], _ecs_tags)

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        insights = {s["name"]: s["value"] for s in found.raw.get("settings", [])}.get("containerInsights")
        return Differences() if insights in ("enabled", "enhanced") else changed({"container_insights": insights or "disabled"},
                                                                                 {"container_insights": "enabled"})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_cluster": dict(
            clusterName=desired.name, settings=[{"name": "containerInsights", "value": "enabled"}],
            tags=aws_tags(tags, lower=True))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        cluster = ctx.client("ecs").create_cluster(**self.request(ctx.spec, desired, props, tags)["create_cluster"])["cluster"]
        return Found(self.name, desired.key, cluster["clusterArn"], dict(tags), cluster)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "ecs", found.id, tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "container_insights" in changes:
            ctx.client("ecs").update_cluster_settings(cluster=found.id, settings=[{"name": "containerInsights", "value": "enabled"}])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("ecs").delete_cluster, ["ClusterNotFoundException"], cluster=found.id)
        return None

    def describe_among(self, found: Found, step_found: Iterable[Found]) -> str:
        # The services this step found in the cluster, not DescribeClusters' activeServicesCount: an emulator
        # may leave that at 0 beside a running service, and the row then agrees with the service's own row.
        services = [f.name for f in step_found if f.kind == EcsService.name and f.raw.get("clusterArn") == found.id]
        return f"{found.raw.get('status')}, {len(services)} service{'' if len(services) == 1 else 's'}" + (
            f" ({', '.join(services)})" if services else "")


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _aws_form(value: Any) -> Any:
    """``value`` without the empty lists and maps ECS adds on describe (``secretOptions: []``, ...)."""
    if isinstance(value, Mapping):
        return {k: _aws_form(v) for k, v in value.items() if not _empty(v)}
    if isinstance(value, list):
        return [_aws_form(v) for v in value]
    return value


def compared_container(container: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``wanted`` (what pointapp sets, but the image, which is the release's) of ``container``, in the
    form ECS returns them, so a request and the description of the revision it registered compare equal."""
    form = {k: _aws_form(v) for k, v in container.items() if k in wanted and k != "image" and not _empty(v)}
    # ECS stores hostPort = containerPort in awsvpc mode and tcp when no protocol is given (ECS API reference,
    # PortMapping), and environment variables and secrets in no particular order (terraform-provider-aws #3035).
    if "portMappings" in form:
        form["portMappings"] = [{**m, "hostPort": m.get("hostPort") or m.get("containerPort"),
                                 "protocol": m.get("protocol", "tcp")} for m in form["portMappings"]]
    for field in ("environment", "secrets"):
        if field in form:
            form[field] = sorted(form[field], key=lambda item: str(item.get("name")))
    return form


def _family(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def _revision(arn: str) -> int:
    return int(arn.rsplit(":", 1)[-1])


def active_revisions(ecs: Any, family: str) -> list[str]:
    """The ARNs of the family's ACTIVE revisions, newest first (``familyPrefix`` matches a prefix: the family only)."""
    arns = [arn for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE")
            for arn in page["taskDefinitionArns"] if _family(arn) == family]
    return sorted(arns, key=_revision, reverse=True)


def _tags(answer: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in answer.get("tags", [])}


def family_revisions(ecs: Any, family: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The family's latest ACTIVE revision and the family's ownership tags: those of its newest ACTIVE revision that
    carries pointapp's environment tag ({} when none does).

    Revisions the pipeline or ``pointapp deploy`` register belong to the family's owner, tagged or not: one made
    before ``taskdef.json`` carried the tags, or by a tool that drops them, does not orphan the family.
    """
    answer = ignore_codes(ecs.describe_task_definition, ["ClientException", "InvalidParameterException"],
                          taskDefinition=family, include=["TAGS"])  # the latest ACTIVE revision (ECS API reference)
    if answer is None:
        return None, {}  # no ACTIVE revision
    if answer["taskDefinition"].get("status") == "ACTIVE" and ENVIRONMENT in _tags(answer):
        return answer["taskDefinition"], _tags(answer)
    latest = answer["taskDefinition"] if answer["taskDefinition"].get("status") == "ACTIVE" else None
    for arn in active_revisions(ecs, family):
        if latest is not None and arn == latest["taskDefinitionArn"]:
            continue
        described = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        latest = latest or described["taskDefinition"]  # the emulator may describe an INACTIVE revision as the latest
        if ENVIRONMENT in _tags(described):
            return latest, _tags(described)
    return latest, {}


class TaskDefinition(Kind):
    """The task definition family; a change registers a new revision (the running one is CodeDeploy's).

    Ownership is the family's: the revisions a release registers (CodePipeline's ``CodeDeployToECS`` from
    ``taskdef.json``, ``pointapp deploy``) are the service's, and the latest ACTIVE one is what is compared.
    """

    name = "task-definition"
    service = "ecs"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        family = spec.name("api")
        latest, tags = family_revisions(ctx.client("ecs"), family)
        if latest is not None and foreign_owner(tags, spec):  # the plan's create of the family stops, naming it
            return [Found(self.name, tags.get(KEY, ""), latest["taskDefinitionArn"], {**tags, "Name": family}, latest,
                          owner=foreign_owner(tags, spec))]
        if latest is None or not is_owned(tags, spec, step):
            return []  # a family nobody owns is never adopted either (create refuses it)
        return [Found(self.name, tags[KEY], latest["taskDefinitionArn"], tags, latest)]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        wanted_container = props["container"]
        current = {"cpu": str(raw.get("cpu")), "memory": str(raw.get("memory")),
                   "execution_role": raw.get("executionRoleArn"), "task_role": raw.get("taskRoleArn"),
                   "container": compared_container((raw.get("containerDefinitions") or [{}])[0], wanted_container),
                   "volumes": sorted(v.get("name", "") for v in raw.get("volumes") or [])}
        wanted = {"cpu": str(props["cpu"]), "memory": str(props["memory"]), "execution_role": props["execution_role"],
                  "task_role": props["task_role"], "container": compared_container(wanted_container, wanted_container),
                  "volumes": [SCRATCH_VOLUME]}
        return changed(current, wanted)

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"register_task_definition": revision_request(desired.name, props, tags, image=None)}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ecs = ctx.client("ecs")
        if active_revisions(ecs, desired.name):  # found nothing owned, yet the family has revisions: not ours
            owner = family_revisions(ecs, desired.name)[1].get(ENVIRONMENT)
            whose = f"environment {owner}" if owner else "no pointapp environment"
            raise StepError(NAME, f"{self.name} {desired.name}",
                            f"the family's revisions belong to {whose}; pointapp registers none beside them")
        return register_revision(ctx, desired.name, props, tags, image=None)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        # A revision takes tags in place (ECS API reference, TagResource): no new one; a new revision the
        # update registers carries them on.
        add_tags(ctx, "ecs", found.id, tags)
        found.tags = {**found.tags, **tags}

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        image = found.raw["containerDefinitions"][0]["image"]  # keep what the last release deployed
        revision = register_revision(ctx, desired.name, props, found.tags, image=image)
        found.id, found.raw, found.tags = revision.id, revision.raw, revision.tags

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ecs = ctx.client("ecs")
        for arn in active_revisions(ecs, found.raw["family"]):  # every revision, the releases' too
            ecs.deregister_task_definition(taskDefinition=arn)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        image = (raw.get("containerDefinitions") or [{}])[0].get("image")
        return f"revision {raw.get('revision')}, {raw.get('cpu')} CPU / {raw.get('memory')} MiB, image {image}"


def register_revision(ctx: StepContext, family: str, props: Mapping[str, Any], tags: Mapping[str, str],
                      image: str | None) -> Found:
    """Register a revision of the family; ``image`` replaces the spec's image (a release)."""
    definition = ctx.client("ecs").register_task_definition(**revision_request(family, props, tags, image))["taskDefinition"]
    return Found(TaskDefinition.name, tags.get(KEY, "taskdef"), definition["taskDefinitionArn"], dict(tags), definition)


def _elb_tags(ctx: StepContext, arns: list[str]) -> dict[str, dict[str, str]]:
    """Tags by ARN: from the environment's tag listing, and one DescribeTags for those it lacks."""
    listed = listed_tags(ctx)
    tags = {arn: dict(listed[arn]) for arn in arns if arn in listed}
    arns = [arn for arn in arns if arn not in tags]
    elbv2 = ctx.client("elbv2")
    for start in range(0, len(arns), 20):
        for description in elbv2.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
            tags[description["ResourceArn"]] = from_aws_tags(description.get("Tags"))
    return tags


def _load_balancing(ctx: StepContext, spec: Spec) -> dict[str, Any]:
    """The environment's target groups, load balancer and listeners, with the tags of all of them (from
    the environment's tag listing, one DescribeTags for the rest), shared by the three kinds until the
    next change."""

    def load() -> dict[str, Any]:
        elbv2 = ctx.client("elbv2")

        def target_groups() -> list[dict[str, Any]]:
            return [g for page in elbv2.get_paginator("describe_target_groups").paginate()
                    for g in page["TargetGroups"] if g["TargetGroupName"].startswith(f"{spec.owner}-")]

        def load_balancers() -> list[dict[str, Any]]:
            answer = ignore_codes(elbv2.describe_load_balancers, ["LoadBalancerNotFound"], Names=[spec.name("alb")])
            return list(answer["LoadBalancers"]) if answer else []

        # The target groups and the load balancer side by side; the listeners need the load balancer's ARN.
        groups, balancers = map_side_by_side(lambda read: read(), [target_groups, load_balancers])
        listeners = {b["LoadBalancerArn"]: elbv2.describe_listeners(LoadBalancerArn=b["LoadBalancerArn"])["Listeners"]
                     for b in balancers}
        arns = [g["TargetGroupArn"] for g in groups] + [b["LoadBalancerArn"] for b in balancers]
        arns += [item["ListenerArn"] for items in listeners.values() for item in items]
        return {"groups": groups, "balancers": balancers, "listeners": listeners, "tags": _elb_tags(ctx, arns)}

    return dict(ctx.read_once(("load-balancing", spec.owner), load))


class _LoadBalancingKind(Kind):
    """A kind of Elastic Load Balancing: its id is its ARN, which AddTags takes."""

    service = "elbv2"

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "elbv2", found.id, tags)


class TargetGroup(_LoadBalancingKind):
    name = "target-group"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        view = _load_balancing(ctx, spec)
        return self.owned(spec, step, view["groups"], lambda g: g["TargetGroupArn"],
                          lambda g: view["tags"].get(g["TargetGroupArn"], {}))

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        raw = found.raw
        if (raw.get("Port"), raw.get("TargetType")) != (props["port"], "ip"):
            return f"port {raw.get('Port')}, target type {raw.get('TargetType')}"
        if raw.get("VpcId") != props["vpc"] and not str(props["vpc"]).startswith("<"):
            return f"in another VPC ({raw.get('VpcId')})"
        return None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        return changed({"health_check_path": found.raw.get("HealthCheckPath")}, {"health_check_path": props["health_check_path"]})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_target_group": dict(
            Name=desired.name, Protocol="HTTP", Port=props["port"], VpcId=props["vpc"], TargetType="ip",
            HealthCheckPath=props["health_check_path"], HealthCheckProtocol="HTTP", Matcher={"HttpCode": "200-399"},
            Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        group = ctx.client("elbv2").create_target_group(
            **self.request(ctx.spec, desired, props, tags)["create_target_group"])["TargetGroups"][0]
        return Found(self.name, desired.key, group["TargetGroupArn"], dict(tags), group)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "health_check_path" in changes:
            ctx.client("elbv2").modify_target_group(TargetGroupArn=found.id, HealthCheckPath=changes["health_check_path"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("elbv2").delete_target_group, ["TargetGroupNotFound"], TargetGroupArn=found.id)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        return f"{raw.get('Protocol')}:{raw.get('Port')} type {raw.get('TargetType')}, health {raw.get('HealthCheckPath')}"


class LoadBalancer(_LoadBalancingKind):
    name = "load-balancer"
    clears = "lift-deletion-protection"
    typical = Typical("load-balancer", 180, "Application Load Balancer from provisioning to active",
                      "Elastic Load Balancing User Guide, load balancer state; botocore waiter "
                      "LoadBalancerAvailable: 15 s x 40")
    typical_delete = Typical("load-balancer-deleted", 30, "Application Load Balancer from deleting to gone",
                             "Elastic Load Balancing User Guide, delete a load balancer; botocore waiter "
                             "LoadBalancersDeleted: 15 s x 40")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        view = _load_balancing(ctx, spec)
        found = self.owned(spec, step, view["balancers"], lambda b: b["LoadBalancerArn"],
                           lambda b: view["tags"].get(b["LoadBalancerArn"], {}))
        elbv2 = ctx.client("elbv2")
        for balancer in found:
            if not balancer.owner:
                balancer.raw["Attributes"] = {a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(
                    LoadBalancerArn=balancer.id)["Attributes"]}
        return found

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        if found.raw.get("Scheme") != "internet-facing" or found.raw.get("Type") != "application":
            return f"{found.raw.get('Scheme')} {found.raw.get('Type')}"
        return None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        attributes = raw.get("Attributes", {})
        return changed({"subnets": sorted(z["SubnetId"] for z in raw.get("AvailabilityZones", [])),
                        "groups": sorted(raw.get("SecurityGroups", [])),
                        "attributes": {key: attributes.get(key) for key in props["attributes"]}},
                       {"subnets": sorted(props["subnets"]), "groups": sorted(props["groups"]),
                        "attributes": dict(props["attributes"])})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_load_balancer": dict(
            Name=desired.name, Subnets=list(props["subnets"]), SecurityGroups=list(props["groups"]),
            Scheme="internet-facing", Type="application", IpAddressType="ipv4", Tags=aws_tags(tags)),
                # the ARN, which the create learns from CreateLoadBalancer, it adds to the props first
                "modify_load_balancer_attributes": dict(
                    LoadBalancerArn=props.get("arn"),
                    Attributes=[{"Key": key, "Value": value} for key, value in props["attributes"].items()])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        elbv2 = ctx.client("elbv2")
        balancer = elbv2.create_load_balancer(
            **self.request(ctx.spec, desired, props, tags)["create_load_balancer"])["LoadBalancers"][0]
        # ELB checks the access-log bucket's policy when the attribute is set (the bucket and its policy come first)
        elbv2.modify_load_balancer_attributes(**self.request(ctx.spec, desired, {**props, "arn": balancer["LoadBalancerArn"]},
                                                             tags)["modify_load_balancer_attributes"])
        wait_for(ctx, elbv2, "load_balancer_available", f"load balancer {desired.name} to be active", self.typical,
                 max_attempts=60, LoadBalancerArns=[balancer["LoadBalancerArn"]])
        return Found(self.name, desired.key, balancer["LoadBalancerArn"], dict(tags),
                     {**balancer, "Attributes": dict(props["attributes"])})

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        elbv2 = ctx.client("elbv2")
        if "subnets" in changes:
            elbv2.set_subnets(LoadBalancerArn=found.id, Subnets=changes["subnets"])
        if "groups" in changes:
            elbv2.set_security_groups(LoadBalancerArn=found.id, SecurityGroups=changes["groups"])
        if "attributes" in changes:
            elbv2.modify_load_balancer_attributes(
                **self.request(ctx.spec, desired, {**props, "arn": found.id}, {})["modify_load_balancer_attributes"])

    def to_clear(self, found: Found) -> str | None:
        if found.raw.get("Attributes", {}).get(DELETION_PROTECTION) != "true":
            return None
        # ELB refuses to delete a load balancer with deletion protection on (OperationNotPermitted, DeleteLoadBalancer
        # in the ELB API reference). The protection guards it against deletions outside pointapp; a down that lists
        # this line in its plan, and is confirmed, is the deliberate deletion it asks for.
        return "turn deletion protection off first (service.deletion_protection), as this down deletes it"

    def clear(self, ctx: StepContext, found: Found) -> None:
        ctx.client("elbv2").modify_load_balancer_attributes(
            LoadBalancerArn=found.id, Attributes=[{"Key": DELETION_PROTECTION, "Value": "false"}])
        found.raw.setdefault("Attributes", {})[DELETION_PROTECTION] = "false"
        ctx.say(f"    deletion protection of load balancer {found.name} turned off: this down deletes it")

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        elbv2 = ctx.client("elbv2")
        ignore_codes(elbv2.delete_load_balancer, ["LoadBalancerNotFound"], LoadBalancerArn=found.id)
        # Its network interfaces stay a few minutes longer: the network step waits for them before it
        # deletes the subnets and the security group they are in.
        wait_for(ctx, elbv2, "load_balancers_deleted", f"load balancer {found.name} to be deleted", self.typical_delete,
                 max_attempts=40, LoadBalancerArns=[found.id])
        return None

    def describe(self, found: Found) -> str:
        attributes = found.raw.get("Attributes", {})
        settings = [name for key, name in ((DELETION_PROTECTION, "deletion protection"), (ACCESS_LOGS, "access logs"),
                                           (DROP_INVALID_HEADERS, "drops invalid headers")) if attributes.get(key) == "true"]
        return f"{found.raw.get('DNSName')} ({found.raw.get('State', {}).get('Code', '')}" + (
            f"; {', '.join(settings)})" if settings else ")")

    def outputs(self, found: Found) -> dict[str, Any]:
        return {LOAD_BALANCER_DNS.name: found.raw.get("DNSName")}


#: The HTTPS listener's security policy: TLS 1.3, and TLS 1.2 with forward-secret AES-GCM ciphers only, with hybrid
#: post-quantum key exchange (ML-KEM) for clients that offer it: the one AWS recommends and the console's default
#: (Application Load Balancers guide, "Security policies for your Application Load Balancer", read 1 December 2026).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"


#: The load balancer attributes pointapp sets (ELB API reference, LoadBalancerAttribute).
DROP_INVALID_HEADERS = "routing.http.drop_invalid_header_fields.enabled"  # FSBP ELB.4
DESYNC_MITIGATION = "routing.http.desync_mitigation_mode"  # FSBP ELB.12: defensive or strictest
DELETION_PROTECTION = "deletion_protection.enabled"  # FSBP ELB.6
ACCESS_LOGS = "access_logs.s3.enabled"  # FSBP ELB.5
ACCESS_LOGS_BUCKET = "access_logs.s3.bucket"
#: defensive, the ELB default, passes FSBP ELB.12 and keeps requests that are merely unusual (strictest refuses
#: every request that is not RFC 7230 compliant: Elastic Load Balancing User Guide, "Desync mitigation mode").
DESYNC_MODE = "defensive"


def load_balancer_attributes(spec: Spec) -> dict[str, Any]:
    """The attributes the spec gives the load balancer (values are strings, as ELB takes and returns them)."""
    service = spec.service
    attributes: dict[str, Any] = {DROP_INVALID_HEADERS: "true", DESYNC_MITIGATION: DESYNC_MODE,
                                  DELETION_PROTECTION: str(service.deletion_protection).lower(),
                                  ACCESS_LOGS: str(service.access_logs).lower()}
    if service.access_logs:
        attributes[ACCESS_LOGS_BUCKET] = Ref(NAME, ACCESS_LOG_BUCKET)
    return attributes


ACCESS_LOG_BUCKET = "access-logs/bucket"

#: The accounts of Elastic Load Balancing that write access logs in the regions AWS opened before August 2022;
#: in the regions opened since, the service principal logdelivery.elasticloadbalancing.amazonaws.com writes them
#: (Elastic Load Balancing User Guide for Application Load Balancers, "Enable access logs", step 2: attach a
#: policy to the bucket), read 1 December 2026.
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980", "us-west-2": "797873946194",
    "af-south-1": "098369216593", "ap-east-1": "754344448648", "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378", "ap-northeast-3": "383597477331", "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266", "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251", "eu-central-1": "054676820928", "eu-west-1": "156460612806",
    "eu-west-2": "652711504416", "eu-south-1": "635631232127", "eu-west-3": "009996457667", "eu-north-1": "897822967062",
    "me-south-1": "076674570225", "sa-east-1": "507241528517",
}
ELB_LOG_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


def elb_log_principal(partition: str, region: str) -> dict[str, str]:
    """Who writes the access logs in ``region``: the regional ELB account, or the log delivery service."""
    account = ELB_LOG_ACCOUNTS.get(region)
    return {"AWS": f"arn:{partition}:iam::{account}:root"} if account else {"Service": ELB_LOG_SERVICE}


def access_log_bucket_name(ctx: StepContext, spec: Spec) -> str:
    """Bucket names are global: the account and region make this one unique (shorter than the artifact bucket's name,
    so the prefix and environment names that fit it fit this one too)."""
    return f"{spec.owner}-alb-logs-{ctx.account}-{ctx.target.region}"[:63]


class AccessLogBucket(Bucket):
    """The load balancer's access logs: private, SSE-S3 (the only encryption ELB access logs support: Elastic Load
    Balancing User Guide, "Enable access logs", bucket requirements), TLS only, the logs expiring. ``down`` keeps it
    while it holds logs (they are a record of who called the API) unless ``service.delete_access_logs`` lets it empty
    the bucket; staging's default does."""

    counts_objects = True

    def bucket_name(self, ctx: StepContext, spec: Spec) -> str:
        return access_log_bucket_name(ctx, spec)

    def keeps(self, spec: Spec, found: Found) -> str | None:
        if spec.service.delete_access_logs or not found.raw.get("HoldsObjects"):
            return None
        return (f"it holds access logs (they expire after {spec.service.access_logs_retention_days} days). To delete "
                "them with it, set service.delete_access_logs: true in the config, then run `pointapp down` again")


WAF_SCOPE = "REGIONAL"  # a load balancer's web ACL is regional (AWS WAF API reference, CreateWebACL Scope)
#: AWS's managed rule groups the web ACL runs, in priority order (AWS WAF Developer Guide, "Baseline rule groups"
#: and "IP reputation rule groups"): common attacks (OWASP Top 10), known bad inputs (Log4j and the like),
#: addresses Amazon's threat intelligence lists.
WAF_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                   "AWSManagedRulesAmazonIpReputationList")


def _visibility(metric: str) -> dict[str, Any]:
    # Metrics and sampled requests on (FSBP WAF.12 asks for CloudWatch metrics on every rule)
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def waf_rules(groups: Iterable[str] = WAF_RULE_GROUPS) -> list[dict[str, Any]]:
    """The web ACL's rules: each managed rule group with its own actions (override action none)."""
    return [{"Name": group, "Priority": i, "OverrideAction": {"None": {}}, "VisibilityConfig": _visibility(group),
             "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}}}
            for i, group in enumerate(groups)]


class WebAcl(Kind):
    """A regional AWS WAF web ACL: allow by default, AWS's managed rule groups block what they match."""

    name = "waf-web-acl"
    service = "wafv2"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        wafv2 = ctx.client("wafv2")
        found = []
        for summary in wafv2.list_web_acls(Scope=WAF_SCOPE).get("WebACLs", []):
            if summary["Name"] != spec.name("waf"):
                continue
            tags = from_aws_tags(wafv2.list_tags_for_resource(ResourceARN=summary["ARN"])
                                 .get("TagInfoForResource", {}).get("TagList"))
            answer = wafv2.get_web_acl(Name=summary["Name"], Scope=WAF_SCOPE, Id=summary["Id"])
            found += self.owned(spec, step, [{**answer["WebACL"], "LockToken": answer["LockToken"]}],
                                lambda acl: str(acl["ARN"]), lambda _, tags=tags: tags)  # type: ignore[misc]
        return found

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        def rules(acl: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
            return [(r.get("Name"), r.get("Priority"), json.dumps(r.get("Statement"), sort_keys=True),
                     json.dumps(r.get("OverrideAction"), sort_keys=True),
                     bool(r.get("VisibilityConfig", {}).get("CloudWatchMetricsEnabled"))) for r in acl]
        changes = Differences()
        if rules(found.raw.get("Rules", [])) != rules(props["rules"]):
            changes.add("rules", [r.get("Name") for r in found.raw.get("Rules", [])], [r["Name"] for r in props["rules"]])
        if found.raw.get("DefaultAction") != {"Allow": {}}:
            changes.add("default_action", found.raw.get("DefaultAction"), {"Allow": {}})
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_web_acl": dict(Name=desired.name, Scope=WAF_SCOPE, DefaultAction={"Allow": {}},
                                       Description=desired.detail[:256], Rules=list(props["rules"]),
                                       VisibilityConfig=_visibility(desired.name), Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        wafv2 = ctx.client("wafv2")
        summary = wafv2.create_web_acl(**self.request(ctx.spec, desired, props, tags)["create_web_acl"])["Summary"]
        answer = wafv2.get_web_acl(Name=desired.name, Scope=WAF_SCOPE, Id=summary["Id"])
        return Found(self.name, desired.key, summary["ARN"], dict(tags), {**answer["WebACL"], "LockToken": answer["LockToken"]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        ctx.client("wafv2").tag_resource(ResourceARN=found.id, Tags=aws_tags(tags))

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ctx.client("wafv2").update_web_acl(Name=found.raw["Name"], Scope=WAF_SCOPE, Id=found.raw["Id"],
                                           DefaultAction={"Allow": {}}, Rules=list(props["rules"]),
                                           Description=desired.detail[:256], VisibilityConfig=_visibility(desired.name),
                                           LockToken=found.raw["LockToken"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        # AWS WAF refuses to delete a web ACL still associated (WAFAssociatedItemException): the association
        # goes first (a kind after this one, deleted before it).
        ignore_codes(ctx.client("wafv2").delete_web_acl, ["WAFNonexistentItemException"], Name=found.raw["Name"],
                     Scope=WAF_SCOPE, Id=found.raw["Id"], LockToken=found.raw["LockToken"])
        return None

    def describe(self, found: Found) -> str:
        return f"allow by default; {', '.join(r['Name'] for r in found.raw.get('Rules', []))}"


# AssociateWebACL naming a load balancer made moments before: AWS WAF does not see it yet and answers
# WAFUnavailableEntityException until the change has propagated, "from a few seconds to a number of minutes" (AWS
# WAF API reference, AssociateWebACL: temporary inconsistencies; WAFUnavailableEntityException). Terraform retries
# it for its create timeout of five minutes, which some stand-ups still outlast (hashicorp/terraform-provider-aws
# #17527, #29080): the bound is five minutes, then the next ``up`` associates.
NEW_LOAD_BALANCER = PassingRefusal(
    "AWS WAF", "WAFUnavailableEntityException", "AWS WAF couldn.t retrieve the resource that you requested",
    Typical("waf-new-load-balancer", 60, "a new load balancer becoming visible to AWS WAF",
            "AWS WAF API reference, AssociateWebACL: temporary inconsistencies (a few seconds to a number of minutes)"),
    waiting_for="AWS WAF to see the new load balancer {name}",
    otherwise="run up again once the load balancer is active", bound=300.0)


class WebAclAssociation(Kind):
    """The web ACL's association with the load balancer (FSBP ELB.16). It carries no tags: it is this environment's
    when it joins this environment's web ACL and load balancer."""

    name = "waf-association"
    service = "wafv2"
    tagged = False
    finds_after = ("load-balancer", "waf-web-acl")
    #: Not a wait of every create: what a create waits for while AWS WAF refuses a new load balancer.
    typical_new_load_balancer = NEW_LOAD_BALANCER.typical

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        balancer, acl = known.get(LOAD_BALANCER.key), known.get(WEB_ACL)
        if balancer is None or acl is None:
            return []
        answer = ignore_codes(ctx.client("wafv2").get_web_acl_for_resource, ["WAFNonexistentItemException"],
                              ResourceArn=balancer.id)
        joined = ((answer or {}).get("WebACL") or {}).get("ARN")
        if joined != acl.id:
            return []
        return [Found(self.name, WEB_ACL_ASSOCIATION, balancer.id, {**acl.tags, KEY: WEB_ACL_ASSOCIATION},
                      {"ResourceArn": balancer.id, "WebACLArn": joined})]

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"associate_web_acl": dict(WebACLArn=props["web_acl"], ResourceArn=props["load_balancer"])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request, balancer = self.request(ctx.spec, desired, props, tags)["associate_web_acl"], props["load_balancer"]
        retry_refused(ctx, NEW_LOAD_BALANCER, balancer.rsplit("/", 2)[-2],  # the name in .../app/<name>/<id>
                      lambda: ctx.client("wafv2").associate_web_acl(**request))
        return Found(self.name, desired.key, props["load_balancer"], dict(tags),
                     {"ResourceArn": props["load_balancer"], "WebACLArn": props["web_acl"]})

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("wafv2").disassociate_web_acl, ["WAFNonexistentItemException"], ResourceArn=found.id)
        return None

    def describe(self, found: Found) -> str:
        acl, balancer = str(found.raw.get("WebACLArn", "")).split("/"), str(found.raw.get("ResourceArn", "")).split("/")
        return f"{acl[-2] if len(acl) > 2 else '?'} on {balancer[-2] if len(balancer) > 2 else '?'}"


WEB_ACL = "waf/web-acl"
WEB_ACL_ASSOCIATION = "waf/association"


class Listener(_LoadBalancingKind):
    """A listener; ``forward`` to one of the blue/green groups (whichever CodeDeploy left), or ``redirect``."""

    name = "listener"
    finds_after = ("load-balancer",)

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        balancer = known.get(LOAD_BALANCER.key)
        if balancer is None:
            return []
        view = _load_balancing(ctx, spec)  # the same view the load balancer was found in
        return self.owned(spec, step, view["listeners"].get(balancer.id, []), lambda i: i["ListenerArn"],
                          lambda i: view["tags"].get(i["ListenerArn"], {}))

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        return None if found.raw.get("Port") == props["port"] else f"port {found.raw.get('Port')}"

    def _actions(self, props: Mapping[str, Any], target_group: str | None = None) -> list[dict[str, Any]]:
        if props["action"] == "redirect":
            return [{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}]
        return [{"Type": "forward", "TargetGroupArn": target_group or props["target_groups"][0]}]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        changes = Differences()
        if raw.get("Protocol") != props["protocol"]:
            changes.add("protocol", raw.get("Protocol"), props["protocol"])
        certificates = [c["CertificateArn"] for c in raw.get("Certificates", [])]
        if props.get("certificate") and certificates != [props["certificate"]]:
            changes.add("certificate", certificates, props["certificate"])
        if props.get("certificate") and raw.get("SslPolicy") != TLS_POLICY:
            changes.add("tls_policy", raw.get("SslPolicy"), TLS_POLICY)
        action = (raw.get("DefaultActions") or [{}])[0]
        if action.get("Type") != props["action"]:
            changes.add("action", action.get("Type"), props["action"])
        elif props["action"] == "forward" and not (forwarded_groups(action) or {""}) <= set(props["target_groups"]):
            # blue, green, or weighted over both (mid-release) are all in sync
            changes.add("action", "forward to another target group", "forward")
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        args: dict[str, Any] = {"LoadBalancerArn": props["load_balancer"], "Protocol": props["protocol"],
                                "Port": props["port"], "DefaultActions": self._actions(props), "Tags": aws_tags(tags)}
        if props.get("certificate"):
            args.update(Certificates=[{"CertificateArn": props["certificate"]}], SslPolicy=TLS_POLICY)
        return {"create_listener": args}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        listener = ctx.client("elbv2").create_listener(
            **self.request(ctx.spec, desired, props, tags)["create_listener"])["Listeners"][0]
        return Found(self.name, desired.key, listener["ListenerArn"], dict(tags), listener)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        args: dict[str, Any] = {"ListenerArn": found.id, "Protocol": props["protocol"], "Port": props["port"],
                                "DefaultActions": self._actions(props)}
        if props.get("certificate"):
            args.update(Certificates=[{"CertificateArn": props["certificate"]}], SslPolicy=TLS_POLICY)
        ctx.client("elbv2").modify_listener(**args)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("elbv2").delete_listener, ["ListenerNotFound"], ListenerArn=found.id)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        action = (raw.get("DefaultActions") or [{}])[0]
        weights = {t["TargetGroupArn"]: t.get("Weight") for t in action.get("ForwardConfig", {}).get("TargetGroups", [])}
        if len(weights) > 1:
            target = " / ".join(f"{arn.split('/')[-2]} {weight}" for arn, weight in weights.items())
        else:
            arn = next(iter(forwarded_groups(action)), "")
            target = arn.split("/")[-2] if arn else action.get("Type")
        return f"{raw.get('Protocol')}:{raw.get('Port')} -> {target}"


def forwarded_groups(action: Mapping[str, Any]) -> set[str]:
    """The target groups a forward action sends to: none for another action, else its ``TargetGroupArn`` and the
    groups of its ``ForwardConfig`` (ELB API reference, Action). CodeDeploy's canary and linear configurations
    leave a weighted ``ForwardConfig`` over blue and green with no ``TargetGroupArn`` while traffic shifts."""
    groups = {t["TargetGroupArn"] for t in (action.get("ForwardConfig") or {}).get("TargetGroups", [])}
    return groups | ({action["TargetGroupArn"]} if action.get("TargetGroupArn") else set())


class EcsService(Kind):
    name = "ecs-service"
    finds_after = ("ecs-cluster",)
    service = "ecs"
    # Its tasks drain from the target group for its deregistration delay (300 s unless set), then stop.
    typical_delete = Typical("ecs-service-inactive", 300, "ECS service from draining to inactive",
                             "Elastic Load Balancing User Guide, deregistration delay (default 300 s); botocore "
                             "waiter ServicesInactive: 15 s x 40")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        if "cluster" not in known:
            return []
        answer = ctx.client("ecs").describe_services(cluster=known["cluster"].id, services=[spec.name("api")],
                                                     include=["TAGS"])
        live = [s for s in answer["services"] if s.get("status") != "INACTIVE"]
        return self.owned(spec, step, live, lambda s: s["serviceArn"], _ecs_tags)

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        controller = found.raw.get("deploymentController", {}).get("type", "ECS")
        return None if controller == "CODE_DEPLOY" else f"deployment controller {controller}"

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        return changed({"desired_count": found.raw.get("desiredCount")}, {"desired_count": props["desired_count"]})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_service": dict(
            cluster=props["cluster"], serviceName=desired.name, taskDefinition=props["task_definition"],
            desiredCount=props["desired_count"], launchType="FARGATE", platformVersion="LATEST",
            networkConfiguration={"awsvpcConfiguration": {"subnets": list(props["subnets"]),
                                                          "securityGroups": list(props["groups"]),
                                                          "assignPublicIp": "DISABLED"}},
            loadBalancers=[{"targetGroupArn": props["target_group"], "containerName": props["container_name"],
                            "containerPort": props["port"]}],
            deploymentController={"type": "CODE_DEPLOY"}, healthCheckGracePeriodSeconds=60,
            schedulingStrategy="REPLICA", propagateTags="SERVICE", enableECSManagedTags=True,
            tags=aws_tags(tags, lower=True))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ctx.finish_deferred(DEFERRED_NAT)  # the tasks reach the internet through the NAT gateway: it must be up
        service = ctx.client("ecs").create_service(**self.request(ctx.spec, desired, props, tags)["create_service"])["service"]
        ctx.say("    the service starts its tasks once an image is in the repository; pointapp does not wait for them")
        return Found(self.name, desired.key, service["serviceArn"], dict(tags), service)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "ecs", found.id, tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "desired_count" in changes:  # the one setting a CODE_DEPLOY service takes outside a deployment
            ctx.finish_deferred(DEFERRED_NAT)
            ctx.client("ecs").update_service(cluster=props["cluster"], service=found.id, desiredCount=changes["desired_count"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ecs = ctx.client("ecs")
        cluster = found.raw["clusterArn"]
        ignore_codes(ecs.delete_service, ["ServiceNotFoundException", "ClusterNotFoundException"],
                     cluster=cluster, service=found.id, force=True)
        wait_for(ctx, ecs, "services_inactive", f"ECS service {found.name} to drain and stop", self.typical_delete,
                 max_attempts=60, cluster=cluster, services=[found.id])
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        return (f"{raw.get('launchType')} desired {raw.get('desiredCount')} running {raw.get('runningCount')}, "
                f"controller {raw.get('deploymentController', {}).get('type')}")


def _roles(spec: Spec) -> list[Desired]:
    owner = spec.owner
    secrets = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
               "Resource": Arn("secretsmanager", f"secret:{owner}/*")}
    database_secret = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                       "Resource": Arn("secretsmanager", "secret:rds!db-*"),
                       "Condition": {"StringLike": {"secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn":
                                                    Arn("rds", f"db:{spec.name('mysql')}")}}}
    # SES authorizes a send on the identity and, when the identity has a configuration set (the mail
    # step gives it one), on the configuration set too: ses:SendEmail and ses:SendRawEmail list both
    # resource types (Service Authorization Reference, "Actions, resources, and condition keys for
    # Amazon SES"; aws-cdk #34402), in the target's region and account. A send that names no configuration
    # set goes through the identity's default: the identity owner's set, where another environment owns it.
    mail = {"Effect": "Allow", "Action": ["ses:SendEmail", "ses:SendRawEmail"],
            "Resource": [Arn("ses", f"identity/{spec.mail.identity}", None, None),
                         *(Arn("ses", f"configuration-set/{name}", None, None) for name in sending_configuration_sets(spec))]}
    pull: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Effect": "Allow", "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
                                           "ecr:BatchGetImage"],
             "Resource": Arn("ecr", f"repository/{repository_name(spec)}")}]
    logs = {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": Arn("logs", f"log-group:{LogGroup.prefix(spec)}api:*")}
    return [
        Desired("iam-role", "role/execution", spec.name("task-execution"), {
            "trust": trust_policy("ecs-tasks.amazonaws.com", spec=spec), "managed": [],
            "inline": {"pull-image-write-logs-inject-secrets": policy(*pull, logs, secrets, database_secret)}},
            "ECS pulls the image, writes logs and injects the secrets"),
        Desired("iam-role", "role/task", spec.name("task"), {
            "trust": trust_policy("ecs-tasks.amazonaws.com", spec=spec), "managed": [],
            "inline": {"send-mail-and-read-own-secrets": policy(mail, secrets, database_secret)}},
            f"the API runs as this role: mail only from {spec.mail.identity}, only its own secrets and the "
            "database's (re-read after RDS rotates the password)"),
    ]


def desired(spec: Spec) -> list[Desired]:
    """The service step's resources, in creation order."""
    service = spec.service
    zones = range(spec.network.zones)
    log_group = f"{LogGroup.prefix(spec)}api"
    groups = {color: Ref(NAME, f"tg/{color}") for color in ("blue", "green")}
    listeners: list[Desired] = []
    production = {"load_balancer": Ref(NAME, LOAD_BALANCER.key), "target_groups": list(groups.values())}
    certificate: str | Ref | None = service.certificate_arn or (Ref("domain", CERTIFICATE.key) if spec.domain else None)
    if certificate:
        listeners += [
            Desired("listener", PRODUCTION_LISTENER.key, spec.name("listener", "https"),
                    {**production, "port": 443, "protocol": "HTTPS", "action": "forward",
                     "certificate": certificate}, "HTTPS 443 (TLS 1.2 and 1.3) forwarding to blue (or green after a release)"),
            Desired("listener", "listener/redirect", spec.name("listener", "http"),
                    {**production, "port": 80, "protocol": "HTTP", "action": "redirect"}, "HTTP 80 redirecting to HTTPS"),
        ]
    else:
        listeners.append(Desired("listener", PRODUCTION_LISTENER.key, spec.name("listener", "http"),
                                 {**production, "port": 80, "protocol": "HTTP", "action": "forward"},
                                 "HTTP 80 forwarding to blue (or green after a release)"))
    listeners.append(Desired("listener", TEST_LISTENER.key, spec.name("listener", "test"),
                             {**production, "port": service.test_listener_port, "protocol": "HTTP", "action": "forward"},
                             f"test listener {service.test_listener_port}, reachable from the bastion only"))
    host = api_host(spec)
    # The API's name on the user's domain, an alias A record of the load balancer (IPv4 only: the load balancer's
    # IpAddressType is ipv4; a dualstack one would take an AAAA alias too).
    alias = [Desired("dns-record", "record/api", host, {
        "zone": Ref("domain", DOMAIN_ZONE.key), "name": host, "type": "A",
        "alias": {"name": Ref(NAME, LOAD_BALANCER.key, "DNSName"), "zone": Ref(NAME, LOAD_BALANCER.key, "CanonicalHostedZoneId")}},
        f"alias A {host} -> the load balancer (Route 53 applies it in {DNS_CHANGE.spoken})")] if host else []
    return [
        Desired("log-group", "logs", log_group, {"retention_days": service.log_retention_days, "kms_key": customer_key(spec)},
                f"retention {service.log_retention_days} days"),
        *_roles(spec),
        Desired("ecs-cluster", "cluster", spec.name("cluster"), {}, "Fargate, Container Insights on"),
        Desired("task-definition", "taskdef", spec.name("api"), {
            "cpu": service.cpu, "memory": service.memory,
            "execution_role": Ref(NAME, "role/execution", "Arn"), "task_role": Ref(NAME, "role/task", "Arn"),
            "container": Ref("runtime", "container")}, f"awsvpc, {service.cpu} CPU / {service.memory} MiB, port {service.port}"),
        *[Desired("target-group", f"tg/{color}", spec.name("tg", color), {
            "port": service.port, "vpc": Ref("network", "vpc"), "health_check_path": service.health_check_path},
            f"{color}: target type ip, HTTP {service.port}, health check {service.health_check_path}")
          for color in ("blue", "green")],
        *_access_log_bucket(spec),  # before the load balancer, whose access logs go there
        Desired("load-balancer", LOAD_BALANCER.key, spec.name("alb"), {
            "subnets": [Ref("network", f"subnet/{service.load_balancer_tier}/{i}") for i in zones],
            "groups": [Ref("network", f"sg/{service.load_balancer_group}")], "attributes": load_balancer_attributes(spec)},
            f"internet-facing, in the {service.load_balancer_tier} subnets; drops invalid headers, desync mitigation "
            f"{DESYNC_MODE}, deletion protection {'on' if service.deletion_protection else 'off'}, access logs "
            f"{'on' if service.access_logs else 'off'}"),
        *listeners,
        *_web_acl(spec),
        *alias,
        Desired("ecs-service", "ecs-service", spec.name("api"), {
            "cluster": Ref(NAME, "cluster"), "task_definition": Ref(NAME, "taskdef"),
            "desired_count": service.desired_count, "container_name": service.container_name, "port": service.port,
            "subnets": [Ref("network", f"subnet/{service.task_tier}/{i}") for i in zones],
            "groups": [Ref("network", f"sg/{service.task_group}")], "target_group": groups["blue"]},
            f"{service.desired_count} tasks over {spec.network.zones} zones, no public IP, controller CODE_DEPLOY"),
    ]


def _access_log_bucket(spec: Spec) -> list[Desired]:
    """The access-log bucket and its policy, when ``service.access_logs`` is on."""
    if not spec.service.access_logs:
        return []
    days = spec.service.access_logs_retention_days
    # ELB writes the logs under AWSLogs/<account>/ with the principal of the region (see elb_log_principal)
    deliver = {"Sid": "ElbAccessLogDelivery", "Effect": "Allow", "Principal": Ref("runtime", "elb_log_principal"),
               "Action": "s3:PutObject", "Resource": Ref("runtime", "access_log_objects")}
    return [
        Desired("s3-bucket", ACCESS_LOG_BUCKET, f"{spec.owner}-alb-logs", {
            # versioned: a log deleted or overwritten stays a noncurrent version for a week
            "bucket": Ref("runtime", "access_log_bucket"), "region": Ref("runtime", "region"), "versioning": True,
            "kms_key": None, "lifecycle": [
                {"ID": "expire-access-logs", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": days},
                 "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]},
            f"load balancer access logs: private, versioned, SSE-S3, kept {days} days"),
        Desired("s3-bucket-policy", f"{ACCESS_LOG_BUCKET}/policy", f"{spec.owner}-alb-logs",
                bucket_policy_props(Ref("runtime", "access_log_bucket"), Ref(NAME, ACCESS_LOG_BUCKET, "Arn"), [deliver]),
                "TLS only; Elastic Load Balancing writes the logs", parent=ACCESS_LOG_BUCKET),
    ]


def _web_acl(spec: Spec) -> list[Desired]:
    """The web ACL and its association with the load balancer, when ``service.waf`` is on."""
    if not spec.service.waf:
        return []
    return [
        Desired("waf-web-acl", WEB_ACL, spec.name("waf"), {"rules": waf_rules()},
                # AWS WAF's descriptions take letters, digits, spaces and +=:#@/-,. (CreateWebACL, Description)
                f"allow by default, AWS managed rules: {', '.join(g.removeprefix('AWSManagedRules') for g in WAF_RULE_GROUPS)}"),
        Desired("waf-association", WEB_ACL_ASSOCIATION, spec.name("waf", "alb"),
                {"web_acl": Ref(NAME, WEB_ACL), "load_balancer": Ref(NAME, LOAD_BALANCER.key)},
                f"{spec.name('waf')} in front of {spec.name('alb')}"),
    ]


def runtime_values(ctx: StepContext) -> dict[str, Any]:
    """What depends on the target: the container definition, and the access-log bucket's name and writer."""
    bucket = access_log_bucket_name(ctx, ctx.spec)
    return {**task_runtime(ctx), **bucket_policy_runtime(ctx), "access_log_bucket": bucket,
            "access_log_objects": f"arn:{ctx.partition}:s3:::{bucket}/AWSLogs/{ctx.account}/*",
            "elb_log_principal": elb_log_principal(ctx.partition, ctx.target.region)}


#: The load balancer, its target groups, listeners, access-log bucket and web ACL need only the network: on a
#: stand-up they start right after it, so the load balancer provisions while the database does; the task
#: definition and the ECS service wait for the data steps. The HTTPS listener uses the domain step's certificate,
#: the API's alias record its hosted zone.
EARLY = EarlyPart("service: load balancer", frozenset({"s3-bucket", "s3-bucket-policy", "target-group", "load-balancer",
                                                       "listener", "waf-web-acl", "waf-association", "dns-record"}),
                  ("network", "domain"))

STEP = ResourceStep(NAME, [LogGroup(), AccessLogBucket(), BucketPolicy(), Role(), Cluster(), TaskDefinition(), TargetGroup(),
                            LoadBalancer(), Listener(), WebAcl(), WebAclAssociation(), DnsRecord(), EcsService()], desired,
                    uses=("network", "domain"), runtime=runtime_values, early=EARLY)
