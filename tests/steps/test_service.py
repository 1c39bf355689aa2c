from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.exceptions
import pytest

import pointapp
from pointapp import taskdef
from pointapp.emulator import EMULATOR_POLL_SECONDS
from pointapp.errors import StepError
from pointapp.kinds import LogGroup
from pointapp.outputs import LOAD_BALANCER
from pointapp.resources import Desired, Found, retry_refused
from pointapp.spec import load_spec
from pointapp.steps import service as service_step
from pointapp.target import Context
from tests.conftest import REGION, AwsLikeServer, aws_behaviour, aws_context, aws_like_context, make_context, stub
from tests.steps.helpers import down_leaves_nothing, register_as_a_release, up_is_idempotent
from tests.test_resources import FakeTime

STEPS = "network,endpoints,registry,database,cache,mail,service"
IMAGE = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/point-app-prod/api:3f2c1a9"


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


def test_the_cluster_counts_the_service_it_holds(built: Context) -> None:
    """The cluster's row agrees with the service's (moto's DescribeClusters leaves activeServicesCount at 0)."""
    rows = {row[0]: row[3] for row in pointapp.inventory(built, "service").rows}
    assert rows["ecs-cluster"] == "ACTIVE, 1 service (point-app-prod-api)"


def test_task_definition(built: Context) -> None:
    definition = client("ecs").describe_task_definition(taskDefinition="point-app-prod-api")["taskDefinition"]
    assert definition["networkMode"] == "awsvpc" and definition["requiresCompatibilities"] == ["FARGATE"]
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    (container,) = definition["containerDefinitions"]
    assert container["image"] == "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/point-app-prod/api:latest"
    assert container["portMappings"][0]["containerPort"] == 80
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/pointapp/point-app-prod/api"
    # The service is built after its database: the credentials are the RDS-managed secret, by its full ARN.
    assert container["secrets"] == [{"name": "DB_CREDENTIALS", "valueFrom": built.outputs("database")["instance/secret"]}]
    assert built.outputs("database")["instance/secret"].startswith("arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:rds!db-")
    assert "http://localhost:80/health" in container["healthCheck"]["command"][1]
    assert definition["executionRoleArn"].endswith("/point-app-prod-task-execution")
    assert definition["taskRoleArn"].endswith("/point-app-prod-task")
    # ECS.5: a read-only root file system, /tmp on a task volume; logs that never block the API
    assert container["readonlyRootFilesystem"] and definition["volumes"] == [{"name": "tmp"}]
    assert container["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert {k: container["logConfiguration"]["options"][k] for k in ("mode", "max-buffer-size")} == {
        "mode": "non-blocking", "max-buffer-size": "25m"}


def test_the_exported_task_definition_is_read_only_and_non_blocking() -> None:
    from pointapp import cloudformation

    resources = cloudformation.templates(load_spec("prod"), REGION, ["ap-northeast-1a", "ap-northeast-1c"])["service"]
    properties = next(r["Properties"] for r in resources["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition")
    (container,) = properties["ContainerDefinitions"]
    assert properties["Volumes"] == [{"Name": "tmp"}] and container["ReadonlyRootFilesystem"] is True
    assert container["LogConfiguration"]["Options"]["mode"] == "non-blocking"
    roles = {r["Properties"]["RoleName"]: r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
             for r in resources["Resources"].values() if r["Type"] == "AWS::IAM::Role"}
    assert roles["point-app-prod-task"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*"}}}


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
    # prod's load balancer has deletion protection: the down plan lifts it first, and says so
    lift = [c for c in pointapp.plan_destroy(built, only="service").changes if c.kind == "load-balancer" and c.action == "update"]
    assert [c.detail for c in lift] == ["turn deletion protection off first (service.deletion_protection), as this down deletes it"]
    assert down_leaves_nothing(built, "service") == []
    assert "    deletion protection of load balancer point-app-prod-alb turned off: this down deletes it" in built.lines  # type: ignore[attr-defined]
    clusters = client("ecs").describe_clusters(clusters=["point-app-prod-cluster"])["clusters"]
    assert all(c["status"] == "INACTIVE" for c in clusters)
    assert client("elbv2").describe_target_groups()["TargetGroups"] == []


FAMILY = "point-app-prod-api"


def _revisions(status: str = "ACTIVE") -> list[str]:
    return client("ecs").list_task_definitions(familyPrefix=FAMILY, status=status)["taskDefinitionArns"]


def test_the_request_is_what_ecs_answers_in_awsvpc_mode(built: Context) -> None:
    (container,) = client("ecs").describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]["containerDefinitions"]
    assert container["portMappings"] == [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]


def test_a_revision_as_ecs_describes_it_is_in_sync(built: Context) -> None:
    tags = client("ecs").describe_task_definition(taskDefinition=FAMILY, include=["TAGS"])["tags"]
    register_as_a_release(FAMILY, IMAGE, tags)  # hostPort, the defaults ECS adds, its own order of variables
    up_is_idempotent(built, STEPS)
    assert len(_revisions()) == 2


def test_an_untagged_release_revision_belongs_to_the_family(built: Context) -> None:
    release = register_as_a_release(FAMILY, IMAGE)  # a tool that drops the tags, or taskdef.json before it had them
    planned = pointapp.plan(built, only="service")
    assert planned.empty, [c.line() for c in planned.changes]
    assert planned.observed["service"].found["taskdef"].id == release["taskDefinitionArn"]
    up_is_idempotent(built, STEPS)
    pointapp.down(built, only="service")
    assert _revisions() == [] and len(_revisions("INACTIVE")) == 2  # the release's revision too


STAGING = [{"key": "pointapp:environment", "value": "point-app-staging"}, {"key": "pointapp:step", "value": "service"},
           {"key": "pointapp:key", "value": "taskdef"}]


@pytest.mark.parametrize(("tags", "owner"), [(STAGING, "point-app-staging"), ([{"key": "team", "value": "web"}], "")])
def test_a_family_another_environment_or_nobody_owns_is_never_adopted(ctx: Context, tags: list[dict[str, str]],
                                                                      owner: str) -> None:
    client("ecs").register_task_definition(family=FAMILY, containerDefinitions=[{"name": "api", "image": "x",
                                                                                 "memory": 512}], tags=tags)
    state = service_step.STEP.discover(ctx)
    assert "taskdef" not in state.found and state.strays == []
    (create,) = [c for c in service_step.STEP.plan(ctx.spec, state) if c.kind == "task-definition"]
    assert create.action == "create" and (f"belongs to environment {owner}" in create.detail) is bool(owner)
    desired = next(d for d in service_step.desired(ctx.spec) if d.key == "taskdef")
    whose = f"environment {owner}" if owner else "no pointapp environment"
    with pytest.raises(StepError, match=f"belong to {whose}; pointapp registers none beside them"):
        service_step.TaskDefinition().create(ctx, desired, {}, taskdef.revision_tags(ctx.spec))
    assert len(_revisions()) == 1


def test_up_accepts_a_weighted_forward_over_blue_and_green(built: Context) -> None:
    elbv2 = client("elbv2")
    groups = {g["TargetGroupName"]: g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]}
    weighted = {"Type": "forward", "ForwardConfig": {"TargetGroups": [  # CodeDeploy's canary or linear, mid-release
        {"TargetGroupArn": groups["point-app-prod-tg-blue"], "Weight": 90},
        {"TargetGroupArn": groups["point-app-prod-tg-green"], "Weight": 10}]}}
    elbv2.modify_listener(ListenerArn=_listeners()[80]["ListenerArn"], DefaultActions=[weighted])
    up_is_idempotent(built, STEPS)
    assert _listeners()[80]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"][1]["Weight"] == 10


@pytest.mark.parametrize(("action", "in_sync"), [
    ({"Type": "forward", "TargetGroupArn": "blue"}, True),
    ({"Type": "forward", "TargetGroupArn": "green", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "green"}]}},
     True),
    ({"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "blue", "Weight": 0},
                                                            {"TargetGroupArn": "green", "Weight": 100}]}}, True),
    ({"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "blue", "Weight": 50},
                                                            {"TargetGroupArn": "other", "Weight": 50}]}}, False),
    ({"Type": "forward", "TargetGroupArn": "other"}, False),
    ({"Type": "forward"}, False),
])
def test_listener_forwards_in_sync(action: dict[str, Any], in_sync: bool) -> None:
    desired = Desired("listener", "listener/production", "l", {})
    props = {"protocol": "HTTP", "action": "forward", "target_groups": ["blue", "green"]}
    found = Found("listener", "listener/production", "arn", {}, {"Protocol": "HTTP", "DefaultActions": [action]})
    assert (service_step.Listener().differences(desired, props, found) == {}) is in_sync


def test_staging_may_send_through_the_identity_prod_owns_and_its_default_configuration_set() -> None:
    from pointapp.resources import Ref, resolve
    from pointapp.steps import service

    def target(ref: Ref) -> str:
        return {"partition": "aws", "region": REGION, "account": "123456789012"}[ref.key]

    (task,) = [d for d in service.desired(load_spec("staging")) if d.key == "role/task"]
    statements = resolve(task.props, target)["inline"]["send-mail-and-read-own-secrets"]["Statement"]
    (mail,) = [s for s in statements if "ses:SendEmail" in s["Action"]]
    where = "arn:aws:ses:ap-northeast-1:123456789012"
    assert mail["Resource"] == [f"{where}:identity/example.com", f"{where}:configuration-set/point-app-prod-mail",
                                f"{where}:configuration-set/point-app-staging-mail"]


def test_a_new_tag_tags_the_latest_revision_in_place(built: Context) -> None:
    tagged = make_context(load_spec("prod", {"tags": {"Project": "point-app", "CostCenter": "42"}}))
    before = len(tagged.calls)
    pointapp.up(tagged, only=STEPS)  # the new tag is pending on the steps the service needs too
    assert "RegisterTaskDefinition" not in [c.operation for c in tagged.calls[before:] if c.mutating]
    answer = client("ecs").describe_task_definition(taskDefinition=FAMILY, include=["TAGS"])
    assert answer["taskDefinition"]["revision"] == 1 and {"key": "CostCenter", "value": "42"} in answer["tags"]
    # moto answers GetConfigurationSet and GetEmailIdentity with the tags of the create: the mail step stays drifted
    # here, so the service's plan only warns about it.
    assert pointapp.plan(tagged, only="service", dependencies="warn").empty


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


def _attributes() -> dict[str, str]:
    elbv2 = client("elbv2")
    arn = elbv2.describe_load_balancers(Names=["point-app-prod-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    return {a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}


def test_the_load_balancer_is_hardened_logged_and_guarded(built: Context) -> None:
    attributes = _attributes()
    bucket = "point-app-prod-alb-logs-123456789012-ap-northeast-1"
    assert {key: attributes[key] for key in ("routing.http.drop_invalid_header_fields.enabled",
                                             "routing.http.desync_mitigation_mode", "deletion_protection.enabled",
                                             "access_logs.s3.enabled", "access_logs.s3.bucket")} == {
        "routing.http.drop_invalid_header_fields.enabled": "true", "routing.http.desync_mitigation_mode": "defensive",
        "deletion_protection.enabled": "true", "access_logs.s3.enabled": "true", "access_logs.s3.bucket": bucket}
    s3 = client("s3")
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # ELB access logs take SSE-S3 only
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["Expiration"] == {"Days": 90} and rule["Status"] == "Enabled"
    (writer,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]  # the TLS statement: not on the emulator
    assert writer["Principal"] == {"AWS": "arn:aws:iam::582318560864:root"}  # Tokyo's ELB account
    assert writer["Resource"] == f"arn:aws:s3:::{bucket}/AWSLogs/123456789012/*"
    wafv2 = client("wafv2")
    arn = client("elbv2").describe_load_balancers(Names=["point-app-prod-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    acl = wafv2.get_web_acl_for_resource(ResourceArn=arn)["WebACL"]
    assert acl["Name"] == "point-app-prod-waf" and acl["DefaultAction"] == {"Allow": {}}
    assert [(r["Name"], r["OverrideAction"], r["VisibilityConfig"]["CloudWatchMetricsEnabled"]) for r in acl["Rules"]] == [
        (group, {"None": {}}, True) for group in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                                                  "AWSManagedRulesAmazonIpReputationList")]


def test_a_weakened_load_balancer_converges_back(built: Context) -> None:
    elbv2 = client("elbv2")
    arn = elbv2.describe_load_balancers(Names=["point-app-prod-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "false"},
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    client("wafv2").disassociate_web_acl(ResourceArn=arn)
    planned = pointapp.plan(built, only="service")
    assert sorted((c.kind, c.action) for c in planned.changes) == [("load-balancer", "update"), ("waf-association", "create")]
    assert "routing.http.drop_invalid_header_fields.enabled" in next(c.detail for c in planned.changes if c.kind == "load-balancer")
    pointapp.apply(built, planned)
    assert _attributes()["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert _attributes()["deletion_protection.enabled"] == "true"
    assert client("wafv2").get_web_acl_for_resource(ResourceArn=arn)["WebACL"]["Name"] == "point-app-prod-waf"
    up_is_idempotent(built, STEPS)


def test_staging_chooses_no_waf_no_access_logs_no_deletion_protection() -> None:
    kinds = {d.kind for d in service_step.desired(load_spec("staging"))}
    assert not kinds & {"waf-web-acl", "waf-association", "s3-bucket", "s3-bucket-policy"}
    balancer = next(d for d in service_step.desired(load_spec("staging")) if d.kind == "load-balancer")
    assert balancer.props["attributes"]["deletion_protection.enabled"] == "false"
    assert balancer.props["attributes"]["access_logs.s3.enabled"] == "false"


def test_on_aws_a_log_group_takes_the_environment_key(mocked: None) -> None:
    ctx = aws_context()
    key = "arn:aws:kms:ap-northeast-1:123456789012:key/k"
    logs = stub(ctx, "logs")
    logs.add_response("associate_kms_key", {}, {"logGroupName": "/pointapp/point-app-prod/api", "kmsKeyId": key})
    desired = Desired("log-group", "logs", "/pointapp/point-app-prod/api", {})
    found = Found("log-group", "logs", "/pointapp/point-app-prod/api", {}, {"retentionInDays": 30})
    assert LogGroup().differences(desired, {"retention_days": 30, "kms_key": key}, found) == {"kms_key": key}
    LogGroup().update(ctx, desired, {"retention_days": 30, "kms_key": key}, found, {"kms_key": key})
    logs.assert_no_pending_responses()


def test_down_keeps_access_logs_unless_told_to_delete_them(built: Context) -> None:
    bucket = "point-app-prod-alb-logs-123456789012-ap-northeast-1"
    client("s3").put_object(Bucket=bucket, Key="AWSLogs/123456789012/elasticloadbalancing/log.gz", Body=b"x")
    kept = {c.key: c.args["why"] for c in pointapp.plan_destroy(built, only="service").kept}
    assert list(kept) == ["access-logs/bucket"] and "service.delete_access_logs: true" in kept["access-logs/bucket"]
    told = make_context(load_spec("prod", {"service": {"delete_access_logs": True}}))
    assert pointapp.plan_destroy(told, only="service").kept == []


# --- with the AWS-behaviour layer on (tests/aws_behaviour.py): AWS WAF does not see a new load balancer at once ---

DATA_STEPS = "network,endpoints,registry,database,cache,mail"


def _web_acl_of_the_load_balancer(ctx: Context) -> str | None:
    arn = ctx.outputs("service")[LOAD_BALANCER.key]
    return ((ctx.client("wafv2").get_web_acl_for_resource(ResourceArn=arn).get("WebACL") or {}).get("Name"))


def test_up_associates_the_web_acl_once_waf_sees_the_new_load_balancer(aws_like: str) -> None:
    ctx = aws_like_context(aws_like)
    assert pointapp.up(ctx, only=STEPS).applied
    assert _web_acl_of_the_load_balancer(ctx) == "point-app-prod-waf"
    refused = [r["operation"] for r in aws_behaviour(aws_like)["refusals"] if r["rule"] == "wafv2-new-load-balancer"]
    assert refused and set(refused) == {"AssociateWebACL"}
    waited = [line for line in ctx.lines if "waiting for AWS WAF" in line]  # type: ignore[attr-defined]
    assert waited == ["    waiting for AWS WAF to see the new load balancer point-app-prod-alb (usually about a minute on AWS) ..."]


def test_a_load_balancer_waf_never_sees_is_one_clear_line_and_the_next_up_associates(
        aws_like: str, aws_like_server: AwsLikeServer) -> None:
    pointapp.up(aws_like_context(aws_like), only=DATA_STEPS)
    rule = aws_like_server.layer.rule("wafv2-new-load-balancer")
    rule.window = 3600.0  # past the bound
    ctx = aws_like_context(aws_like)
    fake = FakeTime()
    ctx.clock, ctx.sleep = fake.clock, fake.sleep
    with pytest.raises(StepError) as raised:
        pointapp.up(ctx, only=STEPS)
    assert raised.value.code == "WAFUnavailableEntityException" and "\n" not in str(raised.value)
    assert str(raised.value).startswith("step service: waf-association point-app-prod-waf-alb: AWS WAF couldn")
    assert 10 - EMULATOR_POLL_SECONDS < sum(fake.sleeps) <= 10  # the emulator's bound
    assert "    AWS WAF still refuses point-app-prod-alb after 10s: run up again once the load balancer is active" in ctx.lines  # type: ignore[attr-defined]
    rule.window = 0.0  # AWS WAF sees it now
    again = aws_like_context(aws_like)
    changes = [(c.kind, c.action) for c in pointapp.plan(again, only=STEPS).changes if not c.args.get("skip")]
    assert changes == [("waf-association", "create"), ("ecs-service", "create")]  # what the step had not reached
    pointapp.up(again, only=STEPS)
    assert _web_acl_of_the_load_balancer(again) == "point-app-prod-waf"


def test_on_aws_waf_is_given_five_minutes_to_see_a_new_load_balancer() -> None:
    ctx = aws_context()
    fake = FakeTime()
    ctx.clock, ctx.sleep = fake.clock, fake.sleep

    def refuse() -> None:
        raise botocore.exceptions.ClientError({"Error": {"Code": "WAFUnavailableEntityException", "Message": (
            "AWS WAF couldn\u2019t retrieve the resource that you requested. Retry your request.")}}, "AssociateWebACL")

    with pytest.raises(botocore.exceptions.ClientError):
        retry_refused(ctx, service_step.NEW_LOAD_BALANCER, "point-app-prod-alb", refuse)
    assert 300 - 15 < sum(fake.sleeps) <= 300 and fake.sleeps[:3] == [2, 4, 8]
