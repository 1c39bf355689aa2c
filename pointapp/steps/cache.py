"""The ``cache`` step: ElastiCache Redis in the isolated cache subnets.

A cache subnet group over the cache subnets and a Redis replication group with the engine version and
node type from the spec, encrypted in transit and at rest, behind the cache security group. In prod it
has one replica in the other zone and automatic failover; in staging a single node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import Differences
from pointapp.kinds import SubnetGroup, tags_of
from pointapp.outputs import CACHE_ADDRESS, CACHE_GROUP, CACHE_PORT
from pointapp.resources import Desired, Found, Kind, Ref, Request, ResourceStep, ignore_codes, wait_for
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, aws_tags, from_aws_tags, is_owned
from pointapp.typical import Typical

NAME = "cache"


def _tags(ctx: StepContext, arn: str) -> dict[str, str]:
    return tags_of(ctx, arn, lambda: from_aws_tags(
        ctx.client("elasticache").list_tags_for_resource(ResourceName=arn).get("TagList")))


class CacheSubnetGroup(SubnetGroup):
    name = "cache-subnet-group"
    service = "elasticache"
    noun, call, arn_key = "CacheSubnetGroup", "cache_subnet_group", "ARN"
    operations = {"update": ("elasticache", "ModifyCacheSubnetGroup"), "delete": ("elasticache", "DeleteCacheSubnetGroup")}

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        answer = ignore_codes(ctx.client("elasticache").describe_cache_subnet_groups, ["CacheSubnetGroupNotFoundFault"],
                              CacheSubnetGroupName=spec.name("cache-subnets"))
        if answer is None:
            return []
        return self.owned(spec, step, answer["CacheSubnetGroups"], lambda g: g["CacheSubnetGroupName"],
                          lambda g: _tags(ctx, g["ARN"]))


class ReplicationGroup(Kind):
    name = "replication-group"
    service = "elasticache"
    typical = Typical("replication-group", 600, "ElastiCache Redis replication group from creating to available",
                      "Amazon ElastiCache User Guide, cluster status; botocore waiter ReplicationGroupAvailable: 15 s x 40")
    typical_delete = Typical("replication-group-deleted", 450, "ElastiCache Redis replication group from deleting to gone",
                             "Amazon ElastiCache User Guide, deleting a cluster; botocore waiter ReplicationGroupDeleted: "
                             "15 s x 40")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        answer = ignore_codes(ctx.client("elasticache").describe_replication_groups, ["ReplicationGroupNotFoundFault"],
                              ReplicationGroupId=spec.name("redis"))
        if answer is None:
            return []
        groups = answer["ReplicationGroups"]
        found = []
        for group in groups:
            if group.get("Status") == "deleting":
                continue
            tags = _tags(ctx, group["ARN"])
            if is_owned(tags, spec, step):
                if ctx.lacks("elasticache", "ReplicaNodes"):
                    group["ReplicaCountUnknown"] = True  # the emulator makes one node whatever was asked
                found.append(Found(self.name, tags[KEY], group["ReplicationGroupId"], tags, group))
        return found

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        return None  # never replaced by pointapp: a cache flush is a change a person decides on

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        changes = Differences()
        if raw.get("CacheNodeType") != props["node_type"]:
            changes.add("node_type", raw.get("CacheNodeType"), props["node_type"])
        failover = raw.get("AutomaticFailover") in ("enabled", "enabling")
        if failover != props["automatic_failover"]:
            changes.add("automatic_failover", failover, props["automatic_failover"])
        nodes = len(raw.get("MemberClusters", []))
        if nodes and not raw.get("ReplicaCountUnknown") and nodes != props["replicas"] + 1:
            changes.add("replicas", nodes - 1, props["replicas"])
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_replication_group": dict(
            ReplicationGroupId=desired.name, ReplicationGroupDescription=desired.detail[:255], Engine="redis",
            EngineVersion=props["engine_version"], CacheNodeType=props["node_type"],
            NumCacheClusters=props["replicas"] + 1, AutomaticFailoverEnabled=props["automatic_failover"],
            MultiAZEnabled=props["automatic_failover"], CacheSubnetGroupName=props["subnet_group"],
            SecurityGroupIds=list(props["groups"]), AtRestEncryptionEnabled=True, TransitEncryptionEnabled=True,
            Port=6379, Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        elasticache = ctx.client("elasticache")
        group = elasticache.create_replication_group(
            **self.request(ctx.spec, desired, props, tags)["create_replication_group"])["ReplicationGroup"]
        answer = wait_for(ctx, elasticache, "replication_group_available",
                          f"Redis replication group {desired.name} to be available", self.typical, real_delay=30,
                          ReplicationGroupId=desired.name)
        # The last poll describes it available, with the primary endpoint the service connects to.
        group = (answer.get("ReplicationGroups") or [group])[0]
        return Found(self.name, desired.key, desired.name, dict(tags), group)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "elasticache", found.raw["ARN"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        elasticache = ctx.client("elasticache")
        if "replicas" in changes:
            verb = "increase" if changes["replicas"] + 1 > len(found.raw.get("MemberClusters", [])) else "decrease"
            getattr(elasticache, f"{verb}_replica_count")(ReplicationGroupId=found.id, NewReplicaCount=changes["replicas"],
                                                          ApplyImmediately=True)
        settings: dict[str, Any] = {}
        if "node_type" in changes:
            settings["CacheNodeType"] = changes["node_type"]
        if "automatic_failover" in changes:
            settings.update(AutomaticFailoverEnabled=changes["automatic_failover"],
                            MultiAZEnabled=changes["automatic_failover"])
        if settings:
            elasticache.modify_replication_group(ReplicationGroupId=found.id, ApplyImmediately=True, **settings)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        elasticache = ctx.client("elasticache")
        ignore_codes(elasticache.delete_replication_group, ["ReplicationGroupNotFoundFault"], ReplicationGroupId=found.id,
                     RetainPrimaryCluster=False)
        if ctx.lacks("elasticache", "FinishDeletion"):
            ctx.say("    not waiting: the emulator leaves a deleted replication group in 'deleting' for ever")
            return None
        wait_for(ctx, elasticache, "replication_group_deleted", f"Redis replication group {found.id} to be deleted",
                 self.typical_delete, real_delay=30, ReplicationGroupId=found.id)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        endpoint = (raw.get("NodeGroups") or [{}])[0].get("PrimaryEndpoint", {})
        return (f"{endpoint.get('Address')}:{endpoint.get('Port')} ({raw.get('CacheNodeType')}, "
                f"{len(raw.get('MemberClusters', []))} node(s), failover {raw.get('AutomaticFailover')}, "
                f"in transit {'encrypted' if raw.get('TransitEncryptionEnabled') else 'NOT encrypted'}, "
                f"at rest {'encrypted' if raw.get('AtRestEncryptionEnabled') else 'NOT encrypted'})")

    def outputs(self, found: Found) -> dict[str, Any]:
        endpoint = (found.raw.get("NodeGroups") or [{}])[0].get("PrimaryEndpoint", {})
        return {CACHE_ADDRESS.name: endpoint.get("Address"), CACHE_PORT.name: endpoint.get("Port")}


def desired(spec: Spec) -> list[Desired]:
    cache = spec.cache
    return [
        Desired("cache-subnet-group", "subnet-group", spec.name("cache-subnets"),
                {"subnets": [Ref("network", f"subnet/cache/{i}") for i in range(spec.network.zones)]},
                "Redis in the isolated cache subnets"),
        Desired("replication-group", CACHE_GROUP.key, spec.name("redis"), {
            "engine_version": cache.engine_version, "node_type": cache.node_type, "replicas": cache.replicas,
            "automatic_failover": cache.automatic_failover, "subnet_group": spec.name("cache-subnets"),
            "groups": [Ref("network", "sg/cache")]},
            f"Redis {cache.engine_version} {cache.node_type}, {cache.replicas} replica(s), "
            f"failover {'on' if cache.automatic_failover else 'off'}, encrypted in transit and at rest"),
    ]


STEP = ResourceStep(NAME, [CacheSubnetGroup(), ReplicationGroup()], desired, uses=("network",))
