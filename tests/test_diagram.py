"""The architecture figure: the model from the spec, determinism, portability, freshness, live drift."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest

import pointapp
from pointapp import diagram
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION

COMMITTED = Path(__file__).resolve().parent.parent / "diagrams"


def test_model_has_every_subnet_and_every_rule_with_its_port() -> None:
    spec = load_spec("prod")
    model = diagram.build_model(spec)
    subnets = {c.id: c.label for c in model.clusters.values() if c.id.startswith("network:subnet/")}
    assert len(subnets) == 12
    for tier, definition in spec.network.tiers.items():
        for i, cidr in enumerate(definition.cidrs):
            assert cidr in subnets[f"network:subnet/{tier}/{i}"]
    flows = {(e.source, e.target, e.label) for e in model.edges if e.kind == "flow"}
    tasks = ["service:tasks/0", "service:tasks/1"]
    assert ("internet", "service:alb", "80/tcp") in flows
    assert ("bastion:instance", "service:alb", "10080") in flows
    for task in tasks:
        assert ("service:alb", task, "80") in flows
        assert (task, "database:instance", "3306") in flows
        assert (task, "cache:replication-group", "6379") in flows
        assert (task, f"endpoints:zone/{task[-1]}", "443") in flows
    for target, port in (("database:instance", "3306"), ("cache:replication-group", "6379"), ("endpoints:zone/0", "443")):
        assert ("bastion:instance", target, port) in flows
    assert {"network:nat/0", "network:igw", "database:standby", "cache:replica/1", "registry:repository",
            "delivery:pipeline", "delivery:deployment-group", "github", "frontend:app", "mail:identity",
            "service:logs", "database:secret"} <= set(model.nodes)
    assert ("service:tasks/1", "network:nat/0", "0.0.0.0/0") in {(e.source, e.target, e.label) for e in model.edges}


def test_staging_has_no_standby_and_per_az_has_two_nats() -> None:
    staging = diagram.build_model(load_spec("staging"))
    assert "database:standby" not in staging.nodes and "cache:replica/1" not in staging.nodes
    per_az = diagram.build_model(load_spec("prod", {"network": {"nat": "per-az"}}))
    assert {"network:nat/0", "network:nat/1"} <= set(per_az.nodes)


def test_rendering_is_deterministic_and_portable(tmp_path: Path) -> None:
    model = diagram.build_model(load_spec("prod"))
    first = diagram.render(model, tmp_path / "a", formats=["dot", "svg", "mermaid"])
    second = diagram.render(diagram.build_model(load_spec("prod")), tmp_path / "b", formats=["dot", "svg", "mermaid"])
    for one, two in zip(first, second, strict=True):
        assert one.read_bytes() == two.read_bytes(), one.name
    svg = (tmp_path / "a" / "architecture.svg").read_text()
    assert "data:image/png;base64," in svg
    assert not re.search(r'href="(?!data:)', svg)
    assert not re.search(r"(/usr/|/home/|/root/|/tmp/|site-packages|\.venv)", svg)
    dot = (tmp_path / "a" / "architecture.dot").read_text()
    assert "site-packages" not in dot and 'image="resources/aws/' in dot
    labels = re.findall(r'label="?([^"\n]+)"?\n', dot)
    cluster_labels = [line for line in re.findall(r"subgraph (\S+) \{", dot)]
    assert len(cluster_labels) == len(set(cluster_labels))  # diagrams merges clusters with equal labels
    assert labels


def test_the_committed_figure_is_current(tmp_path: Path) -> None:
    diagram.draw(load_spec("prod"), tmp_path, formats=["dot"])
    committed = (COMMITTED / "architecture.dot").read_text()
    assert (tmp_path / "architecture.dot").read_text() == committed, "run `make diagrams` and commit the figure"
    assert (COMMITTED / "architecture.png").exists() and (COMMITTED / "architecture.svg").exists()


def test_mermaid() -> None:
    text = diagram.to_mermaid(diagram.build_model(load_spec("prod")))
    assert text.startswith("flowchart TB")
    assert 'subgraph network_subnet_db_0["db 10.0.16.0/24 (private)"]' in text
    assert "service_alb -->|80| service_tasks_0" in text


def test_live_after_up_has_no_drift_and_out_of_band_removals_show(ctx: Context, tmp_path: Path) -> None:
    pointapp.up(ctx)
    planned = pointapp.plan(ctx)
    model = diagram.apply_plan(diagram.build_model(ctx.spec, REGION, planned.observed["network"].facts["zones"]), planned)
    assert {n.status for n in model.nodes.values()} == {"ok"}
    assert {c.status for c in model.clusters.values()} == {"ok"} and {e.status for e in model.edges} == {"ok"}
    ec2 = boto3.client("ec2", region_name=REGION)
    network = ctx.outputs("network")
    ec2.delete_subnet(SubnetId=network["subnet/cache/1"])
    (db,) = ec2.describe_security_groups(GroupIds=[network["sg/db"]])["SecurityGroups"]
    pair = next(p for perm in db["IpPermissions"] for p in perm["UserIdGroupPairs"] if p["GroupId"] == network["sg/management"])
    ec2.revoke_security_group_ingress(GroupId=network["sg/db"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [pair]}])
    ctx.forget_outputs("network")
    planned = pointapp.plan(ctx)
    model = diagram.apply_plan(diagram.build_model(ctx.spec, REGION, planned.observed["network"].facts["zones"]), planned)
    assert model.clusters["network:subnet/cache/1"].status == "missing"
    missing_edges = {(e.source, e.target, e.label) for e in model.edges if e.status == "missing"}
    assert missing_edges == {("bastion:instance", "database:instance", "3306")}
    written = diagram.render(model, tmp_path, formats=["dot"])
    assert 'color="#D13212"' in written[0].read_text()


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(pointapp.PointappError, match="--format: unknown format 'gif'"):
        diagram.render(diagram.build_model(load_spec("prod")), tmp_path, formats=["gif"])
