"""The mail step: the SES identity and its configuration set (in-process moto), and what it changes on AWS."""

from __future__ import annotations

import pointapp
from pointapp.resources import Found
from pointapp.spec import load_spec
from pointapp.steps import mail
from pointapp.target import Context
from tests.conftest import aws_context, make_context, stub
from tests.steps.helpers import client, down_leaves_nothing, prod_with, up_is_idempotent

ACCOUNT = "123456789012"

prod = prod_with("mail")


def test_mail_identity_and_records(prod: Context) -> None:
    identity = client("sesv2").get_email_identity(EmailIdentity="example.com")
    assert identity["IdentityType"] == "DOMAIN" and identity["ConfigurationSetName"] == "point-app-prod-mail"
    records = mail.dns_records(prod)
    assert ("TXT", "_dmarc.example.com", "v=DMARC1; p=none;") in [tuple(r) for r in records.rows]


def test_mail_to_an_address_needs_no_dns(mocked: None) -> None:
    ctx = make_context(load_spec("prod", {"mail": {"identity": "noreply@example.com"}}))
    pointapp.up(ctx, only="mail")
    assert client("sesv2").get_email_identity(EmailIdentity="noreply@example.com")["IdentityType"] == "EMAIL_ADDRESS"
    assert len(mail.dns_records(ctx)) == 0
    assert any("verification link" in line for line in ctx.lines)  # type: ignore[attr-defined]


def test_the_configuration_set_requires_tls(prod: Context) -> None:
    answer = client("sesv2").get_configuration_set(ConfigurationSetName="point-app-prod-mail")
    assert answer["DeliveryOptions"] == {"TlsPolicy": "REQUIRE"}
    assert answer["ReputationOptions"]["ReputationMetricsEnabled"]


def test_each_dkim_token_is_a_cname_record(mocked: None) -> None:
    ctx = make_context()
    ctx.remember_outputs("mail", {"identity/tokens": ["tok1", "tok2", "tok3"]})  # as SES gives them for a domain
    records = mail.dns_records(ctx)
    assert [tuple(r) for r in records.rows] == [("CNAME", f"tok{i}._domainkey.example.com", f"tok{i}.dkim.amazonses.com")
                                                for i in (1, 2, 3)] + [
        ("TXT", "_dmarc.example.com", "v=DMARC1; p=none;")]
    assert records.title == "DNS records to add for example.com"


def test_what_differs_is_what_the_step_changes() -> None:
    configuration_set, identity = mail.desired(load_spec("prod"))
    relaxed = Found("ses-configuration-set", "configuration-set", "point-app-prod-mail", {},
                    {"DeliveryOptions": {"TlsPolicy": "OPTIONAL"}})
    assert mail.ConfigurationSet().differences(configuration_set, configuration_set.props, relaxed) == {"tls": "REQUIRE"}
    elsewhere = Found("ses-identity", "identity", "example.com", {}, {"ConfigurationSetName": "someone-elses"})
    assert mail.EmailIdentity().differences(identity, identity.props, elsewhere) == {
        "configuration_set": "point-app-prod-mail"}


def test_updates_and_tags_on_aws_name_the_resources_by_their_arn() -> None:
    ctx = aws_context()
    ctx.remember_outputs("account", {"id": ACCOUNT})
    sesv2 = stub(ctx, "sesv2")
    arn = f"arn:aws:ses:ap-northeast-1:{ACCOUNT}"
    sesv2.add_response("tag_resource", {}, {"ResourceArn": f"{arn}:configuration-set/point-app-prod-mail",
                                            "Tags": [{"Key": "Project", "Value": "point-app"}]})
    sesv2.add_response("put_configuration_set_delivery_options", {},
                       {"ConfigurationSetName": "point-app-prod-mail", "TlsPolicy": "REQUIRE"})
    sesv2.add_response("tag_resource", {}, {"ResourceArn": f"{arn}:identity/example.com",
                                            "Tags": [{"Key": "Project", "Value": "point-app"}]})
    sesv2.add_response("put_email_identity_configuration_set_attributes", {},
                       {"EmailIdentity": "example.com", "ConfigurationSetName": "point-app-prod-mail"})
    configuration_set, identity = mail.desired(ctx.spec)
    found_set = Found("ses-configuration-set", "configuration-set", "point-app-prod-mail", {}, {})
    mail.ConfigurationSet().tag(ctx, found_set, {"Project": "point-app"})
    mail.ConfigurationSet().update(ctx, configuration_set, configuration_set.props, found_set, {"tls": "REQUIRE"})
    found_identity = Found("ses-identity", "identity", "example.com", {}, {})
    mail.EmailIdentity().tag(ctx, found_identity, {"Project": "point-app"})
    mail.EmailIdentity().update(ctx, identity, identity.props, found_identity, {"configuration_set": "point-app-prod-mail"})
    sesv2.assert_no_pending_responses()


def test_idempotent(prod: Context) -> None:
    up_is_idempotent(prod, "mail")


def test_down_removes_the_identity_and_the_configuration_set(prod: Context) -> None:
    assert down_leaves_nothing(prod, "mail") == []
    assert client("sesv2").list_email_identities()["EmailIdentities"] == []
    assert client("sesv2").list_configuration_sets()["ConfigurationSets"] == []
