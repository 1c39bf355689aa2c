from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pointapp.errors import SpecError
from pointapp.spec import ANYWHERE_V4, ANYWHERE_V6, load_spec

EXPECTED_SUBNETS = {  # tier: (public, route table, zone a, zone c)
    "ingress": (True, "ingress", "10.0.0.0/24", "10.0.1.0/24"),
    "container": (False, "app", "10.0.8.0/24", "10.0.9.0/24"),
    "db": (False, "db", "10.0.16.0/24", "10.0.17.0/24"),
    "cache": (False, "cache", "10.0.24.0/24", "10.0.25.0/24"),
    "management": (False, "management", "10.0.240.0/24", "10.0.241.0/24"),
    "egress": (False, "egress", "10.0.248.0/24", "10.0.249.0/24"),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_default_spec_reproduces_the_architecture() -> None:
    spec = load_spec("prod")
    assert spec.network.vpc_cidr == "10.0.0.0/16"
    assert spec.network.zones == 2
    assert spec.network.nat == "single"
    tiers = {name: (t.public, t.route_table, *t.cidrs) for name, t in spec.network.tiers.items()}
    assert tiers == EXPECTED_SUBNETS
    routes = {name: t.default_route for name, t in spec.network.route_tables.items()}
    assert routes == {"ingress": "internet_gateway", "app": "nat_gateway", "management": "nat_gateway", "db": "none",
                      "cache": "none", "egress": "none"}
    assert set(spec.network.security_groups) == {"ingress", "container", "db", "cache", "egress", "management"}


def _rules(spec, group):  # type: ignore[no-untyped-def]
    return sorted((r.port, r.cidrs, r.groups) for r in spec.inbound_rules(group))


def test_default_security_group_rules() -> None:
    spec = load_spec("prod")
    assert _rules(spec, "ingress") == [(80, (ANYWHERE_V4, ANYWHERE_V6), ()), (10080, (), ("management",))]
    assert _rules(spec, "container") == [(80, (), ("ingress",))]
    for group, port in (("db", 3306), ("cache", 6379), ("egress", 443)):
        assert _rules(spec, group) == [(port, (), ("container",)), (port, (), ("management",))]
    assert _rules(spec, "management") == []


def test_descriptions_say_what_rules_are() -> None:
    spec = load_spec("prod")
    cache = spec.network.security_groups["cache"]
    assert "Redis" in cache.description and "Endpoint" not in cache.description
    assert [r.description for r in spec.inbound_rules("ingress")] == [
        "HTTP from the internet to the load balancer", "Test listener of blue/green releases, from the bastion only"]
    assert all("Redis" in r.description for r in spec.inbound_rules("cache"))


def test_environments_differ_in_names_and_data_tier() -> None:
    prod, staging = load_spec("prod"), load_spec("staging")
    assert prod.name("subnet", "private", "container", "1a") == "point-app-prod-subnet-private-container-1a"
    assert staging.owner == "point-app-staging"
    assert prod.database.multi_az and not staging.database.multi_az
    assert prod.database.deletion_protection and not staging.database.deletion_protection
    assert prod.cache.replicas == 1 and staging.cache.replicas == 0


def test_yaml_overrides_merge_over_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """
network:
  vpc_cidr: 10.1.0.0/16
  nat: per-az
  tiers:
    ingress: {public: true, route_table: ingress, cidrs: [10.1.0.0/24, 10.1.1.0/24], holds: alb}
    container: {public: false, route_table: app, cidrs: [10.1.8.0/24, 10.1.9.0/24], holds: api}
    db: {public: false, route_table: db, cidrs: [10.1.16.0/24, 10.1.17.0/24], holds: mysql}
    cache: {public: false, route_table: cache, cidrs: [10.1.24.0/24, 10.1.25.0/24], holds: redis}
    management: {public: true, route_table: ingress, cidrs: [10.1.240.0/24, 10.1.241.0/24], holds: bastion}
    egress: {public: false, route_table: egress, cidrs: [10.1.248.0/24, 10.1.249.0/24], holds: endpoints}
service:
  port: 8080
  certificate_arn: arn:aws:acm:ap-northeast-1:123456789012:certificate/abc
tags:
  CostCenter: web
environments:
  staging:
    network: {nat: none}
""")
    spec = load_spec("prod", path)
    assert spec.network.vpc_cidr == "10.1.0.0/16" and spec.network.nat == "per-az"
    assert _rules(spec, "container") == [(8080, (), ("ingress",))]
    assert [r.port for r in spec.inbound_rules("ingress")] == [80, 443, 10080]
    assert spec.tags == {"Project": "point-app", "CostCenter": "web"}
    assert spec.network.security_groups["db"].ingress  # untouched defaults survive the merge
    assert load_spec("staging", path).network.nat == "none"


BAD_CONFIGS = [
    ("network: {vpc_cidr: 10.0.0.0/33}", "network.vpc_cidr", "10.0.0.0/33"),
    ("network: {vpc_cidr: banana}", "network.vpc_cidr", "banana"),
    ("network: {vpc_cidr: 10.0.0.1/16}", "network.vpc_cidr", "10.0.0.1/16"),
    ("network: {tiers: {db: {public: false, route_table: db, cidrs: [10.1.16.0/24, 10.0.17.0/24], holds: x}}}",
     "network.tiers.db.cidrs[0]", "outside the VPC"),
    ("network: {tiers: {db: {public: false, route_table: db, cidrs: [10.0.8.0/24, 10.0.17.0/24], holds: x}}}",
     "network.tiers.db.cidrs[0]", "overlaps 10.0.8.0/24"),
    ("network: {tiers: {db: {public: false, route_table: db, cidrs: [10.0.16.0/24], holds: x}}}",
     "network.tiers.db.cidrs", "one per zone"),
    ("network:\n  tiers:\n    db: {public: false, route_table: db, cidrs: [10.0.16.0/24, 10.0.17.0/24], holds: x}\n"
     "    db: {public: false, route_table: db, cidrs: [10.0.18.0/24, 10.0.19.0/24], holds: y}\n", "db", "defined twice"),
    ("service: {port: 70000}", "service.port", "70000"),
    ("service: {port: web}", "service.port", "'web'"),
    ("network: {security_groups: {db: {description: d, ingress: [{port: 0, groups: [container], description: x}]}}}",
     "network.security_groups.db.ingress[0].port", "out of range"),
    ("network: {security_groups: {db: {description: d, ingress: [{port: 3306, groups: [web], description: x}]}}}",
     "network.security_groups.db.ingress[0].groups", "unknown security group 'web'"),
    ("network: {security_groups: {db: {description: d, ingress: [{port: 3306, description: x}]}}}",
     "network.security_groups.db.ingress[0]", "either cidrs or groups"),
    ("network: {nat: double}", "network.nat", "'double'"),
    ("network: {zones: 0}", "network.zones", "0"),
    ("network: {zones: 1}", "network.zones", "1 is too few; allowed: 2 to 6 (an Application Load Balancer"),
    ("prefix: abcdefghijklmnopqrstu", "prefix", "makes the target group name 'abcdefghijklmnopqrstu-prod-tg-blue' "
     "(34 characters); AWS allows at most 32 characters"),
    ("prefix: internal", "prefix", "makes the load balancer name 'internal-prod-alb', which AWS refuses"),
    ("database: {engine_version: '8.0'}", "database.engine_version", "8.0 left RDS standard support on 31 July 2026; "
     "allowed: 8.4 or later, or set database.extended_support: true"),
    ("netwrok: {nat: none}", "netwrok", "unknown key 'netwrok'; allowed here: prefix, environment, tags"),
    ("network: {vpc: 10.0.0.0/16}", "network.vpc", "unknown key 'vpc'; allowed here: vpc_cidr"),
    ("network: {tiers: {db: {public: false, route_table: nowhere, cidrs: [10.0.16.0/24, 10.0.17.0/24], holds: x}}}",
     "network.tiers.db.route_table", "unknown route table 'nowhere'"),
    ("service: {certificate_arn: not-an-arn}", "service.certificate_arn", "not-an-arn"),
    ("tags: {Name: x}", "tags.Name", "reserved"),
    ("environment: prod", "environment", "--env"),
    ("- a list", "--config", "must hold a mapping"),
    ("network: {nat: [unclosed", "--config", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "field", "message"), BAD_CONFIGS)
def test_invalid_config_is_refused_with_one_line(tmp_path: Path, text: str, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec("prod", write(tmp_path, text))
    line = str(caught.value)
    assert "\n" not in line
    assert field in line and message in line


def test_every_name_keeps_awss_limits_for_the_environments_and_the_longest_prefix_that_fits() -> None:
    from pointapp.names import NAME_RULES, built_names

    for env in ("prod", "staging"):
        spec = load_spec(env, {"prefix": "p" * (32 - len(f"-{env}-tg-green"))})  # the tightest name: 32
        kinds = {kind for kind, _ in built_names(spec)}
        assert {"load-balancer", "target-group", "db-instance", "replication-group", "iam-role", "s3-bucket",
                "security-group"} <= kinds <= set(NAME_RULES) | {"listener", "vpc-endpoint", "flow-log", "s3-object",
                                                                 "ses-identity", "ec2-instance", "oidc-provider",
                                                                 "amplify-branch", "amplify-build",
                                                                 # named by pointapp only: AWS gives them no name
                                                                 "s3-bucket-policy", "waf-association", "kms-key"}


def test_an_environment_name_aws_would_refuse_is_refused_before_any_call() -> None:
    with pytest.raises(SpecError, match=r"^prefix: prefix 'point-app' with environment 'Staging_EU' makes the ECR "
                                        r"repository name 'point-app-Staging_EU/api', which AWS refuses; allowed: "):
        load_spec("Staging_EU", {"environments": {"Staging_EU": {}}})
    with pytest.raises(SpecError, match=r"'point-app-staging-europe-west-tg-blue' \(37 characters\); AWS allows at most 32"):
        load_spec("staging-europe-west", {"environments": {"staging-europe-west": {}}})


def test_the_artifact_bucket_counts_the_account_and_the_longest_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from pointapp import names
    from pointapp.target import known_regions

    assert names.longest_region() == max(map(len, known_regions())) >= len("ap-northeast-1")
    # The load balancer's 32 characters bind first; without them the bucket's 63 would.
    monkeypatch.setattr(names, "NAME_RULES", {"s3-bucket": names.NAME_RULES["s3-bucket"]})
    spec = load_spec("prod").model_copy(update={"prefix": "p" * 21})
    with pytest.raises(SpecError, match=r"S3 bucket name 'p{21}-prod-artifacts' \(with -<account>-<region>: up to 6\d\); "
                                        r"AWS allows at most 63"):
        names.check_names(spec)


def test_extended_support_lets_a_version_past_standard_support_be_chosen_deliberately() -> None:
    spec = load_spec("prod", {"database": {"engine_version": "8.0.40", "extended_support": True}})
    assert spec.database.engine_version == "8.0.40"
    assert load_spec("prod").database.engine_version == "8.4" and not load_spec("prod").database.extended_support


def test_a_region_of_a_partition_pointapp_does_not_support_is_refused() -> None:
    from pointapp.spec import check_region
    from pointapp.target import resolve_target

    assert [check_region(r) for r in ("ap-northeast-1", "cn-north-1", "us-gov-west-1")] == ["aws", "aws-cn", "aws-us-gov"]
    with pytest.raises(SpecError) as caught:
        resolve_target(region="us-iso-east-1", environ={})
    assert str(caught.value) == ("--region: 'us-iso-east-1' is in the partition aws-iso, which pointapp does not support; "
                                 "allowed: regions of aws, aws-cn, aws-us-gov")


def test_unknown_environment() -> None:
    with pytest.raises(SpecError, match=r"--env: unknown environment 'dev'; allowed: prod, staging"):
        load_spec("dev")


def test_environment_declared_in_config_is_allowed(tmp_path: Path) -> None:
    spec = load_spec("qa", write(tmp_path, "environments: {qa: {network: {nat: none}}}"))
    assert spec.owner == "point-app-qa" and spec.network.nat == "none"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="--config: cannot read"):
        load_spec("prod", tmp_path / "absent.yaml")


def test_every_default_subnet_is_inside_the_vpc_and_disjoint() -> None:
    spec = load_spec("prod")
    vpc = ipaddress.ip_network(spec.network.vpc_cidr)
    subnets = [ipaddress.ip_network(c) for t in spec.network.tiers.values() for c in t.cidrs]
    assert len(subnets) == 12
    assert all(s.subnet_of(vpc) for s in subnets)  # type: ignore[arg-type]
    assert len({str(s) for s in subnets}) == 12
