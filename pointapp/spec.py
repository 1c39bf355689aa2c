"""The specification of the environment: one typed, validated model that every step reads.

The built-in default reproduces the reference architecture described in the README. A YAML file
given with ``--config`` is merged over it (mappings merge key by key, everything else replaces), then
the section ``environments: {<env>: ...}`` of that file is merged over the result for the chosen
environment. An invalid specification raises :class:`~pointapp.errors.SpecError` before any AWS call.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pointapp.errors import SpecError
from pointapp.sessions import PARTITIONS, data_session

ANYWHERE_V4 = "0.0.0.0/0"
ANYWHERE_V6 = "::/0"
ENVIRONMENTS = ("prod", "staging")
NAT_MODES = ("none", "single", "per-az")
_KEY = r"^[a-z][a-z0-9]*$"


#: Fargate's CPU units and the memory sizes (MiB) each allows.
FARGATE_MEMORY: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Model):
    """One inbound rule of a security group: one port, from CIDR ranges or from other groups."""

    port: int | Literal["app", "test"] = Field(
        description="a port number, 'app' for the service's port or 'test' for the test listener's")
    protocol: Literal["tcp", "udp"] = "tcp"
    cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    description: str = Field(min_length=1, max_length=255)
    with_certificate: bool = Field(False, description="only when a certificate ARN is configured")


class SecurityGroup(_Model):
    description: str = Field(min_length=1, max_length=255)
    ingress: tuple[Rule, ...] = ()


class Tier(_Model):
    """A subnet tier: one subnet per zone, in zone order."""

    public: bool
    route_table: str
    cidrs: tuple[str, ...]
    holds: str


class RouteTable(_Model):
    default_route: Literal["internet_gateway", "nat_gateway", "none"]


#: The retention periods CloudWatch Logs accepts, in days.
RetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                        3288, 3653]


#: Application Load Balancers need subnets in at least two Availability Zones (Elastic Load Balancing API
#: reference, CreateLoadBalancer, Subnets); so do RDS DB subnet groups (Amazon RDS User Guide, "Working with a
#: DB instance in a VPC": a DB subnet group has subnets in at least two Availability Zones).
MIN_ZONES = 2


class Network(_Model):
    vpc_cidr: str = "10.0.0.0/16"
    zones: int = Field(2, ge=1, le=6)
    nat: Literal["none", "single", "per-az"] = "single"
    nat_tier: str = "ingress"
    flow_logs: bool = Field(True, description="VPC flow logs (all traffic) to CloudWatch Logs")
    flow_logs_retention_days: RetentionDays = 90
    tiers: dict[str, Tier]
    route_tables: dict[str, RouteTable]
    security_groups: dict[str, SecurityGroup]


class Endpoints(_Model):
    interface: tuple[str, ...] = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")
    s3_gateway: bool = True
    tier: str = "egress"
    security_group: str = "egress"
    gateway_route_tables: tuple[str, ...] = ("app",)


class Registry(_Model):
    repository: str = Field("api", pattern=r"^[a-z0-9][a-z0-9._/-]*$")
    keep_images: int = Field(30, ge=1, le=1000)
    scan_on_push: bool = True
    delete_images: bool = Field(False, description="let down delete a repository that still holds images")


class Service(_Model):
    port: int = Field(80, ge=1, le=65535)
    cpu: int = Field(256, ge=256)
    memory: int = Field(512, ge=512)
    desired_count: int = Field(2, ge=0, le=100)
    image_tag: str = "latest"
    health_check_path: str = Field("/health", pattern=r"^/")
    certificate_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$")
    test_listener_port: int = Field(10080, ge=1, le=65535)
    test_listener_cidrs: tuple[str, ...] = ()
    log_retention_days: RetentionDays = 30
    container_name: str = Field("api", pattern=r"^[A-Za-z0-9_-]{1,255}$")
    health_check_command: str = "curl -fsS http://localhost:{port}{path} >/dev/null || exit 1"
    secrets: dict[str, str] = Field(default_factory=lambda: {"DB_CREDENTIALS": "database"},
                                    description="environment variable -> secret name under <prefix>-<env>/")
    load_balancer_group: str = "ingress"
    task_group: str = "container"
    load_balancer_tier: str = "ingress"
    task_tier: str = "container"


class Delivery(_Model):
    deployment_config: str = Field("CodeDeployDefault.ECSAllAtOnce", pattern=r"^CodeDeployDefault\.ECS")
    termination_wait_minutes: int = Field(60, ge=0, le=2880)
    github_repository: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$",
                                          description="owner/name of the application's repository on GitHub")
    github_branch: str = Field("main", pattern=r"^[\w./-]+$")


#: The MySQL major version a new database gets: the LTS line in RDS standard support. RDS for MySQL 8.0 left
#: standard support on 31 July 2026 (Amazon RDS User Guide, "Supported MySQL major versions on Amazon RDS";
#: AWS Database Blog, "Amazon RDS for MySQL LTS version 9.7 is now generally available"), read 1 December 2026.
MYSQL_VERSION = "8.4"
#: MySQL major versions past RDS standard support, with the day it ended (same sources): RDS refuses to create
#: one without Extended Support once EngineLifecycleSupport says none.
MYSQL_PAST_STANDARD_SUPPORT = {"5.7": "29 February 2024", "8.0": "31 July 2026"}


class Database(_Model):
    engine_version: str = MYSQL_VERSION
    extended_support: bool = Field(False, description=(
        "enrol the database in RDS Extended Support (charged) once its major version leaves standard support; "
        "off: RDS refuses to create a version past standard support and upgrades one that reaches its end"))
    instance_class: str = Field("db.t4g.micro", pattern=r"^db\.")
    allocated_storage_gb: int = Field(20, ge=20, le=65536)
    multi_az: bool
    backup_retention_days: int = Field(7, ge=1, le=35)
    deletion_protection: bool
    final_snapshot: bool
    database_name: str = Field("app", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    username: str = Field("app", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")


class Cache(_Model):
    engine_version: str = "7.1"
    node_type: str = Field("cache.t4g.micro", pattern=r"^cache\.")
    replicas: int = Field(ge=0, le=5)
    automatic_failover: bool


class Bastion(_Model):
    instance_type: str = "t4g.nano"
    ami_parameter: str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    tier: str = "management"
    security_group: str = "management"


#: A DNS name of lower-case labels (a Route 53 hosted zone's name, without the final dot).
DOMAIN_PATTERN = r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"


class Domain(_Model):
    """The user's own domain: an existing Route 53 public hosted zone, looked up and never made or deleted."""

    name: str = Field(pattern=DOMAIN_PATTERN, max_length=253, description=(
        "the name of an existing Route 53 public hosted zone you own (example.com); the API is served at "
        "api.<name> (prod) or api.<env>.<name>, the frontend at <name> and www.<name> (prod) or <env>.<name>"))
    frontend: bool = Field(True, description="serve the Amplify frontend on the domain too (an Amplify custom domain)")


class Mail(_Model):
    identity: str = "example.com"
    dns_records: Literal["auto", "print"] | None = Field(None, description=(
        "auto: write the identity's DKIM and MAIL FROM records into the domain's hosted zone; print: only show "
        "them; unset: auto when a domain is set and the identity is inside it, print otherwise"))
    identity_owner: str = Field("prod", pattern=r"^[a-z][a-z0-9]*$", description=(
        "the environment that owns the identity (SES has one per domain or address in an account and region) "
        "and makes it; the others send through it and never change or delete it"))


class Frontend(_Model):
    repository: str | None = Field(None, pattern=r"^https://[\w.-]+/[\w.-]+/[\w.-]+$",
                                   description="the frontend's Git repository, https://github.com/OWNER/NAME")
    production_branch: str = "main"
    staging_branch: str = "staging"
    access_token_parameter: str | None = Field(
        None, description="SSM parameter name, or secretsmanager:NAME / a secret ARN, holding the repository token")
    pull_request_previews: bool = True
    output_directory: str = Field("build", description="where `npm run build` writes the site (build, dist)")
    api_domain: str | None = Field(None, description="the API's domain, if not the load balancer's DNS name")


class Spec(_Model):
    """The whole environment for one environment name (``prod`` or ``staging``)."""

    prefix: str = Field("point-app", pattern=r"^[a-z][a-z0-9-]{0,19}[a-z0-9]$")
    environment: str
    tags: dict[str, str] = {}
    network: Network
    endpoints: Endpoints = Endpoints()
    registry: Registry = Registry()
    service: Service = Service()
    delivery: Delivery = Delivery()
    database: Database
    cache: Cache
    bastion: Bastion = Bastion()
    mail: Mail = Mail()
    frontend: Frontend = Frontend()
    domain: Domain | None = None

    @property
    def owner(self) -> str:
        """The value of the ownership tag: prefix and environment, unique per account."""
        return self.owner_of(self.environment)

    def owner_of(self, environment: str) -> str:
        """The ownership tag's value of ``environment`` (another environment of the same prefix)."""
        return f"{self.prefix}-{environment}"

    def name(self, *parts: str) -> str:
        """A resource name: ``<prefix>-<env>-<parts...>``."""
        return "-".join((self.owner, *parts))

    @property
    def serves_https(self) -> bool:
        """Whether the production listener speaks HTTPS: a certificate is configured, or made for the domain."""
        return bool(self.service.certificate_arn or self.domain)

    def inbound_rules(self, group: str) -> list[Rule]:
        """The effective inbound rules of ``group``: ``app`` resolved, certificate rules filtered."""
        rules = []
        for rule in self.network.security_groups[group].ingress:
            if rule.with_certificate and not self.serves_https:
                continue
            if rule.port in ("app", "test"):
                port = self.service.port if rule.port == "app" else self.service.test_listener_port
                rule = rule.model_copy(update={"port": port})
            rules.append(rule)
        if group == self.service.load_balancer_group and self.service.test_listener_cidrs:
            rules.append(Rule(port=self.service.test_listener_port, cidrs=self.service.test_listener_cidrs,
                              description="Test listener from the CIDR blocks allowed in the spec"))
        return rules


def _sg_rule(port: int | str, description: str, *, cidrs: tuple[str, ...] = (),
             groups: tuple[str, ...] = (), with_certificate: bool = False) -> dict[str, Any]:
    return {"port": port, "cidrs": list(cidrs), "groups": list(groups), "description": description,
            "with_certificate": with_certificate}


def _from_tasks_and_bastion(port: int, group: str, rule: str, spoken_port: str | None = None) -> dict[str, Any]:
    """A security group whose one port is open to the API tasks and the bastion only (a rule each)."""
    return {"description": f"{group}: {spoken_port or port} from the API tasks and the bastion",
            "ingress": [_sg_rule(port, f"{rule} from the API tasks", groups=("container",)),
                        _sg_rule(port, f"{rule} from the bastion", groups=("management",))]}


def _tier(public: bool, route_table: str, cidrs: tuple[str, str], holds: str) -> dict[str, Any]:
    return {"public": public, "route_table": route_table, "cidrs": list(cidrs), "holds": holds}


_ANYWHERE = (ANYWHERE_V4, ANYWHERE_V6)

#: The reference architecture, as a plain document (what a YAML config is merged over).
DEFAULTS: dict[str, Any] = {
    "prefix": "point-app",
    "tags": {"Project": "point-app"},
    "network": {
        "vpc_cidr": "10.0.0.0/16",
        "zones": 2,
        "nat": "single",
        "tiers": {
            "ingress": _tier(True, "ingress", ("10.0.0.0/24", "10.0.1.0/24"), "load balancer, NAT gateway"),
            "container": _tier(False, "app", ("10.0.8.0/24", "10.0.9.0/24"), "API tasks on Fargate"),
            "db": _tier(False, "db", ("10.0.16.0/24", "10.0.17.0/24"), "RDS MySQL"),
            "cache": _tier(False, "cache", ("10.0.24.0/24", "10.0.25.0/24"), "ElastiCache Redis"),
            "management": _tier(True, "ingress", ("10.0.240.0/24", "10.0.241.0/24"), "bastion host"),
            "egress": _tier(False, "egress", ("10.0.248.0/24", "10.0.249.0/24"), "interface VPC endpoints"),
        },
        "route_tables": {
            "ingress": {"default_route": "internet_gateway"},
            "app": {"default_route": "nat_gateway"},
            "db": {"default_route": "none"},
            "cache": {"default_route": "none"},
            "egress": {"default_route": "none"},
        },
        "security_groups": {
            "ingress": {
                "description": "Public load balancer: HTTP (HTTPS with a certificate) from the internet, test listener from the bastion",
                "ingress": [
                    _sg_rule(80, "HTTP from the internet to the load balancer", cidrs=_ANYWHERE),
                    _sg_rule(443, "HTTPS from the internet to the load balancer", cidrs=_ANYWHERE,
                             with_certificate=True),
                    _sg_rule("test", "Test listener of blue/green releases, from the bastion only",
                             groups=("management",)),
                ],
            },
            "container": {
                "description": "API tasks on Fargate: the app port from the load balancer only",
                "ingress": [_sg_rule("app", "App port from the load balancer to the API tasks",
                                     groups=("ingress",))],
            },
            "db": _from_tasks_and_bastion(3306, "RDS MySQL", "MySQL"),
            "cache": _from_tasks_and_bastion(6379, "ElastiCache Redis", "Redis"),
            "egress": _from_tasks_and_bastion(443, "Interface VPC endpoints", "HTTPS to the VPC endpoints", "HTTPS"),
            "management": {
                "description": "Bastion for operators, reached through SSM Session Manager; no inbound rule",
                "ingress": [],
            },
        },
    },
    "database": {"multi_az": True, "deletion_protection": True, "final_snapshot": True},
    "cache": {"replicas": 1, "automatic_failover": True},
}

#: What differs per environment before any config file is applied.
ENVIRONMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "prod": {},
    "staging": {
        "database": {"multi_az": False, "deletion_protection": False, "final_snapshot": False},
        "cache": {"replicas": 0, "automatic_failover": False},
    },
}


# --- loading -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _unique_key_loader() -> Any:
    """A YAML loader that refuses a key given twice in one mapping (a tier defined twice, say). Made on first
    use: yaml is imported only when a file is read."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise SpecError(f"{key}", f"defined twice in the same mapping (line {line}); give each key once")
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_unique_mapping)
    return UniqueKeyLoader


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML override file; a missing file, bad YAML or a non-mapping is a :class:`SpecError`."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError("--config", f"cannot read {path}: {error.strerror}") from None
    try:
        document = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except SpecError as error:
        raise SpecError(f"{path}: {error.field}", str(error).split(": ", 1)[1]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError("--config", f"{path} is not valid YAML{where}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise SpecError("--config", f"{path} must hold a mapping of settings, not {type(document).__name__}")
    return document


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` over ``base``: mappings merge key by key; other values replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_spec(env: str = "prod", config: str | Path | Mapping[str, Any] | None = None,
              extra: Mapping[str, Any] | None = None) -> Spec:
    """Build and validate the spec of ``env`` from the defaults, an optional YAML file or mapping, and
    ``extra`` settings merged last (notebook parameters)."""
    overrides: dict[str, Any] = {}
    if config:
        overrides = dict(config) if isinstance(config, Mapping) else read_config(config)
    if extra:
        overrides = merge(overrides, extra)
    per_env = overrides.pop("environments", None) or {}
    if not isinstance(per_env, Mapping):
        raise SpecError("environments", "must map environment names to settings")
    allowed = sorted(set(ENVIRONMENTS) | set(per_env))
    if env not in allowed:
        raise SpecError("--env", f"unknown environment {env!r}; allowed: {', '.join(allowed)}")
    if "environment" in overrides:
        raise SpecError("environment", "is chosen with --env, not in the config file")
    document = merge(DEFAULTS, ENVIRONMENT_DEFAULTS.get(env, {}))
    document = merge(document, overrides)
    document = merge(document, per_env.get(env) or {})
    document["environment"] = env
    try:
        spec = Spec.model_validate(document)
    except ValidationError as error:
        raise _as_spec_error(error) from None
    check_spec(spec)
    return spec


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: Any = Spec
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return None
            model = field.annotation
        else:
            args = getattr(model, "__args__", ())
            model = args[-1] if args else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _as_spec_error(error: ValidationError) -> SpecError:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    field = _location(loc)
    if first["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see the documentation"
        return SpecError(field, f"unknown key {loc[-1]!r}; allowed here: {allowed}")
    if first["type"] == "missing":
        return SpecError(field, "is required")
    value = first.get("input")
    message = first["msg"][0].lower() + first["msg"][1:]
    return SpecError(field, f"{value!r} is not allowed: {message}")


def mail_domain(identity: str) -> str:
    """The domain of an SES identity: the domain itself, or an e-mail address's part after the ``@``."""
    return identity.rsplit("@", 1)[-1].lower()


def inside(name: str, zone: str) -> bool:
    """Whether the DNS name ``name`` is ``zone`` or a name under it."""
    return name == zone or name.endswith(f".{zone}")


# --- cross-field validation ----------------------------------------------------------------------


def parse_network(field: str, value: str, version: int | None = None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse a CIDR strictly (host bits must be zero); a bad one is a :class:`SpecError` on ``field``."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        kind = {4: "an IPv4", 6: "an IPv6"}.get(version or 0, "a")
        raise SpecError(field, f"{value!r} is not {kind} CIDR block such as 10.0.0.0/16") from None
    if version and network.version != version:
        raise SpecError(field, f"{value!r} is not an IPv{version} CIDR block")
    return network


def _subnet_cidrs(spec: Spec) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    for tier_name, tier in spec.network.tiers.items():
        for index, cidr in enumerate(tier.cidrs):
            field = f"network.tiers.{tier_name}.cidrs[{index}]"
            yield field, parse_network(field, cidr, 4)  # type: ignore[misc]


def check_spec(spec: Spec) -> None:
    """Cross-field checks of a spec whose fields each parse; raises the first :class:`SpecError`."""
    network = spec.network
    if network.zones < MIN_ZONES:
        raise SpecError("network.zones", f"{network.zones} is too few; allowed: {MIN_ZONES} to 6 (an Application Load "
                        "Balancer needs subnets in two Availability Zones, and so does an RDS DB subnet group)")
    vpc = parse_network("network.vpc_cidr", network.vpc_cidr, 4)
    if not 16 <= vpc.prefixlen <= 28:
        raise SpecError("network.vpc_cidr", f"{network.vpc_cidr} must have a prefix between /16 and /28")
    names: list[tuple[str, Mapping[str, object]]] = [
        ("network.tiers", network.tiers), ("network.route_tables", network.route_tables),
        ("network.security_groups", network.security_groups)]
    for where, mapping in names:
        for key in mapping:
            if not re.match(_KEY, key):
                raise SpecError(f"{where}.{key}", "names are lower-case letters and digits, starting with a letter")
    for tier_name, tier in network.tiers.items():
        if len(tier.cidrs) != network.zones:
            raise SpecError(f"network.tiers.{tier_name}.cidrs",
                            f"has {len(tier.cidrs)} CIDR blocks but network.zones is {network.zones}; give one per zone")
        if tier.route_table not in network.route_tables:
            raise SpecError(f"network.tiers.{tier_name}.route_table",
                            f"unknown route table {tier.route_table!r}; allowed: {', '.join(network.route_tables)}")
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for field, subnet in _subnet_cidrs(spec):
        if not subnet.subnet_of(vpc):  # type: ignore[arg-type]
            raise SpecError(field, f"subnet {subnet} is outside the VPC {vpc}")
        if not 16 <= subnet.prefixlen <= 28:
            raise SpecError(field, f"subnet {subnet} must have a prefix between /16 and /28")
        for other_field, other in seen:
            if subnet.overlaps(other):
                raise SpecError(field, f"subnet {subnet} overlaps {other} ({other_field})")
        seen.append((field, subnet))
    groups = network.security_groups
    for group_name, group in groups.items():
        for index, rule in enumerate(group.ingress):
            field = f"network.security_groups.{group_name}.ingress[{index}]"
            if isinstance(rule.port, int) and not 1 <= rule.port <= 65535:
                raise SpecError(f"{field}.port", f"{rule.port} is out of range; allowed: 1 to 65535 or 'app'")
            if bool(rule.cidrs) == bool(rule.groups):
                raise SpecError(field, "give either cidrs or groups (one of them, not both)")
            for source in rule.groups:
                if source not in groups:
                    raise SpecError(f"{field}.groups", f"unknown security group {source!r}; allowed: {', '.join(groups)}")
            for cidr in rule.cidrs:
                parse_network(f"{field}.cidrs", cidr)
    if not network.tiers.get(network.nat_tier, Tier(public=False, route_table="", cidrs=(), holds="")).public:
        raise SpecError("network.nat_tier", f"{network.nat_tier!r} must name a public tier; public tiers: "
                        + ", ".join(name for name, tier in network.tiers.items() if tier.public))
    for field, named_tier in (("endpoints.tier", spec.endpoints.tier), ("bastion.tier", spec.bastion.tier),
                              ("service.load_balancer_tier", spec.service.load_balancer_tier),
                              ("service.task_tier", spec.service.task_tier)):
        if named_tier not in network.tiers:
            raise SpecError(field, f"unknown tier {named_tier!r}; allowed: {', '.join(network.tiers)}")
    for field, named_group in (("endpoints.security_group", spec.endpoints.security_group),
                               ("bastion.security_group", spec.bastion.security_group),
                               ("service.load_balancer_group", spec.service.load_balancer_group),
                               ("service.task_group", spec.service.task_group)):
        if named_group not in groups:
            raise SpecError(field, f"unknown security group {named_group!r}; allowed: {', '.join(groups)}")
    for table in spec.endpoints.gateway_route_tables:
        if table not in network.route_tables:
            raise SpecError("endpoints.gateway_route_tables",
                            f"unknown route table {table!r}; allowed: {', '.join(network.route_tables)}")
    for cidr in spec.service.test_listener_cidrs:
        parse_network("service.test_listener_cidrs", cidr)
    memory = FARGATE_MEMORY.get(spec.service.cpu)
    if memory is None:
        raise SpecError("service.cpu", f"{spec.service.cpu} is not a Fargate size; allowed: "
                        + ", ".join(map(str, FARGATE_MEMORY)))
    if spec.service.memory not in memory:
        sizes = ", ".join(map(str, memory)) if len(memory) <= 4 else f"{memory[0]} to {memory[-1]} in steps of 1024"
        raise SpecError("service.memory", f"{spec.service.memory} MiB does not fit {spec.service.cpu} CPU units; "
                        f"allowed: {sizes}")
    if spec.frontend.repository and not spec.frontend.access_token_parameter:
        raise SpecError("frontend.access_token_parameter", "is required with frontend.repository: the SSM parameter "
                        "or secret holding the repository access token")
    major = ".".join(spec.database.engine_version.split(".")[:2])
    if major in MYSQL_PAST_STANDARD_SUPPORT and not spec.database.extended_support:
        raise SpecError("database.engine_version", f"{spec.database.engine_version} left RDS standard support on "
                        f"{MYSQL_PAST_STANDARD_SUPPORT[major]}; allowed: {MYSQL_VERSION} or later, or set "
                        "database.extended_support: true (charged by RDS)")
    if spec.frontend.repository and spec.service.certificate_arn and not (spec.frontend.api_domain or spec.domain):
        # Amplify's rewrite reaches the API over HTTPS only if the load balancer's certificate names the host it
        # asks for (CloudFront, "HTTP 502 status code (Bad Gateway)"), and a certificate names a domain you own.
        raise SpecError("frontend.api_domain", "is required with service.certificate_arn and frontend.repository: the "
                        "domain the certificate names, pointed at the load balancer, which the frontend's /api rewrite calls")
    if spec.mail.dns_records == "auto" and not (spec.domain and inside(mail_domain(spec.mail.identity), spec.domain.name)):
        raise SpecError("mail.dns_records", f"auto needs a domain: set domain.name to the hosted zone that holds "
                        f"{mail_domain(spec.mail.identity)}, or use print")
    if spec.cache.automatic_failover and spec.cache.replicas < 1:
        raise SpecError("cache.automatic_failover", "needs at least one replica (cache.replicas >= 1)")
    if spec.service.test_listener_port == spec.service.port:
        raise SpecError("service.test_listener_port", "must differ from service.port")
    for key, value in spec.tags.items():
        if key.lower().startswith(("aws:", "pointapp:")) or key == "Name":
            raise SpecError(f"tags.{key}", "is reserved; tags may not be Name or start with aws: or pointapp:")
        if len(key) > 128 or len(value) > 256:
            raise SpecError(f"tags.{key}", "keys are at most 128 characters and values at most 256")
    from pointapp.names import check_names  # the steps build the names, and they read the spec

    check_names(spec)


@functools.lru_cache(maxsize=64)
def check_region(region: str) -> str | None:
    """The partition of ``region`` (None for a name no partition knows); a region of a partition pointapp
    does not support (an isolated one such as ``aws-iso``) is a :class:`SpecError`."""
    import botocore.exceptions

    try:
        partition = data_session().get_partition_for_region(region)
    except botocore.exceptions.UnknownRegionError:
        return None
    if partition not in PARTITIONS:
        raise SpecError("--region", f"{region!r} is in the partition {partition}, which pointapp does not support; "
                        f"allowed: regions of {', '.join(PARTITIONS)}")
    return str(partition)
