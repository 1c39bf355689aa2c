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

from collections.abc import Iterable, Mapping
from typing import Any

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.diffs import Differences, changed
from pointapp.errors import StepError
from pointapp.kinds import DNS_CHANGE, DnsRecord, LogGroup, Role, listed_tags, policy, trust_policy
from pointapp.names import DEFERRED_NAT, api_host, repository_name, sending_configuration_sets
from pointapp.outputs import (
    CERTIFICATE,
    DOMAIN_ZONE,
    LOAD_BALANCER,
    LOAD_BALANCER_DNS,
    PRODUCTION_LISTENER,
    TEST_LISTENER,
)
from pointapp.resources import Arn, Desired, EarlyPart, Found, Kind, Ref, Request, ResourceStep, ignore_codes, wait_for
from pointapp.spec import Spec
from pointapp.tags import ENVIRONMENT, KEY, add_tags, aws_tags, foreign_owner, from_aws_tags, is_owned
from pointapp.taskdef import revision_request, runtime_values
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
                   "container": compared_container((raw.get("containerDefinitions") or [{}])[0], wanted_container)}
        wanted = {"cpu": str(props["cpu"]), "memory": str(props["memory"]), "execution_role": props["execution_role"],
                  "task_role": props["task_role"], "container": compared_container(wanted_container, wanted_container)}
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
    typical = Typical("load-balancer", 180, "Application Load Balancer from provisioning to active",
                      "Elastic Load Balancing User Guide, load balancer state; botocore waiter "
                      "LoadBalancerAvailable: 15 s x 40")
    typical_delete = Typical("load-balancer-deleted", 30, "Application Load Balancer from deleting to gone",
                             "Elastic Load Balancing User Guide, delete a load balancer; botocore waiter "
                             "LoadBalancersDeleted: 15 s x 40")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        view = _load_balancing(ctx, spec)
        return self.owned(spec, step, view["balancers"], lambda b: b["LoadBalancerArn"],
                          lambda b: view["tags"].get(b["LoadBalancerArn"], {}))

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        if found.raw.get("Scheme") != "internet-facing" or found.raw.get("Type") != "application":
            return f"{found.raw.get('Scheme')} {found.raw.get('Type')}"
        return None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        return changed({"subnets": sorted(z["SubnetId"] for z in raw.get("AvailabilityZones", [])),
                        "groups": sorted(raw.get("SecurityGroups", []))},
                       {"subnets": sorted(props["subnets"]), "groups": sorted(props["groups"])})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_load_balancer": dict(
            Name=desired.name, Subnets=list(props["subnets"]), SecurityGroups=list(props["groups"]),
            Scheme="internet-facing", Type="application", IpAddressType="ipv4", Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        elbv2 = ctx.client("elbv2")
        balancer = elbv2.create_load_balancer(
            **self.request(ctx.spec, desired, props, tags)["create_load_balancer"])["LoadBalancers"][0]
        wait_for(ctx, elbv2, "load_balancer_available", f"load balancer {desired.name} to be active", self.typical,
                 max_attempts=60, LoadBalancerArns=[balancer["LoadBalancerArn"]])
        return Found(self.name, desired.key, balancer["LoadBalancerArn"], dict(tags), balancer)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        elbv2 = ctx.client("elbv2")
        if "subnets" in changes:
            elbv2.set_subnets(LoadBalancerArn=found.id, Subnets=changes["subnets"])
        if "groups" in changes:
            elbv2.set_security_groups(LoadBalancerArn=found.id, SecurityGroups=changes["groups"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        elbv2 = ctx.client("elbv2")
        ignore_codes(elbv2.delete_load_balancer, ["LoadBalancerNotFound"], LoadBalancerArn=found.id)
        # Its network interfaces stay a few minutes longer: the network step waits for them before it
        # deletes the subnets and the security group they are in.
        wait_for(ctx, elbv2, "load_balancers_deleted", f"load balancer {found.name} to be deleted", self.typical_delete,
                 max_attempts=40, LoadBalancerArns=[found.id])
        return None

    def describe(self, found: Found) -> str:
        return f"{found.raw.get('DNSName')} ({found.raw.get('State', {}).get('Code', '')})"

    def outputs(self, found: Found) -> dict[str, Any]:
        return {LOAD_BALANCER_DNS.name: found.raw.get("DNSName")}


#: The HTTPS listener's security policy: TLS 1.3, and TLS 1.2 with forward-secret AES-GCM ciphers only, with hybrid
#: post-quantum key exchange (ML-KEM) for clients that offer it: the one AWS recommends and the console's default
#: (Application Load Balancers guide, "Security policies for your Application Load Balancer", read 1 December 2026).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"


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
            "trust": trust_policy("ecs-tasks.amazonaws.com"), "managed": [],
            "inline": {"pull-image-write-logs-inject-secrets": policy(*pull, logs, secrets, database_secret)}},
            "ECS pulls the image, writes logs and injects the secrets"),
        Desired("iam-role", "role/task", spec.name("task"), {
            "trust": trust_policy("ecs-tasks.amazonaws.com"), "managed": [],
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
        Desired("log-group", "logs", log_group, {"retention_days": service.log_retention_days},
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
        Desired("load-balancer", LOAD_BALANCER.key, spec.name("alb"), {
            "subnets": [Ref("network", f"subnet/{service.load_balancer_tier}/{i}") for i in zones],
            "groups": [Ref("network", f"sg/{service.load_balancer_group}")]},
            f"internet-facing, in the {service.load_balancer_tier} subnets"),
        *listeners,
        *alias,
        Desired("ecs-service", "ecs-service", spec.name("api"), {
            "cluster": Ref(NAME, "cluster"), "task_definition": Ref(NAME, "taskdef"),
            "desired_count": service.desired_count, "container_name": service.container_name, "port": service.port,
            "subnets": [Ref("network", f"subnet/{service.task_tier}/{i}") for i in zones],
            "groups": [Ref("network", f"sg/{service.task_group}")], "target_group": groups["blue"]},
            f"{service.desired_count} tasks over {spec.network.zones} zones, no public IP, controller CODE_DEPLOY"),
    ]


#: The load balancer, its target groups and listeners need only the network: on a stand-up they start
#: right after it, so the load balancer provisions while the database does; the task definition and
#: the ECS service wait for the data steps. The HTTPS listener uses the domain step's certificate, the API's
#: alias record its hosted zone.
EARLY = EarlyPart("service: load balancer", frozenset({"target-group", "load-balancer", "listener", "dns-record"}),
                  ("network", "domain"))

STEP = ResourceStep(NAME, [LogGroup(), Role(), Cluster(), TaskDefinition(), TargetGroup(), LoadBalancer(), Listener(),
                            DnsRecord(), EcsService()], desired, uses=("network", "domain"), runtime=runtime_values,
                    early=EARLY)
