"""``pointapp export cloudformation``: CloudFormation templates generated from the same spec.

For teams that deploy with CloudFormation. One template per step group; later stacks import what the
network stack exports (``<prefix>-<env>-<logical id>``). The resources carry the spec's tags and their
``Name`` but not pointapp's ownership tags: a stack owns what it creates, and pointapp leaves it alone.

The network template is built from the same layout the ``network`` step builds (:func:`network.layout`);
the other templates from the steps' own lists of desired resources, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pointapp.artifacts import GITHUB_OIDC_HOST
from pointapp.errors import SpecError
from pointapp.resources import Desired, Ref
from pointapp.spec import ANYWHERE_V4, Spec
from pointapp.steps import network
from pointapp.steps.network import ALL_OUTBOUND, Permission

#: Step groups, one template each, in deployment order.
GROUPS: dict[str, tuple[str, ...]] = {
    "network": ("network", "endpoints"),
    "registry": ("registry",),
    "data": ("database", "cache"),
    "mail": ("mail",),
    "service": ("service",),
    "delivery": ("delivery",),
    "bastion": ("bastion",),
    "frontend": ("frontend",),
}

#: checkov checks the templates fail on purpose, and why (also in the README). Nothing else may fail.
WAIVERS: dict[str, str] = {
    "CKV_AWS_260": "the load balancer group takes HTTP 80 from the internet: it is the service's front door "
                   "(with service.certificate_arn set, 80 only redirects to HTTPS 443)",
    "CKV_AWS_158": "log groups are encrypted by CloudWatch Logs' own key, not a customer-managed KMS key",
    "CKV_AWS_136": "ECR images are encrypted with AES256, the AWS-managed default, not a customer-managed KMS key",
    "CKV_AWS_118": "RDS enhanced monitoring is not part of the baseline; CloudWatch metrics and the error and "
                   "slow-query logs are",
    "CKV_AWS_161": "the API signs in to MySQL with the password RDS keeps in Secrets Manager, not IAM authentication",
    "CKV_AWS_31": "Redis encrypts in transit and at rest; clients are admitted by network (only the container and "
                  "management groups reach it), without an AUTH token",
    "CKV_AWS_157": "staging runs MySQL in one zone by choice (database.multi_az); prod is Multi-AZ",
    "CKV_AWS_2": "two listeners speak HTTP: the test listener (only the bastion reaches it) and, until "
                 "service.certificate_arn is set, the production one",
    "CKV_AWS_103": "a TLS policy applies to HTTPS listeners only (the HTTPS one uses TLS 1.2 and 1.3); see CKV_AWS_2",
    "CKV_AWS_91": "load balancer access logs are not part of the baseline (VPC flow logs and the API's logs are)",
    "CKV_AWS_18": "the artifact bucket holds build artifacts only; its access is in CloudTrail, no server access log",
    "CKV_AWS_149": "the staging branch's basic-auth secret uses Secrets Manager's AWS-managed key",
    "CKV_AWS_111": "CodeDeploy's ECS blue/green and the pipeline write task sets, listeners and task definitions "
                   "named only at deployment time (AWS's own AWSCodeDeployRoleForECS grants the same on *)",
}


def logical_id(key: str) -> str:
    """``subnet/ingress/0`` gives ``SubnetIngress0``: a CloudFormation logical id from a pointapp key."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", key) if part)


def export_name(spec: Spec, key: str) -> str:
    return f"{spec.owner}-{logical_id(key)}"


def _tags(spec: Spec, name: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in {**spec.tags, "Name": name}.items()]


class _Template:
    def __init__(self, spec: Spec, group: str, description: str) -> None:
        self.spec = spec
        self.group = group
        self.body: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Description": description,
                                     "Resources": {}, "Outputs": {}}

    def add(self, key: str, kind: str, properties: Mapping[str, Any], **extra: Any) -> str:
        logical = logical_id(key)
        self.body["Resources"][logical] = {"Type": kind, "Properties": dict(properties), **extra}
        return logical

    def export(self, key: str, value: Any) -> None:
        self.body["Outputs"][logical_id(key)] = {"Value": value, "Export": {"Name": export_name(self.spec, key)}}

    def ref(self, value: Any, local: Callable[[Ref], Any]) -> Any:
        """Refs inside ``value`` as CloudFormation: local Ref/GetAtt, or an import from an earlier stack."""
        if isinstance(value, Ref):
            if value.step == "runtime":
                return _runtime(self.spec, value.key)
            made_here = local(value)
            if made_here is not None:
                return made_here
            return {"Fn::ImportValue": export_name(self.spec, value.key)}
        if isinstance(value, Mapping):
            return {k: self.ref(v, local) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.ref(v, local) for v in value]
        return value


def _runtime(spec: Spec, key: str) -> Any:
    """What pointapp learns from the target at apply time, as the template's own expressions."""
    values: dict[str, Any] = {
        "account": {"Ref": "AWS::AccountId"}, "region": {"Ref": "AWS::Region"},
        "bucket": {"Ref": logical_id("bucket")},
        "pipeline_arn": {"Fn::Sub": f"arn:${{AWS::Partition}}:codepipeline:${{AWS::Region}}:${{AWS::AccountId}}:"
                                    f"{spec.name('release')}"},
        "production_listener": {"Fn::ImportValue": export_name(spec, "service/listener/production")},
        "api_origin": {"Fn::Sub": ["http://${Dns}", {"Dns": {"Fn::ImportValue": export_name(spec, "service/alb/dns")}}]},
        "test_listener": {"Fn::ImportValue": export_name(spec, "service/listener/test")},
    }
    return values[key]


GITHUB_PROVIDER_ARN = {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:oidc-provider/{GITHUB_OIDC_HOST}"}


# --- network -------------------------------------------------------------------------------------------


def _permission(permission: Permission, description: str, local: Callable[[str], Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {"IpProtocol": permission.protocol}
    if permission.protocol != "-1":
        rule.update(FromPort=permission.from_port, ToPort=permission.to_port)
    source = {"cidr": "CidrIp", "cidr6": "CidrIpv6", "prefix": "SourcePrefixListId"}.get(permission.source_kind)
    if source:
        rule[source] = permission.source
    else:
        rule["SourceSecurityGroupId"] = local(permission.source)
    if description:
        rule["Description"] = description
    return rule


def _network(spec: Spec, template: _Template, region: str, zones: Sequence[str]) -> None:
    lay = network.layout(spec, region, zones)
    add, ref = template.add, (lambda key: {"Ref": logical_id(key)})

    def zone(name: str) -> str:
        return name

    add("vpc", "AWS::EC2::VPC", {"CidrBlock": lay.vpc_cidr, "EnableDnsHostnames": True, "EnableDnsSupport": True,
                                 "Tags": _tags(spec, lay.vpc_name)})
    add("igw", "AWS::EC2::InternetGateway", {"Tags": _tags(spec, lay.igw_name)})
    attachment = add("igw/attachment", "AWS::EC2::VPCGatewayAttachment", {"VpcId": ref("vpc"), "InternetGatewayId": ref("igw")})
    for subnet in lay.subnets:
        add(subnet.key, "AWS::EC2::Subnet", {"VpcId": ref("vpc"), "CidrBlock": subnet.cidr, "AvailabilityZone": zone(subnet.zone),
                                            "MapPublicIpOnLaunch": subnet.public, "Tags": _tags(spec, subnet.name)})
    for nat in lay.nats:
        add(nat.address, "AWS::EC2::EIP", {"Domain": "vpc", "Tags": _tags(spec, nat.address_name)}, DependsOn=attachment)
        add(nat.key, "AWS::EC2::NatGateway", {"SubnetId": ref(nat.subnet),
                                              "AllocationId": {"Fn::GetAtt": [logical_id(nat.address), "AllocationId"]},
                                              "Tags": _tags(spec, nat.name)})
    for table in lay.route_tables:
        add(table.key, "AWS::EC2::RouteTable", {"VpcId": ref("vpc"), "Tags": _tags(spec, table.name)})
        if table.target:
            target = {"GatewayId": ref("igw")} if table.target == "igw" else {"NatGatewayId": ref(table.target)}
            add(f"{table.key}/default", "AWS::EC2::Route", {"RouteTableId": ref(table.key),
                                                            "DestinationCidrBlock": ANYWHERE_V4, **target},
                DependsOn=attachment)
        for subnet_key in table.subnets:
            add(f"{subnet_key}/association", "AWS::EC2::SubnetRouteTableAssociation",
                {"SubnetId": ref(subnet_key), "RouteTableId": ref(table.key)})
    for group in lay.groups:
        outbound = [{"IpProtocol": "-1", "CidrIp": ANYWHERE_V4, "Description": "all outbound"}]
        add(group.key, "AWS::EC2::SecurityGroup", {"GroupName": group.name, "GroupDescription": group.description,
                                                   "VpcId": ref("vpc"),
                                                   "SecurityGroupEgress": outbound, "Tags": _tags(spec, group.name)})
        inbound = [(p, d) for p, d in sorted(group.permissions.items()) if p != ALL_OUTBOUND and p.direction == "ingress"]
        for i, (permission, description) in enumerate(inbound):
            add(f"{group.key}/in/{i}", "AWS::EC2::SecurityGroupIngress",
                {"GroupId": {"Fn::GetAtt": [logical_id(group.key), "GroupId"]},
                 **_permission(permission, description, lambda key: {"Fn::GetAtt": [logical_id(key), "GroupId"]})})
    _flow_logs(spec, template)
    for key in ["vpc", *(s.key for s in lay.subnets), *(t.key for t in lay.route_tables)]:
        template.export(key, ref(key))
    for group in lay.groups:
        template.export(group.key, {"Fn::GetAtt": [logical_id(group.key), "GroupId"]})


def _flow_logs(spec: Spec, template: _Template) -> None:
    by_kind = {d.kind: d for d in network._flow_log_resources(spec)}  # noqa: SLF001 - the step's own list
    if not by_kind:
        return
    group, role, flow = by_kind["log-group"], by_kind["iam-role"], by_kind["flow-log"]
    template.add(group.key, "AWS::Logs::LogGroup", {"LogGroupName": group.name,
                                                    "RetentionInDays": group.props["retention_days"]})
    template.add(role.key, "AWS::IAM::Role", _role_properties(spec, role))
    template.add(flow.key, "AWS::EC2::FlowLog", {
        "ResourceId": {"Ref": "Vpc"}, "ResourceType": "VPC", "TrafficType": flow.props["traffic"],
        "LogDestinationType": "cloud-watch-logs", "LogGroupName": {"Ref": logical_id(group.key)},
        "DeliverLogsPermissionArn": {"Fn::GetAtt": [logical_id(role.key), "Arn"]}, "Tags": _tags(spec, flow.name)})


def _role_properties(spec: Spec, role: Desired) -> dict[str, Any]:
    from pointapp.kinds import role_path

    properties: dict[str, Any] = {"RoleName": role.name, "Path": role_path(spec), "Description": role.detail[:1000],
                                  "AssumeRolePolicyDocument": role.props["trust"], "Tags": _tags(spec, role.name)}
    if role.props.get("managed"):
        properties["ManagedPolicyArns"] = list(role.props["managed"])
    if role.props.get("inline"):
        properties["Policies"] = [{"PolicyName": name, "PolicyDocument": document}
                                  for name, document in role.props["inline"].items()]
    return properties


# --- the resource steps: one converter per kind ---------------------------------------------------------


Converter = Callable[[Spec, Desired, Callable[[Any], Any]], tuple[str, dict[str, Any], dict[str, Any]]]


def _endpoint(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    service = {"Fn::Sub": f"com.amazonaws.${{AWS::Region}}.{props['service']}"}
    body: dict[str, Any] = {"VpcEndpointType": props["type"], "VpcId": r(props["vpc"]), "ServiceName": service}
    if props["type"] == "Interface":
        body.update(SubnetIds=r(props["subnets"]), SecurityGroupIds=r(props["groups"]), PrivateDnsEnabled=True)
    else:
        body["RouteTableIds"] = r(props["route_tables"])
    return "AWS::EC2::VPCEndpoint", body, {}


def _repository(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::ECR::Repository", {
        "RepositoryName": d.name, "ImageTagMutability": "IMMUTABLE",
        "ImageScanningConfiguration": {"ScanOnPush": d.props["scan_on_push"]},
        "EncryptionConfiguration": {"EncryptionType": "AES256"},
        "LifecyclePolicy": {"LifecyclePolicyText": json.dumps(d.props["lifecycle_policy"])},
        "Tags": _tags(spec, d.name)}, {}


def _db_subnet_group(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::RDS::DBSubnetGroup", {"DBSubnetGroupName": d.name, "DBSubnetGroupDescription": d.detail,
                                       "SubnetIds": r(d.props["subnets"]), "Tags": _tags(spec, d.name)}, {}


def _db_instance(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    policy = "Snapshot" if spec.database.final_snapshot else "Delete"
    return "AWS::RDS::DBInstance", {
        "DBInstanceIdentifier": d.name, "Engine": "mysql", "EngineVersion": {"Ref": "MysqlEngineVersion"},
        "DBInstanceClass": props["instance_class"], "AllocatedStorage": str(props["allocated_storage"]),
        "StorageType": "gp3", "StorageEncrypted": True, "MultiAZ": props["multi_az"], "PubliclyAccessible": False,
        "BackupRetentionPeriod": props["backup_retention"], "DeletionProtection": props["deletion_protection"],
        "DBSubnetGroupName": {"Ref": logical_id("subnet-group")}, "VPCSecurityGroups": r(props["groups"]),
        "DBName": props["database_name"], "MasterUsername": props["username"], "ManageMasterUserPassword": True,
        "CopyTagsToSnapshot": True, "EnableCloudwatchLogsExports": ["error", "slowquery"],
        "Tags": _tags(spec, d.name)}, {"DeletionPolicy": policy, "UpdateReplacePolicy": policy}


def _cache_subnet_group(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::ElastiCache::SubnetGroup", {"CacheSubnetGroupName": d.name, "Description": d.detail,
                                             "SubnetIds": r(d.props["subnets"])}, {}


def _replication_group(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    return "AWS::ElastiCache::ReplicationGroup", {
        "ReplicationGroupId": d.name, "ReplicationGroupDescription": d.detail, "Engine": "redis",
        "EngineVersion": props["engine_version"], "CacheNodeType": props["node_type"],
        "NumNodeGroups": 1, "ReplicasPerNodeGroup": props["replicas"],
        "AutomaticFailoverEnabled": props["automatic_failover"], "MultiAZEnabled": props["automatic_failover"],
        "CacheSubnetGroupName": {"Ref": logical_id("cache/subnet-group")}, "SecurityGroupIds": r(props["groups"]),
        "AtRestEncryptionEnabled": True, "TransitEncryptionEnabled": True, "Tags": _tags(spec, d.name)}, {}


def _configuration_set(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::SES::ConfigurationSet", {"Name": d.name, "DeliveryOptions": {"TlsPolicy": d.props["tls"]},
                                          "ReputationOptions": {"ReputationMetricsEnabled": True}}, {}


def _identity(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::SES::EmailIdentity", {"EmailIdentity": d.name, "ConfigurationSetAttributes": {
        "ConfigurationSetName": {"Ref": logical_id("configuration-set")}}}, {}


def _role(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    if isinstance(d.props["trust"], Ref):  # GitHub's trust names the account's OIDC provider
        from pointapp.steps.delivery import github_trust_for

        d = Desired(d.kind, d.key, d.name, {**d.props, "trust": github_trust_for(spec, GITHUB_PROVIDER_ARN)}, d.detail)
    return "AWS::IAM::Role", _role_properties(spec, d), {}


def _bucket(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::S3::Bucket", {
        "BucketName": {"Fn::Sub": f"{spec.owner}-artifacts-${{AWS::AccountId}}-${{AWS::Region}}"},
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                                           "RestrictPublicBuckets": True},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "Tags": _tags(spec, d.name)}, {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def _oidc_provider(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from pointapp.steps.delivery import GITHUB_THUMBPRINT

    return "AWS::IAM::OIDCProvider", {"Url": f"https://{GITHUB_OIDC_HOST}", "ClientIdList": ["sts.amazonaws.com"],
                                      "ThumbprintList": [GITHUB_THUMBPRINT], "Tags": _tags(spec, d.name)}, {
        "Condition": "CreateGitHubOidcProvider"}


def _application(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::CodeDeploy::Application", {"ApplicationName": d.name, "ComputePlatform": "ECS",
                                            "Tags": _tags(spec, d.name)}, {}


def _deployment_group(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from pointapp.steps.delivery import deployment_group_request

    body = _pascal(deployment_group_request(r(d.props)))
    return "AWS::CodeDeploy::DeploymentGroup", {"ApplicationName": {"Ref": logical_id("application")},
                                                "DeploymentGroupName": d.name, **body, "Tags": _tags(spec, d.name)}, {}


def _pipeline(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from pointapp.steps.delivery import pipeline_definition

    props = {**r({k: v for k, v in d.props.items() if k != "spec"}), "application": {"Ref": logical_id("application")},
             "deployment_group": {"Ref": logical_id("deployment-group")}}
    body = _pascal({k: v for k, v in pipeline_definition(spec, props, d.name).items() if k != "version"})
    return "AWS::CodePipeline::Pipeline", {**body, "Tags": _tags(spec, d.name)}, {}


def _event_rule(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    return "AWS::Events::Rule", {"Name": d.name, "EventPattern": props["pattern"], "State": "ENABLED",
                                 "Targets": [{"Id": "pipeline", "Arn": r(props["pipeline"]), "RoleArn": r(props["role"])}]}, {
        "DependsOn": [logical_id("pipeline")]}


def _instance_profile(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from pointapp.kinds import role_path

    return "AWS::IAM::InstanceProfile", {"InstanceProfileName": d.name, "Path": role_path(spec),
                                         "Roles": [{"Ref": logical_id("role")}]}, {}


def _instance(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    return "AWS::EC2::Instance", {
        "ImageId": f"{{{{resolve:ssm:{props['ami_parameter']}}}}}", "InstanceType": props["instance_type"],
        "SubnetId": r(props["subnet"]), "SecurityGroupIds": r(props["groups"]),
        "IamInstanceProfile": {"Ref": logical_id("profile")}, "Monitoring": False,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "VolumeType": "gp3"}}],
        "Tags": _tags(spec, d.name)}, {}


def _log_group(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::Logs::LogGroup", {"LogGroupName": d.name, "RetentionInDays": d.props["retention_days"]}, {}


def _cluster(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "AWS::ECS::Cluster", {"ClusterName": d.name, "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
                                 "Tags": _tags(spec, d.name)}, {}


def _pascal(value: Any) -> Any:
    """ECS's camelCase container definition in CloudFormation's PascalCase (log driver options stay as they are)."""
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    if isinstance(value, Mapping) and not any(k.startswith("Fn::") or k == "Ref" for k in value):
        renamed = {"ecsServices": "ECSServices"}
        return {renamed.get(k, k[:1].upper() + k[1:]): (v if k in ("options", "configuration") else _pascal(v))
                for k, v in value.items()}
    return value


def _container(spec: Spec) -> dict[str, Any]:
    from pointapp.steps.registry import repository_name
    from pointapp.steps.service import container_definition

    def imported(step: str, key: str) -> dict[str, Any]:
        return {"Fn::ImportValue": export_name(spec, f"{step}/{key}")}

    data = {f"{step}/{key}/{field}": imported(step, f"{key}/{field}")
            for step, key, fields in (("database", "instance", ("address", "port", "secret")),
                                      ("cache", "replication-group", ("address", "port")))
            for field in fields}
    image = {"Fn::Sub": f"${{AWS::AccountId}}.dkr.ecr.${{AWS::Region}}.amazonaws.com/{repository_name(spec)}:"
                        f"{spec.service.image_tag}"}
    from pointapp.kinds import LogGroup

    return _pascal(container_definition(spec, image, f"{LogGroup.prefix(spec)}api",  # type: ignore[arg-type]
                                        {"Ref": "AWS::Region"}, data))  # type: ignore[arg-type]


def _task_definition(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    return "AWS::ECS::TaskDefinition", {
        "Family": d.name, "Cpu": str(props["cpu"]), "Memory": str(props["memory"]), "NetworkMode": "awsvpc",
        "RequiresCompatibilities": ["FARGATE"], "ExecutionRoleArn": r(props["execution_role"]),
        "TaskRoleArn": r(props["task_role"]), "ContainerDefinitions": [_container(spec)], "Tags": _tags(spec, d.name)}, {}


def _target_group(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    return "AWS::ElasticLoadBalancingV2::TargetGroup", {
        "Name": d.name, "Port": props["port"], "Protocol": "HTTP", "TargetType": "ip", "VpcId": r(props["vpc"]),
        "HealthCheckPath": props["health_check_path"], "HealthCheckProtocol": "HTTP", "Matcher": {"HttpCode": "200-399"},
        "Tags": _tags(spec, d.name)}, {}


def _load_balancer(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    return "AWS::ElasticLoadBalancingV2::LoadBalancer", {
        "Name": d.name, "Scheme": "internet-facing", "Type": "application", "IpAddressType": "ipv4",
        "Subnets": r(props["subnets"]), "SecurityGroups": r(props["groups"]),
        "LoadBalancerAttributes": [{"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}],
        "Tags": _tags(spec, d.name)}, {}


def _listener(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    if props["action"] == "redirect":
        action = {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}
    else:
        action = {"Type": "forward", "TargetGroupArn": r(props["target_groups"][0])}
    body: dict[str, Any] = {"LoadBalancerArn": r(props["load_balancer"]), "Port": props["port"],
                            "Protocol": props["protocol"], "DefaultActions": [action]}
    if props.get("certificate"):
        body.update(Certificates=[{"CertificateArn": props["certificate"]}], SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    return "AWS::ElasticLoadBalancingV2::Listener", body, {}


def _ecs_service(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    listeners = [logical_id(key) for key in ("listener/production", "listener/test")]
    return "AWS::ECS::Service", {
        "ServiceName": d.name, "Cluster": r(props["cluster"]), "TaskDefinition": r(props["task_definition"]),
        "DesiredCount": props["desired_count"], "LaunchType": "FARGATE", "DeploymentController": {"Type": "CODE_DEPLOY"},
        "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": r(props["subnets"]), "SecurityGroups": r(props["groups"]),
                                                         "AssignPublicIp": "DISABLED"}},
        "LoadBalancers": [{"TargetGroupArn": r(props["target_group"]), "ContainerName": props["container_name"],
                           "ContainerPort": props["port"]}],
        "HealthCheckGracePeriodSeconds": 60, "PropagateTags": "SERVICE", "Tags": _tags(spec, d.name)}, {"DependsOn": listeners}


def _secret(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from pointapp.steps.frontend import BASIC_AUTH_USER

    return "AWS::SecretsManager::Secret", {"Name": d.name, "Description": d.detail, "GenerateSecretString": {
        "SecretStringTemplate": json.dumps({"username": BASIC_AUTH_USER}), "GenerateStringKey": "password",
        "PasswordLength": 32, "ExcludePunctuation": True}, "Tags": _tags(spec, d.name)}, {}


def _token(where: str) -> Any:
    """The repository token, never in the template: a Secrets Manager dynamic reference, or (an SSM
    SecureString, which Amplify's template properties cannot resolve) a NoEcho parameter."""
    if where.startswith(("arn:aws:secretsmanager:", "secretsmanager:")):
        secret = where.split(":", 1)[1] if where.startswith("secretsmanager:") else where
        return f"{{{{resolve:secretsmanager:{secret}}}}}"
    return {"Ref": "RepositoryAccessToken"}


def _amplify_app(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = r(d.props)
    return "AWS::Amplify::App", {
        "Name": d.name, "Repository": props["repository"], "AccessToken": _token(props["token_from"]),
        "BuildSpec": props["build_spec"], "EnvironmentVariables": [{"Name": k, "Value": v} for k, v in props["environment"].items()],
        "CustomRules": _custom_rules(props["api_origin"]), "Tags": _tags(spec, d.name)}, {}


def _custom_rules(origin: Any) -> list[dict[str, Any]]:
    """The frontend's rewrites; the API's origin may be a template expression (the imported DNS name)."""
    from pointapp.steps.frontend import custom_rules

    return [{"Source": r["source"], "Status": r["status"],
             "Target": {"Fn::Sub": [r["target"], {"Origin": origin}]} if "${Origin}" in r["target"] else r["target"]}
            for r in custom_rules("${Origin}")]


def _amplify_branch(spec: Spec, d: Desired, r: Callable[[Any], Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    props = d.props
    body: dict[str, Any] = {"AppId": {"Fn::GetAtt": [logical_id("app"), "AppId"]}, "BranchName": d.name,
                            "Stage": props["stage"], "EnablePullRequestPreview": props["previews"], "EnableAutoBuild": True,
                            "Tags": _tags(spec, d.name)}
    if props.get("basic_auth"):
        def field(name: str) -> dict[str, str]:  # resolved by CloudFormation from the generated secret
            return {"Fn::Sub": f"{{{{resolve:secretsmanager:${{{logical_id('basic-auth')}}}:SecretString:{name}}}}}"}

        body["BasicAuthConfig"] = {"EnableBasicAuth": True, "Username": field("username"), "Password": field("password")}
    return "AWS::Amplify::Branch", body, {}


CONVERTERS: dict[str, Converter] = {
    "secret": _secret, "amplify-app": _amplify_app, "amplify-branch": _amplify_branch,
    "s3-bucket": _bucket, "oidc-provider": _oidc_provider, "codedeploy-application": _application,
    "deployment-group": _deployment_group, "pipeline": _pipeline, "event-rule": _event_rule,
    "log-group": _log_group, "ecs-cluster": _cluster, "task-definition": _task_definition,
    "target-group": _target_group, "load-balancer": _load_balancer, "listener": _listener, "ecs-service": _ecs_service,
    "vpc-endpoint": _endpoint, "ecr-repository": _repository, "db-subnet-group": _db_subnet_group,
    "db-instance": _db_instance, "cache-subnet-group": _cache_subnet_group, "replication-group": _replication_group,
    "ses-configuration-set": _configuration_set, "ses-identity": _identity, "iam-role": _role,
    "instance-profile": _instance_profile, "ec2-instance": _instance,
}


def _resource_steps(spec: Spec, template: _Template, steps: Sequence[str]) -> None:
    from pointapp.steps import get

    for step in (s for s in steps if s != "network"):
        wanted: list[Desired] = get(step).load().desired(spec)
        made = {d.key for d in wanted}
        prefix = "cache/" if step == "cache" else ""  # the database's keys and the cache's overlap

        def local(ref: Ref, step: str = step, made: set[str] = made, prefix: str = prefix) -> Any:
            if ref.step == "network" and "network" in steps:  # made in this very template
                if ref.key.startswith("sg/"):
                    return {"Fn::GetAtt": [logical_id(ref.key), "GroupId"]}
                return {"Ref": logical_id(ref.key)}
            if ref.step == step and ref.key in made:
                if ref.attribute == "id":
                    return {"Ref": logical_id(prefix + ref.key)}
                return {"Fn::GetAtt": [logical_id(prefix + ref.key), ref.attribute]}
            return None

        for desired in wanted:
            if desired.kind in ("s3-object", "amplify-build"):  # no CloudFormation resource: the description says
                continue
            if desired.owner:  # another environment's stack makes it (the SES identity of a shared domain)
                continue
            kind, properties, extra = CONVERTERS[desired.kind](spec, desired, lambda v, local=local: template.ref(v, local))
            template.add(prefix + desired.key, kind, properties, **extra)


def _data_exports(spec: Spec, template: _Template) -> None:
    """What the service's container needs of MySQL and Redis: endpoints, and the secret RDS keeps."""
    instance, group = logical_id("instance"), logical_id("cache/replication-group")
    values = {"database/instance/address": {"Fn::GetAtt": [instance, "Endpoint.Address"]},
              "database/instance/port": {"Fn::GetAtt": [instance, "Endpoint.Port"]},
              "database/instance/secret": {"Fn::GetAtt": [instance, "MasterUserSecret.SecretArn"]},
              "cache/replication-group/address": {"Fn::GetAtt": [group, "PrimaryEndPoint.Address"]},
              "cache/replication-group/port": {"Fn::GetAtt": [group, "PrimaryEndPoint.Port"]}}
    for key, value in values.items():
        template.export(key, value)


DESCRIPTIONS = {
    "network": "VPC, subnets, internet and NAT gateways, route tables, security groups, flow logs, VPC endpoints",
    "registry": "ECR repository for the API image",
    "data": "RDS MySQL and ElastiCache Redis in the isolated subnets",
    "mail": "SES configuration set and sender identity",
    "service": "ECS Fargate service behind an Application Load Balancer, blue and green target groups",
    "delivery": "artifact bucket, CodeDeploy blue/green, CodePipeline from ECR, the release-on-push rule; "
                "upload the artifacts of `pointapp export delivery` (artifacts.zip) to the bucket",
    "bastion": "SSM-only bastion host",
    "frontend": "Amplify Hosting of the React frontend, production and basic-auth staging branches; "
                "start the first build in the console (Amplify does not build an app created this way by itself)",
}


def templates(spec: Spec, region: str, zones: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The template of each step group, as data, in deployment order (network first).

    ``zones`` are the region's availability zones in the order the network step uses them, so subnets
    land in the same zones and carry the same names as when pointapp builds them.
    """
    result = {}
    for group, steps in GROUPS.items():
        template = _Template(spec, group, f"{spec.owner} {group} in {region}: {DESCRIPTIONS[group]} (generated by pointapp)")
        if "network" in steps:
            _network(spec, template, region, zones)
        if "database" in steps:  # RDS takes a major version ("8.0": its latest minor); a parameter says so
            template.body["Parameters"] = {"MysqlEngineVersion": {
                "Type": "String", "Default": spec.database.engine_version,
                "Description": "MySQL version: a major version picks its latest minor (database.engine_version)"}}
        _resource_steps(spec, template, steps)
        if group == "data":
            _data_exports(spec, template)
        if group == "frontend" and isinstance(_token(spec.frontend.access_token_parameter or ""), dict):
            template.body["Parameters"] = {"RepositoryAccessToken": {
                "Type": "String", "NoEcho": True, "MinLength": 1,
                "Description": f"the repository token kept in the SSM parameter {spec.frontend.access_token_parameter}"}}
        if group == "delivery" and spec.delivery.github_repository:
            template.body["Parameters"] = {"CreateGitHubOidcProvider": {
                "Type": "String", "Default": "true", "AllowedValues": ["true", "false"],
                "Description": "false when the account already has GitHub's OIDC provider (one per account)"}}
            template.body["Conditions"] = {"CreateGitHubOidcProvider": {"Fn::Equals": [{"Ref": "CreateGitHubOidcProvider"}, "true"]}}
        if group == "service":
            for key in ("listener/production", "listener/test", "tg/blue", "tg/green", "alb"):
                template.export(f"service/{key}", {"Ref": logical_id(key)})
            template.export("service/alb/dns", {"Fn::GetAtt": [logical_id("alb"), "DNSName"]})
        if not template.body["Outputs"]:
            del template.body["Outputs"]
        if template.body["Resources"]:  # a group with nothing to build (no frontend configured) has no template
            result[group] = template.body
    return result


def export(ctx: Any, directory: str | Path) -> list[Path]:
    """Write the templates for the context's region (one read: its availability zones)."""
    return write(ctx.spec, ctx.target.region, network.available_zones(ctx), directory)


def write(spec: Spec, region: str, zones: Sequence[str], directory: str | Path) -> list[Path]:
    """Write ``<owner>-<group>.json`` for every step group into ``directory``; returns the paths."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SpecError("-o", f"cannot write into {folder}: {error.strerror}") from None
    written = []
    for group, body in templates(spec, region, zones).items():
        path = folder / f"{spec.owner}-{group}.json"
        path.write_text(json.dumps(body, indent=2) + "\n")
        written.append(path)
    return written
