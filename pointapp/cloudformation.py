"""``pointapp export cloudformation``: CloudFormation templates generated from the same spec.

For teams that deploy with CloudFormation. One template per step group; later stacks import what the
network stack exports (``<prefix>-<env>-<logical id>``). The resources carry the spec's tags and their
``Name`` but not pointapp's ownership tags: a stack owns what it creates, and pointapp leaves it alone.

Every resource's properties are the create request pointapp sends for it (:meth:`Kind.request`, the network's
kinds' too), mapped to CloudFormation's names by a small table per kind (:data:`SHAPES`, :data:`NETWORK_SHAPES`),
so the export and ``apply`` cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pointapp import outputs
from pointapp.artifacts import GITHUB_OIDC_HOST
from pointapp.context import StepContext
from pointapp.errors import SpecError
from pointapp.resources import Arn, Desired, Kind, Ref, Request, Template, arn_service, resolve
from pointapp.spec import ANYWHERE_V4, Spec
from pointapp.steps import network
from pointapp.tags import aws_tags, from_aws_tags

#: Step groups, one template each, in deployment order.
GROUPS: dict[str, tuple[str, ...]] = {
    "network": ("network", "endpoints"),
    "domain": ("domain",),
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
    "CKV_AWS_51": "image tags are immutable except `latest`, which CI moves on every build and CodePipeline "
                  "watches (IMMUTABLE_WITH_EXCLUSION, as the registry step makes the repository)",
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
        if isinstance(value, Arn):
            return template_arn(value)
        if isinstance(value, Template):  # text around other resources' values: joined by the stack
            pieces = value.text.split("{}")
            joined = [piece for i, text in enumerate(pieces)
                      for piece in ([text] + ([self.ref(value.parts[i], local)] if i < len(value.parts) else [])) if piece != ""]
            return {"Fn::Join": ["", joined]}
        if isinstance(value, Mapping):
            return {k: self.ref(v, local) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.ref(v, local) for v in value]
        return value


def template_arn(arn: Arn) -> dict[str, str]:
    """``arn`` in the stack's own partition, and its region and account where it names the target's own."""
    return {"Fn::Sub": arn.text("${AWS::Partition}", "${AWS::Region}" if arn.region is None else arn.region,
                                "${AWS::AccountId}" if arn.account is None else arn.account)}


def _runtime(spec: Spec, key: str) -> Any:
    """What pointapp learns from the target at apply time, as the template's own expressions."""
    values: dict[str, Any] = {
        "account": {"Ref": "AWS::AccountId"}, "region": {"Ref": "AWS::Region"}, "vpc": {"Ref": logical_id("vpc")},
        "bucket": {"Ref": logical_id("bucket")},
        "pipeline_arn": template_arn(Arn("codepipeline", spec.name("release"), None, None)),
        "production_listener": {"Fn::ImportValue": export_name(spec, outputs.PRODUCTION_LISTENER.path)},
        "api_origin": {"Fn::Sub": ["http://${Dns}", {"Dns": {"Fn::ImportValue": export_name(spec, outputs.LOAD_BALANCER_DNS.path)}}]},
        "test_listener": {"Fn::ImportValue": export_name(spec, outputs.TEST_LISTENER.path)},
    }
    if key == "container":  # the container definition, with the image, endpoints and secret as expressions
        return _container(spec)
    if key == "github_trust":  # GitHub's trust names the account's OIDC provider
        from pointapp.steps.delivery import github_trust_for

        return github_trust_for(spec, GITHUB_PROVIDER_ARN)
    return values[key]


GITHUB_PROVIDER_ARN = template_arn(Arn("iam", f"oidc-provider/{GITHUB_OIDC_HOST}", "", None))


# --- network -------------------------------------------------------------------------------------------


def network_requests(spec: Spec, region: str, zones: Sequence[str], tags: Callable[[str, str], Mapping[str, str]]
                     ) -> list[tuple[str, str, Request, dict[str, Any]]]:
    """The network layout's create requests as the template makes them (each kind's :meth:`Kind.request`):
    ``(key, shape, request, attributes)`` in creation order, each group followed by its inbound rules, each id
    a Ref or Fn::GetAtt of the resource made for its key; ``tags(key, name)``."""
    addresses = {nat.address for nat in network.layout(spec, region, zones).nats}

    def id(key: str) -> Any:
        if key.startswith("sg/"):
            return {"Fn::GetAtt": [logical_id(key), "GroupId"]}
        if key in addresses:
            return {"Fn::GetAtt": [logical_id(key), "AllocationId"]}
        return {"Ref": logical_id(key)}

    after = {"DependsOn": logical_id("igw/attachment")}  # what needs the internet gateway attached
    found: list[tuple[str, str, Request, dict[str, Any]]] = []
    rules: dict[str, list[tuple[str, str, Request, dict[str, Any]]]] = {}
    shapes = {"route-association": "association", "security-group-rule": "ingress"}  # by kind, where they differ
    for desired in network.desired(spec, {"region": region, "zones": zones}):
        shape = shapes.get(desired.kind, desired.kind)
        if shape not in NETWORK_SHAPES:  # the default group (made with the VPC) and the flow logs
            continue
        props = {**resolve(desired.props, lambda ref: id(ref.key)), "id": id(desired.key)}
        request = network.STEP.kinds[desired.kind].request(spec, desired, props, tags(desired.key, desired.name))
        if desired.kind == "internet-gateway":  # two template resources: the gateway and its attachment
            found += [(desired.key, desired.kind, {"create_internet_gateway": request["create_internet_gateway"]}, {}),
                      ("igw/attachment", "gateway-attachment",
                       {"attach_internet_gateway": request["attach_internet_gateway"]}, {})]
        elif desired.kind == "security-group-rule":  # inbound only: a group holds all outbound already
            if "authorize_security_group_ingress" in request:
                group = rules.setdefault(desired.parent, [])
                group.append((f"{desired.parent}/in/{len(group)}", shape, request, {}))
        else:
            found.append((desired.key, shape, request, after if shape in ("elastic-ip", "route") else {}))
    return [item for entry in found for item in [entry, *rules.get(entry[0], [])]]


def _flat_rule(permissions: list[dict[str, Any]]) -> dict[str, Any]:
    """One IpPermissions entry as AWS::EC2::SecurityGroupIngress spells it: one source, its description."""
    entry = permissions[0]
    rule: dict[str, Any] = {key: entry[key] for key in ("IpProtocol", "FromPort", "ToPort") if key in entry}
    for field, source, name in (("IpRanges", "CidrIp", "CidrIp"), ("Ipv6Ranges", "CidrIpv6", "CidrIpv6"),
                                ("UserIdGroupPairs", "GroupId", "SourceSecurityGroupId"),
                                ("PrefixListIds", "PrefixListId", "SourcePrefixListId")):
        for item in entry.get(field, []):
            rule[name] = item[source]
            rule.update({"Description": item["Description"]} if "Description" in item else {})
    return rule


def _network(spec: Spec, template: _Template, region: str, zones: Sequence[str]) -> None:
    for key, shape_name, request, attributes in network_requests(spec, region, zones, lambda key, name: template_tags(spec, name)):
        shape = NETWORK_SHAPES[shape_name]
        own = shape.template(spec, request, lambda value: template.ref(value, lambda _: None))
        template.add(key, shape.type, {**request_properties(shape, request), **own}, **attributes)
    lay = network.layout(spec, region, zones)
    for key in ["vpc", *(s.key for s in lay.subnets), *(t.key for t in lay.route_tables)]:
        template.export(key, {"Ref": logical_id(key)})
    for group in lay.groups:
        template.export(group.key, {"Fn::GetAtt": [logical_id(group.key), "GroupId"]})


# --- the resource steps: each kind's create request, mapped to CloudFormation ------------------------------


def _pascal(value: Any) -> Any:
    """ECS's camelCase container definition in CloudFormation's PascalCase (log driver options stay as they are)."""
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    if isinstance(value, Mapping) and not any(k.startswith("Fn::") or k == "Ref" for k in value):
        renamed = {"ecsServices": "ECSServices"}
        return {renamed.get(k, k[:1].upper() + k[1:]): (v if k in ("options", "configuration") else _pascal(v))
                for k, v in value.items()}
    return value


Transform = Callable[[Any], Any]
#: Where one request field goes: a property (a dotted path into nested properties; "" merges a mapping into
#: the properties), the same with a transform of the value where the shapes differ, or None: not in the
#: template (the reason is in the test's list of deliberate differences).
Field = str | tuple[str, Transform] | None
Resolve = Callable[[Any], Any]


def _none(*_: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Shape:
    """How one kind's create request (:meth:`pointapp.resources.Kind.request`) becomes its resource.

    ``fields`` maps each operation of the request to a table of its fields, or, for an operation called once
    per item, to one :data:`Field` that takes the list of calls. ``inputs`` are the template's expressions of
    what the create learns only when it runs; ``template`` the properties only the template sets (or sets
    otherwise: it gets the desired resource, or a network layout's request); ``attributes`` the resource's
    DependsOn, DeletionPolicy, Condition.
    """

    type: str
    fields: Mapping[str, Mapping[str, Field] | Field]
    inputs: Callable[[Spec, Desired], Mapping[str, Any]] = _none
    template: Callable[[Spec, Any, Resolve], Mapping[str, Any]] = _none
    attributes: Callable[[Spec, Desired, Callable[[str], str]], Mapping[str, Any]] = _none


def _put(properties: dict[str, Any], field: Field, value: Any) -> None:
    if field is None:
        return
    path, transform = field if isinstance(field, tuple) else (field, None)
    value = transform(value) if transform else value
    if path == "":
        for key, item in value.items():
            _put(properties, key, item)
        return
    *parents, last = path.split(".")
    for parent in parents:
        properties = properties.setdefault(parent, {})
    if last in properties and properties[last] != value:  # two calls say the same thing, or one is wrong
        raise ValueError(f"{path}: {properties[last]!r} and {value!r}")
    properties[last] = value


def request_properties(shape: Shape, request: Mapping[str, Any]) -> dict[str, Any]:
    """The request's fields as CloudFormation properties (a field the shape does not know is an error)."""
    properties: dict[str, Any] = {}
    for operation, args in request.items():
        table = shape.fields[operation]
        if isinstance(args, list):
            if args:
                _put(properties, cast(Field, table), args)  # an operation called once per item: one field
            continue
        for name, value in args.items():
            _put(properties, cast(Mapping[str, Field], table)[name], value)
    return properties


def template_tags(spec: Spec, name: str) -> dict[str, str]:
    """The tags a template gives a resource: the spec's and its Name; never pointapp's ownership tags."""
    return {**spec.tags, "Name": name}


def _tag_list(tags: Any) -> list[dict[str, str]]:
    """Tags in CloudFormation's ``[{Key, Value}]`` from a mapping, or from a list with ``key``/``value``."""
    if not isinstance(tags, Mapping):
        tags = from_aws_tags(tags, lower=any("key" in tag for tag in tags))
    return aws_tags(tags)


TAGS: Field = ("Tags", _tag_list)
PASCAL: Callable[[str], Field] = lambda path: (path, _pascal)  # noqa: E731 - a table entry


def _same(*names: str) -> dict[str, Field]:
    """Fields whose CloudFormation property has the API's name and shape."""
    return {name: name for name in names}


def _camel(*names: str) -> dict[str, Field]:
    """camelCase fields (ECS, CodePipeline) whose property is the PascalCase name, nested keys too."""
    return {name: PASCAL(name[:1].upper() + name[1:]) for name in names}


def _kept(snapshot: bool) -> dict[str, str]:
    """A database's deletion policy: a final snapshot when the spec asks for one."""
    policy = "Snapshot" if snapshot else "Delete"
    return {"DeletionPolicy": policy, "UpdateReplacePolicy": policy}


SHAPES: dict[str, Shape] = {
    "ecr-repository": Shape("AWS::ECR::Repository", {
        "create_repository": {
            "repositoryName": "RepositoryName", "tags": TAGS, "imageTagMutability": "ImageTagMutability",
            # the CloudFormation names of ECR's filterType and filter (AWS::ECR::Repository ImageTagMutabilityExclusionFilter)
            "imageTagMutabilityExclusionFilters": ("ImageTagMutabilityExclusionFilters", lambda filters: [
                {"ImageTagMutabilityExclusionFilterType": f["filterType"], "ImageTagMutabilityExclusionFilterValue": f["filter"]}
                for f in filters]),
            "imageScanningConfiguration": PASCAL("ImageScanningConfiguration"),
            "encryptionConfiguration": PASCAL("EncryptionConfiguration")},
        "put_lifecycle_policy": {"repositoryName": "RepositoryName", "lifecyclePolicyText": "LifecyclePolicy.LifecyclePolicyText"}}),
    "db-subnet-group": Shape("AWS::RDS::DBSubnetGroup", {"create_db_subnet_group": {
        "DBSubnetGroupName": "DBSubnetGroupName", "DBSubnetGroupDescription": "DBSubnetGroupDescription",
        "SubnetIds": "SubnetIds", "Tags": "Tags"}}),
    "db-instance": Shape("AWS::RDS::DBInstance", {"create_db_instance": {
        **_same("DBInstanceIdentifier", "Engine", "EngineVersion", "DBInstanceClass", "StorageType", "StorageEncrypted",
                "MultiAZ", "PubliclyAccessible", "DBSubnetGroupName", "BackupRetentionPeriod", "DeletionProtection",
                "DBName", "MasterUsername", "ManageMasterUserPassword", "CopyTagsToSnapshot", "AutoMinorVersionUpgrade",
                "EngineLifecycleSupport", "Tags"),
        "AllocatedStorage": ("AllocatedStorage", str), "VpcSecurityGroupIds": "VPCSecurityGroups"}},
        # RDS takes a major version ("8.4": its latest minor); the template's parameter defaults to the spec's
        inputs=lambda spec, d: {"engine_version": {"Ref": "MysqlEngineVersion"}},
        template=lambda spec, d, r: {"EnableCloudwatchLogsExports": ["error", "slowquery"]},
        attributes=lambda spec, d, here: {"DependsOn": [here("subnet-group")], **_kept(spec.database.final_snapshot)}),
    "cache-subnet-group": Shape("AWS::ElastiCache::SubnetGroup", {"create_cache_subnet_group": {
        "CacheSubnetGroupName": "CacheSubnetGroupName", "CacheSubnetGroupDescription": "Description",
        "SubnetIds": "SubnetIds", "Tags": "Tags"}}),
    "replication-group": Shape("AWS::ElastiCache::ReplicationGroup", {"create_replication_group": _same(
        "ReplicationGroupId", "ReplicationGroupDescription", "Engine", "EngineVersion", "CacheNodeType",
        "NumCacheClusters", "AutomaticFailoverEnabled", "MultiAZEnabled", "CacheSubnetGroupName", "SecurityGroupIds",
        "AtRestEncryptionEnabled", "TransitEncryptionEnabled", "Port", "Tags")},
        attributes=lambda spec, d, here: {"DependsOn": [here("subnet-group")]}),
    "log-group": Shape("AWS::Logs::LogGroup", {
        "create_log_group": {"logGroupName": "LogGroupName", "tags": TAGS},
        "put_retention_policy": {"logGroupName": "LogGroupName", "retentionInDays": "RetentionInDays"}}),
    "iam-role": Shape("AWS::IAM::Role", {
        "create_role": {**_same("RoleName", "Path", "Description", "Tags"),
                        "AssumeRolePolicyDocument": ("AssumeRolePolicyDocument", json.loads)},
        "attach_role_policy": ("ManagedPolicyArns", lambda calls: [call["PolicyArn"] for call in calls]),
        "put_role_policy": ("Policies", lambda calls: [
            {"PolicyName": call["PolicyName"], "PolicyDocument": json.loads(call["PolicyDocument"])} for call in calls])}),
    "ecs-cluster": Shape("AWS::ECS::Cluster", {"create_cluster": {
        "clusterName": "ClusterName", "settings": PASCAL("ClusterSettings"), "tags": TAGS}}),
    "task-definition": Shape("AWS::ECS::TaskDefinition", {"register_task_definition": {
        **_camel("family", "networkMode", "requiresCompatibilities", "cpu", "memory", "executionRoleArn", "taskRoleArn",
                 "containerDefinitions"), "tags": TAGS}}),
    "target-group": Shape("AWS::ElasticLoadBalancingV2::TargetGroup", {"create_target_group": _same(
        "Name", "Protocol", "Port", "VpcId", "TargetType", "HealthCheckPath", "HealthCheckProtocol", "Matcher", "Tags")}),
    "load-balancer": Shape("AWS::ElasticLoadBalancingV2::LoadBalancer", {"create_load_balancer": _same(
        "Name", "Subnets", "SecurityGroups", "Scheme", "Type", "IpAddressType", "Tags")},
        template=lambda spec, d, r: {"LoadBalancerAttributes": [
            {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}]}),
    "listener": Shape("AWS::ElasticLoadBalancingV2::Listener", {"create_listener": _same(
        "LoadBalancerArn", "Protocol", "Port", "DefaultActions", "Tags", "Certificates", "SslPolicy")}),
    "ecs-service": Shape("AWS::ECS::Service", {"create_service": {
        **_camel("cluster", "serviceName", "taskDefinition", "desiredCount", "launchType", "platformVersion",
                 "networkConfiguration", "loadBalancers", "deploymentController", "healthCheckGracePeriodSeconds",
                 "schedulingStrategy", "propagateTags", "enableECSManagedTags"), "tags": TAGS}},
        # the target group must be a load balancer's before a service names it: the listeners come first
        attributes=lambda spec, d, here: {"DependsOn": [here(outputs.PRODUCTION_LISTENER.key), here(outputs.TEST_LISTENER.key)]}),
    "s3-bucket": Shape("AWS::S3::Bucket", {
        # the bucket is made where the stack is: CloudFormation takes no location constraint
        "create_bucket": {"Bucket": "BucketName", "CreateBucketConfiguration": None,
                          "ObjectOwnership": ("OwnershipControls", lambda owner: {"Rules": [{"ObjectOwnership": owner}]})},
        "put_bucket_tagging": {"Bucket": "BucketName", "Tagging": ("Tags", lambda tagging: tagging["TagSet"])},
        "put_public_access_block": {"Bucket": "BucketName", "PublicAccessBlockConfiguration": "PublicAccessBlockConfiguration"},
        "put_bucket_encryption": {"Bucket": "BucketName", "ServerSideEncryptionConfiguration": ("BucketEncryption", lambda c: {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": rule["ApplyServerSideEncryptionByDefault"],
                                                   "BucketKeyEnabled": rule["BucketKeyEnabled"]} for rule in c["Rules"]]})},
        "put_bucket_versioning": {"Bucket": "BucketName", "VersioningConfiguration": "VersioningConfiguration"}},
        # bucket names are global: the account and region make this one unique, as bucket_name does
        inputs=lambda spec, d: {"bucket": {"Fn::Sub": f"{spec.owner}-artifacts-${{AWS::AccountId}}-${{AWS::Region}}"}},
        attributes=lambda spec, d, here: {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}),
    "oidc-provider": Shape("AWS::IAM::OIDCProvider", {"create_open_id_connect_provider": {
        **_same("Url", "ThumbprintList", "Tags"), "ClientIDList": "ClientIdList"}},
        attributes=lambda spec, d, here: {"Condition": "CreateGitHubOidcProvider"}),
    "codedeploy-application": Shape("AWS::CodeDeploy::Application", {"create_application": {
        **_camel("applicationName", "computePlatform"), "tags": TAGS}}),
    "deployment-group": Shape("AWS::CodeDeploy::DeploymentGroup", {"create_deployment_group": {
        **_camel("applicationName", "deploymentGroupName", "serviceRoleArn", "deploymentConfigName", "deploymentStyle",
                 "blueGreenDeploymentConfiguration", "autoRollbackConfiguration", "loadBalancerInfo"),
        "ecsServices": PASCAL("ECSServices"), "tags": TAGS}},
        attributes=lambda spec, d, here: {"DependsOn": [here("application")]}),
    # CloudFormation keeps the pipeline's version itself: the request's version 1 is left out
    "pipeline": Shape("AWS::CodePipeline::Pipeline", {"create_pipeline": {
        "pipeline": ("", lambda pipeline: _pascal({k: v for k, v in pipeline.items() if k != "version"})), "tags": TAGS}},
        attributes=lambda spec, d, here: {"DependsOn": [here("application"), here("deployment-group")]}),
    "event-rule": Shape("AWS::Events::Rule", {
        "put_rule": {**_same("Name", "State", "Description", "Tags"), "EventPattern": ("EventPattern", json.loads)},
        "put_targets": {"Rule": "Name", "Targets": "Targets"}},
        attributes=lambda spec, d, here: {"DependsOn": [here("pipeline")]}),
    "ses-configuration-set": Shape("AWS::SES::ConfigurationSet", {"create_configuration_set": {
        **_same("Tags", "DeliveryOptions", "ReputationOptions", "SendingOptions"), "ConfigurationSetName": "Name"}}),
    "ses-identity": Shape("AWS::SES::EmailIdentity", {"create_email_identity": {
        **_same("EmailIdentity", "Tags"), "ConfigurationSetName": "ConfigurationSetAttributes.ConfigurationSetName"}},
        template=lambda spec, d, r: {"MailFromAttributes": {"MailFromDomain": d.props["mail_from"],
                                                            "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"}}
        if d.props.get("mail_from") else {},
        attributes=lambda spec, d, here: {"DependsOn": [here("configuration-set")]}),
    # The stack's certificate writes its validation records into the zone and waits for issuance itself
    # (AWS::CertificateManager::Certificate, DomainValidationOptions with HostedZoneId).
    "acm-certificate": Shape("AWS::CertificateManager::Certificate", {"request_certificate": {
        **_same("DomainName", "SubjectAlternativeNames", "ValidationMethod", "KeyAlgorithm", "Tags"),
        "IdempotencyToken": None}},
        template=lambda spec, d, r: {"DomainValidationOptions": [
            {"DomainName": name, "HostedZoneId": {"Ref": "HostedZoneId"}} for name in d.props["names"]]}),
    # A stack owns the records it makes: no ownership record beside them.
    "dns-record": Shape("AWS::Route53::RecordSet", {"change_resource_record_sets": {
        "HostedZoneId": "HostedZoneId", "ChangeBatch": ("", lambda batch: _record_set(batch["Changes"][0]["ResourceRecordSet"]))}}),
    "dkim-record": Shape("AWS::Route53::RecordSet", {"change_resource_record_sets": {
        "HostedZoneId": "HostedZoneId", "ChangeBatch": ("", lambda batch: _record_set(batch["Changes"][0]["ResourceRecordSet"]))}},
        inputs=lambda spec, d: _dkim_token(d)),
    "amplify-domain": Shape("AWS::Amplify::Domain", {"create_domain_association": {
        **_camel("appId", "domainName", "enableAutoSubDomain"),
        "subDomainSettings": ("SubDomainSettings", lambda items: [{"Prefix": i["prefix"], "BranchName": i["branchName"]}
                                                                  for i in items]),
        "certificateSettings": ("CertificateSettings", lambda c: {"CertificateType": c["type"]})}},
        attributes=lambda spec, d, here: {"DependsOn": [here("branch/production"), here("branch/staging")]}),
    "instance-profile": Shape("AWS::IAM::InstanceProfile", {
        "create_instance_profile": {"InstanceProfileName": "InstanceProfileName", "Path": "Path", "Tags": None},
        "add_role_to_instance_profile": {"InstanceProfileName": "InstanceProfileName", "RoleName": ("Roles", lambda role: [role])}},
        attributes=lambda spec, d, here: {"DependsOn": [here("role")]}),
    "ec2-instance": Shape("AWS::EC2::Instance", {"run_instances": {
        **_same("ImageId", "InstanceType", "SubnetId", "SecurityGroupIds", "MetadataOptions", "BlockDeviceMappings"),
        "MinCount": None, "MaxCount": None, "IamInstanceProfile": ("IamInstanceProfile", lambda profile: profile["Name"]),
        "TagSpecifications": ("", lambda specs: {"Tags": specs[0]["Tags"],
                                                 "PropagateTagsToVolumeOnCreation": any(s["ResourceType"] == "volume" for s in specs)})}},
        # the AMI the public SSM parameter names when the stack makes the instance, as the create reads it
        inputs=lambda spec, d: {"image": f"{{{{resolve:ssm:{d.props['ami_parameter']}}}}}"},
        template=lambda spec, d, r: {"Monitoring": False},
        attributes=lambda spec, d, here: {"DependsOn": [here("profile")]}),
    "secret": Shape("AWS::SecretsManager::Secret", {"create_secret": {
        **_same("Name", "Description", "Tags"), "SecretString": None}},
        inputs=lambda spec, d: {"value": None},  # Secrets Manager generates the value in the stack
        template=lambda spec, d, r: {"GenerateSecretString": _generated_credentials()}),
    "amplify-app": Shape("AWS::Amplify::App", {"create_app": {
        **_camel("name", "description", "repository", "platform", "accessToken", "buildSpec", "customRules"),
        "environmentVariables": ("EnvironmentVariables", lambda env: [{"Name": k, "Value": v} for k, v in env.items()]),
        "enableBranchAutoBuild": None, "tags": TAGS}},
        inputs=lambda spec, d: {"token": _token(d.props["token_from"]),
                                **({"api_origin": "${Origin}"} if isinstance(d.props["api_origin"], Ref) else {})},
        template=lambda spec, d, r: ({"CustomRules": _custom_rules(r(d.props["api_origin"]))}
                                     if isinstance(d.props["api_origin"], Ref) else {})),
    "amplify-branch": Shape("AWS::Amplify::Branch", {"create_branch": {
        **_camel("appId", "branchName", "stage", "framework", "enableAutoBuild", "enablePullRequestPreview"),
        "enableBasicAuth": "BasicAuthConfig.EnableBasicAuth", "basicAuthCredentials": None, "tags": TAGS}},
        inputs=lambda spec, d: {"credentials": None} if d.props.get("basic_auth") else {},
        template=lambda spec, d, r: {"BasicAuthConfig": _basic_auth_config()} if d.props.get("basic_auth") else {}),
    "vpc-endpoint": Shape("AWS::EC2::VPCEndpoint", {"create_vpc_endpoint": {
        **_same("VpcEndpointType", "VpcId", "SubnetIds", "SecurityGroupIds", "PrivateDnsEnabled", "RouteTableIds"),
        "ServiceName": ("ServiceName", lambda name: {"Fn::Sub": name}),
        "TagSpecifications": ("Tags", lambda specs: specs[0]["Tags"])}},
        inputs=lambda spec, d: {"region": "${AWS::Region}"}),  # the stack's region, which names the service
    "flow-log": Shape("AWS::EC2::FlowLog", {"create_flow_logs": {
        **_same("ResourceType", "TrafficType", "LogDestinationType", "LogGroupName", "DeliverLogsPermissionArn"),
        "ResourceIds": ("ResourceId", lambda ids: ids[0]), "TagSpecifications": ("Tags", lambda specs: specs[0]["Tags"])}},
        attributes=lambda spec, d, here: {"DependsOn": [here("flow-logs/log-group")]}),
}


TAG_SPECIFICATIONS: Field = ("Tags", lambda specs: specs[0]["Tags"])  # EC2 tags a resource in its create call

#: The network layout's resources (see :func:`network_requests`), by what they are. ``template`` gets the request.
NETWORK_SHAPES: dict[str, Shape] = {
    "vpc": Shape("AWS::EC2::VPC", {
        "create_vpc": {"CidrBlock": "CidrBlock", "TagSpecifications": TAG_SPECIFICATIONS},
        "modify_vpc_attribute": ("", lambda calls: {name: value["Value"] for call in calls
                                                    for name, value in call.items() if name != "VpcId"})}),
    "internet-gateway": Shape("AWS::EC2::InternetGateway", {"create_internet_gateway": {"TagSpecifications": TAG_SPECIFICATIONS}}),
    "gateway-attachment": Shape("AWS::EC2::VPCGatewayAttachment", {"attach_internet_gateway": _same("InternetGatewayId", "VpcId")}),
    "subnet": Shape("AWS::EC2::Subnet", {
        "create_subnet": {**_same("VpcId", "CidrBlock", "AvailabilityZone"), "TagSpecifications": TAG_SPECIFICATIONS},
        "modify_subnet_attribute": {"SubnetId": None, "MapPublicIpOnLaunch": ("MapPublicIpOnLaunch", lambda value: value["Value"])}},
        # the step leaves a private subnet's MapPublicIpOnLaunch at its default, false; the template says so
        template=lambda spec, request, r: {} if "modify_subnet_attribute" in request else {"MapPublicIpOnLaunch": False}),
    "elastic-ip": Shape("AWS::EC2::EIP", {"allocate_address": {"Domain": "Domain", "TagSpecifications": TAG_SPECIFICATIONS}}),
    "nat-gateway": Shape("AWS::EC2::NatGateway", {"create_nat_gateway": {
        **_same("SubnetId", "AllocationId", "ConnectivityType"), "TagSpecifications": TAG_SPECIFICATIONS}}),
    "route-table": Shape("AWS::EC2::RouteTable", {"create_route_table": {"VpcId": "VpcId", "TagSpecifications": TAG_SPECIFICATIONS}}),
    "route": Shape("AWS::EC2::Route", {"create_route": _same("RouteTableId", "DestinationCidrBlock", "GatewayId", "NatGatewayId")}),
    "association": Shape("AWS::EC2::SubnetRouteTableAssociation", {"associate_route_table": _same("RouteTableId", "SubnetId")}),
    "security-group": Shape("AWS::EC2::SecurityGroup", {"create_security_group": {
        **_same("GroupName", "VpcId"), "Description": "GroupDescription", "TagSpecifications": TAG_SPECIFICATIONS}},
        # EC2 gives a new group the all-outbound rule; the template writes it out, with a description
        template=lambda spec, request, r: {"SecurityGroupEgress": [
            {"IpProtocol": "-1", "CidrIp": ANYWHERE_V4, "Description": "all outbound"}]}),
    "ingress": Shape("AWS::EC2::SecurityGroupIngress", {"authorize_security_group_ingress": {
        "GroupId": "GroupId", "IpPermissions": ("", _flat_rule)}}),
}


def template_request(spec: Spec, kind: Kind, desired: Desired, resolve: Resolve,
                     tags: Mapping[str, str] | None = None) -> Request:
    """``kind``'s create request for ``desired`` as a template makes it: the props resolved by the template
    (``resolve``: references as Ref, Fn::GetAtt or Fn::ImportValue), its inputs, and its tags."""
    props = {**resolve(desired.props), **SHAPES[desired.kind].inputs(spec, desired)}
    return kind.request(spec, desired, props, template_tags(spec, desired.name) if tags is None else tags)


def resource(spec: Spec, kind: Kind, desired: Desired, resolve: Resolve, here: Callable[[str], str]
             ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The resource of ``desired`` in a template, from its kind's create request (see :func:`template_request`);
    ``here`` gives the logical id of a key of the same step."""
    shape = SHAPES[desired.kind]
    request = template_request(spec, kind, desired, resolve)
    properties = {**request_properties(shape, request), **shape.template(spec, desired, resolve)}
    return shape.type, properties, dict(shape.attributes(spec, desired, here))


# --- what a template expresses its own way ---------------------------------------------------------------


def _container(spec: Spec) -> dict[str, Any]:
    from pointapp.names import repository_name
    from pointapp.taskdef import container_definition

    data = {output.path: {"Fn::ImportValue": export_name(spec, output.path)} for output in outputs.DATA_ENDPOINTS}
    for name in set(spec.service.secrets.values()) - {"database"}:  # a partial ARN: the template cannot look one up
        data[f"secret/{name}"] = name if arn_service(name) else template_arn(  # type: ignore[assignment]
            Arn("secretsmanager", f"secret:{spec.owner}/{name}", None, None))
    image = {"Fn::Sub": f"${{AWS::AccountId}}.dkr.ecr.${{AWS::Region}}.amazonaws.com/{repository_name(spec)}:"
                        f"{spec.service.image_tag}"}
    from pointapp.kinds import LogGroup

    return container_definition(spec, image, f"{LogGroup.prefix(spec)}api",  # type: ignore[arg-type]
                                {"Ref": "AWS::Region"}, data)  # type: ignore[arg-type]


def _record_set(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record set as AWS::Route53::RecordSet spells it: values as strings, the TTL as text, the load balancer's
    zone by its GetAtt name (CanonicalHostedZoneID)."""
    properties: dict[str, Any] = {"Name": record["Name"], "Type": record["Type"]}
    if "AliasTarget" in record:
        alias = dict(record["AliasTarget"])
        zone = alias["HostedZoneId"]
        if isinstance(zone, Mapping) and "Fn::GetAtt" in zone:
            alias["HostedZoneId"] = {"Fn::GetAtt": [zone["Fn::GetAtt"][0], "CanonicalHostedZoneID"]}
        properties["AliasTarget"] = alias
    else:
        properties.update(TTL=str(record["TTL"]), ResourceRecords=[r["Value"] for r in record["ResourceRecords"]])
    return properties


def _dkim_token(desired: Desired) -> dict[str, Any]:
    """A DKIM record's name and value from the stack's SES identity (its DkimDNSTokenName/Value attributes)."""
    number = int(desired.key.rsplit("/", 1)[1]) + 1
    identity = logical_id(outputs.MAIL_IDENTITY.key)
    return {"name": {"Fn::GetAtt": [identity, f"DkimDNSTokenName{number}"]},
            "values": [{"Fn::GetAtt": [identity, f"DkimDNSTokenValue{number}"]}]}


def _generated_credentials() -> dict[str, Any]:
    """The basic-auth credentials, generated by Secrets Manager in the stack: the fixed user and a password."""
    from pointapp.steps.frontend import BASIC_AUTH_USER

    return {"SecretStringTemplate": json.dumps({"username": BASIC_AUTH_USER}), "GenerateStringKey": "password",
            "PasswordLength": 32, "ExcludePunctuation": True}

def _token(where: str) -> Any:
    """The repository token, never in the template: a Secrets Manager dynamic reference, or (an SSM
    SecureString, which Amplify's template properties cannot resolve) a NoEcho parameter."""
    if (arn_service(where) == "secretsmanager" or where.startswith("secretsmanager:")):
        secret = where.split(":", 1)[1] if where.startswith("secretsmanager:") else where
        return f"{{{{resolve:secretsmanager:{secret}}}}}"
    return {"Ref": "RepositoryAccessToken"}


def _custom_rules(origin: Any) -> list[dict[str, Any]]:
    """The frontend's rewrites; the API's origin may be a template expression (the imported DNS name)."""
    from pointapp.steps.frontend import custom_rules

    return [{"Source": r["source"], "Status": r["status"],
             "Target": {"Fn::Sub": [r["target"], {"Origin": origin}]} if "${Origin}" in r["target"] else r["target"]}
            for r in custom_rules("${Origin}")]


def _basic_auth_config() -> dict[str, Any]:
    """The staging branch's basic auth, its user and password resolved by CloudFormation from the generated secret."""
    def field(name: str) -> dict[str, str]:
        return {"Fn::Sub": f"{{{{resolve:secretsmanager:${{{logical_id('basic-auth')}}}:SecretString:{name}}}}}"}

    return {"EnableBasicAuth": True, "Username": field("username"), "Password": field("password")}




@dataclass(frozen=True)
class Exported:
    """A resource a template holds: the kind and desired resource of its step, and how the template
    resolves references (``resolve``) and names this step's resources (``here``: key -> logical id)."""

    step: str
    kind: Kind
    desired: Desired
    logical: str
    resolve: Resolve
    here: Callable[[str], str]


#: The kinds whose pointapp id is a resource's attribute other than what Ref gives (Ref of an Amplify
#: app gives its ARN; pointapp knows the app by its AppId).
_ID_ATTRIBUTE = {"amplify-app": "AppId"}


def _exported(spec: Spec, template: _Template, steps: Sequence[str]) -> list[Exported]:
    from pointapp.steps import get

    found = []
    for step in steps:
        loaded: Any = get(step).load()
        # The network's layout is made by network_requests: here, its flow logs only.
        wanted: list[Desired] = network.flow_log_resources(spec) if step == "network" else loaded.desired(spec)
        made = {d.key: d.kind for d in wanted}
        prefix = "cache/" if step == "cache" else ""  # the database's keys and the cache's overlap

        def local(ref: Ref, step: str = step, made: dict[str, str] = made, prefix: str = prefix) -> Any:
            if ref.step == step and ref.key in made:
                attribute = _ID_ATTRIBUTE.get(made[ref.key], "id") if ref.attribute == "id" else ref.attribute
                if attribute == "id":
                    return {"Ref": logical_id(prefix + ref.key)}
                return {"Fn::GetAtt": [logical_id(prefix + ref.key), attribute]}
            if ref.step == "network" and "network" in steps:  # made in this very template
                if ref.key.startswith("sg/"):
                    return {"Fn::GetAtt": [logical_id(ref.key), "GroupId"]}
                return {"Ref": logical_id(ref.key)}
            return None

        for desired in wanted:
            if desired.kind in ("s3-object", "amplify-build", "certificate-validation"):  # no CloudFormation resource
                continue
            if desired.key == "record/validation":  # the stack's certificate writes its validation records itself
                continue
            if desired.owner:  # another environment's stack makes it (the SES identity of a shared domain)
                continue
            found.append(Exported(step, loaded.kinds[desired.kind], desired, logical_id(prefix + desired.key),
                                  lambda v, local=local: template.ref(v, local),  # type: ignore[misc]
                                  lambda key, prefix=prefix: logical_id(prefix + key)))  # type: ignore[misc]
    return found


def exported_resources(spec: Spec, group: str) -> list[Exported]:
    """The resources of the steps of ``group`` that its template holds (the network's layout aside)."""
    return _exported(spec, _Template(spec, group, ""), GROUPS[group])


def _resource_steps(spec: Spec, template: _Template, steps: Sequence[str]) -> None:
    for item in _exported(spec, template, steps):
        kind, properties, extra = resource(spec, item.kind, item.desired, item.resolve, item.here)
        template.body["Resources"][item.logical] = {"Type": kind, "Properties": properties, **extra}


def _data_exports(spec: Spec, template: _Template) -> None:
    """What the service's container needs of MySQL and Redis: endpoints, and the secret RDS keeps."""
    instance, group = logical_id(outputs.DATABASE_INSTANCE.key), logical_id(outputs.CACHE_GROUP.path)  # the cache's keys: prefixed
    attributes = {outputs.DATABASE_ADDRESS: (instance, "Endpoint.Address"), outputs.DATABASE_PORT: (instance, "Endpoint.Port"),
                  outputs.DATABASE_SECRET: (instance, "MasterUserSecret.SecretArn"),
                  outputs.CACHE_ADDRESS: (group, "PrimaryEndPoint.Address"), outputs.CACHE_PORT: (group, "PrimaryEndPoint.Port")}
    for output in outputs.DATA_ENDPOINTS:
        template.export(output.path, {"Fn::GetAtt": list(attributes[output])})


DESCRIPTIONS = {
    "network": "VPC, subnets, internet and NAT gateways, route tables, security groups, flow logs, VPC endpoints",
    "registry": "ECR repository for the API image",
    "data": "RDS MySQL and ElastiCache Redis in the isolated subnets",
    "domain": "ACM certificate of the API's name, validated by DNS in your Route 53 hosted zone",
    "mail": "SES configuration set and sender identity (and its DKIM and MAIL FROM records in your zone)",
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
        if "database" in steps:  # RDS takes a major version ("8.4": its latest minor); a parameter says so
            template.body["Parameters"] = {"MysqlEngineVersion": {
                "Type": "String", "Default": spec.database.engine_version,
                "Description": "MySQL version: a major version picks its latest minor (database.engine_version)"}}
        _resource_steps(spec, template, steps)
        if group == "data":
            _data_exports(spec, template)
        if group == "domain" and spec.domain:
            template.body["Parameters"] = {"HostedZoneId": {
                "Type": "AWS::Route53::HostedZone::Id",
                "Description": f"the id of your public hosted zone {spec.domain.name} (Route 53 console, Hosted zones)"}}
            template.export(outputs.DOMAIN_ZONE.key, {"Ref": "HostedZoneId"})
            template.export(outputs.CERTIFICATE.key, {"Ref": logical_id("certificate")})
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
            for key in (outputs.PRODUCTION_LISTENER.key, outputs.TEST_LISTENER.key, "tg/blue", "tg/green", outputs.LOAD_BALANCER.key):
                template.export(f"service/{key}", {"Ref": logical_id(key)})
            template.export(outputs.LOAD_BALANCER_DNS.path, {"Fn::GetAtt": [logical_id(outputs.LOAD_BALANCER.key), "DNSName"]})
        if not template.body["Outputs"]:
            del template.body["Outputs"]
        if template.body["Resources"]:  # a group with nothing to build (no frontend configured) has no template
            result[group] = template.body
    return result


def export(ctx: StepContext, directory: str | Path) -> list[Path]:
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
