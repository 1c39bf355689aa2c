"""The cache step on in-process moto: ElastiCache Redis in the cache subnets."""

from __future__ import annotations

import pointapp
from pointapp.resources import Desired, Found
from pointapp.spec import load_spec
from pointapp.steps import cache
from pointapp.target import Context
from tests.conftest import aws_context, make_context, stub
from tests.steps.helpers import client, prod_with, up_is_idempotent

STEPS = "network,cache"


prod = prod_with(STEPS)


def test_cache_in_prod(prod: Context) -> None:
    network = prod.outputs("network")
    (group,) = client("elasticache").describe_replication_groups(ReplicationGroupId="point-app-prod-redis")[
        "ReplicationGroups"]
    assert group["AutomaticFailover"] == "enabled"
    assert group["TransitEncryptionEnabled"] and group["AtRestEncryptionEnabled"]
    assert group["CacheNodeType"] == "cache.t4g.micro"
    subnets = client("elasticache").describe_cache_subnet_groups(CacheSubnetGroupName="point-app-prod-cache-subnets")[
        "CacheSubnetGroups"][0]["Subnets"]
    assert sorted(s["SubnetIdentifier"] for s in subnets) == sorted([network["subnet/cache/0"], network["subnet/cache/1"]])


def test_cache_in_staging(mocked: None) -> None:
    pointapp.up(make_context(load_spec("staging")), only=STEPS)
    (group,) = client("elasticache").describe_replication_groups(ReplicationGroupId="point-app-staging-redis")[
        "ReplicationGroups"]
    assert group["AutomaticFailover"] == "disabled"


def test_idempotent(prod: Context) -> None:
    up_is_idempotent(prod, STEPS)


def test_cache_subnet_group_paths_on_aws() -> None:
    ctx = aws_context()
    elasticache = stub(ctx, "elasticache")
    elasticache.add_response("modify_cache_subnet_group", {"CacheSubnetGroup": {}},
                             {"CacheSubnetGroupName": "point-app-prod-cache-subnets", "SubnetIds": ["subnet-a", "subnet-b"]})
    elasticache.add_response("delete_cache_subnet_group", {}, {"CacheSubnetGroupName": "point-app-prod-cache-subnets"})
    found = Found("cache-subnet-group", "subnet-group", "point-app-prod-cache-subnets", {}, {})
    desired = Desired("cache-subnet-group", "subnet-group", "point-app-prod-cache-subnets", {})
    cache.CacheSubnetGroup().update(ctx, desired, {}, found, {"subnets": ["subnet-a", "subnet-b"]})
    assert cache.CacheSubnetGroup().delete(ctx, found) is None
    elasticache.assert_no_pending_responses()
