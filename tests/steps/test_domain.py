"""The domain step and the records the other steps write into the user's zone: ACM certificate validated by DNS,
HTTPS on 443 with the redirect, the API's alias, DKIM and MAIL FROM, ownership TXT records, and down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto.settings
import pytest

import pointapp
from pointapp.emulator import EMULATOR_CREDENTIALS, EMULATOR_GAPS
from pointapp.errors import PointappError, StepError
from pointapp.kinds import owner_record_name
from pointapp.names import api_host, frontend_root, mail_records_written
from pointapp.resources import Desired
from pointapp.spec import Spec, load_spec
from pointapp.steps import frontend, mail
from tests.conftest import REGION, aws_context, aws_like_context, make_context, stub
from tests.steps.helpers import up_is_idempotent

DOMAIN = {"domain": {"name": "example.com"}}
BACKEND = "network,domain,endpoints,registry,database,cache,mail,service"


#: Where the test's own clients go: in-process moto, or the AWS-like emulator of a test that uses it.
ENDPOINT: dict[str, str | None] = {"url": None}


def client(name: str) -> Any:
    return boto3.client(name, region_name=REGION, endpoint_url=ENDPOINT["url"], **EMULATOR_CREDENTIALS)


@pytest.fixture(autouse=True)
def acm_issues_at_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's ACM issues a certificate a minute after the request (the embedded emulator sets 0 as it starts)."""
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)
    yield
    ENDPOINT["url"] = None


def zone(name: str = "example.com", private: bool = False) -> str:
    extra: dict[str, Any] = {"VPC": {"VPCRegion": REGION, "VPCId": client("ec2").create_vpc(CidrBlock="10.9.0.0/16")[
        "Vpc"]["VpcId"]}, "HostedZoneConfig": {"PrivateZone": True}} if private else {}
    return str(client("route53").create_hosted_zone(Name=name, CallerReference=name + str(private), **extra)[
        "HostedZone"]["Id"].rsplit("/", 1)[-1])


def records(zone_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    pages = client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
    return {(r["Name"], r["Type"]): r for page in pages for r in page["ResourceRecordSets"]}


def add_record(zone_id: str, name: str, record_type: str, value: str) -> None:
    client("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "CREATE",
        "ResourceRecordSet": {"Name": name, "Type": record_type, "TTL": 300, "ResourceRecords": [{"Value": value}]}}]})


@pytest.fixture
def dkim_tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The AWS-behaviour layer gives a domain identity its DKIM tokens, as SES does: the gap is not one there."""
    monkeypatch.delitem(EMULATOR_GAPS, ("sesv2", "DkimTokens"))
    yield


def test_host_names() -> None:
    prod, staging = load_spec("prod", DOMAIN), load_spec("staging", DOMAIN)
    assert (api_host(prod), frontend_root(prod)) == ("api.example.com", "example.com")
    assert (api_host(staging), frontend_root(staging)) == ("api.staging.example.com", "app.staging.example.com")
    assert api_host(load_spec("prod")) is None and mail_records_written(prod) and not mail_records_written(staging)
    assert not mail_records_written(load_spec("prod", {**DOMAIN, "mail": {"dns_records": "print"}}))
    with pytest.raises(PointappError, match=r"^mail.dns_records: auto needs a domain"):
        load_spec("prod", {"mail": {"dns_records": "auto"}})
    assert load_spec("prod", DOMAIN).inbound_rules("ingress")[1].port == 443


def test_domain_up_serves_https_writes_its_records_and_down_removes_exactly_them(aws_like: str, dkim_tokens: None) -> None:
    ENDPOINT["url"] = aws_like
    zone_id = zone()
    add_record(zone_id, "blog.example.com", "A", "192.0.2.10")  # someone else's
    ctx = aws_like_context(aws_like, load_spec("prod", DOMAIN))
    pointapp.up(ctx, only=BACKEND)

    (summary,) = client("acm").list_certificates()["CertificateSummaryList"]
    certificate = client("acm").describe_certificate(CertificateArn=summary["CertificateArn"])["Certificate"]
    assert (certificate["DomainName"], certificate["Status"]) == ("api.example.com", "ISSUED")
    balancer = client("elbv2").describe_load_balancers(Names=["point-app-prod-alb"])["LoadBalancers"][0]
    listeners = {item["Port"]: item for item in
                 client("elbv2").describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]}
    assert listeners[443]["Protocol"] == "HTTPS" and listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
    assert listeners[443]["Certificates"] == [{"CertificateArn": certificate["CertificateArn"]}]
    assert listeners[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"

    written = records(zone_id)
    validation = certificate["DomainValidationOptions"][0]["ResourceRecord"]
    identity = client("sesv2").get_email_identity(EmailIdentity="example.com")  # tokens from the layer, as SES's
    tokens = identity["DkimAttributes"]["Tokens"]
    expected = {(validation["Name"], "CNAME"), ("api.example.com.", "A"), ("mail.example.com.", "MX"),
                ("mail.example.com.", "TXT"), *((f"{t}._domainkey.example.com.", "CNAME") for t in tokens)}
    assert expected <= set(written)
    assert written[("api.example.com.", "A")]["AliasTarget"]["DNSName"] == balancer["DNSName"].lower() + "."
    assert written[("mail.example.com.", "MX")]["ResourceRecords"] == [{"Value": f"10 feedback-smtp.{REGION}.amazonses.com"}]
    for name, record_type in expected:  # each beside its ownership record
        marker = written[(owner_record_name(name, record_type), "TXT")]["ResourceRecords"][0]["Value"]
        assert marker.startswith('"pointapp-owner=point-app-prod,'), marker

    assert any("waiting for Route 53 to apply A api.example.com." in line for line in ctx.lines)  # type: ignore[attr-defined]
    up_is_idempotent(ctx, BACKEND)
    (https,) = pointapp.audit(ctx, checks=["https"]).results  # ELB.1 and ELB.17 met, no choice left
    assert (https.status, https.findings, https.chosen) == ("pass", [], [])

    pointapp.down(aws_like_context(aws_like, load_spec("prod", DOMAIN)), only="service,mail,domain")
    left = records(zone_id)
    assert set(left) == {("example.com.", "NS"), ("example.com.", "SOA"), ("blog.example.com.", "A")}
    assert client("acm").list_certificates()["CertificateSummaryList"] == []


def test_no_public_zone_is_one_line_and_nothing_is_built(mocked: None) -> None:
    zone(private=True)
    for spec in (load_spec("prod", DOMAIN), load_spec("prod", {"domain": {"name": "example.org"}})):
        ctx = make_context(spec)
        with pytest.raises(PointappError) as raised:
            pointapp.up(ctx, only="network,domain")
        assert str(raised.value).startswith(f"domain.name: {spec.domain.name}: Route 53 has ") and "\n" not in str(raised.value)  # type: ignore[union-attr]
        assert raised.value.exit_code == 1
        assert [c for c in ctx.calls if c.mutating] == []
    assert client("acm").list_certificates()["CertificateSummaryList"] == []


def test_a_record_pointapp_did_not_write_is_never_overwritten(mocked: None) -> None:
    zone_id = zone()
    ctx = make_context(load_spec("prod", DOMAIN))
    # The name moto gives every validation record of api.example.com, written by someone else beforehand.
    arn = client("acm").request_certificate(DomainName="api.example.com", ValidationMethod="DNS")["CertificateArn"]
    record = client("acm").describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"][0][
        "ResourceRecord"]
    client("acm").delete_certificate(CertificateArn=arn)
    add_record(zone_id, record["Name"], "CNAME", "someone-else.example.net")
    with pytest.raises(StepError, match=r"is not pointapp's \(no ownership record _pointapp-cname\.") as raised:
        pointapp.up(ctx, only="domain")
    assert "\n" not in str(raised.value)
    assert records(zone_id)[(record["Name"], "CNAME")]["ResourceRecords"] == [{"Value": "someone-else.example.net"}]


def test_mail_from_and_the_custom_domain_on_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the emulator lacks (SES's MAIL FROM call, Amplify) is checked against botocore's model."""
    spec: Spec = load_spec("prod", {**DOMAIN, "frontend": {"repository": "https://github.com/owner/web",
                                                            "access_token_parameter": "/web/token"}})
    ctx = aws_context(spec)
    sesv2 = stub(ctx, "sesv2")
    sesv2.add_response("put_email_identity_mail_from_attributes", {}, {
        "EmailIdentity": "example.com", "MailFromDomain": "mail.example.com", "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"})
    kind = mail.EmailIdentity()
    desired = next(d for d in mail.desired(spec) if d.kind == "ses-identity")
    kind.update(ctx, desired, desired.props, mail.Found("ses-identity", "identity", "example.com", {}, {}),
                {"mail_from": "mail.example.com"})
    sesv2.assert_no_pending_responses()

    association = next(d for d in frontend.desired(spec) if d.kind == "amplify-domain")
    assert association.name == "example.com"
    amplify = stub(ctx, "amplify")
    settings = [{"prefix": "", "branchName": "main"}, {"prefix": "www", "branchName": "main"},
                {"prefix": "staging", "branchName": "staging"}]
    answer = {"domainAssociation": {"domainAssociationArn": "arn:aws:amplify:ap-northeast-1:123456789012:apps/d1/domains/example.com",
                                    "domainName": "example.com", "enableAutoSubDomain": False, "domainStatus": "CREATING",
                                    "statusReason": "", "subDomains": []}}
    amplify.add_response("create_domain_association", answer, {
        "appId": "d1", "domainName": "example.com", "enableAutoSubDomain": False, "subDomainSettings": settings,
        "certificateSettings": {"type": "AMPLIFY_MANAGED"}})
    amplify.add_response("delete_domain_association", answer, {"appId": "d1", "domainName": "example.com"})
    made = frontend.DomainAssociation().create(ctx, association, {**association.props, "app": "d1"}, {})
    frontend.DomainAssociation().delete(ctx, made)
    amplify.assert_no_pending_responses()
    app = next(d for d in frontend.desired(spec) if d.kind == "amplify-app")
    assert app.props["api_origin"] == "https://api.example.com"  # the browser stays on HTTPS
    assert isinstance(association, Desired)


def test_the_figure_and_the_templates_show_the_domain() -> None:
    from pointapp.cloudformation import templates
    from pointapp.diagram import build_model

    spec = load_spec("prod", {**DOMAIN, "frontend": {"repository": "https://github.com/owner/web",
                                                      "access_token_parameter": "secretsmanager:web-token"}})
    model = build_model(spec)
    assert {"domain:zone", "domain:certificate"} <= set(model.nodes)
    assert not {"domain:zone", "domain:certificate"} & set(build_model(load_spec("prod")).nodes)
    made = templates(spec, REGION, [f"{REGION}a", f"{REGION}c"])
    types = {group: sorted({r["Type"] for r in body["Resources"].values()}) for group, body in made.items()}
    certificate = made["domain"]["Resources"]["Certificate"]["Properties"]
    assert certificate["DomainValidationOptions"] == [{"DomainName": "api.example.com", "HostedZoneId": {"Ref": "HostedZoneId"}}]
    assert types["domain"] == ["AWS::CertificateManager::Certificate"]  # it writes its validation records itself
    assert "AWS::Route53::RecordSet" in types["service"] and "AWS::Amplify::Domain" in types["frontend"]
    assert sum(t == "AWS::Route53::RecordSet" for t in (r["Type"] for r in made["mail"]["Resources"].values())) == 5
    https = made["service"]["Resources"]["ListenerProduction"]["Properties"]
    assert https["Certificates"] == [{"CertificateArn": {"Fn::ImportValue": "point-app-prod-Validation"}}]
    assert "domain" not in templates(load_spec("prod"), REGION, [f"{REGION}a", f"{REGION}c"])


def test_a_certificate_acm_gave_up_on_is_requested_anew() -> None:
    from pointapp.resources import Found
    from pointapp.steps.domain import Certificate

    desired = Desired("acm-certificate", "certificate", "api.example.com", {"names": ["api.example.com"]})
    raw = {"DomainName": "api.example.com", "SubjectAlternativeNames": ["api.example.com"]}
    assert Certificate().replace(desired, desired.props, Found("acm-certificate", "certificate", "arn", {}, {
        **raw, "Status": "PENDING_VALIDATION"})) is None
    assert Certificate().replace(desired, desired.props, Found("acm-certificate", "certificate", "arn", {}, {
        **raw, "Status": "VALIDATION_TIMED_OUT"})) == "status VALIDATION_TIMED_OUT"
