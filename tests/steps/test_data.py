"""The database, cache, bastion and mail steps on in-process moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

import pointapp
from pointapp.spec import load_spec
from pointapp.steps import bastion, mail
from pointapp.target import Context
from tests.conftest import REGION, make_context
from tests.steps.helpers import down_leaves_nothing, up_is_idempotent

DATA = "network,database,cache,bastion,mail"


def client(name: str) -> Any:
    return boto3.client(name, region_name=REGION)


@pytest.fixture
def prod(ctx: Context) -> Context:
    pointapp.up(ctx, only=DATA)
    return ctx


@pytest.fixture
def staging(mocked: None) -> Context:
    ctx = make_context(load_spec("staging"))
    pointapp.up(ctx, only=DATA)
    return ctx


def test_database_in_prod(prod: Context) -> None:
    network = prod.outputs("network")
    (instance,) = client("rds").describe_db_instances(DBInstanceIdentifier="point-app-prod-mysql")["DBInstances"]
    assert (instance["Engine"], instance["EngineVersion"][:3]) == ("mysql", "8.4")
    assert instance["MultiAZ"] and instance["StorageEncrypted"] and not instance["PubliclyAccessible"]
    assert instance["DeletionProtection"] and instance["BackupRetentionPeriod"] == 7
    assert [g["VpcSecurityGroupId"] for g in instance["VpcSecurityGroups"]] == [network["sg/db"]]
    assert instance["MasterUserSecret"]["SecretArn"]  # RDS keeps the password; pointapp never has it
    group = client("rds").describe_db_subnet_groups(DBSubnetGroupName="point-app-prod-db-subnets")["DBSubnetGroups"][0]
    assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted([network["subnet/db/0"], network["subnet/db/1"]])


@pytest.mark.parametrize(("overrides", "lifecycle"), [
    ({}, "open-source-rds-extended-support-disabled"),
    ({"database": {"extended_support": True}}, "open-source-rds-extended-support"),
])
def test_database_lifecycle_support_is_set_deliberately(mocked: None, overrides: dict[str, Any], lifecycle: str) -> None:
    sent: list[dict[str, Any]] = []
    ctx = make_context(load_spec("prod", overrides))
    ctx.client("rds").meta.events.register("provide-client-params.rds.CreateDBInstance",
                                           lambda params, **_: sent.append(dict(params)))
    pointapp.up(ctx, only="network,database")
    assert [(s["EngineVersion"], s["EngineLifecycleSupport"]) for s in sent] == [("8.4", lifecycle)]


def test_database_and_cache_in_staging(staging: Context) -> None:
    (instance,) = client("rds").describe_db_instances(DBInstanceIdentifier="point-app-staging-mysql")["DBInstances"]
    assert not instance["MultiAZ"] and not instance["DeletionProtection"]
    (group,) = client("elasticache").describe_replication_groups(ReplicationGroupId="point-app-staging-redis")[
        "ReplicationGroups"]
    assert group["AutomaticFailover"] == "disabled"


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


def test_bastion_is_ssm_only(prod: Context) -> None:
    network = prod.outputs("network")
    reservations = client("ec2").describe_instances(Filters=[{"Name": "tag:pointapp:step", "Values": ["bastion"]}])
    (instance,) = [i for r in reservations["Reservations"] for i in r["Instances"]]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in instance
    assert instance["SubnetId"] == network["subnet/management/0"]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [network["sg/management"]]
    (group,) = client("ec2").describe_security_groups(GroupIds=[network["sg/management"]])["SecurityGroups"]
    assert group["IpPermissions"] == []
    assert instance["IamInstanceProfile"]["Arn"].endswith("/point-app-prod-bastion")
    policies = client("iam").list_attached_role_policies(RoleName="point-app-prod-bastion")["AttachedPolicies"]
    assert [p["PolicyName"] for p in policies] == ["AmazonSSMManagedInstanceCore"]
    image = client("ssm").get_parameter(Name=prod.spec.bastion.ami_parameter)["Parameter"]["Value"]
    assert instance["ImageId"] == image


def test_port_forwarding_commands(prod: Context) -> None:
    table = bastion.port_forwarding(prod)
    assert [row[0] for row in table.rows] == ["database", "cache"]
    assert all("AWS-StartPortForwardingSessionToRemoteHost" in row[3] for row in table.rows)
    assert "portNumber=3306,localPortNumber=13306" in table.rows[0][3]


def test_mail_identity_and_records(prod: Context) -> None:
    identity = client("sesv2").get_email_identity(EmailIdentity="example.com")
    assert identity["IdentityType"] == "DOMAIN" and identity["ConfigurationSetName"] == "point-app-prod-mail"
    records = mail.dns_records(prod)
    assert ("TXT", "_dmarc.example.com", "v=DMARC1; p=none;") in [tuple(r) for r in records.rows]


def test_mail_to_an_address_needs_no_dns(mocked: None) -> None:
    ctx = make_context(load_spec("prod", {"mail": {"identity": "noreply@example.com"}}))
    pointapp.up(ctx, only="mail")
    assert client("sesv2").get_email_identity(EmailIdentity="noreply@example.com")["IdentityType"] == "EMAIL_ADDRESS"
    assert len(mail.dns_records(ctx)) == 0
    assert any("verification link" in line for line in ctx.lines)  # type: ignore[attr-defined]


def test_idempotent(prod: Context) -> None:
    up_is_idempotent(prod, DATA)


def test_prod_database_keeps_its_deletion_protection(prod: Context) -> None:
    outcome = pointapp.down(prod, only="database")
    # Kept at plan time and said why; its subnet group, which RDS will not delete while it is in use, too.
    kept = {f"{c.kind} {c.name}": c.args["why"] for c in outcome.kept}
    warning = kept.pop("db-instance point-app-prod-mysql")
    assert "deletion protection is on" in warning and "database.deletion_protection: false" in warning
    assert kept == {"db-subnet-group point-app-prod-db-subnets": "db-instance point-app-prod-mysql (kept) stands on it"}
    assert outcome.warnings == [] and outcome.remaining == [] and outcome.applied == []
    assert client("rds").describe_db_instances(DBInstanceIdentifier="point-app-prod-mysql")["DBInstances"]
    lifted = make_context(load_spec("prod", {"database": {"deletion_protection": False}}))
    pointapp.up(lifted, only="database")
    assert pointapp.down(lifted, only="database").warnings == []
    snapshots = client("rds").describe_db_snapshots()["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"].startswith("point-app-prod-mysql-final-") for s in snapshots] == [True]


def test_staging_down_leaves_nothing_but_what_the_emulator_cannot_delete(staging: Context) -> None:
    warnings = down_leaves_nothing(staging, "mail,bastion,cache,database,network")
    assert [w.split(":")[0] for w in warnings] == ["cache-subnet-group point-app-staging-cache-subnets"]
    assert client("rds").describe_db_snapshots()["DBSnapshots"] == []  # staging takes no final snapshot


def test_service_gets_the_data_endpoints_and_the_managed_secret(mocked: None) -> None:
    ctx = make_context()
    pointapp.up(ctx, only="network,endpoints,registry,database,cache,mail,service")
    definition = client("ecs").describe_task_definition(taskDefinition="point-app-prod-api")["taskDefinition"]
    container = definition["containerDefinitions"][0]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    database = ctx.outputs("database")
    assert environment["DB_HOST"] == database["instance/address"] and environment["DB_PORT"] == "3306"
    assert environment["REDIS_HOST"] == ctx.outputs("cache")["replication-group/address"]
    assert container["secrets"] == [{"name": "DB_CREDENTIALS", "valueFrom": database["instance/secret"]}]
    assert environment["DB_SECRET_ARN"] == database["instance/secret"]  # what the API reads again after a rotation
    policy = json.dumps(client("iam").get_role_policy(RoleName="point-app-prod-task-execution",
                                                      PolicyName="pull-image-write-logs-inject-secrets")["PolicyDocument"])
    assert "secret:rds!db-*" in policy and "db:point-app-prod-mysql" in policy


def test_cache_subnet_group_paths_on_aws() -> None:
    from pointapp.resources import Desired, Found
    from pointapp.steps import cache
    from tests.conftest import aws_context, stub

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
