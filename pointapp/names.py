"""AWS's rules for the names pointapp gives its resources, and the spec check that every name it builds keeps them.

It also holds the name and key rules several steps share (the ECR repository, the SES configuration
sets, the route tables' keys), so no step imports another for them.

Names are ``<prefix>-<env>-<part>``: a long prefix or environment name can push one over a limit that
only the create call would reveal, halfway through ``up``. :func:`check_names` walks every resource
each step would make (the same list ``plan`` uses) and refuses the spec with one line instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pointapp.errors import SpecError
from pointapp.sessions import known_regions
from pointapp.spec import Spec, inside, mail_domain


@dataclass(frozen=True)
class NameRule:
    """What AWS allows in one kind of name: at most ``limit`` characters matching ``allowed``."""

    what: str  # the resource, as a person says it
    limit: int
    allowed: str  # a regular expression for the whole name
    characters: str  # the same, in words
    source: str  # the API reference that states it (botocore's service model carries the same text)


_ALNUM_HYPHEN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IDENTIFIER = r"[A-Za-z](?!.*--)(?:[A-Za-z0-9-]*[A-Za-z0-9])?"  # a letter first, no "--", no hyphen at the end
_IAM = r"[\w+=,.@-]+"
_IDENTIFIER_WORDS = "a letter first, then letters, digits and hyphens, no two hyphens in a row, none at the end"

#: The rules, by resource kind (:attr:`pointapp.resources.Desired.kind`).
NAME_RULES: dict[str, NameRule] = {
    "load-balancer": NameRule("load balancer", 32, r"(?!internal-)" + _ALNUM_HYPHEN,
                              "letters, digits and hyphens, none at either end, not starting with internal-",
                              "Elastic Load Balancing API reference, CreateLoadBalancer, Name"),
    "target-group": NameRule("target group", 32, _ALNUM_HYPHEN, "letters, digits and hyphens, none at either end",
                             "Elastic Load Balancing API reference, CreateTargetGroup, Name"),
    "db-instance": NameRule("DB instance identifier", 63, _IDENTIFIER, _IDENTIFIER_WORDS,
                            "Amazon RDS API reference, CreateDBInstance, DBInstanceIdentifier"),
    "db-subnet-group": NameRule("DB subnet group", 255, r"(?!default$)[A-Za-z0-9._ -]+",
                                "letters, digits, periods, underscores, spaces and hyphens, not default",
                                "Amazon RDS API reference, CreateDBSubnetGroup, DBSubnetGroupName"),
    "replication-group": NameRule("ElastiCache replication group id", 40, _IDENTIFIER, _IDENTIFIER_WORDS,
                                  "Amazon ElastiCache API reference, CreateReplicationGroup, ReplicationGroupId"),
    "cache-subnet-group": NameRule("cache subnet group", 255, r"[A-Za-z0-9-]+", "letters, digits and hyphens",
                                   "Amazon ElastiCache API reference, CreateCacheSubnetGroup, CacheSubnetGroupName"),
    "iam-role": NameRule("IAM role", 64, _IAM, "letters, digits and +=,.@_-", "IAM API reference, CreateRole, RoleName"),
    "instance-profile": NameRule("instance profile", 128, _IAM, "letters, digits and +=,.@_-",
                                 "IAM API reference, CreateInstanceProfile, InstanceProfileName"),
    # The bucket is <name>-<account>-<region>: the check adds the 12-digit account and the longest region.
    "s3-bucket": NameRule("S3 bucket", 63, r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?",
                          "lower-case letters, digits, dots and hyphens, a letter or digit at either end",
                          "Amazon S3 User Guide, General purpose bucket naming rules"),
    "event-rule": NameRule("EventBridge rule", 64, r"[.\-_A-Za-z0-9]+", "letters, digits and .-_",
                           "Amazon EventBridge API reference, PutRule, Name"),
    "ses-configuration-set": NameRule("SES configuration set", 64, r"[A-Za-z0-9_-]+",
                                      "letters, digits, hyphens and underscores",
                                      "Amazon SES API v2 reference, CreateConfigurationSet, ConfigurationSetName"),
    "pipeline": NameRule("pipeline", 100, r"[A-Za-z0-9.@\-_]+", "letters, digits and .@-_",
                         "AWS CodePipeline API reference, PipelineDeclaration, name"),
    "codedeploy-application": NameRule("CodeDeploy application", 100, r"[A-Za-z0-9+=,.@_-]+",
                                       "letters, digits and +=,.@_-",
                                       "AWS CodeDeploy API reference, CreateApplication, applicationName"),
    "deployment-group": NameRule("deployment group", 100, r"[A-Za-z0-9+=,.@_-]+", "letters, digits and +=,.@_-",
                                 "AWS CodeDeploy API reference, CreateDeploymentGroup, deploymentGroupName"),
    "ecs-cluster": NameRule("ECS cluster", 255, r"[A-Za-z0-9_-]+", "letters, digits, underscores and hyphens",
                            "Amazon ECS API reference, CreateCluster, clusterName"),
    "ecs-service": NameRule("ECS service", 255, r"[A-Za-z0-9_-]+", "letters, digits, underscores and hyphens",
                            "Amazon ECS API reference, CreateService, serviceName"),
    "task-definition": NameRule("task definition family", 255, r"[A-Za-z0-9_-]+",
                                "letters, digits, underscores and hyphens",
                                "Amazon ECS API reference, RegisterTaskDefinition, family"),
    "log-group": NameRule("log group", 512, r"[.\-_/#A-Za-z0-9]+", "letters, digits and .-_/#",
                          "Amazon CloudWatch Logs API reference, CreateLogGroup, logGroupName"),
    "ecr-repository": NameRule("ECR repository", 256, r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
                               r"(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*",
                               "lower-case letters and digits, parts joined by . _ - and /",
                               "Amazon ECR API reference, CreateRepository, repositoryName"),
    "amplify-app": NameRule("Amplify app", 255, r"(?s).+", "any characters", "AWS Amplify API reference, CreateApp, name"),
    "secret": NameRule("secret", 512, r"[A-Za-z0-9/_+=.@-]+", "letters, digits and /_+=.@-",
                       "AWS Secrets Manager API reference, CreateSecret, Name"),
    "security-group": NameRule("security group", 255, r"(?!sg-).+", "up to 255 characters, not starting with sg-",
                               "Amazon EC2 API reference, CreateSecurityGroup, GroupName"),
}

#: What the artifact bucket's name adds to its spec name: "-", a 12-digit account id, "-", the region.
_ACCOUNT_DIGITS = 12


@functools.lru_cache(maxsize=1)
def longest_region() -> int:
    """The length of the longest region name of the partitions pointapp supports (botocore's list)."""
    return max(len(region) for region in known_regions())


#: Where :func:`built_names` finds every (kind, name) the steps would create: the step list sets it
#: (:func:`pointapp.steps.built_names`), since this module sits below the steps, which use its names.
_BUILT_NAMES: list[Callable[[Spec], Iterator[tuple[str, str]]]] = []


def built_names_from(source: Callable[[Spec], Iterator[tuple[str, str]]]) -> None:
    """Let :func:`check_names` take the names the steps build from ``source(spec)``."""
    _BUILT_NAMES[:] = [source]


def built_names(spec: Spec) -> Iterator[tuple[str, str]]:
    """Every (kind, name) pointapp would create for ``spec`` (what the steps build; none before the step
    list is imported, which ``import pointapp`` does)."""
    for source in _BUILT_NAMES:
        yield from source(spec)


# --- names several steps (and the exports) use, one rule each ----------------------------------------


def repository_name(spec: Spec) -> str:
    """The ECR repository of the API image: ``<prefix>-<env>/<repository>``."""
    return f"{spec.owner}/{spec.registry.repository}"


#: The image tag CI moves to each new build; a push of it starts the release pipeline.
MOVING_TAG = "latest"


def configuration_set_name(spec: Spec) -> str:
    """The environment's SES configuration set, which its identity sends through."""
    return spec.name("mail")


def sending_configuration_sets(spec: Spec) -> list[str]:
    """The configuration sets a send from this environment goes through: its own, and the identity's default
    (the identity owner's own set, when another environment owns the identity)."""
    return sorted({configuration_set_name(spec), f"{spec.owner_of(spec.mail.identity_owner)}-mail"})


def route_table_keys(spec: Spec, table: str) -> list[str]:
    """The keys of the route table(s) built for ``table``: one per zone for NAT tables in per-az mode."""
    if spec.network.route_tables[table].default_route == "nat_gateway" and spec.network.nat == "per-az":
        return [f"rtb/{table}/{i}" for i in range(spec.network.zones)]
    return [f"rtb/{table}"]


#: The network's deferred work: its NAT gateways' wait and their routes (what the service finishes first).
DEFERRED_NAT = "network: NAT gateways and their routes"


def check_names(spec: Spec) -> None:
    """Refuse (one :class:`SpecError`) a spec whose prefix or environment makes a name AWS would refuse."""
    for kind, name in built_names(spec):
        rule = NAME_RULES.get(kind)
        if rule is None:
            continue
        full = f"{name}-{'0' * _ACCOUNT_DIGITS}-{'x' * longest_region()}" if kind == "s3-bucket" else name
        made = f"prefix {spec.prefix!r} with environment {spec.environment!r} makes the {rule.what} name {name!r}"
        if len(full) > rule.limit:
            extra = f" (with -<account>-<region>: up to {len(full)})" if full != name else f" ({len(name)} characters)"
            raise SpecError("prefix", f"{made}{extra}; AWS allows at most {rule.limit} characters ({rule.source}): "
                            "shorten the prefix or the environment name")
        if not re.fullmatch(rule.allowed, name):
            raise SpecError("prefix", f"{made}, which AWS refuses; allowed: {rule.characters} ({rule.source})")


# --- the host names on the user's domain (spec.domain) --------------------------------------------------


def api_host(spec: Spec) -> str | None:
    """Where the API is served on the domain: ``api.<domain>`` for prod, ``api.<env>.<domain>`` for another
    environment (so both live in one zone); None without a domain."""
    if spec.domain is None:
        return None
    return f"api.{spec.domain.name}" if spec.environment == "prod" else f"api.{spec.environment}.{spec.domain.name}"


def frontend_root(spec: Spec) -> str | None:
    """The name the Amplify app is served under: the domain itself for prod (its apex and ``www.``), and
    ``app.<env>.<domain>`` for another environment (prod's staging branch is ``staging.<domain>``); the staging
    branch is ``staging.`` under it. None without a domain (or with ``domain.frontend`` off)."""
    if spec.domain is None or not spec.domain.frontend:
        return None
    return spec.domain.name if spec.environment == "prod" else f"app.{spec.environment}.{spec.domain.name}"


def frontend_subdomains(spec: Spec) -> list[tuple[str, str]]:
    """The Amplify custom domain's (prefix, branch) pairs under :func:`frontend_root`: the apex and ``www`` serve
    the production branch, ``staging`` the staging branch (behind basic auth)."""
    frontend = spec.frontend
    return [("", frontend.production_branch), ("www", frontend.production_branch), ("staging", frontend.staging_branch)]


def mail_records_written(spec: Spec) -> bool:
    """Whether the mail step writes the identity's DKIM and MAIL FROM records into the domain's zone
    (``mail.dns_records``; unset: when a domain is set and the identity is inside it, and this environment owns it)."""
    if spec.domain is None or spec.mail.identity_owner != spec.environment or spec.mail.dns_records == "print":
        return False
    return inside(mail_domain(spec.mail.identity), spec.domain.name)


def mail_from_domain(spec: Spec) -> str:
    """The custom MAIL FROM domain of the identity: ``mail.<identity's domain>`` (SES: a subdomain of the identity,
    used for nothing else; Amazon SES Developer Guide, "Using a custom MAIL FROM domain")."""
    return f"mail.{mail_domain(spec.mail.identity)}"
