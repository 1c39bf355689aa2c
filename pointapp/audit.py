"""``pointapp audit``: the live environment against the security baseline. Reads only; changes nothing.

Each check looks at what discovery found (the same tag-filtered reads as ``plan``) and gives one
:class:`Finding` per problem. A check whose resources are not built says so and finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pointapp import engine
from pointapp.baseline import Choice, choice
from pointapp.errors import PointappError
from pointapp.outputs import BASTION_INSTANCE, CACHE_GROUP, CERTIFICATE, DATABASE_INSTANCE, PRODUCTION_LISTENER
from pointapp.plan import Table
from pointapp.resources import Found, StepState
from pointapp.spec import ANYWHERE_V4, ANYWHERE_V6, Spec
from pointapp.steps.delivery import PRIVATE
from pointapp.steps.network import Permission, default_group, observed_permissions, security_groups
from pointapp.steps.service import TLS_POLICY
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
            return {"resource": chosen.resource, **asdict(chosen.choice)}

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


def check_default_group(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    default = default_group(observed["network"])
    if default is None:
        return
    name = f"default group {default['GroupId']}"
    result.examined.append(name)
    rules = len(default.get("IpPermissions", [])) + len(default.get("IpPermissionsEgress", []))
    if rules:
        result.flag(name, f"has {rules} rule{'s' if rules != 1 else ''}; it must allow nothing in or out")


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


def check_database(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found = _examine(observed, DATABASE_INSTANCE.step, DATABASE_INSTANCE.key, result)
    if found is None:
        return
    if found.raw.get("PubliclyAccessible"):
        result.flag(found.name, "publicly accessible; it must be reachable from inside the VPC only", "RDS.2")
    if not found.raw.get("StorageEncrypted"):
        result.flag(found.name, "storage not encrypted", "RDS.3")


def check_cache(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found = _examine(observed, CACHE_GROUP.step, CACHE_GROUP.key, result)
    if found is None:
        return
    if not found.raw.get("TransitEncryptionEnabled"):
        result.flag(found.name, "not encrypted in transit (TLS off)", "ElastiCache.5")
    if not found.raw.get("AtRestEncryptionEnabled"):
        result.flag(found.name, "not encrypted at rest", "ElastiCache.4")


def check_registry(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found = _examine(observed, "registry", "repository", result)
    if found is None:
        return
    if not found.raw.get("imageScanningConfiguration", {}).get("scanOnPush"):
        result.flag(found.name, "images are not scanned on push (registry.scan_on_push)")


def check_artifact_bucket(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found = _examine(observed, "delivery", "bucket", result)
    if found is None:
        return
    if found.raw.get("PublicAccessBlock") != PRIVATE:
        result.flag(found.id, "public access is not blocked in all four settings", "S3.8")
    if not found.raw.get("Encryption"):
        result.flag(found.id, "no default encryption", "S3.4")
    if found.raw.get("Versioning") != "Enabled":
        result.flag(found.id, f"versioning {found.raw.get('Versioning') or 'never enabled'}, not Enabled", "S3.14")


def check_bastion(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    found = _examine(observed, BASTION_INSTANCE.step, BASTION_INSTANCE.key, result)
    if found is None:
        return
    tokens = found.raw.get("MetadataOptions", {}).get("HttpTokens")
    if tokens != "required":
        result.flag(found.name, f"instance metadata accepts IMDSv1 (HttpTokens {tokens or 'unset'}); IMDSv2 must be required")


def check_https(ctx: Context, observed: Mapping[str, Any], result: Result) -> None:
    """With a domain or a certificate: the production listener is HTTPS 443 with the certificate and a current TLS
    policy (ELB.17), and HTTP 80 redirects to HTTPS (ELB.1). Without either: a documented choice."""
    spec = ctx.spec
    found = _examine(observed, PRODUCTION_LISTENER.step, PRODUCTION_LISTENER.key, result)
    if found is None:
        return
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


Check = Callable[[Context, Mapping[str, Any], Result], None]

#: (name, FSBP control ids, baseline, check). The control ids are the AWS Security Hub FSBP controls the
#: check follows (AWS Security Hub User Guide, "Security Hub controls reference").
CHECKS: list[tuple[str, str, str, Check]] = [
    ("public-ingress", "EC2.18", "0.0.0.0/0 and ::/0 only on the load balancer's listener ports", check_public_ingress),
    ("default-group", "EC2.2", "the VPC's default security group allows nothing", check_default_group),
    ("remote-login", "EC2.13, EC2.14", "no SSH (22) or RDP (3389) open anywhere", check_remote_login),
    ("database", "RDS.2, RDS.3", "RDS private and encrypted at rest", check_database),
    ("cache", "ElastiCache.4, ElastiCache.5", "Redis encrypted in transit and at rest", check_cache),
    ("registry", "ECR.1", "ECR scans images on push", check_registry),
    ("artifact-bucket", "S3.4, S3.8, S3.14", "artifact bucket private, encrypted and versioned", check_artifact_bucket),
    ("bastion", "EC2.8", "IMDSv2 required on the bastion", check_bastion),
    ("https", "ELB.1, ELB.17", "HTTPS 443 with a current TLS policy and 80 redirecting, with a domain or a certificate",
     check_https),
    ("flow-logs", "EC2.6", "VPC flow logs on, all traffic", check_flow_logs),
]


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
