"""A change's detail names the fields that differ, with their values now and after; never a raw dict, never
a secret."""

from __future__ import annotations

import pointapp
from pointapp.diffs import HIDDEN, Differences, changed, describe, shorten
from pointapp.resources import Desired, Found
from pointapp.spec import load_spec
from pointapp.steps.service import TaskDefinition, compared_container
from pointapp.target import Context
from pointapp.taskdef import container_definition

ROLE = "arn:aws:iam::123456789012:role/point-app-prod-api-task"


def test_a_setting_reads_field_old_and_new() -> None:
    assert describe(changed({"retention_days": 90}, {"retention_days": 30})) == "retention_days: 90 -> 30"
    assert describe(changed({"scan_on_push": False, "tag_mutability": "IMMUTABLE"},
                            {"scan_on_push": True, "tag_mutability": "IMMUTABLE"})) == "scan_on_push: false -> true"
    assert describe({"pattern": "push of latest"}) == "pattern -> push of latest"  # what it is now was not read


def test_nested_settings_name_each_field_that_differs() -> None:
    was = {"name": "api", "environment": [{"name": "AWS_REGION", "value": "ap-northeast-1"}],
           "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}
    now = {"name": "api", "environment": [{"name": "AWS_REGION", "value": "ap-northeast-1"},
                                          {"name": "DB_HOST", "value": "db.abc.ap-northeast-1.rds.amazonaws.com"}],
           "portMappings": [{"containerPort": 8080, "protocol": "tcp"}]}
    detail = describe(changed({"container": was}, {"container": now}))
    assert detail == ("container.environment.DB_HOST: (none) -> db.abc.ap-northeast-1.rds.amazonaws.com; "
                      "container.portMappings[0].containerPort: 80 -> 8080")
    policy = '{"rules": [{"rulePriority": 2, "selection": {"countNumber": 30}}]}'
    assert describe(changed({"lifecycle_policy": policy}, {"lifecycle_policy": policy.replace("30", "50")})) == \
        "lifecycle_policy.rules[0].selection.countNumber: 30 -> 50"  # a JSON document kept as text


def test_secrets_are_never_shown_and_arns_of_secrets_are() -> None:
    was = {"environment": [{"name": "DB_PASSWORD", "value": "hunter2-old"}],
           "secrets": [{"name": "DB_CREDENTIALS", "valueFrom": "arn:aws:secretsmanager:ap-northeast-1:1:secret:a"}]}
    now = {"environment": [{"name": "DB_PASSWORD", "value": "hunter2-new"}],
           "secrets": [{"name": "DB_CREDENTIALS", "valueFrom": "arn:aws:secretsmanager:ap-northeast-1:1:secret:b"}]}
    detail = describe(changed({"container": was}, {"container": now}))
    assert "hunter2" not in detail and f"container.environment.DB_PASSWORD: {HIDDEN} -> {HIDDEN}" in detail
    assert "container.secrets.DB_CREDENTIALS.valueFrom: arn:aws:secretsmanager:" in detail
    tags = describe(Differences({"tags": {"github-token": "ghp_x1", "Project": "b"}},
                                {"tags": {"github-token": None, "Project": "a"}}))
    assert "ghp_x1" not in tags and tags == f"tags.github-token: (none) -> {HIDDEN}; tags.Project: a -> b"
    whole = describe({"basic_auth": {"username": "admin", "password": "s3cret-value"}})  # nothing read before
    assert "s3cret-value" not in whole and "basic_auth.username -> admin" in whole


def test_long_values_are_shortened_in_the_middle_and_many_fields_counted() -> None:
    name = "point-app-prod-task-execution-role-of-the-api"
    short = shorten(f"arn:aws:iam::123456789012:role/point-app-prod/{name}")
    assert len(short) <= 64 and short.startswith("arn:aws:iam:") and short.endswith(name) and "..." in short
    many = describe(changed({f"f{i}": 0 for i in range(9)}, {f"f{i}": 1 for i in range(9)}))
    assert many.endswith("f5: 0 -> 1; and 3 more fields")


def test_the_task_definition_of_a_service_built_before_the_database() -> None:
    """The issue's case: the revision lacks DB_HOST; the plan says which variables it gains, not a dict."""
    spec = load_spec("prod")
    early = container_definition(spec, "repo:latest", "/logs/api", "ap-northeast-1")
    data = {"database/instance/address": "db.abc.ap-northeast-1.rds.amazonaws.com",
            "database/instance/port": 3306}
    later = container_definition(spec, "repo:latest", "/logs/api", "ap-northeast-1", data)
    props = {"cpu": 256, "memory": 512, "execution_role": ROLE, "task_role": ROLE, "container": later}
    raw = {"cpu": "256", "memory": "512", "executionRoleArn": ROLE, "taskRoleArn": ROLE,
           "containerDefinitions": [compared_container(early, early)]}
    kind = TaskDefinition()
    desired = Desired("task-definition", "taskdef", "point-app-prod-api", props)
    found = Found("task-definition", "taskdef", "arn:aws:ecs:ap-northeast-1:1:task-definition/point-app-prod-api:1",
                  {}, raw)
    detail = kind.explain(desired, found, kind.differences(desired, props, found))
    assert "container.environment.DB_HOST: (none) -> db.abc.ap-northeast-1.rds.amazonaws.com" in detail
    assert "container.environment.DB_PORT: (none) -> 3306" in detail
    assert "{" not in detail and "'" not in detail


def test_the_plan_shows_a_drifted_setting_in_text_and_html(ctx: Context) -> None:
    pointapp.up(ctx, only="network")
    group = f"/pointapp/{ctx.spec.owner}/vpc-flow-logs"
    ctx.client("logs").put_retention_policy(logGroupName=group, retentionInDays=30)
    planned = pointapp.plan(ctx, only="network")
    expected = f"retention_days: 30 -> {ctx.spec.network.flow_logs_retention_days}"
    assert [c.detail for c in planned.changes] == [expected]
    assert expected in str(planned) and expected.replace(">", "&gt;") in planned._repr_html_()


def test_a_notebook_shows_each_field_of_an_update_on_its_own_line() -> None:
    from pointapp.plan import Change, Plan

    detail = describe(changed({"a": 1, "b": "x, y"}, {"a": 2, "b": "x, y, z"}))
    assert detail == "a: 1 -> 2; b: x, y -> x, y, z"
    plan = Plan([Change("service", "update", "thing", "k", "n", detail, "update")], ["service"])
    assert "a: 1 -&gt; 2<br>b: x, y -&gt; x, y, z" in plan._repr_html_()
    assert detail in str(plan)
