"""The ``mail`` step: the SES identity the API sends from, and a configuration set.

A domain identity signs with Easy DKIM: SES gives three DKIM tokens that become CNAME records in the
domain's DNS, which the operator adds (pointapp prints them as a table). An e-mail address identity
is verified by the link SES mails to it. The task role may send only from this identity (see the
``service`` step); the API reaches SES's HTTPS API through the NAT gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.names import configuration_set_name
from pointapp.outputs import MAIL_DKIM_TOKENS, MAIL_IDENTITY
from pointapp.plan import Table
from pointapp.resources import Arn, Desired, Found, Kind, Request, ResourceStep, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import add_tags, aws_tags, from_aws_tags

NAME = "mail"


def _owned_tags(ctx: StepContext, arn: str, raw: Mapping[str, Any]) -> dict[str, str]:
    """SES returns the tags with the resource; ask separately only when it did not."""
    if "Tags" in raw:
        return from_aws_tags(raw["Tags"])
    return from_aws_tags(ctx.client("sesv2").list_tags_for_resource(ResourceArn=arn).get("Tags"))


def _owned(kind: Kind, ctx: StepContext, spec: Spec, step: str, answer: dict[str, Any] | None, name: str,
           resource: str) -> list[Found]:
    """The SES resource ``name`` (its ARN's resource part ``resource``) as ``answer`` describes it (None: there
    is none), when ``step`` owns it."""
    if answer is None:
        return []
    tags = _owned_tags(ctx, Arn("ses", resource, None, None).on(ctx), answer)
    return kind.owned(spec, step, [answer], lambda _: name, lambda _: tags)


class ConfigurationSet(Kind):
    name = "ses-configuration-set"
    service = "sesv2"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        name = spec.name("mail")
        answer = ignore_codes(ctx.client("sesv2").get_configuration_set, ["NotFoundException"],
                              ConfigurationSetName=name)
        return _owned(self, ctx, spec, step, answer, name, f"configuration-set/{name}")

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        policy = found.raw.get("DeliveryOptions", {}).get("TlsPolicy")
        return changed({"tls": policy}, {"tls": props["tls"]})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_configuration_set": dict(
            ConfigurationSetName=desired.name, Tags=aws_tags(tags), DeliveryOptions={"TlsPolicy": props["tls"]},
            ReputationOptions={"ReputationMetricsEnabled": True}, SendingOptions={"SendingEnabled": True})}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["create_configuration_set"]
        ctx.client("sesv2").create_configuration_set(**request)
        return Found(self.name, desired.key, desired.name, dict(tags),
                     {key: value for key, value in request.items() if key != "Tags"})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "sesv2", Arn("ses", f"configuration-set/{found.id}", None, None).on(ctx), tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "tls" in changes:
            ctx.client("sesv2").put_configuration_set_delivery_options(ConfigurationSetName=found.id, TlsPolicy=changes["tls"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("sesv2").delete_configuration_set, ["NotFoundException"], ConfigurationSetName=found.id)
        return None

    def describe(self, found: Found) -> str:
        return f"TLS {found.raw.get('DeliveryOptions', {}).get('TlsPolicy')}"


class EmailIdentity(Kind):
    name = "ses-identity"
    service = "sesv2"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        identity = spec.mail.identity
        answer = ignore_codes(ctx.client("sesv2").get_email_identity, ["NotFoundException"], EmailIdentity=identity)
        return _owned(self, ctx, spec, step, answer, identity, f"identity/{identity}")

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        current = found.raw.get("ConfigurationSetName")
        return changed({"configuration_set": current}, {"configuration_set": props["configuration_set"]})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_email_identity": dict(EmailIdentity=desired.name, ConfigurationSetName=props["configuration_set"],
                                              Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        sesv2 = ctx.client("sesv2")
        raw = sesv2.create_email_identity(**self.request(ctx.spec, desired, props, tags)["create_email_identity"])
        if "@" in desired.name:
            ctx.say(f"    SES mailed a verification link to {desired.name}: open it to finish")
        return Found(self.name, desired.key, desired.name, dict(tags),
                     {**raw, "ConfigurationSetName": props["configuration_set"]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "sesv2", Arn("ses", f"identity/{found.id}", None, None).on(ctx), tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "configuration_set" in changes:
            ctx.client("sesv2").put_email_identity_configuration_set_attributes(EmailIdentity=found.id,
                                                                 ConfigurationSetName=changes["configuration_set"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("sesv2").delete_email_identity, ["NotFoundException"], EmailIdentity=found.id)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        kind = raw.get("IdentityType", "DOMAIN" if "@" not in found.id else "EMAIL_ADDRESS")
        dkim = raw.get("DkimAttributes", {}).get("Status", "n/a")
        return f"{kind}, verified for sending: {raw.get('VerifiedForSendingStatus', False)}, DKIM {dkim}"

    def outputs(self, found: Found) -> dict[str, Any]:
        return {MAIL_DKIM_TOKENS.name: list(found.raw.get("DkimAttributes", {}).get("Tokens", []))}


def desired(spec: Spec) -> list[Desired]:
    identity = spec.mail.identity
    kind = "e-mail address (verified by a link SES mails to it)" if "@" in identity else "domain with Easy DKIM"
    # One identity per domain or address in an account and region: one environment owns it, the others use it.
    owner = "" if spec.mail.identity_owner == spec.environment else spec.owner_of(spec.mail.identity_owner)
    if owner:
        kind += f", owned by {owner} (mail.identity_owner) and used here as it is"
    return [
        Desired("ses-configuration-set", "configuration-set", configuration_set_name(spec), {"tls": "REQUIRE"},
                "TLS required, reputation metrics on"),
        Desired("ses-identity", MAIL_IDENTITY.key, identity, {"configuration_set": configuration_set_name(spec)}, f"{kind}",
                owner=owner),
    ]


def dns_records(ctx: StepContext) -> Table:
    """The DNS records the operator adds so that mail from the domain is signed and trusted."""
    identity = ctx.spec.mail.identity
    if "@" in identity:
        return Table(["type", "name", "value"], [], title=f"{identity} is an e-mail address: no DNS record to add")
    tokens = MAIL_DKIM_TOKENS.read(ctx) or []
    rows = [("CNAME", f"{token}._domainkey.{identity}", f"{token}.dkim.amazonses.com") for token in tokens]
    rows.append(("TXT", f"_dmarc.{identity}", "v=DMARC1; p=none;"))
    return Table(["type", "name", "value"], rows, title=f"DNS records to add for {identity}")


STEP = ResourceStep(NAME, [ConfigurationSet(), EmailIdentity()], desired)
