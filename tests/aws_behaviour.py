"""An AWS-behaviour layer for the tests: a WSGI middleware around the embedded moto server.

moto accepts requests AWS refuses and answers some reads differently. This layer sits in front of moto's
server (in the same process, so it reads moto's backends directly), and for the requests below it does
what AWS does: refuses with the code, status and error format of the service's own protocol (so
botocore raises ``ClientError`` with the real code), rewrites a request before moto stores it, or keeps a
resource in a transitional state "for a while". Windows are a few seconds by default (AWS: minutes) and
are settings of each rule (``layer.rule(name).window``), measured with ``time.monotonic``.

Rules (``RULES`` lists them with their sources; each can be turned off: ``layer.disable(name)``):

- ``ecs-awsvpc-host-port``: in ``awsvpc`` mode ECS stores ``hostPort = containerPort``; another host port
  is refused.
- ``rds-subnet-group-in-use``: a DB subnet group a DB instance uses cannot be deleted.
- ``rds-parameter-group-in-use``: a DB parameter group a DB instance uses cannot be deleted.
- ``elasticache-subnet-group-in-use``: a cache subnet group a cache cluster or replication group uses
  cannot be deleted.
- ``ec2-subnet-in-use``: a subnet that holds network interfaces cannot be deleted.
- ``ec2-security-group-in-use``: a security group a network interface uses cannot be deleted.
- ``ec2-security-group-referenced``: a security group another group's rule references cannot be deleted.
- ``ec2-igw-mapped-public-address``: an internet gateway cannot be detached while the VPC maps a public
  address (a public NAT gateway, an internet-facing load balancer or its lingering interfaces).
- ``ec2-nat-gateway-deletes-slowly``: a deleted NAT gateway is ``deleting`` for a while, keeping its
  network interface and Elastic IP, then ``deleted``.
- ``ec2-eip-held-by-nat-gateway``: an Elastic IP cannot be released while a NAT gateway that is not
  ``deleted`` holds it.
- ``ec2-endpoint-interfaces-linger``: an interface VPC endpoint's network interfaces stay for a while
  after the endpoint is deleted.
- ``elbv2-interfaces-linger``: a load balancer's network interfaces stay for a while after it is deleted.
- ``codedeploy-role-propagation``: CodeDeploy refuses a service role created moments before.
- ``codepipeline-role-propagation``: CodePipeline refuses a role created moments before.
- ``elbv2-access-log-bucket-policy``: access logs are turned on only into a bucket whose policy lets ELB write.
- ``elbv2-deletion-protection``: a load balancer with deletion protection on cannot be deleted.
- ``wafv2-web-acl-associated``: a web ACL still associated with a resource cannot be deleted.
- ``wafv2-new-load-balancer``: AWS WAF refuses to associate a web ACL with a load balancer created moments before.
- ``acm-issues-once-validated``: a DNS-validated certificate stays pending until its validation CNAMEs resolve.
- ``route53-create-existing``: a CREATE of a record set whose name and type exist is refused.
- ``route53-changes-pending``: a record change is PENDING until Route 53 applied it (GetChange).
- ``ses-dkim-tokens``: a domain identity answers with its three Easy DKIM tokens.

The network interfaces the EC2 rules count (EC2 user guide, "Requester-managed network interfaces": AWS
services create them in your VPC for a DB instance, a NAT gateway, an interface endpoint; the endpoint's are
described "VPC Endpoint Interface vpce-...") are moto's own (instances, NAT gateways, interface endpoints,
ECS tasks; those moto forgets to delete are left out) and the ones AWS creates for resources moto models
without any: DB instances (in the subnets of their DB subnet group, with their VPC security groups),
ElastiCache clusters and replication groups (cache subnet group, security groups), load balancers
(their subnets and groups), and interface endpoints (their subnets and groups).
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: The account moto's server answers for (credentials that are not an account's own key).
ACCOUNT = "123456789012"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The path where a test in another process reads and changes the layer's settings.
CONTROL_PATH = "/aws-behaviour"



# ---------------------------------------------------------------------------------------------------------
# The wire: what a request is, how an error looks in each protocol


@dataclass
class Call:
    """One request as the rules see it: service, operation, parameters; the body can be replaced."""

    environ: dict[str, Any]
    service: str
    region: str
    operation: str
    protocol: str  # "ec2", "query", "json" or "rest"
    body: bytes
    params: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """A query-protocol parameter (``GroupId``, ``SubnetId``)."""
        value = self.params.get(name)
        return value if isinstance(value, str) else None

    def set_json(self, document: dict[str, Any]) -> None:
        """Replace the JSON body moto will see."""
        self.params = document
        self.body = json.dumps(document).encode()
        self.environ["wsgi.input"] = io.BytesIO(self.body)
        self.environ["CONTENT_LENGTH"] = str(len(self.body))


@dataclass
class Answer:
    """moto's answer to a call; rules may read or rewrite it."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def ok(self) -> bool:
        return self.status.startswith("2")

    def xml_text(self, tag: str) -> str | None:
        """The text of the first element named ``tag`` (any namespace) in an XML answer."""
        try:
            root = ElementTree.fromstring(self.body)
        except ElementTree.ParseError:
            return None
        for element in root.iter():
            if element.tag.rsplit("}", 1)[-1] == tag:
                return element.text
        return None


@dataclass(frozen=True)
class Refusal:
    """A call the layer refused: which rule, the operation, the error and whether waiting would help."""

    rule: str
    service: str
    operation: str
    code: str
    message: str
    passing: bool  # True when waiting ends it (a window, or only lingering interfaces hold on); False otherwise
    detail: str = ""  # what holds on, for the person reading a test's failure (not sent to the client)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "service": self.service, "operation": self.operation, "code": self.code,
                "message": self.message, "passing": self.passing, "detail": self.detail}


@dataclass(frozen=True)
class AwsError:
    """A refusal: the error code, the message and the HTTP status AWS answers with; ``passing`` says
    whether waiting ends it (None: whether the rule has a window), ``detail`` what holds on."""

    code: str
    message: str
    status: int = 400
    passing: bool | None = None
    detail: str = ""


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_answer(call: Call, error: AwsError) -> Answer:
    """The error in the protocol's own format, as botocore parses it into ``ClientError``."""
    request_id = str(uuid.uuid4())
    status = f"{error.status} {_REASONS.get(error.status, 'Error')}"
    code, message = _xml_escape(error.code), _xml_escape(error.message)
    if call.protocol == "ec2":
        # EC2 API reference, "Error responses": <Response><Errors><Error>... <RequestID>
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        return Answer(status, [("Content-Type", "text/xml")], body.encode())
    if call.protocol == "json":
        # AWS JSON protocol: the error's shape name in "__type"
        document = {"__type": error.code, "message": error.message}
        return Answer(status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)],
                      json.dumps(document).encode())
    # the query protocol (RDS, ELBv2, IAM, ElastiCache): <ErrorResponse><Error><Type>Sender</Type>...
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return Answer(status, [("Content-Type", "text/xml")], body.encode())


def _identify(environ: dict[str, Any]) -> tuple[str, str]:
    """Service and region from the SigV4 credential scope (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``)."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in authorization:
        return "", ""
    scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return (scope[3], scope[2]) if len(scope) >= 4 else ("", "")


def read_call(environ: dict[str, Any]) -> Call:
    """Read the request (its body is put back for moto) into a :class:`Call`."""
    service, region = _identify(environ)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return Call(environ, service, region, target.rsplit(".", 1)[-1], "json", body, params)
    form: dict[str, Any] = {}
    for source in (environ.get("QUERY_STRING", ""),
                   body.decode("utf-8", "replace")
                   if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") else ""):
        for name, values in urllib.parse.parse_qs(source, keep_blank_values=True).items():
            form[name] = values[0]
    if "Action" in form:
        protocol = "ec2" if service == "ec2" else "query"
        return Call(environ, service, region, form["Action"], protocol, body, form)
    return Call(environ, service, region, f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}",
                "rest", body, {})


def numbered(params: dict[str, Any], prefix: str) -> list[str]:
    """The values of a query-protocol list (``NatGatewayId.1``, ``VpcEndpointId.2`` ...)."""
    return [value for name, value in sorted(params.items()) if name.startswith(prefix + ".")]


# ---------------------------------------------------------------------------------------------------------
# moto's state, read directly


def backend(service: str, region: str) -> Any:
    """moto's backend of ``service`` for the layer's account in ``region`` (IAM is global)."""
    from moto.backends import get_backend

    return get_backend(service)[ACCOUNT]["global" if service == "iam" else region]  # type: ignore[call-overload]


@dataclass(frozen=True)
class Interface:
    """A network interface as AWS would have it: who holds it, its subnet and its security groups, and
    whether it goes by itself (it lingers after its owner, or its NAT gateway is deleting)."""

    holder: str
    subnet_id: str
    group_ids: frozenset[str]
    passing: bool = False


def _forgotten_by_moto(eni: Any, ec2: Any, region: str) -> bool:
    """moto keeps some interfaces AWS deletes with their owner: a terminated instance's, a deleted NAT
    gateway's, a stopped ECS task's."""
    instance = getattr(eni, "instance", None)
    if instance is not None and instance._state.name == "terminated":
        return True
    for nat in list(ec2.nat_gateways.values()):
        if nat._eni is eni:
            return nat.state == "deleted"
    if eni.description == "moto ECS":
        ecs = backend("ecs", region)
        for tasks in list(ecs.tasks.values()):
            for task in list(tasks.values()):
                ids = [d.get("value") for a in task.attachments for d in a.get("details", [])]
                if eni.id in ids:
                    return task.last_status == "STOPPED"
        return True
    return False


def network_interfaces(region: str, passing: frozenset[str] = frozenset()) -> list[Interface]:
    """Every network interface AWS would have in the region (see the module docstring); ``passing`` are
    the ids of moto's interfaces that go by themselves."""
    ec2 = backend("ec2", region)
    found: list[Interface] = []
    for eni in list(ec2.enis.values()):
        if not _forgotten_by_moto(eni, ec2, region):
            found.append(Interface(f"{eni.id} ({eni.description})" if eni.description else eni.id, eni.subnet.id,
                                   frozenset(group.id for group in eni.group_set), eni.id in passing))
    for endpoint in list(ec2.vpc_end_points.values()):
        if (endpoint.vpc_endpoint_type or "").lower() == "interface" and endpoint.state != "deleted":
            for subnet_id in endpoint.subnet_ids or []:
                found.append(Interface(f"VPC endpoint {endpoint.id}", subnet_id,
                                       frozenset(endpoint.security_group_ids or [])))
    for database in list(backend("rds", region).databases.values()):
        group = getattr(database, "db_subnet_group", None)
        for subnet in getattr(group, "_subnets", None) or []:
            found.append(Interface(f"DB instance {database.db_instance_identifier}", subnet.id,
                                   frozenset(database.vpc_security_group_ids or [])))
    found.extend(_cache_interfaces(region))
    for balancer in list(backend("elbv2", region).load_balancers.values()):
        for subnet in balancer.subnets:
            found.append(Interface(f"load balancer {balancer.name}", subnet.id,
                                   frozenset(balancer.security_groups or [])))
    return found


def _cache_interfaces(region: str) -> Iterator[Interface]:
    # moto leaves a deleted replication group 'deleting' for ever (pointapp knows that gap and does not
    # wait); AWS removes it and its interfaces in minutes, so 'deleting' ones are counted as gone here.
    elasticache = backend("elasticache", region)
    holders = [(f"replication group {g.replication_group_id}", g.cache_subnet_group_name, g.security_group_ids)
               for g in list(elasticache.replication_groups.values()) if g.status != "deleting"]
    holders += [(f"cache cluster {c.cache_cluster_id}", c.cache_subnet_group_name, c.security_group_ids)
                for c in list(elasticache.cache_clusters.values()) if c.cache_cluster_status != "deleting"]
    for holder, group_name, group_ids in holders:
        group = elasticache.cache_subnet_groups.get(group_name or "")
        for subnet_id in getattr(group, "subnet_ids", None) or []:
            yield Interface(holder, subnet_id, frozenset(group_ids or []))


# ---------------------------------------------------------------------------------------------------------
# The rules


class Rule:
    """One AWS behaviour. Subclasses set ``name``, ``behaviour``, ``source`` and ``operations``
    (``(service, operation)`` pairs whose requests the rule sees) and override the hooks they need."""

    name: ClassVar[str]
    behaviour: ClassVar[str]
    source: ClassVar[str]
    operations: ClassVar[frozenset[tuple[str, str]]]
    #: How long the behaviour lasts, in seconds, where it lasts "for a while" (AWS: minutes).
    window: float = 0.0

    def __init__(self, layer: AwsBehaviour) -> None:
        self.layer = layer

    def sees(self, call: Call) -> bool:
        """Whether the rule sees ``call``: one of its ``operations`` (a REST rule may match its paths instead)."""
        return (call.service, call.operation) in self.operations

    def before(self, call: Call) -> AwsError | None:
        """Refuse the call (return the error) or rewrite it (``call.set_json``) before moto sees it."""
        return None

    def after(self, call: Call, answer: Answer) -> None:
        """Observe or rewrite moto's answer."""

    def tick(self, now: float) -> None:
        """Finish what a window ended (called before every request)."""

    def reset(self) -> None:
        """Forget all state (moto was reset)."""


class EcsAwsvpcHostPort(Rule):
    """In ``awsvpc`` mode a port mapping without ``hostPort`` is stored with ``hostPort = containerPort``;
    a different host port is refused."""

    # ECS API reference, PortMapping: "If you use containers in a task with the awsvpc or host network mode,
    # ... The hostPort can be left blank or it must be the same value as the containerPort."
    # terraform-provider-aws #3401: ECS returns hostPort equal to containerPort when it was left out.
    name = "ecs-awsvpc-host-port"
    behaviour = ("RegisterTaskDefinition in awsvpc mode stores and returns hostPort = containerPort; "
                 "another hostPort is refused (ClientException)")
    source = "ECS API reference, PortMapping; terraform-provider-aws #3401"
    operations = frozenset({("ecs", "RegisterTaskDefinition")})

    def before(self, call: Call) -> AwsError | None:
        document = dict(call.params)
        if document.get("networkMode") != "awsvpc":
            return None
        for container in document.get("containerDefinitions") or []:
            for mapping in container.get("portMappings") or []:
                port = mapping.get("containerPort")
                if port is None:
                    continue
                if mapping.get("hostPort") is None:
                    mapping["hostPort"] = port
                elif mapping["hostPort"] != port:
                    return AwsError("ClientException", "When networkMode=awsvpc, the host ports and container "
                                                       "ports in port mappings must match.")
        call.set_json(document)
        return None


class RdsSubnetGroupInUse(Rule):
    """DeleteDBSubnetGroup is refused while a DB instance uses the group."""

    # RDS API reference, DeleteDBSubnetGroup: "The specified database subnet group must not be associated
    # with any DB instances."; InvalidDBSubnetGroupStateFault, HTTP 400.
    name = "rds-subnet-group-in-use"
    behaviour = "DeleteDBSubnetGroup is refused (InvalidDBSubnetGroupStateFault) while a DB instance uses the group"
    source = "RDS API reference, DeleteDBSubnetGroup (Errors)"
    operations = frozenset({("rds", "DeleteDBSubnetGroup")})

    def before(self, call: Call) -> AwsError | None:
        name = (call.param("DBSubnetGroupName") or "").lower()
        for database in list(backend("rds", call.region).databases.values()):
            if (getattr(database, "_db_subnet_group_name", None) or "").lower() == name \
                    and database.status != "deleted":
                return AwsError("InvalidDBSubnetGroupStateFault",
                                f"Cannot delete the subnet group '{call.param('DBSubnetGroupName')}' because at "
                                f"least one database instance: {database.db_instance_identifier} is still using it.")
        return None


class RdsParameterGroupInUse(Rule):
    """DeleteDBParameterGroup is refused while a DB instance uses the group."""

    # RDS API reference, DeleteDBParameterGroup: "The DB parameter group to be deleted can't be associated with
    # any DB instances."; InvalidDBParameterGroupState, HTTP 400.
    name = "rds-parameter-group-in-use"
    behaviour = "DeleteDBParameterGroup is refused (InvalidDBParameterGroupState) while a DB instance uses the group"
    source = "RDS API reference, DeleteDBParameterGroup (Errors)"
    operations = frozenset({("rds", "DeleteDBParameterGroup")})

    def before(self, call: Call) -> AwsError | None:
        name = (call.param("DBParameterGroupName") or "").lower()
        for database in list(backend("rds", call.region).databases.values()):
            if (database.db_parameter_group_name or "").lower() == name and database.status != "deleted":
                return AwsError("InvalidDBParameterGroupState",
                                f"One or more database instances are still members of this parameter group "
                                f"{call.param('DBParameterGroupName')}, so the group cannot be deleted")
        return None


class ElastiCacheSubnetGroupInUse(Rule):
    """DeleteCacheSubnetGroup is refused while a cache cluster or replication group uses the group."""

    # ElastiCache API reference, DeleteCacheSubnetGroup: "You cannot delete a default cache subnet group or
    # one that is associated with any clusters."; CacheSubnetGroupInUse, HTTP 400.
    name = "elasticache-subnet-group-in-use"
    behaviour = ("DeleteCacheSubnetGroup is refused (CacheSubnetGroupInUse) while a replication group or "
                 "cluster that is not deleting uses the group")
    source = "ElastiCache API reference, DeleteCacheSubnetGroup (Errors)"
    operations = frozenset({("elasticache", "DeleteCacheSubnetGroup")})

    def before(self, call: Call) -> AwsError | None:
        name = call.param("CacheSubnetGroupName") or ""
        elasticache = backend("elasticache", call.region)
        users = [g.replication_group_id for g in list(elasticache.replication_groups.values())
                 if g.cache_subnet_group_name == name and g.status != "deleting"]
        users += [c.cache_cluster_id for c in list(elasticache.cache_clusters.values())
                  if c.cache_subnet_group_name == name and c.cache_cluster_status != "deleting"]
        if users:
            return AwsError("CacheSubnetGroupInUse", f"Cache subnet group {name} is currently in use by a cache cluster.")
        return None


def _dependency_violation(message: str, holders: Iterable[Interface] = ()) -> AwsError:
    holders = list(holders)
    return AwsError("DependencyViolation", message, passing=bool(holders) and all(h.passing for h in holders),
                    detail="held by " + ", ".join(sorted({h.holder for h in holders})) if holders else "")


class Ec2SubnetInUse(Rule):
    """DeleteSubnet is refused while a network interface is in the subnet."""

    # EC2 API reference, DeleteSubnet: "You must terminate all running instances in the subnet before you
    # can delete the subnet."; the error AWS answers: DependencyViolation "The subnet '...' has dependencies
    # and cannot be deleted." (cloud-nuke #285: interface endpoints' interfaces hold the subnet)
    name = "ec2-subnet-in-use"
    behaviour = ("DeleteSubnet is refused (DependencyViolation) while a network interface (instance, NAT gateway, "
                 "DB instance, cache, interface endpoint, load balancer) is in the subnet")
    source = "EC2 API reference, DeleteSubnet; gruntwork-io/cloud-nuke #285"
    operations = frozenset({("ec2", "DeleteSubnet")})

    def before(self, call: Call) -> AwsError | None:
        subnet_id = call.param("SubnetId") or ""
        holders = [i for i in network_interfaces(call.region, self.layer.passing_interfaces())
                   if i.subnet_id == subnet_id]
        if holders:
            return _dependency_violation(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.", holders)
        return None


def _group_id(call: Call) -> str | None:
    group_id = call.param("GroupId")
    if group_id or not call.param("GroupName"):
        return group_id
    group = backend("ec2", call.region).get_security_group_by_name_or_id(call.param("GroupName"))
    return group.id if group else None


class Ec2SecurityGroupInUse(Rule):
    """DeleteSecurityGroup is refused while a network interface uses the group."""

    # EC2 API reference, DeleteSecurityGroup: "If you attempt to delete a security group that is associated
    # with an instance or network interface ... the operation fails with DependencyViolation."
    name = "ec2-security-group-in-use"
    behaviour = "DeleteSecurityGroup is refused (DependencyViolation) while a network interface uses the group"
    source = "EC2 API reference, DeleteSecurityGroup; hashicorp/terraform #3758 (a deleted ELB's interfaces)"
    operations = frozenset({("ec2", "DeleteSecurityGroup")})

    def before(self, call: Call) -> AwsError | None:
        group_id = _group_id(call)
        holders = [i for i in network_interfaces(call.region, self.layer.passing_interfaces())
                   if group_id in i.group_ids]
        if holders:
            return _dependency_violation(f"resource {group_id} has a dependent object", holders)
        return None


class Ec2SecurityGroupReferenced(Rule):
    """DeleteSecurityGroup is refused while another group's rule references the group."""

    # EC2 API reference, DeleteSecurityGroup: "... is referenced by another security group in the same VPC
    # ... the operation fails with DependencyViolation."
    name = "ec2-security-group-referenced"
    behaviour = ("DeleteSecurityGroup is refused (DependencyViolation) while another group's inbound or outbound "
                 "rule references the group")
    source = "EC2 API reference, DeleteSecurityGroup"
    operations = frozenset({("ec2", "DeleteSecurityGroup")})

    def before(self, call: Call) -> AwsError | None:
        group_id = _group_id(call)
        ec2 = backend("ec2", call.region)
        for groups in list(ec2.groups.values()):
            for group in list(groups.values()):
                if group.id == group_id:
                    continue
                for rule in list(group.ingress_rules) + list(group.egress_rules):
                    if (rule.source_group or {}).get("GroupId") == group_id:
                        return AwsError("DependencyViolation", f"resource {group_id} has a dependent object",
                                        detail=f"referenced by a rule of {group.id} ({group.name})")
        return None


class Ec2IgwMappedPublicAddress(Rule):
    """DetachInternetGateway is refused while the VPC maps a public address: a public NAT gateway that is
    not deleted, an internet-facing load balancer (or its interfaces, while they linger), an interface with
    a public IP."""

    # EC2 API reference, DetachInternetGateway: "The VPC must not contain any running instances with Elastic
    # IP addresses or public IPv4 addresses."; the error AWS answers: DependencyViolation "Network vpc-... has
    # some mapped public address(es). Please unmap those public address(es) before detaching the gateway."
    # (jenkins-x/terraform-aws-eks-jx #373: the address of a load balancer deleted just before)
    name = "ec2-igw-mapped-public-address"
    behaviour = ("DetachInternetGateway is refused (DependencyViolation, \"has some mapped public address(es)\") "
                 "while a public NAT gateway that is not deleted, an internet-facing load balancer or its lingering "
                 "interfaces, or an interface with a public IP is in the VPC")
    source = "EC2 API reference, DetachInternetGateway; jenkins-x/terraform-aws-eks-jx #373"
    operations = frozenset({("ec2", "DetachInternetGateway")})

    def before(self, call: Call) -> AwsError | None:
        vpc_id = call.param("VpcId")
        holders = [holder for vpc, holder in public_addresses(call.region) if vpc == vpc_id]
        if holders:
            return AwsError("DependencyViolation", f"Network {vpc_id} has some mapped public address(es). Please "
                            "unmap those public address(es) before detaching the gateway.",
                            detail="mapped by " + ", ".join(holders))
        return None


def public_addresses(region: str) -> list[tuple[str, str]]:
    """(VPC id, holder) of every public address AWS would have mapped in the region."""
    ec2 = backend("ec2", region)
    found = [(nat.vpc_id, nat.id) for nat in list(ec2.nat_gateways.values())
             if nat.state != "deleted" and nat.connectivity_type != "private"
             and any(address.get("allocationId") for address in nat.address_set)]
    found += [(eni.subnet.vpc_id, eni.id) for eni in list(ec2.enis.values())
              if eni.public_ip and not _forgotten_by_moto(eni, ec2, region)]
    found += [(balancer.vpc_id, balancer.name) for balancer in list(backend("elbv2", region).load_balancers.values())
              if balancer.scheme != "internal"]  # internet-facing is the default
    return found


class Ec2NatGatewayDeletesSlowly(Rule):
    """A deleted NAT gateway is ``deleting`` for :attr:`window` seconds, then ``deleted``; until then it
    keeps its network interface (so its subnet cannot be deleted) and its Elastic IP."""

    # EC2 API reference, NatGateway (state): "deleting: The NAT gateway is in the process of being terminated
    # and may still be processing traffic", then "deleted"; DeleteNatGateway: "Deleting a public NAT gateway
    # disassociates its Elastic IP address".
    name = "ec2-nat-gateway-deletes-slowly"
    behaviour = ("a deleted NAT gateway stays deleting (its network interface and Elastic IP kept) for a while, "
                 "then is deleted")
    source = "EC2 API reference, DeleteNatGateway and NatGateway (State)"
    operations = frozenset({("ec2", "DeleteNatGateway")})
    window = 2.0

    def __init__(self, layer: AwsBehaviour) -> None:
        super().__init__(layer)
        self.deleting: dict[str, tuple[str, float]] = {}  # NAT gateway id -> (region, deleted at)

    def after(self, call: Call, answer: Answer) -> None:
        nat_id = call.param("NatGatewayId") or ""
        nat = backend("ec2", call.region).nat_gateways.get(nat_id)
        if answer.ok and nat is not None and nat_id not in self.deleting:
            nat.state = "deleting"
            self.deleting[nat_id] = (call.region, time.monotonic())

    def tick(self, now: float) -> None:
        for nat_id, (region, started) in list(self.deleting.items()):
            if now - started < self.window:
                continue
            del self.deleting[nat_id]
            ec2 = backend("ec2", region)
            nat = ec2.nat_gateways.get(nat_id)
            if nat is None:
                continue
            nat.state = "deleted"
            for address in list(ec2.addresses):  # deleting a public NAT gateway disassociates its Elastic IP
                if address.eni is nat._eni:
                    ec2.disassociate_address(address=address.public_ip)
            ec2.enis.pop(nat._eni.id, None)

    def reset(self) -> None:
        self.deleting.clear()


class Ec2EipHeldByNatGateway(Rule):
    """ReleaseAddress is refused while a NAT gateway that is not ``deleted`` holds the address."""

    # EC2 API reference, DeleteNatGateway: "Deleting a public NAT gateway disassociates its Elastic IP address,
    # but does not release the address"; until the NAT gateway is deleted, ReleaseAddress answers AuthFailure
    # "You do not have permission to access the specified resource." (kubernetes/kops #938, #1604;
    # eformat/sno-for-100 #5: "the EIP can't be released until it is totally gone")
    name = "ec2-eip-held-by-nat-gateway"
    behaviour = ("ReleaseAddress is refused (AuthFailure) while a NAT gateway that is not deleted holds the "
                 "Elastic IP")
    source = "EC2 API reference, DeleteNatGateway; kubernetes/kops #938; eformat/sno-for-100 #5"
    operations = frozenset({("ec2", "ReleaseAddress")})

    def before(self, call: Call) -> AwsError | None:
        allocation_id, public_ip = call.param("AllocationId"), call.param("PublicIp")
        for nat in list(backend("ec2", call.region).nat_gateways.values()):
            if nat.state == "deleted":
                continue
            for address in nat.address_set:
                if (allocation_id and address.get("allocationId") == allocation_id) or \
                        (public_ip and address.get("publicIp") == public_ip):
                    return AwsError("AuthFailure", "You do not have permission to access the specified resource.",
                                    passing=nat.state == "deleting", detail=f"held by NAT gateway {nat.id} ({nat.state})")
        return None


@dataclass
class _Lingering:
    region: str
    eni_ids: list[str]
    until: float


class _Lingers(Rule):
    """Network interfaces that stay in moto's EC2 backend (so DescribeNetworkInterfaces shows them and the
    subnet and group rules count them) for :attr:`window` seconds after their owner is deleted."""

    window = 2.0

    def __init__(self, layer: AwsBehaviour) -> None:
        super().__init__(layer)
        self.lingering: list[_Lingering] = []

    def keep(self, region: str, eni_ids: list[str]) -> None:
        self.lingering.append(_Lingering(region, eni_ids, time.monotonic() + self.window))

    def tick(self, now: float) -> None:
        for entry in [e for e in self.lingering if e.until <= now]:
            self.lingering.remove(entry)
            ec2 = backend("ec2", entry.region)
            for eni_id in entry.eni_ids:
                ec2.enis.pop(eni_id, None)

    def reset(self) -> None:
        self.lingering.clear()


def random_public_ip() -> str:
    from moto.ec2.utils import random_public_ip as moto_public_ip

    return str(moto_public_ip())


def _as_service_interface(eni: Any, description: str, group_ids: list[str], ec2: Any, interface_type: str) -> None:
    """Make a moto interface look like the one AWS creates for a service (description, groups, managed)."""
    eni.description = description
    groups = [ec2.get_security_group_from_id(group_id) for group_id in group_ids]
    eni._group_set = [group for group in groups if group is not None]
    eni.requester_managed = True
    eni.interface_type = interface_type
    eni.status = "in-use"


class Ec2EndpointInterfacesLinger(_Lingers):
    """An interface endpoint's network interfaces (described ``VPC Endpoint Interface vpce-...``, with the
    endpoint's security groups) stay for :attr:`window` seconds after the endpoint is deleted."""

    # cloud-nuke #285 / PR #293: "Interface endpoints (which can take a few minutes to delete)" still hold
    # their subnets (DependencyViolation); AWS describes their interfaces "VPC Endpoint Interface vpce-...".
    name = "ec2-endpoint-interfaces-linger"
    behaviour = ("an interface VPC endpoint's network interfaces (\"VPC Endpoint Interface vpce-...\") stay for a "
                 "while after DeleteVpcEndpoints, holding their subnets and security groups")
    source = "gruntwork-io/cloud-nuke #285 and #293; aws/aws-cdk #14456"
    operations = frozenset({("ec2", "CreateVpcEndpoint"), ("ec2", "DeleteVpcEndpoints")})

    def __init__(self, layer: AwsBehaviour) -> None:
        super().__init__(layer)
        self._doomed: dict[str, Any] = {}  # the interfaces of the endpoints being deleted (the layer's lock held)

    def before(self, call: Call) -> AwsError | None:
        if call.operation == "DeleteVpcEndpoints":
            ec2 = backend("ec2", call.region)
            self._doomed = {eni_id: ec2.enis[eni_id] for endpoint_id in numbered(call.params, "VpcEndpointId")
                            if (endpoint := ec2.vpc_end_points.get(endpoint_id)) is not None
                            for eni_id in endpoint.network_interface_ids if eni_id in ec2.enis}
        return None

    def after(self, call: Call, answer: Answer) -> None:
        ec2 = backend("ec2", call.region)
        if call.operation == "CreateVpcEndpoint":
            endpoint = ec2.vpc_end_points.get(answer.xml_text("vpcEndpointId") or "")
            for eni_id in getattr(endpoint, "network_interface_ids", None) or []:
                if eni_id in ec2.enis:
                    _as_service_interface(ec2.enis[eni_id], f"VPC Endpoint Interface {endpoint.id}",
                                          endpoint.security_group_ids, ec2, "vpc_endpoint")
            return
        doomed, self._doomed = self._doomed, {}
        if answer.ok and doomed:
            for eni_id, eni in doomed.items():
                ec2.enis[eni_id] = eni  # moto dropped them with the endpoint; AWS keeps them a while
            self.keep(call.region, list(doomed))


class Elbv2InterfacesLinger(_Lingers):
    """A load balancer's network interfaces (described ``ELB app/<name>/<id>``, with its security groups)
    stay for :attr:`window` seconds after the load balancer is deleted."""

    # hashicorp/terraform #3758: "When an ELB is destroyed, its network interfaces can take a while to go
    # away (some minutes). And these network interfaces reference the security group"; AWS describes them
    # "ELB app/<name>/<id>" (alantech/iasql #654).
    name = "elbv2-interfaces-linger"
    behaviour = ("a load balancer's network interfaces (\"ELB app/<name>/<id>\") stay for a while after "
                 "DeleteLoadBalancer, holding their subnets and security groups")
    source = "hashicorp/terraform #3758; alantech/iasql #654"
    operations = frozenset({("elasticloadbalancing", "DeleteLoadBalancer")})

    def __init__(self, layer: AwsBehaviour) -> None:
        super().__init__(layer)
        self._doomed: Any = None  # the load balancer being deleted (the layer's lock held)

    def before(self, call: Call) -> AwsError | None:
        self._doomed = backend("elbv2", call.region).load_balancers.get(call.param("LoadBalancerArn") or "")
        return None

    def after(self, call: Call, answer: Answer) -> None:
        balancer, self._doomed = self._doomed, None
        if not answer.ok or balancer is None:
            return
        ec2 = backend("ec2", call.region)
        kind = "net" if balancer.type == "network" else "app"
        description = f"ELB {kind}/{balancer.name}/{balancer.arn.rsplit('/', 1)[-1]}"
        eni_ids = []
        for subnet in balancer.subnets:
            eni = ec2.create_network_interface(subnet, None, group_ids=balancer.security_groups or None,
                                               description=description)
            _as_service_interface(eni, description, balancer.security_groups or [], ec2, "interface")
            if balancer.scheme != "internal":  # internet-facing (the default): its addresses stay mapped
                eni.public_ip = random_public_ip()
            eni_ids.append(eni.id)
        self.keep(call.region, eni_ids)


class _RolePropagation(Rule):
    """Refuses a role that IAM created less than :attr:`window` seconds ago."""

    window = 2.0
    error_code: ClassVar[str]
    message: ClassVar[str]

    def roles(self, call: Call) -> list[str]:
        raise NotImplementedError

    def before(self, call: Call) -> AwsError | None:
        for role_arn in self.roles(call):
            created = self.layer.role_created_at(role_arn)
            if created is not None and time.monotonic() - created < self.window:
                return AwsError(self.error_code, self.message.format(role=role_arn))
        return None


class CodeDeployRolePropagation(_RolePropagation):
    """CreateDeploymentGroup/UpdateDeploymentGroup refuse a service role created moments before."""

    # IAM user guide, "Changes that I make are not always immediately visible" (eventual consistency);
    # CodeDeploy answers InvalidRoleException "AWS CodeDeploy does not have the permissions required to assume
    # the role <arn>." (go-to-k/cdkd #948; aws/aws-sdk-ruby #772: "It was a propagation issue")
    name = "codedeploy-role-propagation"
    behaviour = ("CreateDeploymentGroup/UpdateDeploymentGroup refuse (InvalidRoleException) a service role "
                 "created moments before")
    source = "IAM user guide, troubleshooting eventual consistency; go-to-k/cdkd #948; aws/aws-sdk-ruby #772"
    operations = frozenset({("codedeploy", "CreateDeploymentGroup"), ("codedeploy", "UpdateDeploymentGroup")})
    error_code = "InvalidRoleException"
    message = "AWS CodeDeploy does not have the permissions required to assume the role {role}."

    def roles(self, call: Call) -> list[str]:
        role = call.params.get("serviceRoleArn")
        return [role] if isinstance(role, str) else []


class CodePipelineRolePropagation(_RolePropagation):
    """CreatePipeline/UpdatePipeline refuse a pipeline or action role created moments before."""

    # IAM user guide, eventual consistency; CodePipeline answers InvalidStructureException "CodePipeline is
    # not authorized to perform AssumeRole on role <arn>" (hashicorp/terraform-provider-aws #13103)
    name = "codepipeline-role-propagation"
    behaviour = ("CreatePipeline/UpdatePipeline refuse (InvalidStructureException) a pipeline or action role "
                 "created moments before")
    source = "IAM user guide, troubleshooting eventual consistency; hashicorp/terraform-provider-aws #13103"
    operations = frozenset({("codepipeline", "CreatePipeline"), ("codepipeline", "UpdatePipeline")})
    error_code = "InvalidStructureException"
    message = "CodePipeline is not authorized to perform AssumeRole on role {role}"

    def roles(self, call: Call) -> list[str]:
        pipeline = call.params.get("pipeline") or {}
        roles = [pipeline.get("roleArn")]
        roles += [action.get("roleArn") for stage in pipeline.get("stages") or []
                  for action in stage.get("actions") or []]
        return [role for role in roles if isinstance(role, str)]


def _attributes(call: Call) -> dict[str, str]:
    """The ``Attributes.member.N.Key`` / ``.Value`` pairs of a ModifyLoadBalancerAttributes call."""
    keys = {name.split(".")[2]: value for name, value in call.params.items()
            if name.startswith("Attributes.member.") and name.endswith(".Key")}
    return {key: call.params.get(f"Attributes.member.{n}.Value", "") for n, key in keys.items()}


class Elbv2AccessLogBucketPolicy(Rule):
    """Turning access logs on is refused unless the bucket exists and its policy lets Elastic Load Balancing
    write the logs (the region's ELB account, or the log delivery service principal)."""

    # Elastic Load Balancing User Guide for Application Load Balancers, "Enable access logs" (the bucket policy;
    # "Access Denied for bucket: <bucket>. Please check S3bucket permission" when it is missing), and
    # "Troubleshoot access logs"; the error is InvalidConfigurationRequest (ELB API reference,
    # ModifyLoadBalancerAttributes, Errors).
    name = "elbv2-access-log-bucket-policy"
    behaviour = ("ModifyLoadBalancerAttributes with access_logs.s3.enabled true is refused "
                 "(InvalidConfigurationRequest) unless the bucket's policy lets ELB put the logs")
    source = "Elastic Load Balancing User Guide, Enable access logs; ELB API reference, ModifyLoadBalancerAttributes"
    operations = frozenset({("elasticloadbalancing", "ModifyLoadBalancerAttributes")})

    def before(self, call: Call) -> AwsError | None:
        attributes = _attributes(call)
        if attributes.get("access_logs.s3.enabled") != "true":
            return None
        bucket = attributes.get("access_logs.s3.bucket", "")
        denied = AwsError("InvalidConfigurationRequest", f"Access Denied for bucket: {bucket}. Please check S3bucket permission")
        stored = backend("s3", "aws").buckets.get(bucket) if bucket else None  # S3 keeps buckets per partition
        if stored is None or not stored.policy:
            return denied
        writers = ("logdelivery.elasticloadbalancing.amazonaws.com", ":root")
        for statement in json.loads(stored.policy).get("Statement", []):
            principal = json.dumps(statement.get("Principal"))
            actions = statement.get("Action")
            if statement.get("Effect") == "Allow" and any(w in principal for w in writers) \
                    and "s3:PutObject" in (actions if isinstance(actions, list) else [actions]):
                return None
        return denied


class Elbv2DeletionProtection(Rule):
    """DeleteLoadBalancer is refused while the load balancer's deletion protection is on."""

    # ELB API reference, DeleteLoadBalancer: "If deletion protection is enabled, the load balancer cannot be
    # deleted"; OperationNotPermitted (Errors); Elastic Load Balancing User Guide, "Deletion protection".
    name = "elbv2-deletion-protection"
    behaviour = "DeleteLoadBalancer is refused (OperationNotPermitted) while deletion_protection.enabled is true"
    source = "ELB API reference, DeleteLoadBalancer (Errors); Elastic Load Balancing User Guide, Deletion protection"
    operations = frozenset({("elasticloadbalancing", "DeleteLoadBalancer")})

    def before(self, call: Call) -> AwsError | None:
        arn = call.param("LoadBalancerArn") or ""
        balancer = backend("elbv2", call.region).load_balancers.get(arn)
        if balancer is not None and str(balancer.attrs.get("deletion_protection.enabled")).lower() == "true":
            return AwsError("OperationNotPermitted", f"Load balancer '{arn}' cannot be deleted because deletion "
                                                     "protection is enabled")
        return None


class Wafv2WebAclAssociated(Rule):
    """DeleteWebACL is refused while the web ACL is associated with a resource."""

    # AWS WAF API reference, DeleteWebACL: "Before deleting any web ACL, first disassociate it from all
    # resources"; WAFAssociatedItemException (Errors).
    name = "wafv2-web-acl-associated"
    behaviour = "DeleteWebACL is refused (WAFAssociatedItemException) while the web ACL is associated with a resource"
    source = "AWS WAF API reference, DeleteWebACL (Errors)"
    operations = frozenset({("wafv2", "DeleteWebACL")})

    def before(self, call: Call) -> AwsError | None:
        for acl in backend("wafv2", call.region).wacls.values():
            if acl.name == call.params.get("Name") and acl.associated_resources:
                return AwsError("WAFAssociatedItemException", "AWS WAF couldn\u2019t perform the operation because your "
                                                              "resource is being used by another resource or it\u2019s "
                                                              "associated with another resource.")
        return None


class Wafv2NewLoadBalancer(Rule):
    """AssociateWebACL is refused (WAFUnavailableEntityException) while the load balancer is younger than
    :attr:`window` seconds: AWS WAF does not see it yet."""

    # AWS WAF API reference, AssociateWebACL, "Temporary inconsistencies during updates": propagation takes "from a
    # few seconds to a number of minutes"; WAFUnavailableEntityException (Errors): "If you've just created a resource
    # that you're using in this operation, you might just need to wait a few minutes ... retry the operation". The
    # message is AWS's answer for a load balancer made moments before (hashicorp/terraform-provider-aws #17527, #29080).
    name = "wafv2-new-load-balancer"
    behaviour = ("AssociateWebACL is refused (WAFUnavailableEntityException) for a load balancer created moments "
                 "before")
    source = ("AWS WAF API reference, AssociateWebACL (temporary inconsistencies; Errors); "
              "hashicorp/terraform-provider-aws #17527, #29080")
    operations = frozenset({("elasticloadbalancing", "CreateLoadBalancer"), ("wafv2", "AssociateWebACL")})
    window = 2.0

    def __init__(self, layer: AwsBehaviour) -> None:
        super().__init__(layer)
        self.created: dict[str, float] = {}  # load balancer ARN -> time.monotonic() of its CreateLoadBalancer

    def before(self, call: Call) -> AwsError | None:
        if call.operation != "AssociateWebACL":
            return None
        created = self.created.get(str(call.params.get("ResourceArn", "")))
        if created is not None and time.monotonic() - created < self.window:
            return AwsError("WAFUnavailableEntityException",
                            "AWS WAF couldn\u2019t retrieve the resource that you requested. Retry your request.")
        return None

    def after(self, call: Call, answer: Answer) -> None:
        arn = answer.xml_text("LoadBalancerArn") if call.operation == "CreateLoadBalancer" and answer.ok else None
        if arn:
            self.created[arn] = time.monotonic()

    def reset(self) -> None:
        self.created.clear()


def _route53_zones() -> list[Any]:
    from moto.backends import get_backend

    return list(get_backend("route53")[ACCOUNT]["global"].zones.values())  # type: ignore[index]


def _resolves(name: str, record_type: str, value: str) -> bool:
    """Whether a public hosted zone of moto's Route 53 holds the record ``name`` of ``record_type`` with ``value``."""
    name = name.lower().rstrip(".") + "."
    for zone in _route53_zones():
        if zone.private_zone or not name.endswith("." + zone.name) and name != zone.name:
            continue
        for record in zone.rrsets:
            if record.name.lower() == name and record.type == record_type and value in record.records:
                return True
    return False


class AcmIssuesOnceValidated(Rule):
    """A DNS-validated certificate stays PENDING_VALIDATION until each name's validation CNAME resolves."""

    # ACM User Guide, "AWS Certificate Manager DNS validation": ACM issues the certificate once it finds the CNAME
    # record it gave for each name in the domain's DNS; until then DescribeCertificate answers PENDING_VALIDATION.
    # moto issues it ACM_VALIDATION_WAIT seconds after the request, whatever DNS holds.
    name = "acm-issues-once-validated"
    behaviour = ("DescribeCertificate answers PENDING_VALIDATION until the validation CNAME of every name is in a "
                 "public hosted zone")
    source = "ACM User Guide, DNS validation; ACM API reference, DescribeCertificate (DomainValidation)"
    operations = frozenset({("acm", "DescribeCertificate")})

    def after(self, call: Call, answer: Answer) -> None:
        if not answer.ok:
            return
        document = json.loads(answer.body)
        certificate = document.get("Certificate", {})
        options = certificate.get("DomainValidationOptions") or []
        pending = [o for o in options if o.get("ValidationMethod") == "DNS" and o.get("ResourceRecord")
                   and not _resolves(o["ResourceRecord"]["Name"], "CNAME", o["ResourceRecord"]["Value"])]
        if certificate.get("Type") != "AMAZON_ISSUED" or not pending:
            return
        certificate["Status"] = "PENDING_VALIDATION"
        for option in pending:
            option["ValidationStatus"] = "PENDING_VALIDATION"
        answer.body = json.dumps(document).encode()


def _changes_records(call: Call) -> bool:
    """Whether ``call`` is ChangeResourceRecordSets (REST: POST /2013-04-01/hostedzone/<id>/rrset/)."""
    return call.service == "route53" and call.operation.startswith("POST ") and call.operation.endswith(("/rrset", "/rrset/"))


class Route53CreateExisting(Rule):
    """A CREATE of a record set whose name and type exist is refused (moto refuses only a repeat of the same change)."""

    # Route 53 API reference, ChangeResourceRecordSets: "CREATE: Creates a resource record set that has the specified
    # values" and fails with InvalidChangeBatch "Tried to create resource record set ... but it already exists".
    name = "route53-create-existing"
    behaviour = "ChangeResourceRecordSets refuses (InvalidChangeBatch) a CREATE of a name and type the zone holds"
    source = "Route 53 API reference, ChangeResourceRecordSets (Errors: InvalidChangeBatch)"
    operations = frozenset({("route53", "ChangeResourceRecordSets")})

    def sees(self, call: Call) -> bool:
        return _changes_records(call)

    def before(self, call: Call) -> AwsError | None:
        zone_id = call.operation.split("/hostedzone/", 1)[1].split("/", 1)[0]
        zone = next((z for z in _route53_zones() if z.id.rsplit("/", 1)[-1] == zone_id), None)
        if zone is None:
            return None
        root = ElementTree.fromstring(call.body)
        for change in root.iter():
            if change.tag.rsplit("}", 1)[-1] != "Change":
                continue
            fields = {e.tag.rsplit("}", 1)[-1]: (e.text or "") for e in change.iter()}
            name = fields.get("Name", "").lower().rstrip(".") + "."
            if fields.get("Action") == "CREATE" and any(r.name.lower() == name and r.type == fields.get("Type")
                                                        for r in zone.rrsets):
                return AwsError("InvalidChangeBatch", f"[Tried to create resource record set [name='{name}', "
                                f"type='{fields.get('Type')}'] but it already exists]")
        return None


class Route53ChangesPending(Rule):
    """A change is PENDING when ChangeResourceRecordSets answers, and INSYNC only once Route 53 applied it."""

    # Route 53 API reference, ChangeResourceRecordSets: "the initial response ... has a status of PENDING";
    # GetChange: INSYNC once "the changes have propagated to all Route 53 DNS servers". moto answers INSYNC at once.
    # The window is 0 by default (the first GetChange answers INSYNC): the wait runs, at no cost to the tests.
    name = "route53-changes-pending"
    behaviour = "ChangeResourceRecordSets answers PENDING; GetChange answers PENDING for the window, then INSYNC"
    source = "Route 53 API reference, ChangeResourceRecordSets and GetChange (ChangeInfo.Status)"
    operations = frozenset({("route53", "ChangeResourceRecordSets"), ("route53", "GetChange")})

    def __init__(self, layer: AwsBehaviour) -> None:
        super().__init__(layer)
        self.changed: dict[str, float] = {}  # change id -> time.monotonic() of its ChangeResourceRecordSets

    def sees(self, call: Call) -> bool:
        return _changes_records(call) or (call.service == "route53" and call.operation.startswith("GET /2013-04-01/change/"))

    def after(self, call: Call, answer: Answer) -> None:
        if not answer.ok:
            return
        if call.operation.startswith("POST"):
            change = (answer.xml_text("Id") or "").rsplit("/", 1)[-1]
            self.changed[change] = time.monotonic()
        else:
            change = call.operation.rsplit("/", 1)[-1]
            if time.monotonic() - self.changed.get(change, 0.0) >= self.window:
                return
        answer.body = answer.body.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")

    def reset(self) -> None:
        self.changed.clear()


class SesDkimTokens(Rule):
    """A domain identity answers with its three Easy DKIM tokens (moto gives none)."""

    # SESv2 API reference, CreateEmailIdentity and GetEmailIdentity: DkimAttributes.Tokens, "a set of unique strings
    # that you use to create a set of CNAME records"; Easy DKIM gives three (SES Developer Guide, "Easy DKIM").
    name = "ses-dkim-tokens"
    behaviour = "CreateEmailIdentity and GetEmailIdentity of a domain answer with three Easy DKIM tokens"
    source = "SESv2 API reference, CreateEmailIdentity, GetEmailIdentity (DkimAttributes); SES Developer Guide, Easy DKIM"
    operations = frozenset({("ses", "CreateEmailIdentity"), ("ses", "GetEmailIdentity")})

    def sees(self, call: Call) -> bool:
        return call.service == "ses" and call.operation.startswith(("POST /v2/email/identities", "GET /v2/email/identities/"))

    def after(self, call: Call, answer: Answer) -> None:
        if not answer.ok:
            return
        document = json.loads(answer.body or b"{}")
        identity = (json.loads(call.body or b"{}").get("EmailIdentity") if call.operation.startswith("POST")
                    else urllib.parse.unquote(call.operation.rsplit("/", 1)[1]))
        if not identity or "@" in identity or document.get("IdentityType", "DOMAIN") != "DOMAIN":
            return
        tokens = [uuid.uuid5(uuid.NAMESPACE_DNS, f"{i}.{identity}").hex for i in range(3)]
        document.setdefault("DkimAttributes", {}).update(Tokens=tokens, Status=document["DkimAttributes"].get(
            "Status") or "PENDING", SigningAttributesOrigin="AWS_SES")
        answer.body = json.dumps(document).encode()


#: Every rule, in the order they apply.
RULE_CLASSES: tuple[type[Rule], ...] = (
    EcsAwsvpcHostPort, RdsSubnetGroupInUse, RdsParameterGroupInUse, ElastiCacheSubnetGroupInUse, Ec2SubnetInUse, Ec2SecurityGroupInUse,
    Ec2SecurityGroupReferenced, Ec2IgwMappedPublicAddress, Ec2NatGatewayDeletesSlowly, Ec2EipHeldByNatGateway,
    Ec2EndpointInterfacesLinger, Elbv2InterfacesLinger, CodeDeployRolePropagation, CodePipelineRolePropagation,
    Elbv2AccessLogBucketPolicy, Elbv2DeletionProtection, Wafv2WebAclAssociated, Wafv2NewLoadBalancer,
    AcmIssuesOnceValidated, Route53CreateExisting, Route53ChangesPending, SesDkimTokens,
)

#: name -> (behaviour, source): the table the README lists.
RULES: dict[str, tuple[str, str]] = {rule.name: (rule.behaviour, rule.source) for rule in RULE_CLASSES}


# ---------------------------------------------------------------------------------------------------------
# The middleware


class AwsBehaviour:
    """The WSGI middleware. ``Emulator(wrap=AwsBehaviour(...).wrap)`` puts it in front of moto.

    ``disabled`` names rules that are off; ``window`` (seconds) overrides every rule's window. Both are
    what :meth:`reset` (called on moto's ``POST /moto-api/reset``) returns to. Every refusal is kept in
    :attr:`refusals` until the reset.

    A test in another process reaches the layer over HTTP: ``GET /aws-behaviour`` answers the rules that
    are on, their windows and the refusals so far (JSON); ``POST /aws-behaviour`` with a JSON body
    ``{"off": [names], "on": [names], "window": seconds}`` changes them until the next reset.
    """

    def __init__(self, app: WsgiApp | None = None, *, disabled: Iterable[str] = (), window: float | None = None) -> None:
        unknown = set(disabled) - set(RULES)
        if unknown:
            raise ValueError(f"unknown AWS-behaviour rules: {', '.join(sorted(unknown))}; known: {', '.join(RULES)}")
        self.app = app
        self.default_disabled = frozenset(disabled)
        self.default_window = window
        self.lock = threading.RLock()
        self.rules: dict[str, Rule] = {}
        self.enabled: set[str] = set()
        self.roles_created: dict[str, float] = {}  # role ARN -> time.monotonic() of its CreateRole
        self.refusals: list[Refusal] = []
        self.reset()

    def wrap(self, app: WsgiApp) -> AwsBehaviour:
        """For ``Emulator(wrap=...)``: put this layer in front of ``app``."""
        self.app = app
        return self

    # --- settings -------------------------------------------------------------------------------------

    def rule(self, name: str) -> Rule:
        """The rule called ``name`` (to read or shorten its ``window``)."""
        return self.rules[name]

    def disable(self, *names: str) -> None:
        """Turn rules off (until the next reset)."""
        for name in names:
            self.rules[name]  # noqa: B018 - a KeyError names an unknown rule
            self.enabled.discard(name)

    def enable(self, *names: str) -> None:
        """Turn rules on again."""
        for name in names:
            self.rules[name]  # noqa: B018
            self.enabled.add(name)

    def reset(self) -> None:
        """Forget all state and return to the configured rules and windows."""
        with self.lock:
            self.rules = {cls.name: cls(self) for cls in RULE_CLASSES}
            if self.default_window is not None:
                for rule in self.rules.values():
                    if rule.window:
                        rule.window = self.default_window
            self.enabled = set(self.rules) - self.default_disabled
            self.roles_created.clear()
            self.refusals.clear()

    def settings(self) -> dict[str, Any]:
        """The rules that are on, every rule's window and the refusals so far (what ``GET /aws-behaviour``
        answers)."""
        with self.lock:
            return {"on": sorted(self.enabled),
                    "windows": {name: rule.window for name, rule in self.rules.items() if rule.window},
                    "refusals": [refusal.as_dict() for refusal in self.refusals]}

    def configure(self, off: Iterable[str] = (), on: Iterable[str] = (), window: float | None = None) -> None:
        """Turn rules off or on and set every windowed rule's window (until the next reset)."""
        with self.lock:
            self.disable(*off)
            self.enable(*on)
            if window is not None:
                for rule in self.rules.values():
                    if rule.window:
                        rule.window = window

    def passing_interfaces(self) -> frozenset[str]:
        """Ids of moto's network interfaces that go by themselves: lingering ones, deleting NAT gateways'."""
        ids: set[str] = set()
        for name in self.enabled:
            rule = self.rules[name]
            if isinstance(rule, _Lingers):
                ids.update(eni_id for entry in rule.lingering for eni_id in entry.eni_ids)
            if isinstance(rule, Ec2NatGatewayDeletesSlowly):
                for nat_id, (region, _) in rule.deleting.items():
                    nat = backend("ec2", region).nat_gateways.get(nat_id)
                    if nat is not None:
                        ids.add(nat._eni.id)
        return frozenset(ids)

    def role_created_at(self, role_arn: str) -> float | None:
        """When the layer saw IAM create ``role_arn`` (``time.monotonic``), if it did."""
        return self.roles_created.get(role_arn)

    # --- WSGI -----------------------------------------------------------------------------------------

    def _interested(self, service: str) -> bool:
        return any(s == service for rule in self.rules.values() for s, _ in rule.operations) or service == "iam"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self.app is not None, "AwsBehaviour.wrap(app) first"
        with self.lock:
            now = time.monotonic()
            for name in list(self.enabled):
                self.rules[name].tick(now)
        if environ.get("PATH_INFO", "").startswith("/moto-api/reset"):
            answer = self._forward(environ)
            self.reset()
            return self._send(answer, start_response)
        if environ.get("PATH_INFO", "") == CONTROL_PATH:
            return self._send(self._control(environ), start_response)
        service, _ = _identify(environ)
        if not service or not self._interested(service):
            return self.app(environ, start_response)
        call = read_call(environ)
        with self.lock:
            rules = [self.rules[name] for name in self.rules
                     if name in self.enabled and self.rules[name].sees(call)]
            if not rules and not (call.service, call.operation) == ("iam", "CreateRole"):
                return self.app(environ, start_response)
            for rule in rules:
                error = rule.before(call)
                if error is not None:
                    passing = bool(rule.window) if error.passing is None else error.passing
                    self.refusals.append(Refusal(rule.name, call.service, call.operation, error.code, error.message,
                                                 passing, error.detail))
                    return self._send(error_answer(call, error), start_response)
            answer = self._forward(environ)
            if (call.service, call.operation) == ("iam", "CreateRole") and answer.ok:
                arn = answer.xml_text("Arn")
                if arn:
                    self.roles_created[arn] = time.monotonic()
            for rule in rules:
                rule.after(call, answer)
        return self._send(answer, start_response)

    def _control(self, environ: dict[str, Any]) -> Answer:
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                document = json.loads(environ["wsgi.input"].read(length) or b"{}")
                self.configure(document.get("off", ()), document.get("on", ()), document.get("window"))
            except (ValueError, KeyError, AttributeError) as error:
                return Answer("400 Bad Request", [("Content-Type", "application/json")],
                              json.dumps({"error": f"not a setting of the AWS-behaviour layer: {error}"}).encode())
        return Answer("200 OK", [("Content-Type", "application/json")], json.dumps(self.settings()).encode())

    def _forward(self, environ: dict[str, Any]) -> Answer:
        assert self.app is not None
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured.update(status=status, headers=headers)
            return chunks.append

        result = self.app(environ, capture)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return Answer(captured["status"], list(captured["headers"]), b"".join(chunks))

    @staticmethod
    def _send(answer: Answer, start_response: Callable[..., Any]) -> list[bytes]:
        headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(answer.body))))
        start_response(answer.status, headers)
        return [answer.body]
