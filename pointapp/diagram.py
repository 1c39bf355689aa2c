"""The architecture figure, drawn from the same spec the steps build from, or from what exists.

First a pure model (clusters, nodes and edges with stable ids) is built from the spec; for the live
figure each element gets a status from the plan: missing (the plan creates it), changed (the plan
updates it), or extra (pointapp's, not in the spec). Then it is rendered with the ``diagrams`` package
(graphviz) to PNG, a portable SVG (icons embedded, no path of this machine), a deterministic ``.dot``,
and Mermaid.
"""

from __future__ import annotations

import base64
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pointapp.errors import PointappError
from pointapp.names import api_host, frontend_root, mail_records_written
from pointapp.plan import Change, Plan
from pointapp.spec import Spec
from pointapp.steps.network import rule_permission, zone_suffix
from pointapp.target import Context

FORMATS = ("png", "svg", "dot", "mermaid")
STATUS_STYLE = {  # colour, line style, legend text
    "ok": ("#232F3E", "solid", "as specified"),
    "missing": ("#D13212", "dashed", "missing: in the spec, not in the account"),
    "changed": ("#FF9900", "solid", "differs from the spec"),
    "extra": ("#8D8D8D", "dotted", "pointapp's, but not in the spec"),
}


@dataclass(frozen=True)
class _Drawn:
    """What the figure draws, with its status from the plan (a key of :data:`STATUS_STYLE`)."""

    status: str = field(default="ok", kw_only=True)


@dataclass(frozen=True)
class _Named(_Drawn):
    id: str  # stable: the .dot names it, so the figure can be diffed
    label: str


@dataclass(frozen=True)
class Cluster(_Named):
    parent: str | None = None


@dataclass(frozen=True)
class Node(_Named):
    icon: str
    cluster: str | None = None


@dataclass(frozen=True)
class Edge(_Drawn):
    source: str
    target: str
    label: str = ""
    id: str = ""
    kind: str = "flow"  # flow (security group), route, release, data


@dataclass
class Model:
    clusters: dict[str, Cluster] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    route_tables: dict[str, str] = field(default_factory=dict)  # subnet cluster -> its route table

    def cluster(self, id: str, label: str, parent: str | None = None) -> str:
        self.clusters[id] = Cluster(id, label, parent)
        return id

    def node(self, id: str, label: str, icon: str, cluster: str | None = None) -> str:
        self.nodes[id] = Node(id, label, icon, cluster)
        return id

    def edge(self, source: str, target: str, label: str = "", id: str = "", kind: str = "flow") -> None:
        self.edges.append(Edge(source, target, label, id or f"{source}>{target}", kind))

    def contents(self) -> tuple[dict[str | None, list[str]], dict[str | None, list[Node]]]:
        """The clusters in each cluster and the nodes in each, by the containing cluster's id (None: the top)."""
        children: dict[str | None, list[str]] = {}
        for cluster in self.clusters.values():
            children.setdefault(cluster.parent, []).append(cluster.id)
        members: dict[str | None, list[Node]] = {}
        for node in self.nodes.values():
            members.setdefault(node.cluster, []).append(node)
        return children, members


# --- the model from the spec ---------------------------------------------------------------------


def _zones(spec: Spec, region: str, zones: Sequence[str] | None) -> list[str]:
    if zones is None:  # the reference region's first zones, without asking AWS
        letters = "acdb"
        zones = [f"{region}{letters[i]}" for i in range(spec.network.zones)]
    return list(zones[: spec.network.zones])


def build_model(spec: Spec, region: str = "ap-northeast-1", zones: Sequence[str] | None = None) -> Model:
    """Clusters, nodes and edges of the architecture the spec describes (no AWS call)."""
    network = spec.network
    model = Model()
    zone_names = _zones(spec, region, zones)
    model.node("internet", "Users on the internet", "users")
    model.node("github", "GitHub Actions\n(build, push :latest)", "github")
    model.cluster("aws", f"AWS {region}")
    model.cluster("vpc", f"VPC {network.vpc_cidr}", "aws")
    model.node("network:igw", "Internet gateway", "igw", "vpc")
    model.node("service:alb", "Application Load Balancer\n(ingress subnets)", "alb", "vpc")
    nat_zones = {"none": [], "single": [0], "per-az": list(range(len(zone_names)))}[network.nat]
    tier_cluster: dict[tuple[str, int], str] = {}
    for i, zone in enumerate(zone_names):
        zone_id = model.cluster(f"zone/{i}", f"zone {zone_suffix(region, zone)}", "vpc")
        for tier_name, tier in network.tiers.items():
            kind = "public" if tier.public else "private"
            tier_cluster[(tier_name, i)] = model.cluster(
                f"network:subnet/{tier_name}/{i}", f"{tier_name} {tier.cidrs[i]} ({kind})", zone_id)
            model.route_tables[tier_cluster[(tier_name, i)]] = tier.route_table
    for i in nat_zones:
        model.node(f"network:nat/{i}", "NAT gateway\n+ Elastic IP", "nat", tier_cluster[(network.nat_tier, i)])
    tasks = [model.node(f"service:tasks/{i}", "API tasks\n(Fargate)", "fargate",
                        tier_cluster[(spec.service.task_tier, i)]) for i in range(len(zone_names))]
    database = [model.node("database:instance", "RDS MySQL\nprimary", "rds", tier_cluster[("db", 0)])]
    if spec.database.multi_az and len(zone_names) > 1:
        database.append(model.node("database:standby", "RDS MySQL\nstandby", "rds", tier_cluster[("db", 1)]))
        model.edge(database[0], database[1], "sync replication", kind="data")
    cache = [model.node("cache:replication-group", "Redis\nprimary", "redis", tier_cluster[("cache", 0)])]
    for r in range(min(spec.cache.replicas, len(zone_names) - 1)):
        cache.append(model.node(f"cache:replica/{r + 1}", "Redis\nreplica", "redis", tier_cluster[("cache", r + 1)]))
        model.edge(cache[0], cache[-1], "replication", kind="data")
    bastion = model.node("bastion:instance", "Bastion\n(SSM only)", "bastion", tier_cluster[(spec.bastion.tier, 0)])
    services = ", ".join(spec.endpoints.interface)
    endpoints = [model.node(f"endpoints:zone/{i}", f"VPC endpoints\n{services}", "endpoint",
                            tier_cluster[(spec.endpoints.tier, i)]) for i in range(len(zone_names))]
    if spec.endpoints.s3_gateway:
        model.node("endpoints:endpoint/s3", "S3 gateway endpoint\n(route on the app table)", "endpoint", "vpc")

    members = {"ingress": ["service:alb"], "container": tasks, "db": database[:1], "cache": cache[:1],
               "egress": endpoints, "management": [bastion]}
    groups = {spec.service.load_balancer_group: ["service:alb"], spec.service.task_group: tasks,
              spec.bastion.security_group: [bastion], spec.endpoints.security_group: endpoints}
    groups = {**members, **groups}
    for group in network.security_groups:
        for rule in spec.inbound_rules(group):
            targets = groups.get(group, [])
            if rule.cidrs:
                sources = ["internet"] if any(c in ("0.0.0.0/0", "::/0") for c in rule.cidrs) else []
                for target in targets:
                    for source in sources:
                        model.edge(source, target, f"{rule.port}/{rule.protocol}", f"rule:{group}:cidr:{rule.port}")
                continue
            for source_group in rule.groups:
                for source in groups.get(source_group, []):
                    for target in _near(source, targets):
                        model.edge(source, target, f"{rule.port}", f"rule:{group}:{source_group}:{rule.port}")
    model.edge("network:igw", "service:alb", "", kind="route")
    for i in range(len(zone_names)):
        nat = f"network:nat/{i if network.nat == 'per-az' else 0}"
        if nat in model.nodes:
            model.edge(tasks[i], nat, "0.0.0.0/0", f"route:app/{i}", kind="route")
    for nat in [n for n in model.nodes if n.startswith("network:nat/")]:
        model.edge(nat, "network:igw", "", kind="route")

    for (tier_name, _), cluster_id in tier_cluster.items():  # an empty box would not be drawn
        if not any(node.cluster == cluster_id for node in model.nodes.values()):
            model.node(f"{cluster_id}/holds", network.tiers[tier_name].holds, "note", cluster_id)
    model.cluster("release", "Release", "aws")
    model.node("registry:repository", "ECR\n(API image)", "ecr", "release")
    model.node("delivery:pipeline", "CodePipeline", "codepipeline", "release")
    model.node("delivery:deployment-group", "CodeDeploy\nblue/green", "codedeploy", "release")
    model.cluster("regional", "Regional services", "aws")
    model.node("frontend:app", "Amplify Hosting\n(React app)", "amplify", "regional")
    model.node("mail:identity", f"SES\n{spec.mail.identity}", "ses", "regional")
    model.node("service:logs", "CloudWatch Logs", "logs", "regional")
    model.node("database:secret", "Secrets Manager", "secrets", "regional")
    model.edge("github", "registry:repository", "push", kind="release")
    model.edge("registry:repository", "delivery:pipeline", ":latest pushed", kind="release")
    model.edge("delivery:pipeline", "delivery:deployment-group", "CodeDeployToECS", kind="release")
    model.edge("delivery:deployment-group", "service:alb", "switch listeners", kind="release")
    model.edge("internet", "frontend:app", "HTTPS", kind="flow")
    if "network:igw" in model.nodes and nat_zones:
        model.edge("network:igw", "mail:identity", "SES API (HTTPS) via NAT", kind="route")
    model.edge(endpoints[0], "service:logs", "logs", kind="data")
    model.edge(endpoints[0], "database:secret", "secrets", kind="data")
    model.edge(endpoints[0], "registry:repository", "image pulls", kind="data")
    if spec.domain is not None:
        _domain(model, spec)
    return model


def _domain(model: Model, spec: Spec) -> None:
    """The user's hosted zone (looked up, never made) and the API's certificate, with what points at them."""
    host, root = api_host(spec), frontend_root(spec)
    model.node("domain:zone", f"Route 53 zone\n{spec.domain.name if spec.domain else ''} (yours)", "route53", "regional")
    model.node("domain:certificate", f"ACM certificate\n{host}", "acm", "regional")
    model.edge("internet", "domain:zone", "DNS", kind="flow")
    model.edge("domain:zone", "service:alb", f"alias {host}", kind="flow")
    model.edge("domain:certificate", "service:alb", "HTTPS 443", kind="data")
    if root and spec.frontend.repository:
        model.edge("domain:zone", "frontend:app", f"{root}, www, staging", kind="flow")
    if mail_records_written(spec):
        model.edge("domain:zone", "mail:identity", "DKIM, MAIL FROM", kind="data")


def _near(source: str, targets: list[str]) -> list[str]:
    """Per-zone sources reach the per-zone target of their own zone; others reach them all."""
    if "/" in source and len(targets) > 1 and all("/" in t for t in targets):
        zone = source.rsplit("/", 1)[1]
        same = [t for t in targets if t.rsplit("/", 1)[1] == zone]
        return same or targets
    return targets


# --- statuses from a plan ------------------------------------------------------------------------


def _node_for(change: Change, model: Model) -> str | None:
    candidates = [f"{change.step}:{change.key}"]
    if change.step == "endpoints":
        candidates += [n for n in model.nodes if n.startswith("endpoints:zone/")] if change.key != "endpoint/s3" else []
    if change.step == "service" and change.key in ("ecs-service", "taskdef", "cluster", "role/task", "role/execution"):
        candidates += [n for n in model.nodes if n.startswith("service:tasks/")]
    if change.step == "service" and change.key.startswith(("listener/", "tg/")):
        candidates.append("service:alb")
    if change.kind in ("dns-record", "dkim-record"):
        candidates.append("domain:zone")  # every record pointapp writes is in the user's zone
    if change.step == "domain" and change.key != "record/validation":
        candidates.append("domain:certificate")
    if change.kind == "amplify-domain":
        candidates.append("frontend:app")
    if change.step == "network" and change.key.startswith("rtb/"):
        table = change.key.split("/")[1]
        candidates += [c for c, t in model.route_tables.items() if t == table]
    found = list(dict.fromkeys(c for c in candidates if c in model.nodes or c in model.clusters))
    return found[0] if len(found) == 1 else ("|".join(found) if found else None)


def apply_plan(model: Model, planned: Plan) -> Model:
    """Mark what the plan would change: missing, changed, or extra (pointapp's but not in the spec)."""
    other = 0
    for change in planned.changes:
        if change.args.get("skip"):
            continue
        status = {"create": "missing", "update": "changed", "delete": "extra"}[change.action]
        if change.kind == "security-group-rule":
            if _mark_rule(model, change, status):
                continue
        drawn = f"{change.step}:{change.key}" in model.nodes or f"{change.step}:{change.key}" in model.clusters
        if change.action == "delete" and "not in the spec" in change.detail and not drawn:
            extra = model.node(f"extra:{change.step}:{change.key}:{change.name}", f"{change.name}\n(not in the spec)",
                               "extra", "vpc" if change.step == "network" else "aws")
            model.nodes[extra] = replace(model.nodes[extra], status="extra")
            continue
        target = _node_for(change, model)
        if target is None:
            other += 1
            continue
        for element in target.split("|"):
            _mark(model, element, status)
    if other:
        model.notes.append(f"{other} other difference(s), listed by `pointapp plan`")
    return model


_RANK = {"ok": 0, "changed": 1, "extra": 1, "missing": 2}


def _mark(model: Model, element: str, status: str) -> None:
    if element in model.nodes and _RANK[status] > _RANK[model.nodes[element].status]:
        model.nodes[element] = replace(model.nodes[element], status=status)
    if element in model.clusters and _RANK[status] > _RANK[model.clusters[element].status]:
        model.clusters[element] = replace(model.clusters[element], status=status)


def _mark_rule(model: Model, change: Change, status: str) -> bool:
    permission = rule_permission(change)
    if permission is None:
        return False
    group = change.key.split("/", 1)[1]
    source = permission.source.split("/", 1)[1] if permission.source_kind == "group" else "cidr"
    wanted = f"rule:{group}:{source}:{permission.from_port}"
    marked = False
    for index, edge in enumerate(model.edges):
        if edge.id == wanted and _RANK[status] > _RANK[edge.status]:
            model.edges[index] = replace(edge, status=status)
            marked = True
    return marked


# --- rendering -----------------------------------------------------------------------------------


def _icon_classes() -> dict[str, Any]:
    from diagrams.aws import compute, database, devtools, engagement, general, management, mobile, network, security
    from diagrams.onprem.ci import GithubActions

    return {
        "users": general.Users, "github": GithubActions, "igw": network.InternetGateway,
        "alb": network.ElbApplicationLoadBalancer, "nat": network.NATGateway, "fargate": compute.Fargate,
        "rds": database.RDS, "redis": database.ElasticacheForRedis, "bastion": compute.EC2, "endpoint": network.Endpoint,
        "ecr": compute.ECR, "codepipeline": devtools.Codepipeline, "codedeploy": devtools.Codedeploy,
        "amplify": mobile.Amplify, "ses": engagement.SimpleEmailServiceSes, "logs": management.Cloudwatch,
        "secrets": security.SecretsManager, "extra": general.General, "note": _Note, "route53": network.Route53,
        "acm": security.CertificateManager,
    }


def _Note(label: str, nodeid: str, **attrs: Any) -> Any:  # noqa: N802 - used like the icon classes
    from diagrams import Node as DiagramNode

    return DiagramNode(label, nodeid=nodeid, shape="plaintext", fontcolor="#7D8998", **attrs)


def _icons_root() -> str:
    import diagrams

    return str(Path(diagrams.__file__).resolve().parent.parent)


def render(model: Model, directory: str | Path, name: str = "architecture", formats: Iterable[str] = ("png", "svg"),
           title: str = "") -> list[Path]:
    """Write the figure in ``formats`` into ``directory``; returns the files written."""
    formats = list(formats)
    for fmt in formats:
        if fmt not in FORMATS:
            raise PointappError(f"--format: unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "mermaid" in formats:
        path = out / f"{name}.mmd"
        path.write_text(to_mermaid(model), encoding="utf-8")
        written.append(path)
    graph_formats = [f for f in formats if f in ("png", "svg", "dot")]
    if not graph_formats:
        return written
    dot_source = _dot_source(model, title)
    import graphviz

    try:
        if "dot" in graph_formats:
            path = out / f"{name}.dot"
            path.write_text(dot_source.replace(_icons_root() + "/", ""), encoding="utf-8")
            written.append(path)
        if "png" in graph_formats:
            path = out / f"{name}.png"
            path.write_bytes(graphviz.Source(dot_source).pipe(format="png", quiet=True))
            written.append(path)
        if "svg" in graph_formats:
            path = out / f"{name}.svg"
            path.write_text(_portable_svg(graphviz.Source(dot_source).pipe(format="svg", quiet=True).decode()), encoding="utf-8")
            written.append(path)
    except graphviz.ExecutableNotFound:
        raise PointappError("graphviz is not installed (the `dot` program): install the OS package 'graphviz' "
                            "or run `make setup`") from None
    return written


def _portable_svg(svg: str) -> str:
    """Embed every icon as a data URI, so the SVG carries no path of the machine that drew it."""
    def embed(match: re.Match[str]) -> str:
        path = Path(match.group(2))
        data = base64.b64encode(path.read_bytes()).decode() if path.exists() else ""
        return f'{match.group(1)}="data:image/png;base64,{data}"'

    return re.sub(r'(xlink:href|href)="(/[^"]+\.png)"', embed, svg)


def _dot_source(model: Model, title: str) -> str:
    """The graphviz source, built through ``diagrams`` with stable node ids."""
    from diagrams import Cluster as DiagramCluster
    from diagrams import Diagram
    from diagrams import Edge as DiagramEdge

    icons = _icon_classes()
    with tempfile.TemporaryDirectory() as scratch:
        diagram = Diagram(title, filename=str(Path(scratch) / "figure"), direction="TB", curvestyle="curved",
                          outformat="dot", show=False,
                          graph_attr={"fontsize": "22", "pad": "0.4", "nodesep": "0.5", "ranksep": "0.9",
                                      "splines": "spline", "newrank": "true"},
                          node_attr={"fontsize": "11"}, edge_attr={"fontsize": "10"})
        with diagram:
            made: dict[str, Any] = {}
            children, members = model.contents()

            def emit(cluster_id: str | None) -> None:
                for node in members.get(cluster_id, []):
                    color = STATUS_STYLE[node.status][0]
                    attrs = {"fontcolor": color} if node.status != "ok" else {}
                    made[node.id] = icons[node.icon](_label(node), nodeid=_safe_id(node.id), **attrs)
                for child in children.get(cluster_id, []):
                    cluster = model.clusters[child]
                    color = STATUS_STYLE[cluster.status][0]
                    attrs = {"fontsize": "12", "fontcolor": color,
                             "pencolor": color if cluster.status != "ok" else "#AAB7B8",
                             "style": "dashed" if cluster.status == "missing" else "rounded"}
                    with DiagramCluster(cluster.label, graph_attr=attrs):
                        emit(child)

            emit(None)
            for edge in model.edges:
                color, style, _ = STATUS_STYLE[edge.status]
                if edge.status == "ok":
                    color = {"flow": "#232F3E", "route": "#7D8998", "release": "#1A7F37", "data": "#6B5B95"}[edge.kind]
                    style = "dashed" if edge.kind in ("route", "data") else "solid"
                made[edge.source] >> DiagramEdge(label=edge.label, color=color, style=style,
                                                 fontcolor=color) >> made[edge.target]
            _legend(model)
            source = str(diagram.dot.source)
    return source


def _label(node: Node) -> str:
    suffix = {"missing": "\n(missing)", "changed": "\n(differs)", "extra": ""}.get(node.status, "")
    return node.label + suffix


def _safe_id(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _legend(model: Model) -> None:
    from diagrams import Node as DiagramNode

    lines = ["<b>Legend</b>"]
    for status in ("ok", "missing", "changed", "extra"):
        color, style, text = STATUS_STYLE[status]
        lines.append(f'<font color="{color}">{"━━" if style == "solid" else "╍╍"} {text}</font>')
    lines += ['<font color="#232F3E">→ security-group flow, with its port</font>',
              '<font color="#7D8998">⇢ route to the internet</font>',
              '<font color="#1A7F37">→ release flow</font>']
    lines += [f'<font color="#8D8D8D">{note}</font>' for note in model.notes]
    DiagramNode("<" + "<br align='left'/>".join(lines) + "<br align='left'/>>", nodeid="legend", shape="box",
                style="rounded", color="#AAB7B8", width="0", height="0", margin="0.2")


def to_mermaid(model: Model) -> str:
    """The same model as a Mermaid flowchart, for docs that render it."""
    lines = ["flowchart TB"]
    children, members = model.contents()

    def emit(cluster_id: str | None, indent: str) -> None:
        for node in members.get(cluster_id, []):
            label = _label(node).replace("\n", "<br/>").replace('"', "'")
            lines.append(f'{indent}{_safe_id(node.id)}["{label}"]')
        for child in children.get(cluster_id, []):
            label = model.clusters[child].label.replace('"', "'")
            lines.append(f'{indent}subgraph {_safe_id(child)}["{label}"]')
            emit(child, indent + "  ")
            lines.append(f"{indent}end")

    emit(None, "  ")
    for edge in model.edges:
        arrow = "-.->" if edge.kind in ("route", "data") or edge.status == "missing" else "-->"
        label = f"|{edge.label}|" if edge.label else ""
        lines.append(f"  {_safe_id(edge.source)} {arrow}{label} {_safe_id(edge.target)}")
    colors = {"missing": "#D13212", "changed": "#FF9900", "extra": "#8D8D8D"}
    for status, color in colors.items():
        lines.append(f"  classDef {status} stroke:{color},color:{color},stroke-dasharray: 4 2")
    for node in model.nodes.values():
        if node.status != "ok":
            lines.append(f"  class {_safe_id(node.id)} {node.status}")
    return "\n".join(lines) + "\n"


def draw(spec: Spec, directory: str | Path, *, formats: Iterable[str] = ("png", "svg"), name: str = "architecture",
         ctx: Context | None = None, planned: Plan | None = None) -> list[Path]:
    """Draw the spec's architecture; with ``ctx``, what exists on that target, with drift marked (from
    ``planned``, a plan already made on ``ctx``, or a new one)."""
    if ctx is None:
        model = build_model(spec)
        title = f"{spec.owner}: architecture from the spec"
    else:
        from pointapp import engine

        planned = planned if planned is not None else engine.plan(ctx)
        zones = planned.observed["network"].facts["zones"] if "network" in planned.observed else None
        model = apply_plan(build_model(spec, ctx.target.region, zones), planned)
        title = f"{spec.owner}: what exists on {ctx.target.describe()}"
    return render(model, directory, name, formats, title)
