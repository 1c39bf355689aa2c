"""The AWS-behaviour layer itself: each rule fires on plain boto3 calls, and the allowed path then succeeds."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from tests.aws_behaviour import RULE_CLASSES, RULES, AwsBehaviour
from tests.conftest import REGION, AwsLikeServer, aws_behaviour, aws_like_context, aws_like_session

SHORT = 0.3  # seconds: the window the tests give a "for a while" rule


def client(url: str, service: str) -> Any:
    return aws_like_session().client(service, endpoint_url=url)


def refused(call: Any, code: str, **kwargs: Any) -> str:
    """Call and expect AWS's refusal ``code``; returns the message."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["Error"]["Code"] == code, caught.value.response
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(caught.value.response["Error"]["Message"])


def shorten(server: AwsLikeServer, *names: str) -> None:
    for name in names:
        server.layer.rule(name).window = SHORT


def wait_out() -> None:
    time.sleep(SHORT + 0.05)


def network(url: str) -> dict[str, Any]:
    """A VPC with two subnets in two zones and two security groups."""
    ec2 = client(url, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"]
               ["SubnetId"] for i, zone in enumerate("ac")]
    groups = [ec2.create_security_group(VpcId=vpc, GroupName=name, Description=name)["GroupId"] for name in ("a", "b")]
    return {"ec2": ec2, "vpc": vpc, "subnets": subnets, "groups": groups}


def test_rules_table_names_every_rule_with_a_source() -> None:
    assert set(RULES) == {rule.name for rule in RULE_CLASSES}
    for behaviour, source in RULES.values():
        assert behaviour and source


def test_an_unknown_rule_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown AWS-behaviour rules: no-such-rule"):
        AwsBehaviour(disabled=["no-such-rule"])


# --- ECS ---------------------------------------------------------------------------------------------------


def register(ecs: Any, mapping: dict[str, Any], mode: str = "awsvpc") -> dict[str, Any]:
    return ecs.register_task_definition(  # type: ignore[no-any-return]
        family="api", networkMode=mode, requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "api", "image": "nginx", "portMappings": [mapping]}])["taskDefinition"]


def test_ecs_awsvpc_stores_host_port_equal_to_container_port(aws_like: str) -> None:
    ecs = client(aws_like, "ecs")
    registered = register(ecs, {"containerPort": 80, "protocol": "tcp"})
    assert registered["containerDefinitions"][0]["portMappings"] == [{"containerPort": 80, "hostPort": 80,
                                                                       "protocol": "tcp"}]
    described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]
    assert described["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 80


def test_ecs_awsvpc_refuses_another_host_port(aws_like: str) -> None:
    ecs = client(aws_like, "ecs")
    message = refused(register, "ClientException", ecs=ecs, mapping={"containerPort": 80, "hostPort": 8080})
    assert "must match" in message
    assert register(ecs, {"containerPort": 80, "hostPort": 80})["revision"] == 1


def test_ecs_bridge_mode_is_left_alone(aws_like: str) -> None:
    registered = register(client(aws_like, "ecs"), {"containerPort": 80}, mode="bridge")
    assert "hostPort" not in registered["containerDefinitions"][0]["portMappings"][0]


# --- RDS and ElastiCache ------------------------------------------------------------------------------------


def test_rds_refuses_to_delete_a_subnet_group_in_use(aws_like: str) -> None:
    net = network(aws_like)
    rds = client(aws_like, "rds")
    rds.create_db_subnet_group(DBSubnetGroupName="db", DBSubnetGroupDescription="db", SubnetIds=net["subnets"])
    rds.create_db_instance(DBInstanceIdentifier="main", DBInstanceClass="db.t4g.micro", Engine="mysql",
                           MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                           DBSubnetGroupName="db", VpcSecurityGroupIds=[net["groups"][0]])
    message = refused(rds.delete_db_subnet_group, "InvalidDBSubnetGroupStateFault", DBSubnetGroupName="db")
    assert "main" in message
    rds.delete_db_instance(DBInstanceIdentifier="main", SkipFinalSnapshot=True)
    rds.delete_db_subnet_group(DBSubnetGroupName="db")


def test_rds_refuses_to_delete_a_parameter_group_in_use(aws_like: str) -> None:
    net = network(aws_like)
    rds = client(aws_like, "rds")
    rds.create_db_parameter_group(DBParameterGroupName="tls", DBParameterGroupFamily="mysql8.4", Description="tls")
    rds.create_db_instance(DBInstanceIdentifier="main", DBInstanceClass="db.t4g.micro", Engine="mysql",
                           MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                           DBParameterGroupName="tls", VpcSecurityGroupIds=[net["groups"][0]])
    refused(rds.delete_db_parameter_group, "InvalidDBParameterGroupState", DBParameterGroupName="tls")
    rds.delete_db_instance(DBInstanceIdentifier="main", SkipFinalSnapshot=True)
    rds.delete_db_parameter_group(DBParameterGroupName="tls")


def cache(url: str, net: dict[str, Any]) -> Any:
    elasticache = client(url, "elasticache")
    elasticache.create_cache_subnet_group(CacheSubnetGroupName="cache", CacheSubnetGroupDescription="cache",
                                          SubnetIds=net["subnets"])
    elasticache.create_replication_group(ReplicationGroupId="redis", ReplicationGroupDescription="redis",
                                         Engine="redis", CacheNodeType="cache.t4g.micro", NumCacheClusters=1,
                                         CacheSubnetGroupName="cache", SecurityGroupIds=[net["groups"][1]])
    return elasticache


def test_elasticache_refuses_to_delete_a_subnet_group_in_use(aws_like: str) -> None:
    elasticache = cache(aws_like, network(aws_like))
    refused(elasticache.delete_cache_subnet_group, "CacheSubnetGroupInUse", CacheSubnetGroupName="cache")
    elasticache.delete_replication_group(ReplicationGroupId="redis")
    # the layer lets the call through now; moto itself does not implement DeleteCacheSubnetGroup (a known gap)
    once = aws_like_session().client("elasticache", endpoint_url=aws_like, config=Config(retries={"max_attempts": 1}))
    with pytest.raises((ClientError, ResponseParserError)) as caught:
        once.delete_cache_subnet_group(CacheSubnetGroupName="cache")
    assert "CacheSubnetGroupInUse" not in str(caught.value)


# --- EC2: subnets and security groups hold on to their network interfaces ------------------------------------


def test_subnet_and_group_of_a_database_cannot_be_deleted(aws_like: str) -> None:
    net = network(aws_like)
    ec2, rds = net["ec2"], client(aws_like, "rds")
    rds.create_db_subnet_group(DBSubnetGroupName="db", DBSubnetGroupDescription="db", SubnetIds=net["subnets"])
    rds.create_db_instance(DBInstanceIdentifier="main", DBInstanceClass="db.t4g.micro", Engine="mysql",
                           MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                           DBSubnetGroupName="db", VpcSecurityGroupIds=[net["groups"][0]])
    message = refused(ec2.delete_subnet, "DependencyViolation", SubnetId=net["subnets"][1])
    assert message == f"The subnet '{net['subnets'][1]}' has dependencies and cannot be deleted."
    message = refused(ec2.delete_security_group, "DependencyViolation", GroupId=net["groups"][0])
    assert message == f"resource {net['groups'][0]} has a dependent object"
    ec2.delete_security_group(GroupId=net["groups"][1])  # nothing uses that one
    rds.delete_db_instance(DBInstanceIdentifier="main", SkipFinalSnapshot=True)
    rds.delete_db_subnet_group(DBSubnetGroupName="db")
    ec2.delete_subnet(SubnetId=net["subnets"][1])
    ec2.delete_security_group(GroupId=net["groups"][0])


def test_subnet_and_group_of_a_cache_cannot_be_deleted(aws_like: str) -> None:
    net = network(aws_like)
    ec2, elasticache = net["ec2"], cache(aws_like, net)
    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=net["subnets"][0])
    refused(ec2.delete_security_group, "DependencyViolation", GroupId=net["groups"][1])
    elasticache.delete_replication_group(ReplicationGroupId="redis")
    ec2.delete_security_group(GroupId=net["groups"][1])
    ec2.delete_subnet(SubnetId=net["subnets"][0])


def test_subnet_of_an_instance_cannot_be_deleted_until_it_is_terminated(aws_like: str) -> None:
    net = network(aws_like)
    ec2 = net["ec2"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=net["subnets"][0],
                                 SecurityGroupIds=[net["groups"][0]])["Instances"][0]["InstanceId"]
    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=net["subnets"][0])
    refused(ec2.delete_security_group, "DependencyViolation", GroupId=net["groups"][0])
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.delete_security_group(GroupId=net["groups"][0])
    ec2.delete_subnet(SubnetId=net["subnets"][0])


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_group_referenced_by_another_groups_rule_cannot_be_deleted(aws_like: str, direction: str) -> None:
    net = network(aws_like)
    ec2 = net["ec2"]
    a, b = net["groups"]
    permission = {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": a}]}
    getattr(ec2, f"authorize_security_group_{direction}")(GroupId=b, IpPermissions=[permission])
    refused(ec2.delete_security_group, "DependencyViolation", GroupId=a)
    getattr(ec2, f"revoke_security_group_{direction}")(GroupId=b, IpPermissions=[permission])
    ec2.delete_security_group(GroupId=a)


def test_the_referencing_group_itself_can_be_deleted_first(aws_like: str) -> None:
    net = network(aws_like)
    a, b = net["groups"]
    net["ec2"].authorize_security_group_ingress(GroupId=b, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": a}]}])
    net["ec2"].delete_security_group(GroupId=b)
    net["ec2"].delete_security_group(GroupId=a)


def test_a_group_that_references_itself_can_be_deleted(aws_like: str) -> None:
    net = network(aws_like)
    a = net["groups"][0]
    net["ec2"].authorize_security_group_ingress(GroupId=a, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": a}]}])
    net["ec2"].delete_security_group(GroupId=a)


# --- NAT gateways and internet gateways ---------------------------------------------------------------------


def nat_gateway(net: dict[str, Any]) -> tuple[str, str, str]:
    """An internet gateway and a public NAT gateway with an Elastic IP: (igw id, nat id, allocation id)."""
    ec2 = net["ec2"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=net["vpc"])
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=net["subnets"][0], AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    return igw, nat, allocation


def nat_state(ec2: Any, nat: str) -> str:
    return str(ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"])


def test_internet_gateway_cannot_be_detached_while_a_nat_gateway_maps_an_address(
        aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "ec2-nat-gateway-deletes-slowly")
    net = network(aws_like)
    ec2 = net["ec2"]
    igw, nat, _ = nat_gateway(net)
    message = refused(ec2.detach_internet_gateway, "DependencyViolation", InternetGatewayId=igw, VpcId=net["vpc"])
    assert message.startswith(f"Network {net['vpc']} has some mapped public address(es).")
    ec2.delete_nat_gateway(NatGatewayId=nat)
    refused(ec2.detach_internet_gateway, "DependencyViolation", InternetGatewayId=igw, VpcId=net["vpc"])
    wait_out()
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=net["vpc"])


def test_deleted_nat_gateway_is_deleting_for_a_while_holding_its_address_and_subnet(
        aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "ec2-nat-gateway-deletes-slowly")
    net = network(aws_like)
    ec2 = net["ec2"]
    _, nat, allocation = nat_gateway(net)
    refused(ec2.release_address, "AuthFailure", AllocationId=allocation)
    ec2.delete_nat_gateway(NatGatewayId=nat)
    assert nat_state(ec2, nat) == "deleting"
    message = refused(ec2.release_address, "AuthFailure", AllocationId=allocation)
    assert message == "You do not have permission to access the specified resource."
    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=net["subnets"][0])
    wait_out()
    assert nat_state(ec2, nat) == "deleted"
    assert not ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [net["subnets"][0]]}])[
        "NetworkInterfaces"]
    ec2.release_address(AllocationId=allocation)
    ec2.delete_subnet(SubnetId=net["subnets"][0])


# --- Lingering network interfaces ---------------------------------------------------------------------------


def interfaces(ec2: Any, description: str) -> list[dict[str, Any]]:
    return ec2.describe_network_interfaces(  # type: ignore[no-any-return]
        Filters=[{"Name": "description", "Values": [description]}])["NetworkInterfaces"]


def test_interface_endpoint_leaves_its_interfaces_behind_for_a_while(
        aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "ec2-endpoint-interfaces-linger")
    net = network(aws_like)
    ec2 = net["ec2"]
    group = net["groups"][1]
    endpoint = ec2.create_vpc_endpoint(VpcId=net["vpc"], ServiceName=f"com.amazonaws.{REGION}.ecr.api",
                                       VpcEndpointType="Interface", SubnetIds=net["subnets"],
                                       SecurityGroupIds=[group])["VpcEndpoint"]["VpcEndpointId"]
    live = interfaces(ec2, f"VPC Endpoint Interface {endpoint}")
    assert len(live) == 2 and all(i["Groups"][0]["GroupId"] == group for i in live)
    refused(ec2.delete_security_group, "DependencyViolation", GroupId=group)
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    assert len(interfaces(ec2, f"VPC Endpoint Interface {endpoint}")) == 2
    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=net["subnets"][0])
    refused(ec2.delete_security_group, "DependencyViolation", GroupId=group)
    # the refusals while the endpoint lived last; those after it was deleted pass with its interfaces
    assert [r["passing"] for r in aws_behaviour(aws_like)["refusals"]] == [False, True, True]
    assert f"VPC Endpoint Interface {endpoint}" in aws_behaviour(aws_like)["refusals"][-1]["detail"]
    wait_out()
    assert interfaces(ec2, f"VPC Endpoint Interface {endpoint}") == []
    ec2.delete_subnet(SubnetId=net["subnets"][0])
    ec2.delete_security_group(GroupId=group)


def load_balancer(url: str, net: dict[str, Any]) -> tuple[Any, str]:
    elbv2 = client(url, "elbv2")
    arn = elbv2.create_load_balancer(Name="web", Subnets=net["subnets"], SecurityGroups=[net["groups"][0]],
                                     Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    return elbv2, arn


def test_load_balancer_leaves_its_interfaces_behind_for_a_while(
        aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "elbv2-interfaces-linger")
    net = network(aws_like)
    ec2 = net["ec2"]
    elbv2, arn = load_balancer(aws_like, net)
    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=net["subnets"][1])
    refused(ec2.delete_security_group, "DependencyViolation", GroupId=net["groups"][0])
    elbv2.delete_load_balancer(LoadBalancerArn=arn)
    description = f"ELB app/web/{arn.rsplit('/', 1)[-1]}"
    left = interfaces(ec2, description)
    assert sorted(i["SubnetId"] for i in left) == sorted(net["subnets"])
    assert all(i["Groups"][0]["GroupId"] == net["groups"][0] for i in left)
    refused(ec2.delete_subnet, "DependencyViolation", SubnetId=net["subnets"][1])
    refused(ec2.delete_security_group, "DependencyViolation", GroupId=net["groups"][0])
    wait_out()
    assert interfaces(ec2, description) == []
    ec2.delete_security_group(GroupId=net["groups"][0])
    ec2.delete_subnet(SubnetId=net["subnets"][1])


def test_internet_gateway_cannot_be_detached_while_a_load_balancer_maps_an_address(
        aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "elbv2-interfaces-linger")
    net = network(aws_like)
    ec2 = net["ec2"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=net["vpc"])
    elbv2, arn = load_balancer(aws_like, net)
    refused(ec2.detach_internet_gateway, "DependencyViolation", InternetGatewayId=igw, VpcId=net["vpc"])
    elbv2.delete_load_balancer(LoadBalancerArn=arn)
    refused(ec2.detach_internet_gateway, "DependencyViolation", InternetGatewayId=igw, VpcId=net["vpc"])
    wait_out()
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=net["vpc"])


def test_access_logs_go_only_to_a_bucket_whose_policy_lets_elb_write(aws_like: str) -> None:
    elbv2, arn = load_balancer(aws_like, network(aws_like))
    s3 = client(aws_like, "s3")
    s3.create_bucket(Bucket="logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    on = [{"Key": "access_logs.s3.enabled", "Value": "true"}, {"Key": "access_logs.s3.bucket", "Value": "logs"}]
    assert "Access Denied for bucket: logs" in refused(elbv2.modify_load_balancer_attributes, "InvalidConfigurationRequest",
                                                       LoadBalancerArn=arn, Attributes=on)
    s3.put_bucket_policy(Bucket="logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::582318560864:root"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::logs/AWSLogs/123456789012/*"}]}))
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=on)


def test_a_protected_load_balancer_cannot_be_deleted(aws_like: str) -> None:
    elbv2, arn = load_balancer(aws_like, network(aws_like))
    protection = {"Key": "deletion_protection.enabled", "Value": "true"}
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[protection])
    refused(elbv2.delete_load_balancer, "OperationNotPermitted", LoadBalancerArn=arn)
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{**protection, "Value": "false"}])
    elbv2.delete_load_balancer(LoadBalancerArn=arn)


def web_acl(url: str) -> tuple[Any, dict[str, Any]]:
    wafv2 = client(url, "wafv2")
    visibility = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "acl"}
    return wafv2, wafv2.create_web_acl(Name="acl", Scope="REGIONAL", DefaultAction={"Allow": {}},
                                       VisibilityConfig=visibility)["Summary"]


def test_an_associated_web_acl_cannot_be_deleted(aws_like: str, aws_like_server: AwsLikeServer) -> None:
    aws_like_server.layer.disable("wafv2-new-load-balancer")
    _, arn = load_balancer(aws_like, network(aws_like))
    wafv2, summary = web_acl(aws_like)
    wafv2.associate_web_acl(WebACLArn=summary["ARN"], ResourceArn=arn)
    refused(wafv2.delete_web_acl, "WAFAssociatedItemException", Name="acl", Scope="REGIONAL", Id=summary["Id"],
            LockToken=summary["LockToken"])
    wafv2.disassociate_web_acl(ResourceArn=arn)
    wafv2.delete_web_acl(Name="acl", Scope="REGIONAL", Id=summary["Id"], LockToken=summary["LockToken"])


def test_waf_refuses_a_load_balancer_created_moments_before(aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "wafv2-new-load-balancer")
    wafv2, summary = web_acl(aws_like)  # first: the association follows the load balancer's creation at once
    _, arn = load_balancer(aws_like, network(aws_like))
    message = refused(wafv2.associate_web_acl, "WAFUnavailableEntityException", WebACLArn=summary["ARN"],
                      ResourceArn=arn)
    assert message == "AWS WAF couldn\u2019t retrieve the resource that you requested. Retry your request."
    assert wafv2.get_web_acl_for_resource(ResourceArn=arn).get("WebACL") is None  # nothing was associated
    wait_out()
    wafv2.associate_web_acl(WebACLArn=summary["ARN"], ResourceArn=arn)
    assert wafv2.get_web_acl_for_resource(ResourceArn=arn)["WebACL"]["ARN"] == summary["ARN"]


# --- New roles ----------------------------------------------------------------------------------------------


def role(url: str, service: str) -> str:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    return str(client(url, "iam").create_role(RoleName=f"{service}-role", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"]["Arn"])


def test_codedeploy_refuses_a_role_created_moments_before(aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "codedeploy-role-propagation")
    codedeploy = client(aws_like, "codedeploy")
    codedeploy.create_application(applicationName="api", computePlatform="ECS")
    arn = role(aws_like, "codedeploy")
    message = refused(codedeploy.create_deployment_group, "InvalidRoleException", applicationName="api",
                      deploymentGroupName="api", serviceRoleArn=arn)
    assert message == f"AWS CodeDeploy does not have the permissions required to assume the role {arn}."
    wait_out()
    codedeploy.create_deployment_group(applicationName="api", deploymentGroupName="api", serviceRoleArn=arn)


def pipeline(role_arn: str) -> dict[str, Any]:
    action = {"name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR",
                                                 "version": "1"},
              "configuration": {"RepositoryName": "api"}, "outputArtifacts": [{"name": "image"}]}
    deploy = {"name": "Approve", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                                                  "version": "1"}}
    return {"name": "api", "roleArn": role_arn, "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [{"name": "Source", "actions": [action]}, {"name": "Approve", "actions": [deploy]}]}


def test_codepipeline_refuses_a_role_created_moments_before(aws_like: str, aws_like_server: AwsLikeServer) -> None:
    shorten(aws_like_server, "codepipeline-role-propagation")
    codepipeline = client(aws_like, "codepipeline")
    arn = role(aws_like, "codepipeline")
    message = refused(codepipeline.create_pipeline, "InvalidStructureException", pipeline=pipeline(arn))
    assert message == f"CodePipeline is not authorized to perform AssumeRole on role {arn}"
    wait_out()
    codepipeline.create_pipeline(pipeline=pipeline(arn))


# --- Turning rules off --------------------------------------------------------------------------------------


def test_a_rule_turned_off_does_not_fire(aws_like: str, aws_like_server: AwsLikeServer) -> None:
    aws_like_server.layer.disable("ec2-security-group-referenced", "ecs-awsvpc-host-port")
    net = network(aws_like)
    a, b = net["groups"]
    net["ec2"].authorize_security_group_ingress(GroupId=b, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": a}]}])
    net["ec2"].delete_security_group(GroupId=a)  # moto's leniency, no longer corrected
    registered = register(client(aws_like, "ecs"), {"containerPort": 80})
    assert "hostPort" not in registered["containerDefinitions"][0]["portMappings"][0]


def test_refusals_are_recorded_and_settings_change_over_http(aws_like: str) -> None:
    net = network(aws_like)
    a, b = net["groups"]
    net["ec2"].authorize_security_group_ingress(GroupId=b, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": a}]}])
    refused(net["ec2"].delete_security_group, "DependencyViolation", GroupId=a)
    seen = aws_behaviour(aws_like)
    assert seen["refusals"] == [{"rule": "ec2-security-group-referenced", "service": "ec2",
                                 "operation": "DeleteSecurityGroup", "code": "DependencyViolation",
                                 "message": f"resource {a} has a dependent object", "passing": False,
                                 "detail": f"referenced by a rule of {b} (b)"}]
    changed = aws_behaviour(aws_like, off=["ec2-security-group-referenced"], window=0.5)
    assert "ec2-security-group-referenced" not in changed["on"]
    assert set(changed["windows"].values()) == {0.5}
    net["ec2"].delete_security_group(GroupId=a)


def test_reset_turns_every_rule_back_on(aws_like_server: AwsLikeServer, aws_like: str) -> None:
    assert aws_like_server.layer.enabled == set(RULES)
    assert aws_like_server.layer.rule("ec2-nat-gateway-deletes-slowly").window == 2.0


def test_a_context_over_the_layer_reaches_it(aws_like: str) -> None:
    ctx = aws_like_context(aws_like)
    ecs = ctx.client("ecs")
    registered = register(ecs, {"containerPort": 80})
    assert registered["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 80


# --- ACM, Route 53, SES ------------------------------------------------------------------------------------


def test_acm_issues_a_certificate_only_once_its_validation_record_resolves(aws_like: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.settings

    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)  # moto alone: issued at once, whatever DNS holds
    acm, route53 = client(aws_like, "acm"), client(aws_like, "route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference="acm")["HostedZone"]["Id"]
    arn = acm.request_certificate(DomainName="api.example.com", ValidationMethod="DNS")["CertificateArn"]
    certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert certificate["Status"] == "PENDING_VALIDATION"
    record = certificate["DomainValidationOptions"][0]["ResourceRecord"]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
        "Name": record["Name"], "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": record["Value"]}]}}]})
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"


def test_route53_refuses_to_create_a_record_that_exists(aws_like: str) -> None:
    route53 = client(aws_like, "route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference="r53")["HostedZone"]["Id"]

    def create(value: str) -> None:
        route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": "api.example.com", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": value}]}}]})

    create("192.0.2.1")
    with pytest.raises(ClientError, match="already exists") as refused:
        create("192.0.2.2")  # moto alone takes it (it refuses only the very same change again)
    assert refused.value.response["Error"]["Code"] == "InvalidChangeBatch"


def test_ses_gives_a_domain_identity_three_dkim_tokens(aws_like: str) -> None:
    sesv2 = client(aws_like, "sesv2")
    created = sesv2.create_email_identity(EmailIdentity="example.com")["DkimAttributes"]["Tokens"]
    assert len(created) == 3 and sesv2.get_email_identity(EmailIdentity="example.com")["DkimAttributes"]["Tokens"] == created
    sesv2.create_email_identity(EmailIdentity="someone@example.org")
    assert "Tokens" not in sesv2.get_email_identity(EmailIdentity="someone@example.org").get("DkimAttributes", {})


def test_a_route53_change_is_pending_until_route53_applied_it(aws_like: str, aws_like_server: AwsLikeServer) -> None:
    aws_like_server.layer.rule("route53-changes-pending").window = 30.0
    route53 = client(aws_like, "route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference="pending")["HostedZone"]["Id"]
    change = route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE",
        "ResourceRecordSet": {"Name": "a.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}]})
    assert change["ChangeInfo"]["Status"] == "PENDING"
    assert route53.get_change(Id=change["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "PENDING"
    aws_like_server.layer.rule("route53-changes-pending").window = 0.0
    assert route53.get_change(Id=change["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC"
