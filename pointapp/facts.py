"""The settings of the specification each step builds from, as a table a notebook shows under its prose.

The notebooks' explanations name no value the specification can change (an address range, a port, a number
of days): they say "shown below", and this table shows the values of the specification in use, with the
field of the configuration file that sets each.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

from pointapp.names import api_host, frontend_root, frontend_subdomains, mail_records_written
from pointapp.plan import Table
from pointapp.spec import Spec

#: One row: what it is, its value, and the configuration field that sets it.
Fact = tuple[str, str, str]


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _ports(spec: Spec, group: str) -> str:
    ports = sorted({(int(rule.port), rule.protocol) for rule in spec.inbound_rules(group)})
    return ", ".join(f"{port}/{protocol}" for port, protocol in ports)


def _network(spec: Spec) -> Iterator[Fact]:
    network = spec.network
    size = ipaddress.ip_network(network.vpc_cidr).num_addresses
    yield "VPC address range", f"{network.vpc_cidr} ({size:,} addresses)", "network.vpc_cidr"
    yield "availability zones", str(network.zones), "network.zones"
    for name, tier in network.tiers.items():
        kind = "public" if tier.public else "private"
        yield (f"{name} subnets ({kind}: {tier.holds})", ", ".join(tier.cidrs[: network.zones]),
               f"network.tiers.{name}.cidrs")
    yield "NAT gateways", {"none": "none", "single": "one", "per-az": "one per zone"}[network.nat], "network.nat"
    for name in network.security_groups:
        yield f"{name} security group, inbound ports", _ports(spec, name) or "none", f"network.security_groups.{name}"
    flow_logs = f"kept {network.flow_logs_retention_days} days" if network.flow_logs else "off"
    yield "flow logs", flow_logs, "network.flow_logs_retention_days"


def _endpoints(spec: Spec) -> Iterator[Fact]:
    endpoints = spec.endpoints
    yield "interface endpoints", ", ".join(endpoints.interface) or "none", "endpoints.interface"
    yield "in the subnets of tier", endpoints.tier, "endpoints.tier"
    yield f"{endpoints.security_group} security group, inbound ports", _ports(spec, endpoints.security_group), \
        f"network.security_groups.{endpoints.security_group}"
    gateway = f"on the route tables {', '.join(endpoints.gateway_route_tables)}" if endpoints.s3_gateway else "off"
    yield "S3 gateway endpoint", gateway, "endpoints.s3_gateway"


def _registry(spec: Spec) -> Iterator[Fact]:
    registry = spec.registry
    yield "repository", f"{spec.owner}/{registry.repository}", "registry.repository"
    yield "images kept", f"the last {registry.keep_images}", "registry.keep_images"
    yield "scan on push", _on_off(registry.scan_on_push), "registry.scan_on_push"
    yield "down deletes a repository holding images", "yes" if registry.delete_images else "no", \
        "registry.delete_images"


def _database(spec: Spec) -> Iterator[Fact]:
    database = spec.database
    yield "engine", f"MySQL {database.engine_version}", "database.engine_version"
    yield "instance class", database.instance_class, "database.instance_class"
    yield "storage", f"{database.allocated_storage_gb} GiB", "database.allocated_storage_gb"
    yield "Multi-AZ standby", _on_off(database.multi_az), "database.multi_az"
    yield "automated backups", f"kept {database.backup_retention_days} days", "database.backup_retention_days"
    yield "deletion protection", _on_off(database.deletion_protection), "database.deletion_protection"
    yield "final snapshot on delete", _on_off(database.final_snapshot), "database.final_snapshot"
    yield "Extended Support", _on_off(database.extended_support), "database.extended_support"
    yield "db security group, inbound ports", _ports(spec, "db"), "network.security_groups.db"


def _cache(spec: Spec) -> Iterator[Fact]:
    cache = spec.cache
    yield "engine", f"Redis {cache.engine_version}", "cache.engine_version"
    yield "node type", cache.node_type, "cache.node_type"
    yield "replicas", str(cache.replicas), "cache.replicas"
    yield "automatic failover", _on_off(cache.automatic_failover), "cache.automatic_failover"
    yield "cache security group, inbound ports", _ports(spec, "cache"), "network.security_groups.cache"


def _mail(spec: Spec) -> Iterator[Fact]:
    yield "sender identity", spec.mail.identity, "mail.identity"
    yield "environment that owns the identity", spec.mail.identity_owner, "mail.identity_owner"
    written = mail_records_written(spec)
    yield "DKIM and MAIL FROM records", "written into the domain's zone" if written else "shown, for you to add", \
        "mail.dns_records, domain.name"


def _domain(spec: Spec) -> Iterator[Fact]:
    yield "your domain (an existing Route 53 public hosted zone)", spec.domain.name if spec.domain else "not set", \
        "domain.name"
    yield "API's name (ACM certificate, alias to the load balancer)", api_host(spec) or "none: HTTP at the load " \
        "balancer's DNS name", "domain.name"
    root = frontend_root(spec)
    yield "frontend's names (Amplify custom domain)", ", ".join(
        f"{prefix + '.' if prefix else ''}{root} -> {branch}" for prefix, branch in frontend_subdomains(spec)) \
        if root else "none", "domain.frontend"


def _service(spec: Spec) -> Iterator[Fact]:
    service = spec.service
    production = "443 (HTTPS), 80 redirects to it" if spec.serves_https else "80 (HTTP)"
    yield "production listener port", production, "service.certificate_arn, domain.name"
    yield "test listener port", str(service.test_listener_port), "service.test_listener_port"
    yield "container port", str(service.port), "service.port"
    yield "task size", f"{service.cpu} CPU units, {service.memory} MiB", "service.cpu, service.memory"
    yield "tasks", str(service.desired_count), "service.desired_count"
    yield "health check path", service.health_check_path, "service.health_check_path"
    yield "logs kept", f"{service.log_retention_days} days", "service.log_retention_days"
    yield "secrets given to the container", ", ".join(service.secrets) or "none", "service.secrets"


def _delivery(spec: Spec) -> Iterator[Fact]:
    delivery = spec.delivery
    yield "traffic shifting", delivery.deployment_config, "delivery.deployment_config"
    yield "old tasks kept after a switch", f"{delivery.termination_wait_minutes} minutes", \
        "delivery.termination_wait_minutes"
    yield "GitHub repository", delivery.github_repository or "not set", "delivery.github_repository"
    yield "branch that releases", delivery.github_branch, "delivery.github_branch"


def _bastion(spec: Spec) -> Iterator[Fact]:
    bastion = spec.bastion
    yield "instance type", bastion.instance_type, "bastion.instance_type"
    yield "image (SSM parameter)", bastion.ami_parameter, "bastion.ami_parameter"
    yield "in the subnets of tier", bastion.tier, "bastion.tier"


def _frontend(spec: Spec) -> Iterator[Fact]:
    frontend = spec.frontend
    yield "repository", frontend.repository or "not set", "frontend.repository"
    yield "production branch", frontend.production_branch, "frontend.production_branch"
    yield "staging branch (basic authentication)", frontend.staging_branch, "frontend.staging_branch"
    yield "pull-request previews", _on_off(frontend.pull_request_previews), "frontend.pull_request_previews"
    yield "build output folder", frontend.output_directory, "frontend.output_directory"


_FACTS: dict[str, Callable[[Spec], Iterator[Fact]]] = {
    "network": _network, "domain": _domain, "endpoints": _endpoints, "registry": _registry, "database": _database, "cache": _cache,
    "mail": _mail, "service": _service, "delivery": _delivery, "bastion": _bastion, "frontend": _frontend,
}


def describe(source: object, step: str) -> Table:
    """The settings ``step`` builds from, in the specification of ``source`` (a :class:`~pointapp.spec.Spec`
    or a context holding one): what each is, its value, and the configuration field that sets it."""
    from pointapp.steps import get

    spec = source if isinstance(source, Spec) else getattr(source, "spec", None)
    if not isinstance(spec, Spec):
        raise TypeError(f"describe() needs a Spec or a context, not {type(source).__name__}")
    get(step)  # an unknown step name is a SpecError naming the allowed ones
    return Table(["setting", "value", "configuration field"], _FACTS[step](spec),
                 title=f"The {step} step's settings in {spec.owner}")
