"""The database step on in-process moto: RDS MySQL in the db subnets, its protection and its snapshot."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

import pointapp
from pointapp.resources import Found, StepState
from pointapp.spec import load_spec
from pointapp.steps import database
from pointapp.target import Context
from tests.aws_behaviour import ACCOUNT
from tests.conftest import REGION, make_context
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
    # And its backups go on: the plan, with its vault and the role its selection runs as.
    plan = kept.pop("backup-plan point-app-prod-database")
    assert plan == "the database it backs up has deletion protection and stays: so do its backups"
    assert kept == {f"{kind} {name}": f"{by} (kept) stands on it" for kind, name, by in [
        ("db-subnet-group", "point-app-prod-db-subnets", "db-instance point-app-prod-mysql"),
        ("db-parameter-group", "point-app-prod-mysql-parameters", "db-instance point-app-prod-mysql"),
        ("iam-role", "point-app-prod-rds-monitoring", "db-instance point-app-prod-mysql"),
        ("backup-vault", "point-app-prod-backups", "backup-plan point-app-prod-database"),
        ("iam-role", "point-app-prod-backup", "backup-plan point-app-prod-database")]}
    assert outcome.warnings == [] and outcome.remaining == [] and outcome.applied == []
    assert client("rds").describe_db_instances(DBInstanceIdentifier="point-app-prod-mysql")["DBInstances"]
    lifted = make_context(load_spec("prod", {"database": {"deletion_protection": False}}))
    pointapp.up(lifted, only="database")
    assert pointapp.down(lifted, only="database").warnings == []
    snapshots = client("rds").describe_db_snapshots()["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"].startswith("point-app-prod-mysql-final-") for s in snapshots] == [True]


def test_the_instance_is_tls_only_logs_and_is_monitored_and_backed_up(mocked: None) -> None:
    sent: list[dict[str, Any]] = []
    ctx = make_context(load_spec("prod"))
    ctx.client("rds").meta.events.register("provide-client-params.rds.CreateDBInstance",
                                           lambda params, **_: sent.append(dict(params)))
    outcome = pointapp.up(ctx, only=STEPS)
    (request,) = sent
    role = client("iam").get_role(RoleName="point-app-prod-rds-monitoring")["Role"]
    assert {k: request[k] for k in ("DBParameterGroupName", "EnableIAMDatabaseAuthentication", "EnableCloudwatchLogsExports",
                                    "MonitoringInterval", "MonitoringRoleArn")} == {
        "DBParameterGroupName": "point-app-prod-mysql-parameters", "EnableIAMDatabaseAuthentication": True,
        # the emulator has no MySQL 8.4 option groups: no audit plugin, so no audit log (on AWS: all four)
        "EnableCloudwatchLogsExports": ["error", "general", "slowquery"], "MonitoringInterval": 60,
        "MonitoringRoleArn": role["Arn"]}
    assert "OptionGroupName" not in request
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in client("rds").describe_db_parameters(
        DBParameterGroupName="point-app-prod-mysql-parameters", Source="user")["Parameters"]}
    assert parameters == {"require_secure_transport": "1", "slow_query_log": "1", "general_log": "1", "log_output": "FILE"}
    group = client("rds").describe_db_parameter_groups(DBParameterGroupName="point-app-prod-mysql-parameters")
    assert group["DBParameterGroups"][0]["DBParameterGroupFamily"] == "mysql8.4"
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:rds:{REGION}:{ctx.account}:db:point-app-prod-mysql"}
    (plan,) = client("backup").list_backup_plans()["BackupPlansList"]
    rule = client("backup").get_backup_plan(BackupPlanId=plan["BackupPlanId"])["BackupPlan"]["Rules"][0]
    assert (rule["TargetBackupVaultName"], rule["Lifecycle"]) == ("point-app-prod-backups", {"DeleteAfterDays": 35})
    skipped = [c.line() for c in outcome.skipped]
    assert any("backup-selection" in line and "no backup selections" in line for line in skipped), skipped


def test_an_older_database_converges_and_the_plan_says_how_its_parameter_group_applies(mocked: None) -> None:
    ctx = make_context(load_spec("staging"))
    pointapp.up(ctx, only=STEPS)
    rds = client("rds")  # as an earlier pointapp left it: the default group, no IAM authentication, no logs
    # (a group of moto's in place of RDS's default.mysql8.4, which moto does not let an instance move to)
    rds.create_db_parameter_group(DBParameterGroupName="default-like", DBParameterGroupFamily="mysql8.4", Description="x")
    rds.modify_db_instance(DBInstanceIdentifier="point-app-staging-mysql", DBParameterGroupName="default-like",
                           EnableIAMDatabaseAuthentication=False, ApplyImmediately=True,
                           CloudwatchLogsExportConfiguration={"DisableLogTypes": ["error", "slowquery"]})
    planned = pointapp.plan(make_context(load_spec("staging")), only="database")
    (change,) = planned.changes
    assert change.action == "update" and change.kind == "db-instance"
    for said in ("parameter_group", "iam_authentication", "log_exports", "pending-reboot",
                 "aws rds reboot-db-instance --db-instance-identifier point-app-staging-mysql"):
        assert said in change.detail, change.detail
    pointapp.up(make_context(load_spec("staging")), only="database")
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier="point-app-staging-mysql")["DBInstances"]
    assert instance["DBParameterGroups"][0]["DBParameterGroupName"] == "point-app-staging-mysql-parameters"
    assert instance["IAMDatabaseAuthenticationEnabled"] and instance["EnabledCloudwatchLogsExports"] == ["error", "slowquery"]
    assert pointapp.plan(make_context(load_spec("staging")), only="database").empty


def test_the_requests_moto_cannot_take_match_the_api() -> None:
    """What the emulator lacks (the MySQL 8.4 option group, backup selections, plan updates) is checked against
    botocore's model of the API: each request as the kind makes it is one the service accepts."""
    spec = load_spec("prod")
    wanted = {d.key: d for d in database.desired(spec)}
    options, vault_plan = database.STEP.kinds["db-option-group"], database.STEP.kinds["backup-plan"]
    option_request = options.request(spec, wanted["option-group"], wanted["option-group"].props, {"Name": "x"})
    plan = wanted["backup/plan"]
    props = {"plan": "plan-1", "role": f"arn:aws:iam::{ACCOUNT}:role/backup",
             "database": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:point-app-prod-mysql"}
    selection = database.STEP.kinds["backup-selection"].request(spec, wanted["backup/selection"], props, {})
    calls = [("rds", "create_option_group", option_request["create_option_group"], {}),
             *[("rds", "modify_option_group", call, {}) for call in option_request["modify_option_group"]],
             ("backup", "create_backup_selection", selection["create_backup_selection"], {"SelectionId": "s-1"}),
             ("backup", "list_backup_selections", {"BackupPlanId": "plan-1"}, {}),
             ("backup", "get_backup_selection", {"BackupPlanId": "plan-1", "SelectionId": "s-1"}, {}),
             ("backup", "delete_backup_selection", {"BackupPlanId": "plan-1", "SelectionId": "s-1"}, {}),
             ("backup", "update_backup_plan", {"BackupPlanId": "plan-1",
                                               "BackupPlan": vault_plan._plan(plan, plan.props)}, {})]  # type: ignore[attr-defined]
    for service, operation, params, answer in calls:
        api = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        with Stubber(api) as stub:  # the Stubber validates the request against the operation's input shape
            stub.add_response(operation, answer, params)
            getattr(api, operation)(**params)
    assert option_request["modify_option_group"][0]["OptionsToInclude"][0]["OptionName"] == "MARIADB_AUDIT_PLUGIN"
    assert selection["create_backup_selection"]["BackupSelection"]["Resources"] == [props["database"]]


def test_a_vault_that_holds_backups_is_kept() -> None:
    spec = load_spec("prod")
    vault = database.STEP.kinds["backup-vault"]
    holding = Found("backup-vault", "backup/vault", "point-app-prod-backups", {}, {"NumberOfRecoveryPoints": 3})
    assert "holds 3 recovery points" in (vault.keeps(spec, holding) or "")
    assert vault.keeps(spec, Found("backup-vault", "backup/vault", "v", {}, {"NumberOfRecoveryPoints": 0})) is None
    (change,) = database.STEP.plan_destroy(spec, StepState(found={"backup/vault": holding}))
    assert change.action == "keep" and "aws backup delete-recovery-point" in change.args["why"]
