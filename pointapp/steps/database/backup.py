"""The database's AWS Backup plan (Security Hub RDS.26, "RDS DB instances should be protected by a backup
plan"): an encrypted backup vault, a daily plan that keeps each backup ``database.backup_plan_retention_days``,
the selection of the database by ARN, and the service role AWS Backup takes the backups with.

RDS's own automated backups (``database.backup_retention_days``, at most 35 days) stay; the plan adds backups
kept apart from the instance's lifecycle, in a vault: deleting the instance leaves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.kinds import tags_of, trust_policy
from pointapp.resources import Arn, Desired, Found, Kind, Ref, Request, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import add_tags, ownership_tags

#: AWS's managed policy for a backup service role: what backups of the supported services need (AWS Backup
#: Developer Guide, "Managed policies for AWS Backup", AWSBackupServiceRolePolicyForBackup).
BACKUP_POLICY = Arn("iam", "policy/service-role/AWSBackupServiceRolePolicyForBackup", "", "aws")

#: Once a day at 18:00 UTC (03:00 in Tokyo), within an hour of it, done within eight (AWS Backup Developer Guide,
#: "Backup plan options and configuration": cron in UTC, start window at least 60 minutes).
SCHEDULE = "cron(0 18 * * ? *)"
START_WINDOW_MINUTES = 60
COMPLETION_WINDOW_MINUTES = 480


def protected_database(spec: Spec) -> str | None:
    """Why ``down`` keeps the backup plan: the database it protects is kept (deletion protection), so its backups
    go on, and lifting the protection (``up --only database``) has nothing to make anew."""
    if not spec.database.deletion_protection:
        return None
    return "the database it backs up has deletion protection and stays: so do its backups"


def _backup_tags(ctx: StepContext, arn: str) -> dict[str, str]:
    return tags_of(ctx, arn, lambda: ctx.client("backup").list_tags(ResourceArn=arn).get("Tags", {}))


class BackupVault(Kind):
    """A backup vault, encrypted with AWS Backup's own KMS key unless one is given (AWS Backup Developer Guide,
    "Encryption for backups in AWS Backup")."""

    name = "backup-vault"
    service = "backup"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        pages = ctx.client("backup").get_paginator("list_backup_vaults").paginate()
        vaults = [v for page in pages for v in page.get("BackupVaultList", []) if v["BackupVaultName"] == spec.name("backups")]
        return self.owned(spec, step, vaults, lambda v: v["BackupVaultName"], lambda v: _backup_tags(ctx, v["BackupVaultArn"]))

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_backup_vault": dict(BackupVaultName=desired.name, BackupVaultTags=dict(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        vault = ctx.client("backup").create_backup_vault(**self.request(ctx.spec, desired, props, tags)["create_backup_vault"])
        return Found(self.name, desired.key, desired.name, dict(tags), {**vault, "NumberOfRecoveryPoints": 0})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "backup", found.raw["BackupVaultArn"], tags)

    def keeps(self, spec: Spec, found: Found) -> str | None:
        points = found.raw.get("NumberOfRecoveryPoints") or 0
        if not points:
            return None
        # AWS Backup refuses to delete a vault that holds recovery points (DeleteBackupVault, AWS Backup API
        # reference: "the vault must be empty"); the backups are the point of the vault: pointapp keeps them.
        return (f"it holds {points} recovery point{'s' if points != 1 else ''} (the database's backups). To delete "
                f"it, delete them first (AWS Backup console, or aws backup delete-recovery-point), then `pointapp down` again")

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("backup").delete_backup_vault, ["ResourceNotFoundException"], BackupVaultName=found.id)
        return None

    def describe(self, found: Found) -> str:
        key = found.raw.get("EncryptionKeyArn") or "AWS Backup's key"
        return f"{found.raw.get('NumberOfRecoveryPoints', 0)} recovery points, encrypted with {key}"


def _rule(plan: Mapping[str, Any]) -> dict[str, Any]:
    """What pointapp sets of a plan's one rule, as GetBackupPlan describes it."""
    rules = plan.get("Rules") or [{}]
    rule = rules[0]
    return {"rules": len(rules), "vault": rule.get("TargetBackupVaultName"), "schedule": rule.get("ScheduleExpression"),
            "retention_days": (rule.get("Lifecycle") or {}).get("DeleteAfterDays")}


class BackupPlan(Kind):
    """A backup plan of one daily rule into the vault."""

    name = "backup-plan"
    service = "backup"
    # The emulator has no UpdateBackupPlan (EMULATOR_GAPS): a changed retention is planned, skipped there.
    operations = {"update": ("backup", "UpdateBackupPlan")}

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        backup = ctx.client("backup")
        pages = backup.get_paginator("list_backup_plans").paginate()
        plans = [{**p, **backup.get_backup_plan(BackupPlanId=p["BackupPlanId"])}
                 for page in pages for p in page.get("BackupPlansList", [])
                 if p.get("BackupPlanName") == spec.name("database") and not p.get("DeletionDate")]
        return self.owned(spec, step, plans, lambda p: p["BackupPlanId"], lambda p: _backup_tags(ctx, p["BackupPlanArn"]))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        wanted = {"rules": 1, "vault": props["vault"], "schedule": SCHEDULE, "retention_days": props["retention_days"]}
        return changed(_rule(found.raw.get("BackupPlan", {})), wanted)

    def _plan(self, desired: Desired, props: Mapping[str, Any]) -> dict[str, Any]:
        return {"BackupPlanName": desired.name, "Rules": [{
            "RuleName": "daily", "TargetBackupVaultName": props["vault"], "ScheduleExpression": SCHEDULE,
            "StartWindowMinutes": START_WINDOW_MINUTES, "CompletionWindowMinutes": COMPLETION_WINDOW_MINUTES,
            "Lifecycle": {"DeleteAfterDays": props["retention_days"]}}]}

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_backup_plan": dict(BackupPlan=self._plan(desired, props), BackupPlanTags=dict(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["create_backup_plan"]
        plan = ctx.client("backup").create_backup_plan(**request)
        return Found(self.name, desired.key, plan["BackupPlanId"], dict(tags), {**plan, "BackupPlan": request["BackupPlan"]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "backup", found.raw["BackupPlanArn"], tags)

    def keeps(self, spec: Spec, found: Found) -> str | None:
        return protected_database(spec)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ctx.client("backup").update_backup_plan(BackupPlanId=found.id, BackupPlan=self._plan(desired, props))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("backup").delete_backup_plan, ["ResourceNotFoundException"], BackupPlanId=found.id)
        return None

    def describe(self, found: Found) -> str:
        rule = _rule(found.raw.get("BackupPlan", {}))
        return f"{rule['schedule']} into {rule['vault']}, kept {rule['retention_days']} days"


class BackupSelection(Kind):
    """The plan's selection of the database by ARN, with the role AWS Backup assumes. A selection has no tags
    and no update (AWS Backup API reference: CreateBackupSelection, DeleteBackupSelection): it is the plan's,
    found through it, and a changed one is made anew."""

    name = "backup-selection"
    service = "backup"
    tagged = False
    finds_after = ("backup-plan",)

    def unavailable(self, ctx: StepContext) -> str | None:
        return ctx.lacks("backup", "CreateBackupSelection")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        plan = known.get("backup/plan")
        if plan is None:
            return []
        backup = ctx.client("backup")
        pages = backup.get_paginator("list_backup_selections").paginate(BackupPlanId=plan.id)
        found = []
        for page in pages:
            for item in page.get("BackupSelectionsList", []):
                selection = backup.get_backup_selection(BackupPlanId=plan.id, SelectionId=item["SelectionId"])
                key = "backup/selection" if item.get("SelectionName") == spec.name("database") else "backup/other-selection"
                found.append(Found(self.name, key, item["SelectionId"], ownership_tags(spec, step, key, item["SelectionName"]),
                                   {**selection, "BackupPlanId": plan.id}))
        return found

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        selection = found.raw.get("BackupSelection", {})
        if sorted(selection.get("Resources", [])) != [props["database"]] or selection.get("IamRoleArn") != props["role"]:
            return "the selected resources or the role changed (a selection cannot be updated)"
        return None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_backup_selection": dict(BackupPlanId=props["plan"], BackupSelection={
            "SelectionName": desired.name, "IamRoleArn": props["role"], "Resources": [props["database"]]})}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["create_backup_selection"]
        answer = ctx.client("backup").create_backup_selection(**request)
        return Found(self.name, desired.key, answer["SelectionId"], dict(tags), {**request, "SelectionId": answer["SelectionId"]})

    def keeps(self, spec: Spec, found: Found) -> str | None:
        return protected_database(spec)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("backup").delete_backup_selection, ["ResourceNotFoundException"],
                     BackupPlanId=found.raw["BackupPlanId"], SelectionId=found.id)
        return None

    def describe(self, found: Found) -> str:
        return ", ".join(found.raw.get("BackupSelection", {}).get("Resources", []))


def backup_resources(spec: Spec, step: str) -> list[Desired]:
    """The service role, the vault, the plan and the selection of the database (none without
    ``database.backup_plan``)."""
    if not spec.database.backup_plan:
        return []
    days = spec.database.backup_plan_retention_days
    vault = spec.name("backups")
    return [
        Desired("iam-role", "role/backup", spec.name("backup"), {
            "trust": trust_policy("backup.amazonaws.com", spec=spec), "managed": [BACKUP_POLICY], "inline": {}},
            "AWS Backup takes the database's backups"),
        Desired("backup-vault", "backup/vault", vault, {}, "encrypted with AWS Backup's key; kept while it holds backups"),
        # the plan's vault and the role its selection runs as stay with the plan when down keeps it
        Desired("backup-plan", "backup/plan", spec.name("database"), {
            "vault": vault, "retention_days": days, "stays_with": [Ref(step, "backup/vault"), Ref(step, "role/backup")]},
                f"daily ({SCHEDULE} UTC) into {vault}, each backup kept {days} days"),
        Desired("backup-selection", "backup/selection", spec.name("database"), {
            "plan": Ref(step, "backup/plan"), "role": Ref(step, "role/backup", "Arn"),
            "database": Arn("rds", f"db:{spec.name('mysql')}", None, None)}, "the MySQL instance, by ARN"),
    ]

