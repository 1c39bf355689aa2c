"""The ``database`` step: RDS MySQL in the isolated db subnets.

A DB subnet group over the db subnets; a MySQL instance (8.4 by default) that is encrypted, not publicly accessible,
behind the db security group, with automated backups, Multi-AZ and deletion protection as the spec
says (on in prod, off in staging). RDS keeps the master password in Secrets Manager: pointapp asks for
that (``ManageMasterUserPassword``) and never sees, prints or stores the password itself.

The instance uses its own parameter group (connections only over TLS) and option group (the audit log), exports
its logs to CloudWatch Logs, accepts IAM database authentication, and, as the spec says, sends enhanced
monitoring through its monitoring role and is in an AWS Backup plan (:mod:`.groups`, :mod:`.backup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.diffs import describe as describe_differences
from pointapp.kinds import Role, SubnetGroup, tags_of, trust_policy
from pointapp.outputs import DATABASE_ADDRESS, DATABASE_INSTANCE, DATABASE_PORT, DATABASE_SECRET
from pointapp.resources import Arn, Desired, Found, Kind, PassingRefusal, Ref, Request, ResourceStep, ignore_codes, retry_refused, wait_for
from pointapp.spec import Spec
from pointapp.steps.database.backup import BackupPlan, BackupSelection, BackupVault, backup_resources
from pointapp.steps.database.groups import (
    DbOptionGroup,
    DbParameterGroup,
    group_resources,
    log_exports,
    option_group_name,
    parameter_group_name,
)
from pointapp.tags import add_tags, aws_tags, from_aws_tags
from pointapp.typical import Typical

NAME = "database"


def _instances(ctx: StepContext, spec: Spec) -> list[dict[str, Any]]:
    """The environment's MySQL instance as described (none or one; read once for both kinds)."""

    def load() -> list[dict[str, Any]]:
        answer = ignore_codes(ctx.client("rds").describe_db_instances, ["DBInstanceNotFound"],
                              DBInstanceIdentifier=spec.name("mysql"))
        return [i for i in (answer or {}).get("DBInstances", []) if i.get("DBInstanceStatus") != "deleting"]

    return list(ctx.read_once(("db-instance", spec.owner), load))


class DbSubnetGroup(SubnetGroup):
    name = "db-subnet-group"
    service = "rds"
    noun, call, arn_key = "DBSubnetGroup", "db_subnet_group", "DBSubnetGroupArn"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        rds = ctx.client("rds")
        name = spec.name("db-subnets")
        # The instance's description holds its subnet group: no second call once the database exists.
        groups = [{**i["DBSubnetGroup"], "DBSubnetGroupArn": Arn("rds", f"subgrp:{name}", None, None).on(ctx)}
                  for i in _instances(ctx, spec) if i.get("DBSubnetGroup", {}).get("DBSubnetGroupName") == name]
        if not groups:
            answer = ignore_codes(rds.describe_db_subnet_groups, ["DBSubnetGroupNotFoundFault"], DBSubnetGroupName=name)
            if answer is None:
                return []
            groups = answer["DBSubnetGroups"]
        return self.owned(spec, step, groups, lambda g: g["DBSubnetGroupName"],
                          lambda g: tags_of(ctx, g["DBSubnetGroupArn"], lambda: from_aws_tags(
                              rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"])))

    def stands_on(self, found: Found) -> list[str]:
        return [s["SubnetIdentifier"] for s in found.raw.get("Subnets", [])]


#: AWS's managed policy for the enhanced monitoring role (Amazon RDS User Guide, "Setting up and enabling
#: Enhanced Monitoring").
MONITORING_POLICY = Arn("iam", "policy/service-role/AmazonRDSEnhancedMonitoringRole", "", "aws")
# CreateDBInstance/ModifyDBInstance naming a monitoring role IAM has not propagated yet (the refusal
# terraform-provider-aws retries on for aws_db_instance: InvalidParameterValue, "ENHANCED_MONITORING").
MONITORING_ROLE = PassingRefusal("RDS", "InvalidParameterValue",
                                 r"IAM role ARN value is invalid or (?:does not|doesn't) include the required permissions "
                                 r"for: ENHANCED_MONITORING")


def _first(raw: Mapping[str, Any], field: str, name: str) -> Any:
    return (raw.get(field) or [{}])[0].get(name)


def _instance_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "instance_class": raw.get("DBInstanceClass"),
        "allocated_storage": raw.get("AllocatedStorage"),
        "multi_az": bool(raw.get("MultiAZ")),
        "backup_retention": raw.get("BackupRetentionPeriod"),
        "deletion_protection": bool(raw.get("DeletionProtection")),
        "publicly_accessible": bool(raw.get("PubliclyAccessible")),
        "groups": sorted(g["VpcSecurityGroupId"] for g in raw.get("VpcSecurityGroups", [])),
        "parameter_group": _first(raw, "DBParameterGroups", "DBParameterGroupName"),
        "option_group": _first(raw, "OptionGroupMemberships", "OptionGroupName"),
        "iam_authentication": bool(raw.get("IAMDatabaseAuthenticationEnabled")),
        "log_exports": sorted(raw.get("EnabledCloudwatchLogsExports") or []),
        "monitoring_interval": raw.get("MonitoringInterval") or 0,
        "monitoring_role": raw.get("MonitoringRoleArn") or None,
    }


_MODIFY = {"instance_class": "DBInstanceClass", "allocated_storage": "AllocatedStorage", "multi_az": "MultiAZ",
           "backup_retention": "BackupRetentionPeriod", "deletion_protection": "DeletionProtection",
           "publicly_accessible": "PubliclyAccessible", "groups": "VpcSecurityGroupIds",
           "parameter_group": "DBParameterGroupName", "option_group": "OptionGroupName",
           "iam_authentication": "EnableIAMDatabaseAuthentication", "monitoring_interval": "MonitoringInterval",
           "monitoring_role": "MonitoringRoleArn"}


def pending_reboot(raw: Mapping[str, Any]) -> bool:
    """Whether the instance's parameter group waits for a reboot to apply (a group it was moved to)."""
    return bool(_first(raw, "DBParameterGroups", "ParameterApplyStatus") == "pending-reboot")


def reboot_advice(name: str, multi_az: bool) -> str:
    """How to apply a parameter group RDS left ``pending-reboot``: pointapp never reboots a database itself."""
    failover = " --force-failover (Multi-AZ: a failover of about a minute)" if multi_az else ""
    return (f"RDS applies a new parameter group at the instance's next reboot (pending-reboot; Amazon RDS User Guide, "
            f"\"Associating a DB parameter group with a DB instance\"): reboot it in a quiet hour with "
            f"`aws rds reboot-db-instance --db-instance-identifier {name}{failover}`")


class DbInstance(Kind):
    name = "db-instance"
    service = "rds"
    # Typical figures are what these resources usually take in ap-northeast-1 and similar regions; AWS
    # publishes no promise. The upper bound is botocore's own waiter (delay x attempts).
    typical = Typical("db-instance", 600, "RDS MySQL, single-AZ, from creating to available",
                      "Amazon RDS User Guide, DB instance status; botocore waiter DBInstanceAvailable: 30 s x 60")
    typical_multi_az = Typical("db-instance-multi-az", 900, "RDS MySQL, Multi-AZ (a standby in a second zone), to available",
                               "Amazon RDS User Guide, Multi-AZ deployments; botocore waiter DBInstanceAvailable")
    typical_delete = Typical("db-instance-deleted", 600, "RDS MySQL from deleting to gone (a final snapshot first)",
                             "Amazon RDS User Guide, Deleting a DB instance; botocore waiter DBInstanceDeleted: 30 s x 60")

    def waits(self, spec: Spec) -> tuple[Typical, ...]:
        return (self.typical_multi_az if spec.database.multi_az else self.typical,)

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        return self.owned(spec, step, _instances(ctx, spec), lambda i: i["DBInstanceIdentifier"],
                          lambda i: from_aws_tags(i.get("TagList")))

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        return None  # a database is never replaced by pointapp: that would lose its data

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        current = _instance_settings(found.raw)
        if not props["option_group"]:
            del current["option_group"]  # the target makes none: the default one stays
        wanted = {key: props[key] for key in current}
        wanted["groups"] = sorted(props["groups"])
        changes = changed(current, wanted)
        if changes.get("allocated_storage", 1 << 30) < (current["allocated_storage"] or 0):
            del changes["allocated_storage"]  # storage only grows; a smaller figure is not a change to make
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_db_instance": dict(
            DBInstanceIdentifier=desired.name, Engine="mysql", EngineVersion=props["engine_version"],
            DBInstanceClass=props["instance_class"], AllocatedStorage=props["allocated_storage"], StorageType="gp3",
            StorageEncrypted=True, MultiAZ=props["multi_az"], PubliclyAccessible=False,
            VpcSecurityGroupIds=list(props["groups"]), DBSubnetGroupName=props["subnet_group"],
            BackupRetentionPeriod=props["backup_retention"], DeletionProtection=props["deletion_protection"],
            DBName=props["database_name"], MasterUsername=props["username"], ManageMasterUserPassword=True,
            CopyTagsToSnapshot=True, AutoMinorVersionUpgrade=True,
            EngineLifecycleSupport=props["lifecycle_support"], DBParameterGroupName=props["parameter_group"],
            **({"OptionGroupName": props["option_group"]} if props["option_group"] else {}),
            EnableIAMDatabaseAuthentication=props["iam_authentication"],
            EnableCloudwatchLogsExports=list(props["log_exports"]), MonitoringInterval=props["monitoring_interval"],
            **({"MonitoringRoleArn": props["monitoring_role"]} if props["monitoring_role"] else {}),
            Tags=aws_tags(tags))}

    def explain(self, desired: Desired, found: Found, differences: Mapping[str, Any]) -> str:
        said = describe_differences(differences)
        if "parameter_group" in differences:
            said += f"; {reboot_advice(found.id, bool(found.raw.get('MultiAZ')))}"
        return said

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        rds = ctx.client("rds")
        request = self.request(ctx.spec, desired, props, tags)["create_db_instance"]
        instance = retry_refused(ctx, MONITORING_ROLE, props["monitoring_role"] or desired.name,
                                  lambda: rds.create_db_instance(**request))["DBInstance"]
        kind = "Multi-AZ " if props["multi_az"] else ""
        answer = wait_for(ctx, rds, "db_instance_available", f"{kind}MySQL instance {desired.name} to be available",
                          self.typical_multi_az if props["multi_az"] else self.typical, real_delay=30,
                          DBInstanceIdentifier=desired.name)
        # The last poll describes it available, with the endpoint the service connects to.
        instance = (answer.get("DBInstances") or [instance])[0]
        return Found(self.name, desired.key, desired.name, dict(tags), instance)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "rds", found.raw["DBInstanceArn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        settings = {_MODIFY[key]: value for key, value in changes.items() if key in _MODIFY}
        if "monitoring_interval" in changes or "monitoring_role" in changes:  # RDS takes the two together
            settings["MonitoringInterval"] = props["monitoring_interval"]
            settings.pop("MonitoringRoleArn", None)
            if props["monitoring_role"]:
                settings["MonitoringRoleArn"] = props["monitoring_role"]
        if "log_exports" in changes:
            current = set(found.raw.get("EnabledCloudwatchLogsExports") or [])
            settings["CloudwatchLogsExportConfiguration"] = {
                "EnableLogTypes": sorted(set(changes["log_exports"]) - current),
                "DisableLogTypes": sorted(current - set(changes["log_exports"]))}
        if settings:
            rds = ctx.client("rds")
            retry_refused(ctx, MONITORING_ROLE, props["monitoring_role"] or found.id, lambda: rds.modify_db_instance(
                DBInstanceIdentifier=found.id, ApplyImmediately=True, **settings))
        if "parameter_group" in changes:
            ctx.say(f"    {reboot_advice(found.id, bool(found.raw.get('MultiAZ')))}")

    def keeps(self, spec: Spec, found: Found) -> str | None:
        if not found.raw.get("DeletionProtection"):
            return None
        # RDS refuses to delete an instance with deletion protection on (DeleteDBInstance, RDS API reference).
        return ("deletion protection is on. To delete it, set database.deletion_protection: false in the config, "
                "run `pointapp up --only database`, then `pointapp down` again")

    def stands_on(self, found: Found) -> list[str]:
        # RDS refuses to delete a DB subnet group an instance is in (InvalidDBSubnetGroupStateFault,
        # DeleteDBSubnetGroup), and EC2 the subnets and security groups that hold its network interfaces.
        # The same of its parameter and option groups (DeleteDBParameterGroup: "can't be associated with any DB
        # instances"; DeleteOptionGroup, InvalidOptionGroupStateFault), and its monitoring role.
        group = found.raw.get("DBSubnetGroup", {})
        raw = found.raw
        groups = [_first(raw, "DBParameterGroups", "DBParameterGroupName"), _first(raw, "OptionGroupMemberships", "OptionGroupName"),
                  (raw.get("MonitoringRoleArn") or "").rsplit("/", 1)[-1]]
        return ([group.get("DBSubnetGroupName", "")] + [s["SubnetIdentifier"] for s in group.get("Subnets", [])]
                + [g["VpcSecurityGroupId"] for g in found.raw.get("VpcSecurityGroups", [])] + [g for g in groups if g])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        rds = ctx.client("rds")
        snapshot = ctx.spec.database.final_snapshot
        args: dict[str, Any] = {"DBInstanceIdentifier": found.id, "SkipFinalSnapshot": not snapshot}
        if snapshot:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
            args["FinalDBSnapshotIdentifier"] = f"{found.id}-final-{stamp}"
            ctx.say(f"    taking the final snapshot {args['FinalDBSnapshotIdentifier']} before deletion")
        ignore_codes(rds.delete_db_instance, ["DBInstanceNotFound"], **args)
        wait_for(ctx, rds, "db_instance_deleted", f"MySQL instance {found.id} to be deleted", self.typical_delete,
                 real_delay=30, DBInstanceIdentifier=found.id)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        endpoint = raw.get("Endpoint", {})
        flags = [f"MySQL {raw.get('EngineVersion')}", raw.get("DBInstanceClass", ""),
                 "Multi-AZ" if raw.get("MultiAZ") else "single-AZ",
                 "encrypted" if raw.get("StorageEncrypted") else "NOT encrypted",
                 "public" if raw.get("PubliclyAccessible") else "private",
                 f"backups {raw.get('BackupRetentionPeriod')} d",
                 "deletion protection" if raw.get("DeletionProtection") else "no deletion protection",
                 "IAM authentication" if raw.get("IAMDatabaseAuthenticationEnabled") else "no IAM authentication",
                 f"logs {', '.join(raw.get('EnabledCloudwatchLogsExports') or []) or 'none'} to CloudWatch",
                 f"enhanced monitoring {raw.get('MonitoringInterval')} s" if raw.get("MonitoringInterval") else "no enhanced monitoring"]
        if pending_reboot(raw):
            flags.append("parameter group pending reboot")
        return f"{endpoint.get('Address')}:{endpoint.get('Port')} ({', '.join(flags)})"

    def outputs(self, found: Found) -> dict[str, Any]:
        endpoint = found.raw.get("Endpoint", {})
        return {DATABASE_ADDRESS.name: endpoint.get("Address"), DATABASE_PORT.name: endpoint.get("Port"),
                DATABASE_SECRET.name: found.raw.get("MasterUserSecret", {}).get("SecretArn")}


def lifecycle_support(spec: Spec) -> str:
    """``EngineLifecycleSupport``, set deliberately: RDS's default enrols the instance in Extended Support,
    charged once its major version leaves standard support (RDS API reference, ``CreateDBInstance``)."""
    return "open-source-rds-extended-support" if spec.database.extended_support else "open-source-rds-extended-support-disabled"


def monitoring_resources(spec: Spec) -> list[Desired]:
    """The enhanced monitoring role (none when ``database.monitoring_interval`` is 0)."""
    if not spec.database.monitoring_interval:
        return []
    return [Desired("iam-role", "role/monitoring", spec.name("rds-monitoring"), {
        "trust": trust_policy("monitoring.rds.amazonaws.com", spec=spec), "managed": [MONITORING_POLICY], "inline": {}},
        "RDS sends the operating system's metrics to CloudWatch Logs (enhanced monitoring)")]


def facts(ctx: StepContext) -> dict[str, Any]:
    """What the desired list depends on besides the spec: whether the target makes MySQL option groups (the
    emulator does not for 8.4: :data:`pointapp.emulator.EMULATOR_GAPS`)."""
    return {"option_groups": ctx.lacks("rds", "CreateOptionGroup") is None}


def desired(spec: Spec, facts: Mapping[str, Any] | None = None) -> list[Desired]:
    """The step's resources, in creation order; on a target without option groups (``facts``), none, and the
    instance keeps the default option group (so no audit log). Pure."""
    database = spec.database
    monitoring = bool(database.monitoring_interval)
    options = (facts or {}).get("option_groups", True)
    groups = group_resources(spec, options)
    return [
        Desired("db-subnet-group", "subnet-group", spec.name("db-subnets"),
                {"subnets": [Ref("network", f"subnet/db/{i}") for i in range(spec.network.zones)]},
                "MySQL in the isolated db subnets"),
        *groups,
        *monitoring_resources(spec),
        Desired("db-instance", DATABASE_INSTANCE.key, spec.name("mysql"), {
            "engine_version": database.engine_version, "instance_class": database.instance_class,
            "allocated_storage": database.allocated_storage_gb, "multi_az": database.multi_az,
            "backup_retention": database.backup_retention_days, "deletion_protection": database.deletion_protection,
            "publicly_accessible": False, "groups": [Ref("network", "sg/db")], "subnet_group": spec.name("db-subnets"),
            "database_name": database.database_name, "username": database.username,
            "lifecycle_support": lifecycle_support(spec), "parameter_group": parameter_group_name(spec),
            "option_group": option_group_name(spec) if options else None, "iam_authentication": database.iam_authentication,
            "log_exports": log_exports(spec, options), "monitoring_interval": database.monitoring_interval,
            "monitoring_role": Ref(NAME, "role/monitoring", "Arn") if monitoring else None},
            f"MySQL {database.engine_version} {database.instance_class}, {database.allocated_storage_gb} GiB encrypted, "
            f"{'Multi-AZ' if database.multi_az else 'single-AZ'}, private, backups {database.backup_retention_days} days, "
            f"deletion protection {'on' if database.deletion_protection else 'off'}, password kept by RDS in Secrets Manager, "
            f"TLS only, IAM authentication {'on' if database.iam_authentication else 'off'}, logs "
            f"{', '.join(log_exports(spec, options))} to CloudWatch, enhanced monitoring "
            f"{f'every {database.monitoring_interval} s' if monitoring else 'off'}"),
        *backup_resources(spec, NAME),
    ]


STEP = ResourceStep(NAME, [DbSubnetGroup(), DbParameterGroup(), DbOptionGroup(), Role(), DbInstance(), BackupVault(),
                           BackupPlan(), BackupSelection()], desired, uses=("network",), facts=facts)
