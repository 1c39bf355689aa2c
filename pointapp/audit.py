"""``pointapp audit``: the live environment against the security baseline. Reads only; changes nothing.

Each check looks at what discovery found (the same tag-filtered reads as ``plan``) and gives one
:class:`Finding` per problem. A check whose resources are not built says so and finds nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from pointapp import engine
from pointapp.baseline import Choice, choice
from pointapp.errors import PointappError
from pointapp.kinds import PRIVATE, UNGUARDED, guarded, service_principals
from pointapp.outputs import (
    BASTION_INSTANCE,
    CACHE_GROUP,
    CERTIFICATE,
    DATABASE_INSTANCE,
    LOAD_BALANCER,
    PRODUCTION_LISTENER,
    REPOSITORY,
    Output,
)
from pointapp.plan import Table
from pointapp.resources import Found, StepState
from pointapp.spec import ANYWHERE_V4, ANYWHERE_V6, Spec
from pointapp.steps.database import pending_reboot
from pointapp.steps.database.groups import parameters
from pointapp.steps.endpoints import found_policy
from pointapp.steps.network import Permission, default_group, observed_permissions, security_groups
from pointapp.steps.service import (
    ACCESS_LOG_BUCKET,
    ACCESS_LOGS,
    ACCESS_LOGS_BUCKET,
    DELETION_PROTECTION,
    DESYNC_MITIGATION,
    DROP_INVALID_HEADERS,
    TLS_POLICY,
    WAF_RULE_GROUPS,
    WEB_ACL,
    WEB_ACL_ASSOCIATION,
)
from pointapp.target import Context

#: The TLS policies the https check accepts: pointapp's own and the other TLS 1.3 + 1.2 (or 1.3 only) policies of
#: 2021 and later, plain, restricted, FIPS or post-quantum (Application Load Balancers guide, "Security policies for
#: your Application Load Balancer"; Security Hub ELB.17, recommended security policies), read 1 December 2026.
CURRENT_TLS_POLICIES = frozenset({
    TLS_POLICY, "ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09"})

ANYWHERE = (ANYWHERE_V4, ANYWHERE_V6)
#: Remote-login ports, their protocol and the FSBP control that forbids them open (EC2.13 SSH, EC2.14 RDP).
REMOTE_LOGIN = {22: ("SSH", "EC2.13"), 3389: ("RDP", "EC2.14")}


@dataclass(frozen=True)
class Finding:
    """One way the live environment misses the baseline: which check, which resource, what is wrong."""

    check: str
    resource: str
    problem: str
    control: str = ""  #: the FSBP control the check follows (pointapp.baseline), e.g. "EC2.18"

    def __str__(self) -> str:
        return f"{self.check}: {self.resource}: {self.problem}" + (f" [{self.control}]" if self.control else "")


@dataclass(frozen=True)
class Chosen:
    """A control a resource does not meet because the environment's spec chose so (pointapp.baseline)."""

    check: str
    resource: str
    choice: Choice

    def __str__(self) -> str:
        c = self.choice
        return f"{self.check}: {self.resource}: {c.what} ({c.setting}; {c.reason}; meeting it: {c.cost}) [{c.control}]"


@dataclass
class Result:
    """What one check examined (names) and what it found."""

    check: str
    rule: str
    control: str = ""
    examined: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    chosen: list[Chosen] = field(default_factory=list)
    note: str = ""

    def flag(self, resource: str, problem: str, control: str | None = None) -> None:
        """One finding; ``control`` names the one control it misses when the check follows several."""
        self.findings.append(Finding(self.check, resource, problem, control or self.control))

    def miss(self, spec: Spec, resource: str, problem: str, setting: str, control: str | None = None) -> None:
        """``resource`` misses the control: a documented choice when ``spec`` makes the one behind ``setting``,
        else a finding."""
        if choice(setting).off(spec):
            self.choose(resource, setting)
        else:
            self.flag(resource, problem, control)

    def choose(self, resource: str, setting: str) -> None:
        """Record that ``resource`` misses the control by the documented choice behind ``setting``."""
        self.chosen.append(Chosen(self.check, resource, choice(setting)))

    @property
    def status(self) -> str:
        if self.findings:
            return "FAIL"
        if self.chosen:
            return "choice"
        return "pass" if self.examined else "not built"


@dataclass
class Report:
    title: str
    results: list[Result]

    @property
    def findings(self) -> list[Finding]:
        return [finding for result in self.results for finding in result.findings]

    @property
    def chosen(self) -> list[Chosen]:
        """The documented choices the environment makes (not findings: the audit still passes)."""
        return [chosen for result in self.results for chosen in result.chosen]

    def table(self) -> Table:
        rows = [(r.check, r.control, r.status, r.rule,
                 "; ".join([*(f.problem for f in r.findings), *(c.choice.what for c in r.chosen)]) or r.note
                 or ", ".join(r.examined)) for r in self.results]
        return Table(["check", "control", "status", "baseline", "detail"], rows, title=self.title)

    def summary(self) -> str:
        built = sum(1 for r in self.results if r.examined)
        text = (f"{len(self.results)} checks ({built} on built resources): "
                f"{len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}")
        if self.chosen:
            text += f", {len(self.chosen)} documented choice{'s' if len(self.chosen) != 1 else ''}"
        return text

    def json(self) -> str:
        """The report for machines: every check's status, and each finding and choice with its control."""
        import json

        def choice(chosen: Chosen) -> dict[str, str]:
            c = chosen.choice
            return {"resource": chosen.resource, "control": c.control, "setting": c.setting, "what": c.what,
                    "cost": c.cost, "reason": c.reason}

        return json.dumps({"title": self.title, "summary": self.summary(), "checks": [
            {"check": r.check, "control": r.control, "status": r.status, "baseline": r.rule, "examined": r.examined,
             "note": r.note, "findings": [{"resource": f.resource, "problem": f.problem, "control": f.control}
                                          for f in r.findings],
             "choices": [choice(c) for c in r.chosen]} for r in self.results]}, indent=2)

    def __str__(self) -> str:
        return "\n".join([str(self.table()), "", *(f"FINDING {f}" for f in self.findings),
                          *(f"CHOICE {c}" for c in self.chosen), self.summary()])

    def _repr_html_(self) -> str:
        return self.table()._repr_html_() + f"<p>{self.summary()}</p>"


# --- the checks: each reads what discovery found -----------------------------------------------------


def _examine(observed: Mapping[str, Any], step: str, key: str, result: Result) -> Found | None:
    """The resource ``key`` of ``step`` when it is built (and counted as examined), else None."""
    state = observed.get(step)
    found = state.found.get(key) if state is not None else None
    if found is not None:
        result.examined.append(found.id if step == "delivery" else found.name)  # a bucket is known by its name
    return found


def _groups(network: StepState) -> list[tuple[str, dict[Permission, str]]]:
    """Every owned security group and the VPC's default group, with their permissions."""
    owned = security_groups(network)
    keys = {found.id: found.key for found in owned}
    groups = [(found.name, observed_permissions(found.raw, keys)) for found in owned]
    default = default_group(network)
    if default is not None:
        groups.append((f"default group {default['GroupId']}", observed_permissions(default, keys)))
    return groups


def listener_ports(spec: Spec) -> set[int]:
    """The ports the load balancer's production listeners take from the internet."""
    return {80, 443} if spec.serves_https else {80}


def _covers(permission: Permission, port: int) -> bool:
    if permission.protocol == "-1":
        return True
    low, high = permission.from_port, permission.to_port
    return permission.protocol == "tcp" and low is not None and high is not None and low <= port <= high


def _ports(permission: Permission) -> str:
    if permission.protocol == "-1":
        return "all traffic"
    if permission.from_port == permission.to_port:
        return f"port {permission.from_port}/{permission.protocol}"
    return f"ports {permission.from_port}-{permission.to_port}/{permission.protocol}"


Check = Callable[[Context, Mapping[str, Any], Result], None]
#: A check of one built resource: the function below ``@check(..., of=output)`` gets it as ``found``.
OfResource = Callable[[Context, Mapping[str, Any], Result, Found], None]

#: (name, FSBP control ids, baseline, check), in the order the report lists them: each check is added by the
#: :func:`check` above its function. The control ids are the AWS Security Hub FSBP controls the check follows
#: (AWS Security Hub User Guide, "Security Hub controls reference").
CHECKS: list[tuple[str, str, str, Check]] = []


@overload
def check(name: str, controls: str, baseline: str) -> Callable[[Check], Check]: ...


@overload
def check(name: str, controls: str, baseline: str, *, of: Output) -> Callable[[OfResource], Check]: ...


def check(name: str, controls: str, baseline: str, *, of: Output | None = None) -> Callable[[Any], Check]:
    """Add the function below to :data:`CHECKS` as the check ``name`` of ``controls`` ("" where no FSBP control
    exists: its comment names the rule it follows), which holds when ``baseline`` does.

    With ``of`` (a step's resource), the check is of that resource: it runs only when the resource is built,
    which then counts as examined and is passed to the function as its last argument. Either way the check
    added (and the name the decorator leaves) takes ``(ctx, observed, result)``."""
    def add(function: Any) -> Check:
        made: Check = function if of is None else _of_resource(of, function)
        CHECKS.append((name, controls, baseline, made))
        return made
    return add


def _of_resource(output: Output, function: OfResource) -> Check:
    @functools.wraps(function)
    def run(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
        found = _examine(observed, output.step, output.key, result)
        if found is not None:
            function(ctx, observed, result, found)
    return run


@check("public-ingress", "EC2.18", "0.0.0.0/0 and ::/0 only on the load balancer's listener ports")
def check_public_ingress(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    spec = ctx.spec
    ingress_group = spec.name("sg", spec.service.load_balancer_group)
    allowed = listener_ports(spec)
    for name, permissions in _groups(observed["network"]):
        result.examined.append(name)
        for permission in permissions:
            if permission.direction != "ingress" or permission.source not in ANYWHERE:
                continue
            single = permission.protocol == "tcp" and permission.from_port == permission.to_port
            if name == ingress_group and single and permission.from_port in allowed:
                continue
            result.flag(name, f"{_ports(permission)} open to {permission.source} "
                              f"(only the load balancer group may take {', '.join(map(str, sorted(allowed)))} from anywhere)")


@check("default-group", "EC2.2", "the VPC's default security group allows nothing")
def check_default_group(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    default = default_group(observed["network"])
    if default is None:
        return
    name = f"default group {default['GroupId']}"
    result.examined.append(name)
    rules = len(default.get("IpPermissions", [])) + len(default.get("IpPermissionsEgress", []))
    if rules:
        result.flag(name, f"has {rules} rule{'s' if rules != 1 else ''}; it must allow nothing in or out")


@check("remote-login", "EC2.13, EC2.14", "no SSH (22) or RDP (3389) open anywhere")
def check_remote_login(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    for name, permissions in _groups(observed["network"]):
        result.examined.append(name)
        for permission in sorted(permissions):
            if permission.direction != "ingress":
                continue
            for port, (protocol, control) in REMOTE_LOGIN.items():
                if _covers(permission, port):
                    source = permission.source.split("/", 1)[1] if permission.source.startswith("sg/") else permission.source
                    result.flag(name, f"{protocol} ({port}) open from {source}; operators use SSM Session Manager",
                                control)


@check("database", "RDS.2, RDS.3", "RDS private and encrypted at rest", of=DATABASE_INSTANCE)
def check_database(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    if found.raw.get("PubliclyAccessible"):
        result.flag(found.name, "publicly accessible; it must be reachable from inside the VPC only", "RDS.2")
    if not found.raw.get("StorageEncrypted"):
        result.flag(found.name, "storage not encrypted", "RDS.3")


@check("cache", "ElastiCache.4, ElastiCache.5", "Redis encrypted in transit and at rest", of=CACHE_GROUP)
def check_cache(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    if not found.raw.get("TransitEncryptionEnabled"):
        result.flag(found.name, "not encrypted in transit (TLS off)", "ElastiCache.5")
    if not found.raw.get("AtRestEncryptionEnabled"):
        result.flag(found.name, "not encrypted at rest", "ElastiCache.4")


@check("registry", "ECR.1", "ECR scans images on push", of=REPOSITORY)
def check_registry(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    if not found.raw.get("imageScanningConfiguration", {}).get("scanOnPush"):
        result.flag(found.name, "images are not scanned on push (registry.scan_on_push)")


def _tls_only(policy: Mapping[str, Any] | None) -> bool:
    """Whether the bucket policy refuses every request that does not come over TLS (FSBP S3.5)."""
    return any(s.get("Effect") == "Deny" and s.get("Action") in ("s3:*", ["s3:*"])
               and str((s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
               for s in (policy or {}).get("Statement", []))


def _check_bucket(ctx: Context, observed: Mapping[str, Any], step: str, key: str, result: Result) -> Found | None:
    """What every bucket pointapp makes meets: private (S3.8), encrypted (S3.4), TLS only (S3.5), a lifecycle (S3.13)."""
    found = _examine(observed, step, key, result)
    if found is None:
        return None
    raw = found.raw
    if raw.get("PublicAccessBlock") != PRIVATE:
        result.flag(found.id, "public access is not blocked in all four settings", "S3.8")
    if not raw.get("Encryption"):
        result.flag(found.id, "no default encryption", "S3.4")
    gap = ctx.lacks("s3", "PolicyConditions")
    if gap:
        result.note = f"plain-HTTP refusal (S3.5) not checked: {gap}"
    elif not _tls_only(raw.get("Policy")):
        result.flag(found.id, "its policy does not refuse requests without TLS (aws:SecureTransport false)", "S3.5")
    if not any(rule.get("Status") == "Enabled" for rule in raw.get("Lifecycle") or []):
        result.flag(found.id, "no enabled lifecycle rule: what it holds never expires", "S3.13")
    return found


@check("artifact-bucket", "S3.4, S3.5, S3.8, S3.13, S3.14, S3.17",
       "artifact bucket private, encrypted, TLS only, versioned, with a lifecycle")
def check_artifact_bucket(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found = _check_bucket(ctx, observed, "delivery", "bucket", result)
    if found is None:
        return
    if found.raw.get("Versioning") != "Enabled":
        result.flag(found.id, f"versioning {found.raw.get('Versioning') or 'never enabled'}, not Enabled", "S3.14")
    key = observed["network"].found.get("kms/key")
    if not ctx.spec.security.kms_key:
        result.choose(found.id, "security.kms_key")
    elif key is None or found.raw.get("KmsKey") != key.id:
        result.flag(found.id, f"not encrypted with the environment's KMS key (default encryption "
                              f"{found.raw.get('KmsKey') or found.raw.get('Encryption')})", "S3.17")


@check("access-log-bucket", "S3.4, S3.5, S3.8, S3.13",
       "access-log bucket private, encrypted, TLS only, with a lifecycle")
def check_access_log_bucket(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    _check_bucket(ctx, observed, "service", ACCESS_LOG_BUCKET, result)


def _attribute(found: Found, key: str) -> Any:
    return found.raw.get("Attributes", {}).get(key)


@check("load-balancer", "ELB.4, ELB.5, ELB.6, ELB.12",
       "load balancer drops invalid headers, mitigates desync, has access logs and deletion protection", of=LOAD_BALANCER)
def check_load_balancer(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    service = ctx.spec.service
    if _attribute(found, DROP_INVALID_HEADERS) != "true":
        result.flag(found.name, "keeps HTTP headers with invalid fields (routing.http.drop_invalid_header_fields)", "ELB.4")
    if _attribute(found, DESYNC_MITIGATION) not in ("defensive", "strictest"):
        result.flag(found.name, f"desync mitigation {_attribute(found, DESYNC_MITIGATION) or 'unset'}, "
                                "not defensive or strictest", "ELB.12")
    for setting, attribute, what, control in (
            ("service.deletion_protection", DELETION_PROTECTION, "deletion protection", "ELB.6"),
            ("service.access_logs", ACCESS_LOGS, "access logs", "ELB.5")):
        if _attribute(found, attribute) == "true":
            continue
        result.miss(ctx.spec, found.name, f"{what} off although the spec turns them on ({setting})", setting, control)
    bucket = _attribute(found, ACCESS_LOGS_BUCKET)
    if service.access_logs and _attribute(found, ACCESS_LOGS) == "true" and not str(bucket or "").startswith(
            f"{ctx.spec.owner}-alb-logs-"):
        result.flag(found.name, f"access logs go to {bucket or 'no bucket'}, not the environment's access-log bucket", "ELB.5")


@check("waf", "ELB.16, WAF.10, WAF.12",
       "a WAF web ACL with AWS's managed rule groups, metrics on, guards the load balancer", of=LOAD_BALANCER)
def check_waf(ctx: Context, observed: Mapping[str, Any], result: Result, balancer: Found) -> None:
    if not ctx.spec.service.waf:
        result.choose(balancer.name, "service.waf")
        return
    service = observed["service"]
    acl, association = service.found.get(WEB_ACL), service.found.get(WEB_ACL_ASSOCIATION)
    if acl is None:
        result.flag(balancer.name, "no WAF web ACL (service.waf)", "ELB.16")
        return
    result.examined.append(acl.name)
    if association is None or association.raw.get("WebACLArn") != acl.id:
        result.flag(balancer.name, f"not associated with the web ACL {acl.name}", "ELB.16")
    rules = acl.raw.get("Rules") or []
    if not rules:
        result.flag(acl.name, "has no rule or rule group", "WAF.10")
    groups = {((r.get("Statement") or {}).get("ManagedRuleGroupStatement") or {}).get("Name") for r in rules}
    for group in WAF_RULE_GROUPS:
        if group not in groups:
            result.flag(acl.name, f"lacks AWS's managed rule group {group}", "ELB.16")
    for rule in rules:
        if not (rule.get("VisibilityConfig") or {}).get("CloudWatchMetricsEnabled"):
            result.flag(acl.name, f"rule {rule.get('Name')} sends no CloudWatch metrics", "WAF.12")


@check("keys", "KMS.4, S3.17", "with security.kms_key: the log groups use the environment's rotated KMS key")
def check_keys(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    network = observed["network"]
    groups = [found for state in (network, observed.get("service")) if state is not None
              for found in state.found.values() if found.kind == "log-group"]
    result.examined += [found.name for found in groups]
    if not ctx.spec.security.kms_key:
        for found in groups:
            result.choose(found.name, "security.kms_key")
        return
    key = network.found.get("kms/key")
    if key is None:
        result.flag(ctx.spec.name("key"), "no customer-managed KMS key although security.kms_key is on", "KMS.4")
        return
    result.examined.append(key.name)
    if not key.raw.get("Rotation"):
        result.flag(key.name, "automatic key rotation is off", "KMS.4")
    for found in groups:
        if found.raw.get("kmsKeyId") != key.id:
            result.flag(found.name, "not encrypted with the environment's KMS key "
                                    "(Prowler cloudwatch_log_group_kms_encryption_enabled)", "S3.17")


@check("bastion", "EC2.8, EC2.9", "IMDSv2 required and no public IP on the bastion", of=BASTION_INSTANCE)
def check_bastion(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    tokens = found.raw.get("MetadataOptions", {}).get("HttpTokens")
    if tokens != "required":
        result.flag(found.name, f"instance metadata accepts IMDSv1 (HttpTokens {tokens or 'unset'}); IMDSv2 must be required",
                    "EC2.8")
    address = found.raw.get("PublicIpAddress")
    if address:
        result.flag(found.name, f"has the public IP {address} (and an instance profile); it is reached through SSM "
                                "only (`pointapp up` replaces it)", "EC2.9")


@check("subnet-public-ip", "EC2.15", "no subnet maps a public IP on launch")
def check_subnets(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    for found in observed["network"].found.values():
        if found.kind != "subnet":
            continue
        result.examined.append(found.name)
        if found.raw.get("MapPublicIpOnLaunch"):
            result.flag(found.name, "maps a public IP on launch; the load balancer and NAT gateway have their own addresses")


def _open_statements(policy: Mapping[str, Any] | None, account: str, vpc: str) -> list[str]:
    """The Sids (or positions) of the Allow statements any principal may use without this account's or this
    VPC's condition; a missing policy is AWS's default, which allows any principal."""
    if policy is None:
        return ["the default policy"]
    found = []
    for index, statement in enumerate(policy.get("Statement", [])):
        principal = statement.get("Principal")
        anyone = principal == "*" or (isinstance(principal, Mapping) and "*" in (
            [principal.get("AWS")] if isinstance(principal.get("AWS"), str) else principal.get("AWS") or []))
        equals = {key.lower(): value for key, value in (statement.get("Condition") or {}).get("StringEquals", {}).items()}
        limited = equals.get("aws:principalaccount") in (account, [account]) or equals.get("aws:sourcevpc") in (vpc, [vpc])
        if statement.get("Effect") == "Allow" and anyone and not limited:
            found.append(str(statement.get("Sid") or f"statement {index + 1}"))
    return found


@check("endpoint-policies", "",
       "VPC endpoint policies allow this account's principals only (Prowler vpc_endpoint_connections_trust_boundaries)")
def check_endpoint_policies(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    state, vpc = observed.get("endpoints"), observed["network"].found.get("vpc")
    endpoints = [found for found in state.found.values() if found.kind == "vpc-endpoint"] if state is not None else []
    for found in endpoints:
        result.examined.append(found.name)
        open_to_all = _open_statements(found_policy(found.raw), ctx.account, vpc.id if vpc is not None else "")
        if open_to_all:
            result.flag(found.name, f"its policy lets any principal of any account through ({', '.join(open_to_all)})")


@check("ec2-endpoint", "EC2.10", "an interface endpoint for the EC2 API")
def check_ec2_endpoint(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    state, vpc = observed.get("endpoints"), observed["network"].found.get("vpc")
    if state is None or not state.found or vpc is None:  # the endpoints step is not built
        return
    result.examined.append(vpc.name)
    if "endpoint/ec2" in state.found:
        return
    result.miss(ctx.spec, vpc.name, "no interface endpoint for the EC2 API (endpoints.interface)", "endpoints.interface")


@check("https", "ELB.1, ELB.17",
       "HTTPS 443 with a current TLS policy and 80 redirecting, with a domain or a certificate", of=PRODUCTION_LISTENER)
def check_https(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    """With a domain or a certificate: the production listener is HTTPS 443 with the certificate and a current TLS
    policy (ELB.17), and HTTP 80 redirects to HTTPS (ELB.1). Without either: a documented choice."""
    spec = ctx.spec
    if not spec.serves_https:
        result.choose(found.name, "serves_https")
        return
    certificate = spec.service.certificate_arn or observed.get("domain", StepState()).ids().get(CERTIFICATE.key)
    certificates = [c.get("CertificateArn") for c in found.raw.get("Certificates", [])]
    if found.raw.get("Protocol") != "HTTPS" or found.raw.get("Port") != 443:
        result.flag(found.name, f"the production listener is {found.raw.get('Protocol')} {found.raw.get('Port')}, not HTTPS 443")
        return
    if certificate not in certificates:
        result.flag(found.name, "the production listener does not use the configured certificate")
    if found.raw.get("SslPolicy") not in CURRENT_TLS_POLICIES:
        result.flag(found.name, f"TLS policy {found.raw.get('SslPolicy')} is not a current one "
                    f"({', '.join(sorted(CURRENT_TLS_POLICIES))})", "ELB.17")
    redirect = _examine(observed, PRODUCTION_LISTENER.step, "listener/redirect", result)
    action = ((redirect.raw.get("DefaultActions") or [{}])[0] if redirect else {})
    if action.get("Type") != "redirect" or action.get("RedirectConfig", {}).get("Protocol") != "HTTPS":
        result.flag(redirect.name if redirect else spec.name("listener", "http"),
                    "HTTP 80 does not redirect to HTTPS", "ELB.1")


@check("flow-logs", "EC2.6", "VPC flow logs on, all traffic")
def check_flow_logs(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    vpc = observed["network"].found.get("vpc")
    if vpc is None:
        return
    result.examined.append(vpc.name)
    logs = ctx.client("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc.id]}])["FlowLogs"]
    active = [f for f in logs if f.get("FlowLogStatus", "ACTIVE") == "ACTIVE"]
    if not active:
        result.flag(vpc.name, "no active flow log (network.flow_logs)")
        return
    if not any(f.get("TrafficType") == "ALL" for f in active):
        result.flag(vpc.name, "flow logs record only part of the traffic; the baseline is ALL")


# No FSBP control; Prowler's iam_role_cross_service_confused_deputy_prevention (IAM User Guide, "The confused
# deputy problem").
@check("trust-guards", "", "service roles trust their service only for this account's resources")
def check_trust_guards(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    unguarded: set[str] = set()
    for state in observed.values():
        for found in getattr(state, "found", {}).values():
            if found.kind != "iam-role" or found.raw.get("borrowed"):
                continue
            trust = found.raw.get("AssumeRolePolicyDocument", {})
            principals = service_principals(trust)
            if not principals:
                continue  # a federated role (GitHub's): its conditions name the repository
            result.examined.append(found.name)
            if set(principals) <= set(UNGUARDED):
                unguarded.update(principals)
            elif not guarded(trust):
                result.flag(found.name, f"{', '.join(principals)} may assume it for any account's resource: the trust "
                                        "policy names no aws:SourceAccount or aws:SourceArn (confused deputy)")
    if unguarded:
        result.note = "; ".join(f"no guard for {p}: {UNGUARDED[p]}" for p in sorted(unguarded))


@check("database-tls", "RDS.39", "MySQL refuses connections without TLS", of=DATABASE_INSTANCE)
def check_database_tls(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    used = (found.raw.get("DBParameterGroups") or [{}])[0].get("DBParameterGroupName", "")
    group = observed[DATABASE_INSTANCE.step].found.get("parameter-group")
    if group is None or group.id != used:
        result.flag(found.name, f"uses the parameter group {used or '(none)'}, not its own with require_secure_transport = 1")
    elif group.raw.get("Values", {}).get("require_secure_transport") != parameters(ctx.spec)["require_secure_transport"]:
        result.flag(found.name, f"its parameter group {group.name} lets clients connect without TLS "
                                "(require_secure_transport is not 1)")
    elif pending_reboot(found.raw):
        result.flag(found.name, "its parameter group applies at the next reboot (pending-reboot): TLS is not required yet")


@check("database-iam-auth", "RDS.10", "IAM database authentication on", of=DATABASE_INSTANCE)
def check_database_iam_authentication(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    if found.raw.get("IAMDatabaseAuthenticationEnabled"):
        return
    result.miss(ctx.spec, found.name, "IAM database authentication is off", "database.iam_authentication")


#: What Security Hub RDS.9 wants an RDS for MySQL instance to export (Security Hub controls reference, RDS.9:
#: audit, error, general and slowquery for MySQL).
MYSQL_LOGS = frozenset({"audit", "error", "general", "slowquery"})


@check("database-logs", "RDS.9", "MySQL exports its audit, error, general and slow-query logs", of=DATABASE_INSTANCE)
def check_database_logs(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    missing = set(MYSQL_LOGS) - set(found.raw.get("EnabledCloudwatchLogsExports") or [])
    gap = ctx.lacks("rds", "CreateOptionGroup")
    if "audit" in missing and gap:
        missing.discard("audit")
        result.note = f"audit log not checked: {gap}"
    if missing and missing <= {"audit", "general"} and not ctx.spec.database.activity_logs:
        result.choose(found.name, "database.activity_logs")
    elif missing:
        result.flag(found.name, f"does not export the {', '.join(sorted(missing))} log{'s' if len(missing) > 1 else ''} "
                                "to CloudWatch Logs")


@check("database-monitoring", "RDS.6", "RDS enhanced monitoring on", of=DATABASE_INSTANCE)
def check_database_monitoring(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    if found.raw.get("MonitoringInterval"):
        return
    result.miss(ctx.spec, found.name, "enhanced monitoring is off", "database.monitoring_interval")


@check("database-backup", "RDS.26", "the database is in an AWS Backup plan", of=DATABASE_INSTANCE)
def check_database_backup_plan(ctx: Context, observed: Mapping[str, Any], result: Result, found: Found) -> None:
    state = observed[DATABASE_INSTANCE.step]
    plan, selection = state.found.get("backup/plan"), state.found.get("backup/selection")
    if plan is None:
        if ctx.spec.database.backup_plan:
            result.flag(found.name, "is in no AWS Backup plan")
        else:
            result.choose(found.name, "database.backup_plan")
        return
    if "backup-selection" in state.unavailable:
        result.note = f"plan {plan.name} found; its selection not checked: {state.unavailable['backup-selection']}"
        return
    resources = (selection.raw.get("BackupSelection", {}).get("Resources", []) if selection else [])
    if found.raw.get("DBInstanceArn") not in resources:
        result.flag(found.name, f"the backup plan {plan.name} does not select it")


def _containers(observed: Mapping[str, Any], result: Result) -> tuple[Found | None, list[dict[str, Any]]]:
    found = _examine(observed, "service", "taskdef", result)
    return found, list((found.raw.get("containerDefinitions") or []) if found else [])


@check("read-only-root", "ECS.5", "the API container's root file system is read-only")
def check_read_only_root(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found, containers = _containers(observed, result)
    for container in containers:
        if not container.get("readonlyRootFilesystem"):
            result.flag(f"{found.name if found else ''} {container.get('name')}".strip(),
                        "the container's root file system is writable")


# No FSBP control; Prowler's ecs_task_definitions_logging_block_mode (ECS Developer Guide, awslogs mode).
@check("non-blocking-logs", "", "the API container logs in non-blocking mode")
def check_non_blocking_logs(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found, containers = _containers(observed, result)
    for container in containers:
        options = (container.get("logConfiguration") or {}).get("options") or {}
        if options.get("mode") != "non-blocking":
            result.flag(f"{found.name if found else ''} {container.get('name')}".strip(),
                        f"logs in {options.get('mode') or 'the default (blocking)'} mode: a CloudWatch Logs outage "
                        "stops the API's writes to stdout")




def audit(ctx: Context, checks: Iterable[str] | None = None) -> Report:
    """Check the live environment; raises when there is nothing to audit (no VPC)."""
    observed = engine.discover(ctx)
    if "vpc" not in observed["network"].found:
        raise PointappError(f"nothing to audit: {ctx.spec.owner} has no network on {ctx.target.describe()} "
                            "(run `pointapp up` first, or pick the target it was built on)")
    wanted = set(checks) if checks is not None else None
    results = []
    for name, control, rule, check in CHECKS:
        if wanted is not None and name not in wanted:
            continue
        result = Result(name, rule, control)
        check(ctx, observed, result)
        results.append(result)
    return Report(f"security audit of {ctx.spec.owner} on {ctx.target.describe()}", results)
