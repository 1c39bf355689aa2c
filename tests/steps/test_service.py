from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

import pointapp
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION, make_context
from tests.steps.helpers import down_leaves_nothing, up_is_idempotent

STEPS = "network,endpoints,registry,service"


def client(name: str) -> Any:
    return boto3.client(name, region_name=REGION)


@pytest.fixture
def built(ctx: Context) -> Context:
    pointapp.up(ctx, only=STEPS)
    return ctx


def service() -> dict[str, Any]:
    return client("ecs").describe_services(cluster="point-app-prod-cluster", services=["point-app-prod-api"])["services"][0]


def test_ecs_service_is_private_code_deploy_and_spread(built: Context) -> None:
    network = built.outputs("network")
    found = service()
    assert found["deploymentController"] == {"type": "CODE_DEPLOY"}
    assert found["launchType"] == "FARGATE" and found["desiredCount"] == 2
    vpc = found["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["assignPublicIp"] == "DISABLED"
    assert sorted(vpc["subnets"]) == sorted([network["subnet/container/0"], network["subnet/container/1"]])
    assert vpc["securityGroups"] == [network["sg/container"]]
    (balancer,) = found["loadBalancers"]
    assert "point-app-prod-tg-blue" in balancer["targetGroupArn"]
    assert (balancer["containerName"], balancer["containerPort"]) == ("api", 80)


def test_task_definition(built: Context) -> None:
    definition = client("ecs").describe_task_definition(taskDefinition="point-app-prod-api")["taskDefinition"]
    assert definition["networkMode"] == "awsvpc" and definition["requiresCompatibilities"] == ["FARGATE"]
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    (container,) = definition["containerDefinitions"]
    assert container["image"] == "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/point-app-prod/api:latest"
    assert container["portMappings"][0]["containerPort"] == 80
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/pointapp/point-app-prod/api"
    # Without the database step, its secret is named by a partial ARN: still Secrets Manager's, never SSM's.
    assert container["secrets"] == [{"name": "DB_CREDENTIALS", "valueFrom":
                                     "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:point-app-prod/database"}]
    assert "http://localhost:80/health" in container["healthCheck"]["command"][1]
    assert definition["executionRoleArn"].endswith("/point-app-prod-task-execution")
    assert definition["taskRoleArn"].endswith("/point-app-prod-task")


def test_roles_are_least_privilege(built: Context) -> None:
    iam = client("iam")
    task = json.dumps(iam.get_role_policy(RoleName="point-app-prod-task",
                                          PolicyName="send-mail-and-read-own-secrets")["PolicyDocument"])
    assert "identity/example.com" in task and "secret:point-app-prod/*" in task and '"*"' not in task
    assert iam.list_attached_role_policies(RoleName="point-app-prod-task")["AttachedPolicies"] == []
    execution = json.dumps(iam.get_role_policy(RoleName="point-app-prod-task-execution",
                                               PolicyName="pull-image-write-logs-inject-secrets")["PolicyDocument"])
    assert "repository/point-app-prod/api" in execution and "log-group:/pointapp/point-app-prod/api:*" in execution
    logs = client("logs").describe_log_groups(logGroupNamePrefix="/pointapp/point-app-prod/api")["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in logs] == [("/pointapp/point-app-prod/api", 30)]
    cluster = client("ecs").describe_clusters(clusters=["point-app-prod-cluster"], include=["SETTINGS"])["clusters"][0]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_task_role_sends_through_the_identity_and_its_configuration_set(built: Context) -> None:
    document = client("iam").get_role_policy(RoleName="point-app-prod-task",
                                             PolicyName="send-mail-and-read-own-secrets")["PolicyDocument"]
    (mail,) = [s for s in document["Statement"] if "ses:SendEmail" in s["Action"]]
    assert sorted(mail["Action"]) == ["ses:SendEmail", "ses:SendRawEmail"]
    assert sorted(mail["Resource"]) == ["arn:aws:ses:ap-northeast-1:123456789012:configuration-set/point-app-prod-mail",
                                        "arn:aws:ses:ap-northeast-1:123456789012:identity/example.com"]
    # The API re-reads the RDS-managed secret after a rotation: the task role may read that one only.
    (database,) = [s for s in document["Statement"] if s["Resource"] == "arn:aws:secretsmanager:*:*:secret:rds!db-*"]
    assert database["Condition"]["StringLike"] == {
        "secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn": "arn:aws:rds:*:*:db:point-app-prod-mysql"}


def test_secrets_reach_the_task_definition_as_full_arns(mocked: None) -> None:
    secretsmanager = client("secretsmanager")
    arn = secretsmanager.create_secret(Name="point-app-prod/api-key", SecretString="k")["ARN"]
    parameter = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/point-app/token"
    spec = load_spec("prod", {"service": {"secrets": {"API_KEY": "api-key", "TOKEN": parameter, "LATER": "later"}}})
    ctx = make_context(spec)
    pointapp.up(ctx, only=STEPS)
    definition = client("ecs").describe_task_definition(taskDefinition="point-app-prod-api")["taskDefinition"]
    secrets = {s["name"]: s["valueFrom"] for s in definition["containerDefinitions"][0]["secrets"]}
    assert secrets["API_KEY"] == arn and arn.startswith("arn:aws:secretsmanager:") and arn != "point-app-prod/api-key"
    assert secrets["TOKEN"] == parameter
    # Not created yet: a partial ARN, which ECS looks up in Secrets Manager (a bare name would be an SSM parameter).
    assert secrets["LATER"] == "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:point-app-prod/later"
    up_is_idempotent(ctx, STEPS)


def _listeners() -> dict[int, dict[str, Any]]:
    elbv2 = client("elbv2")
    (alb,) = elbv2.describe_load_balancers(Names=["point-app-prod-alb"])["LoadBalancers"]
    return {item["Port"]: item for item in elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]}


def test_load_balancer_target_groups_and_listeners(built: Context) -> None:
    network = built.outputs("network")
    elbv2 = client("elbv2")
    (alb,) = elbv2.describe_load_balancers(Names=["point-app-prod-alb"])["LoadBalancers"]
    assert alb["Scheme"] == "internet-facing" and alb["SecurityGroups"] == [network["sg/ingress"]]
    assert sorted(z["SubnetId"] for z in alb["AvailabilityZones"]) == sorted(
        [network["subnet/ingress/0"], network["subnet/ingress/1"]])
    groups = {g["TargetGroupName"]: g for g in elbv2.describe_target_groups()["TargetGroups"]}
    for color in ("blue", "green"):
        group = groups[f"point-app-prod-tg-{color}"]
        assert (group["TargetType"], group["Port"], group["HealthCheckPath"]) == ("ip", 80, "/health")
    listeners = _listeners()
    assert sorted(listeners) == [80, 10080]
    assert listeners[80]["DefaultActions"][0]["TargetGroupArn"] == groups["point-app-prod-tg-blue"]["TargetGroupArn"]


def test_test_listener_is_open_to_the_bastion_only(built: Context) -> None:
    network = built.outputs("network")
    (ingress,) = client("ec2").describe_security_groups(GroupIds=[network["sg/ingress"]])["SecurityGroups"]
    test_rules = [p for p in ingress["IpPermissions"] if p.get("FromPort") == 10080]
    assert len(test_rules) == 1 and not test_rules[0].get("IpRanges") and not test_rules[0].get("Ipv6Ranges")
    assert [pair["GroupId"] for pair in test_rules[0]["UserIdGroupPairs"]] == [network["sg/management"]]


def test_certificate_gives_https_and_a_redirect(mocked: None) -> None:
    arn = client("acm").request_certificate(DomainName="api.example.com")["CertificateArn"]
    ctx = make_context(load_spec("prod", {"service": {"certificate_arn": arn}}))
    pointapp.up(ctx, only=STEPS)
    listeners = _listeners()
    assert sorted(listeners) == [80, 443, 10080]
    assert listeners[443]["Protocol"] == "HTTPS" and listeners[443]["Certificates"][0]["CertificateArn"] == arn
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    up_is_idempotent(ctx, STEPS)


def test_up_does_not_undo_a_release_that_switched_to_green(built: Context) -> None:
    elbv2 = client("elbv2")
    groups = {g["TargetGroupName"]: g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]}
    elbv2.modify_listener(ListenerArn=_listeners()[80]["ListenerArn"],
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["point-app-prod-tg-green"]}])
    up_is_idempotent(built, STEPS)


def test_changes_converge(built: Context) -> None:
    scaled = make_context(load_spec("prod", {"service": {"desired_count": 4, "memory": 1024,
                                                         "health_check_path": "/ready"}}))
    planned = pointapp.plan(scaled, only="service")
    assert sorted((c.kind, c.action) for c in planned.changes) == [
        ("ecs-service", "update"), ("target-group", "update"), ("target-group", "update"), ("task-definition", "update")]
    pointapp.apply(scaled, planned)
    assert service()["desiredCount"] == 4
    definition = client("ecs").describe_task_definition(taskDefinition="point-app-prod-api")["taskDefinition"]
    assert definition["revision"] == 2 and definition["memory"] == "1024"
    up_is_idempotent(scaled, STEPS)


def test_idempotent_and_down(built: Context) -> None:
    up_is_idempotent(built, STEPS)
    assert down_leaves_nothing(built, "service,registry,endpoints,network") == []
    clusters = client("ecs").describe_clusters(clusters=["point-app-prod-cluster"])["clusters"]
    assert all(c["status"] == "INACTIVE" for c in clusters)
    assert client("elbv2").describe_target_groups()["TargetGroups"] == []
