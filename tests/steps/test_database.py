"""The database step on in-process moto: RDS MySQL in the db subnets, its protection and its snapshot."""

from __future__ import annotations

from typing import Any

import pytest

import pointapp
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import make_context
from tests.steps.helpers import client, prod_with, up_is_idempotent

STEPS = "network,database"


prod = prod_with(STEPS)


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


def test_database_in_staging(mocked: None) -> None:
    pointapp.up(make_context(load_spec("staging")), only=STEPS)
    (instance,) = client("rds").describe_db_instances(DBInstanceIdentifier="point-app-staging-mysql")["DBInstances"]
    assert not instance["MultiAZ"] and not instance["DeletionProtection"]


def test_idempotent(prod: Context) -> None:
    up_is_idempotent(prod, STEPS)


def test_prod_database_keeps_its_deletion_protection(prod: Context) -> None:
    outcome = pointapp.down(prod, only="database")
    # Kept at plan time and said why; its subnet group, which RDS will not delete while it is in use, too.
    kept = {f"{c.kind} {c.name}": c.args["why"] for c in outcome.kept}
    warning = kept.pop("db-instance point-app-prod-mysql")
    assert "deletion protection is on" in warning and "database.deletion_protection: false" in warning
    # What the instance uses stays with it: its subnet group, parameter group and monitoring role (RDS refuses to
    # delete the groups of an instance; the role is what its enhanced monitoring runs as).
    assert kept == {f"{kind} {name}": "db-instance point-app-prod-mysql (kept) stands on it" for kind, name in [
        ("db-subnet-group", "point-app-prod-db-subnets"), ("db-parameter-group", "point-app-prod-mysql-parameters"),
        ("iam-role", "point-app-prod-rds-monitoring")]}
    assert outcome.warnings == [] and outcome.remaining == []
    # The backup plan goes (its vault holds no recovery points on the emulator); nothing the database uses does.
    assert sorted(f"{c.kind} {c.name}" for c in outcome.applied) == [
        "backup-plan point-app-prod-database", "backup-vault point-app-prod-backups", "iam-role point-app-prod-backup"]
    assert client("rds").describe_db_instances(DBInstanceIdentifier="point-app-prod-mysql")["DBInstances"]
    # (moto refuses a backup plan named like one deleted before: its name check counts deleted plans)
    lifted = make_context(load_spec("prod", {"database": {"deletion_protection": False, "backup_plan": False}}))
    pointapp.up(lifted, only="database")
    assert pointapp.down(lifted, only="database").warnings == []
    snapshots = client("rds").describe_db_snapshots()["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"].startswith("point-app-prod-mysql-final-") for s in snapshots] == [True]
