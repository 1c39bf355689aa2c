"""The database's own DB parameter group and option group: MySQL forced to TLS, its logs written where RDS
exports them, and the audit plugin that writes the audit log.

RDS gives a new instance the default groups of its engine version, which cannot be changed (Amazon RDS User
Guide, "Working with parameter groups": "you can't modify the parameter settings of a default DB parameter
group"); a custom group of the same family is how a setting differs from MySQL's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.kinds import tags_of
from pointapp.resources import Desired, Found, Kind, Request, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import add_tags, aws_tags, from_aws_tags

#: The MySQL option that writes the audit log RDS exports as ``audit`` (Amazon RDS User Guide, "MariaDB Audit
#: Plugin support for MySQL": RDS for MySQL 8.0.28 and higher and 8.4), and what it records: connections and the
#: statements that change schemas and privileges, not every query (the general log has those).
AUDIT_PLUGIN = "MARIADB_AUDIT_PLUGIN"
AUDIT_EVENTS = "CONNECT,QUERY_DDL,QUERY_DCL"


def major_version(spec: Spec) -> str:
    """``8.4`` of ``8.4`` or ``8.4.7``: what the groups are made for."""
    return ".".join(spec.database.engine_version.split(".")[:2])


def parameter_family(spec: Spec) -> str:
    """The DB parameter group family of the engine version, ``mysql8.4`` (RDS API reference,
    CreateDBParameterGroup, DBParameterGroupFamily)."""
    return f"mysql{major_version(spec)}"


def parameters(spec: Spec) -> dict[str, str]:
    """The parameters pointapp sets, each dynamic in MySQL 8.4 (applied at once, no reboot: ApplyMethod
    ``immediate``; Amazon RDS User Guide, "Parameters for MySQL")."""
    return {
        # Connections without TLS are refused (Amazon RDS User Guide, "SSL/TLS support for MySQL DB instances",
        # Requiring SSL/TLS for all connections); Security Hub and Prowler check this parameter.
        "require_secure_transport": "1",
        # The slow-query and general logs go to files, which is what RDS exports to CloudWatch Logs (Amazon RDS
        # User Guide, "Publishing MySQL logs to Amazon CloudWatch Logs": log_output = FILE).
        "slow_query_log": "1",
        "general_log": "1" if spec.database.activity_logs else "0",
        "log_output": "FILE",
    }


def parameter_group_name(spec: Spec) -> str:
    """Named apart from the instance: ``down`` tells what a kept instance stands on by name."""
    return spec.name("mysql-parameters")


def option_group_name(spec: Spec) -> str:
    return spec.name("mysql-options")


def log_exports(spec: Spec, options: bool = True) -> list[str]:
    """The MySQL logs the instance exports to CloudWatch Logs: error and slow-query always; general, and audit
    where the target makes option groups (``options``), with ``database.activity_logs`` (what Security Hub RDS.9
    wants of MySQL is all four)."""
    activity = ["general", *(["audit"] if options else [])] if spec.database.activity_logs else []
    return sorted(["error", "slowquery", *activity])


def _rds_tags(ctx: StepContext, rds: Any, arn: str) -> dict[str, str]:
    return tags_of(ctx, arn, lambda: from_aws_tags(rds.list_tags_for_resource(ResourceName=arn)["TagList"]))


class DbParameterGroup(Kind):
    """A DB parameter group of the instance's family with pointapp's :func:`parameters`."""

    name = "db-parameter-group"
    service = "rds"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        rds = ctx.client("rds")
        answer = ignore_codes(rds.describe_db_parameter_groups, ["DBParameterGroupNotFound"],
                              DBParameterGroupName=parameter_group_name(spec))
        groups = []
        for group in (answer or {}).get("DBParameterGroups", []):
            pages = rds.get_paginator("describe_db_parameters").paginate(
                DBParameterGroupName=group["DBParameterGroupName"], Source="user")
            values = {p["ParameterName"]: p.get("ParameterValue") for page in pages for p in page.get("Parameters", [])}
            groups.append({**group, "Values": values})
        return self.owned(spec, step, groups, lambda g: g["DBParameterGroupName"],
                          lambda g: _rds_tags(ctx, rds, g["DBParameterGroupArn"]))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        values = found.raw.get("Values", {})
        return changed({"parameters": {name: values.get(name) for name in props["parameters"]}},
                       {"parameters": dict(props["parameters"])})

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        family = found.raw.get("DBParameterGroupFamily")
        if family and family != props["family"]:  # a group's family is fixed (ModifyDBParameterGroup has none)
            return f"family {family} -> {props['family']} (a new major version)"
        return None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_db_parameter_group": dict(
                    DBParameterGroupName=desired.name, DBParameterGroupFamily=props["family"],
                    Description=desired.detail[:255], Tags=aws_tags(tags)),
                "modify_db_parameter_group": dict(DBParameterGroupName=desired.name, Parameters=[
                    {"ParameterName": name, "ParameterValue": value, "ApplyMethod": "immediate"}
                    for name, value in props["parameters"].items()])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        rds = ctx.client("rds")
        request = self.request(ctx.spec, desired, props, tags)
        group = rds.create_db_parameter_group(**request["create_db_parameter_group"])["DBParameterGroup"]
        rds.modify_db_parameter_group(**request["modify_db_parameter_group"])
        return Found(self.name, desired.key, desired.name, dict(tags), {**group, "Values": dict(props["parameters"])})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "rds", found.raw["DBParameterGroupArn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "parameters" in changes:
            modify = self.request(ctx.spec, desired, props, {})["modify_db_parameter_group"]
            ctx.client("rds").modify_db_parameter_group(**modify)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("rds").delete_db_parameter_group, ["DBParameterGroupNotFound"],
                     DBParameterGroupName=found.id)
        return None

    def describe(self, found: Found) -> str:
        values = found.raw.get("Values", {})
        return f"{found.raw.get('DBParameterGroupFamily')}: " + ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


class DbOptionGroup(Kind):
    """An option group of the instance's major version; with ``database.activity_logs``, the audit plugin."""

    name = "db-option-group"
    service = "rds"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        rds = ctx.client("rds")
        answer = ignore_codes(rds.describe_option_groups, ["OptionGroupNotFoundFault"], OptionGroupName=option_group_name(spec))
        return self.owned(spec, step, (answer or {}).get("OptionGroupsList", []), lambda g: g["OptionGroupName"],
                          lambda g: _rds_tags(ctx, rds, g["OptionGroupArn"]))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        current = sorted(o["OptionName"] for o in found.raw.get("Options", []))
        return changed({"options": current}, {"options": sorted(o["OptionName"] for o in props["options"])})

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        major = found.raw.get("MajorEngineVersion")
        if major and major != props["major_version"]:
            return f"major version {major} -> {props['major_version']}"
        return None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        options = list(props["options"])
        return {"create_option_group": dict(OptionGroupName=desired.name, EngineName="mysql",
                                            MajorEngineVersion=props["major_version"],
                                            OptionGroupDescription=desired.detail[:255], Tags=aws_tags(tags)),
                "modify_option_group": [dict(OptionGroupName=desired.name, OptionsToInclude=options, ApplyImmediately=True)]
                if options else []}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        rds = ctx.client("rds")
        request = self.request(ctx.spec, desired, props, tags)
        group = rds.create_option_group(**request["create_option_group"])["OptionGroup"]
        for call in request["modify_option_group"]:
            group = rds.modify_option_group(**call)["OptionGroup"]
        return Found(self.name, desired.key, desired.name, dict(tags), group)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "rds", found.raw["OptionGroupArn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "options" not in changes:
            return
        wanted = {o["OptionName"] for o in props["options"]}
        gone = sorted({o["OptionName"] for o in found.raw.get("Options", [])} - wanted)
        args: dict[str, Any] = {"OptionGroupName": found.id, "ApplyImmediately": True}
        if props["options"]:
            args["OptionsToInclude"] = list(props["options"])
        if gone:
            args["OptionsToRemove"] = gone
        ctx.client("rds").modify_option_group(**args)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("rds").delete_option_group, ["OptionGroupNotFoundFault"], OptionGroupName=found.id)
        return None

    def describe(self, found: Found) -> str:
        options = ", ".join(o["OptionName"] for o in found.raw.get("Options", [])) or "no options"
        return f"MySQL {found.raw.get('MajorEngineVersion')}: {options}"


def group_resources(spec: Spec, options: bool = True) -> list[Desired]:
    """The parameter group and (where the target makes option groups: ``options``) the option group the
    instance uses."""
    audit = [{"OptionName": AUDIT_PLUGIN, "OptionSettings": [{"Name": "SERVER_AUDIT_EVENTS", "Value": AUDIT_EVENTS}]}]
    parameter_group = Desired("db-parameter-group", "parameter-group", parameter_group_name(spec),
                {"family": parameter_family(spec), "parameters": parameters(spec)},
                f"{parameter_family(spec)}: TLS required (require_secure_transport), slow-query"
                f"{' and general' if spec.database.activity_logs else ''} logs to files for CloudWatch Logs")
    if not options:
        return [parameter_group]
    return [
        parameter_group,
        Desired("db-option-group", "option-group", option_group_name(spec),
                {"major_version": major_version(spec), "options": audit if spec.database.activity_logs else []},
                f"MySQL {major_version(spec)}: " + (f"audit log ({AUDIT_PLUGIN}: {AUDIT_EVENTS})"
                                                    if spec.database.activity_logs else "no options")),
    ]
