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
from pointapp.kinds import DnsRecord
from pointapp.names import configuration_set_name, mail_from_domain, mail_records_written
from pointapp.outputs import DOMAIN_ZONE, MAIL_DKIM_TOKENS, MAIL_IDENTITY
from pointapp.plan import Table
from pointapp.resources import Arn, Desired, Found, Kind, Ref, Request, ResourceStep, Template, ignore_codes
from pointapp.spec import Spec, mail_domain
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


#: The call that sets an identity's custom MAIL FROM domain (SESv2 API reference).
MAIL_FROM_CALL = ("sesv2", "PutEmailIdentityMailFromAttributes")


def _with_dkim(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The identity's description with each Easy DKIM token as ``dkim/<i>`` (what the DKIM records' props Ref)."""
    tokens = raw.get("DkimAttributes", {}).get("Tokens", [])
    return {**raw, **{f"dkim/{i}": token for i, token in enumerate(tokens)}}


class EmailIdentity(Kind):
    name = "ses-identity"
    service = "sesv2"
    operations = {"mail-from": MAIL_FROM_CALL}  # the call an update of the MAIL FROM domain makes

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        identity = spec.mail.identity
        answer = ignore_codes(ctx.client("sesv2").get_email_identity, ["NotFoundException"], EmailIdentity=identity)
        found = _owned(self, ctx, spec, step, answer, identity, f"identity/{identity}")
        for item in found:
            item.raw = _with_dkim(item.raw)
        return found

    def needs(self, action: str, changes: Mapping[str, Any]) -> tuple[str, str] | None:
        return MAIL_FROM_CALL if action == "update" and "mail_from" in changes else None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        current = {"configuration_set": found.raw.get("ConfigurationSetName")}
        wanted = {"configuration_set": props["configuration_set"]}
        if props.get("mail_from"):
            current["mail_from"] = found.raw.get("MailFromAttributes", {}).get("MailFromDomain")
            wanted["mail_from"] = props["mail_from"]
        return changed(current, wanted)

    def _set_mail_from(self, ctx: StepContext, identity: str, domain: str) -> None:
        gap = ctx.lacks(*MAIL_FROM_CALL)
        if gap:
            ctx.say(f"    MAIL FROM {domain} not set: {gap}")
            return
        # Until the MX record resolves SES sends from amazonses.com (UseDefaultValue), never refuses a message.
        ctx.client("sesv2").put_email_identity_mail_from_attributes(
            EmailIdentity=identity, MailFromDomain=domain, BehaviorOnMxFailure="USE_DEFAULT_VALUE")

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_email_identity": dict(EmailIdentity=desired.name, ConfigurationSetName=props["configuration_set"],
                                              Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        sesv2 = ctx.client("sesv2")
        raw = sesv2.create_email_identity(**self.request(ctx.spec, desired, props, tags)["create_email_identity"])
        if "@" in desired.name:
            ctx.say(f"    SES mailed a verification link to {desired.name}: open it to finish")
        if props.get("mail_from"):
            self._set_mail_from(ctx, desired.name, props["mail_from"])
        return Found(self.name, desired.key, desired.name, dict(tags),
                     _with_dkim({**raw, "ConfigurationSetName": props["configuration_set"]}))

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "sesv2", Arn("ses", f"identity/{found.id}", None, None).on(ctx), tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "configuration_set" in changes:
            ctx.client("sesv2").put_email_identity_configuration_set_attributes(EmailIdentity=found.id,
                                                                 ConfigurationSetName=changes["configuration_set"])
        if "mail_from" in changes:
            self._set_mail_from(ctx, found.id, changes["mail_from"])

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
    written = mail_records_written(spec)
    mail_from = mail_from_domain(spec) if written else None
    identity_props: dict[str, Any] = {"configuration_set": configuration_set_name(spec)}
    if mail_from:
        identity_props["mail_from"] = mail_from
    return [
        Desired("ses-configuration-set", "configuration-set", configuration_set_name(spec), {"tls": "REQUIRE"},
                "TLS required, reputation metrics on"),
        Desired("ses-identity", MAIL_IDENTITY.key, identity, identity_props,
                f"{kind}" + (f", MAIL FROM {mail_from}" if mail_from else ""), owner=owner),
        *(_records(spec) if written else []),
    ]


#: Easy DKIM gives three tokens, each a CNAME ``<token>._domainkey.<domain>`` -> ``<token>.dkim.amazonses.com``
#: (Amazon SES Developer Guide, "Easy DKIM in Amazon SES").
DKIM_TOKENS = 3


def _records(spec: Spec) -> list[Desired]:
    """The identity's records in the user's zone: its DKIM CNAMEs, and its MAIL FROM domain's MX and SPF TXT records
    (Amazon SES Developer Guide, "Using a custom MAIL FROM domain": MX 10 feedback-smtp.<region>.amazonses.com,
    TXT "v=spf1 include:amazonses.com ~all")."""
    domain, zone = mail_domain(spec.mail.identity), Ref("domain", DOMAIN_ZONE.key)
    mail_from = mail_from_domain(spec)
    dkim = [Desired("dkim-record", f"record/dkim/{i}", f"DKIM CNAME {i + 1} of {domain}", {
        "zone": zone, "type": "CNAME", "ttl": 1800,
        "name": Template("{}._domainkey." + domain, Ref(NAME, MAIL_IDENTITY.key, f"dkim/{i}")),
        "values": [Template("{}.dkim.amazonses.com", Ref(NAME, MAIL_IDENTITY.key, f"dkim/{i}"))]},
        f"Easy DKIM signing key {i + 1} of {domain}") for i in range(DKIM_TOKENS)]
    return [*dkim,
            Desired("dns-record", "record/mail-from-mx", f"{mail_from} (MX)", {
                "zone": zone, "type": "MX", "ttl": 1800, "name": mail_from,
                "values": [Template("10 feedback-smtp.{}.amazonses.com", Ref("runtime", "region"))]},
                f"MAIL FROM {mail_from}: bounces and complaints reach SES"),
            Desired("dns-record", "record/mail-from-spf", f"{mail_from} (SPF TXT)", {
                "zone": zone, "type": "TXT", "ttl": 1800, "name": mail_from,
                "values": ['"v=spf1 include:amazonses.com ~all"']},
                f"MAIL FROM {mail_from}: SPF lets SES send for it")]


def dns_records(ctx: StepContext) -> Table:
    """The DNS records the operator adds so that mail from the domain is signed and trusted."""
    identity = ctx.spec.mail.identity
    if "@" in identity:
        return Table(["type", "name", "value"], [], title=f"{identity} is an e-mail address: no DNS record to add")
    tokens = MAIL_DKIM_TOKENS.read(ctx) or []
    rows = [("CNAME", f"{token}._domainkey.{identity}", f"{token}.dkim.amazonses.com") for token in tokens]
    if mail_records_written(ctx.spec):
        mail_from = mail_from_domain(ctx.spec)
        rows += [("MX", mail_from, f"10 feedback-smtp.{ctx.target.region}.amazonses.com"),
                 ("TXT", mail_from, '"v=spf1 include:amazonses.com ~all"')]
        rows.append(("TXT", f"_dmarc.{identity}", "v=DMARC1; p=none; (a policy of your own: add it yourself)"))
        return Table(["type", "name", "value"], rows, title=f"DNS records of {identity}: pointapp wrote all but DMARC "
                     f"into the hosted zone {ctx.spec.domain.name if ctx.spec.domain else ''}")
    rows.append(("TXT", f"_dmarc.{identity}", "v=DMARC1; p=none;"))
    return Table(["type", "name", "value"], rows, title=f"DNS records to add for {identity}")


class DkimRecord(DnsRecord):
    """A DKIM CNAME: its name and value hold a token SES gives the domain identity. The emulator's SES gives none
    (:data:`pointapp.emulator.EMULATOR_GAPS`): there the records are skipped, with that said."""

    name = "dkim-record"

    def unavailable(self, ctx: StepContext) -> str | None:
        return ctx.lacks("sesv2", "DkimTokens")


STEP = ResourceStep(NAME, [ConfigurationSet(), EmailIdentity(), DnsRecord(), DkimRecord()], desired, uses=("domain",))
