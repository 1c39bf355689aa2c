"""The ``domain`` step: the user's own domain, and a certificate for the API's name on it.

With ``domain.name`` set, pointapp looks up the Route 53 public hosted zone of that name (it never creates
or deletes one: a domain and its zone are the user's), requests an ACM certificate for the API's host name
(``api.<domain>`` in prod, ``api.<env>.<domain>`` elsewhere) in the load balancer's region, writes the
certificate's DNS validation CNAME into the zone (with pointapp's ownership TXT record beside it), and waits
until ACM has validated the name and issued the certificate. The service step's HTTPS listener uses it.

Why a step of its own, first: the certificate needs nothing else, and its issuance (minutes on AWS) runs
while the network and the data steps are built. The records that need other steps' resources are written
by those steps: the API's alias by ``service`` (it needs the load balancer), DKIM and MAIL FROM by ``mail``
(the identity's tokens), the frontend's names by ``frontend`` (Amplify's domain association).

Without ``domain.name`` the step has nothing to do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.kinds import DNS_CHANGE, DnsRecord, hosted_zone, tags_of
from pointapp.names import api_host
from pointapp.outputs import CERTIFICATE, DOMAIN_ZONE
from pointapp.resources import Desired, Found, Kind, Ref, Request, ResourceStep, StepState, ignore_codes, wait_for
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, aws_tags, from_aws_tags
from pointapp.typical import Typical

NAME = "domain"

#: How long ACM takes to issue a DNS-validated certificate once its validation record resolves.
ISSUANCE = Typical("certificate-issued", 300, "ACM validating the API's name by DNS and issuing its certificate",
                   "AWS Certificate Manager User Guide, DNS validation (ACM validates once the CNAME resolves, usually "
                   "within minutes; it can take up to 30 minutes); botocore waiter CertificateValidated: 60 s x 40")


def _validation(description: Mapping[str, Any]) -> dict[str, Any]:
    """The certificate's validation CNAME of each name, as ``validation-name/<name>`` and ``validation-value/<name>``
    (what the validation record's props Ref)."""
    out: dict[str, Any] = {}
    for option in description.get("DomainValidationOptions", []):
        record = option.get("ResourceRecord")
        if record:
            out[f"validation-name/{option['DomainName']}"] = record["Name"]
            out[f"validation-value/{option['DomainName']}"] = record["Value"]
    return out


class Certificate(Kind):
    """An ACM public certificate, validated by DNS (ACM renews it by itself while the CNAME stays)."""

    name = "acm-certificate"
    service = "acm"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        host = api_host(spec)
        if host is None:
            return []
        acm = ctx.client("acm")
        summaries = [c for page in acm.get_paginator("list_certificates").paginate()
                     for c in page["CertificateSummaryList"] if c.get("DomainName") == host]

        def tags(summary: Mapping[str, Any]) -> dict[str, str]:
            arn = summary["CertificateArn"]
            return tags_of(ctx, arn, lambda: from_aws_tags(acm.list_tags_for_certificate(CertificateArn=arn).get("Tags")))

        found = self.owned(spec, step, summaries, lambda c: c["CertificateArn"], tags)
        for item in found:
            description = acm.describe_certificate(CertificateArn=item.id)["Certificate"]
            item.raw = {**description, **_validation(description)}
        return found

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        names = sorted(found.raw.get("SubjectAlternativeNames") or [found.raw.get("DomainName")])
        if names != sorted(props["names"]):
            return f"for {', '.join(names)}"
        # A certificate ACM gave up on (validation timed out after 72 hours, failed) or that ended is never issued
        # again: a new one is requested (ACM API reference, CertificateDetail, Status).
        status = found.raw.get("Status")
        return f"status {status}" if status in ("VALIDATION_TIMED_OUT", "FAILED", "EXPIRED", "REVOKED") else None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        # The same token within an hour returns the same certificate (ACM API reference, RequestCertificate,
        # IdempotencyToken): a run that stopped after the request does not leave a second one.
        token = hashlib.sha256(f"{spec.owner} {' '.join(props['names'])}".encode()).hexdigest()[:32]
        return {"request_certificate": dict(
            DomainName=props["names"][0], SubjectAlternativeNames=list(props["names"]), ValidationMethod="DNS",
            KeyAlgorithm="RSA_2048", IdempotencyToken=token, Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        acm = ctx.client("acm")
        arn = acm.request_certificate(**self.request(ctx.spec, desired, props, tags)["request_certificate"])["CertificateArn"]
        # ACM adds each name's validation record to the description a few seconds after the request
        # (ACM API reference, DescribeCertificate, DomainValidationOptions): read until every name has one.
        for _ in range(30):
            description = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            options = description.get("DomainValidationOptions", [])
            if options and all(o.get("ResourceRecord") for o in options):
                break
            ctx.sleep(ctx.wait_delay(2))
        return Found(self.name, desired.key, arn, dict(tags), {**description, **_validation(description)})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "acm", found.id, tags)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("acm").delete_certificate, ["ResourceNotFoundException"], CertificateArn=found.id)
        return None

    def describe(self, found: Found) -> str:
        return f"{found.raw.get('DomainName')}: {found.raw.get('Status')}, validated by DNS"


class CertificateValidation(Kind):
    """ACM's issuance of the certificate, waited for (as Terraform's ``aws_acm_certificate_validation``): what
    uses the certificate (the HTTPS listener) Refs this, so it runs once the certificate is ISSUED."""

    name = "certificate-validation"
    service = "acm"
    tagged = False
    finds_after = ("acm-certificate",)
    typical = ISSUANCE

    def waits(self, spec: Spec) -> tuple[Typical, ...]:
        return (self.typical,) if spec.domain else ()

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        certificate = known.get("certificate")
        if certificate is None or certificate.raw.get("Status") != "ISSUED":
            return []
        return [Found(self.name, CERTIFICATE.key, certificate.id, {**certificate.tags, KEY: CERTIFICATE.key},
                      certificate.raw)]

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {}  # no call of its own: a wait

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        acm = ctx.client("acm")
        answer = wait_for(ctx, acm, "certificate_validated", f"ACM to validate {props['host']} by DNS and issue its "
                          "certificate", self.typical, real_delay=30, max_attempts=90, CertificateArn=props["certificate"])
        return Found(self.name, desired.key, props["certificate"], dict(tags), dict(answer.get("Certificate", {})))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        return None  # goes with the certificate

    def describe(self, found: Found) -> str:
        return f"issued {found.raw.get('IssuedAt', '')}".strip()


def zone_facts(ctx: StepContext) -> dict[str, Any]:
    """The hosted zone the spec's domain names (none without a domain): looked up before any change."""
    return {"zone": hosted_zone(ctx, ctx.spec)} if ctx.spec.domain else {}


def desired(spec: Spec, facts: Mapping[str, Any] | None = None) -> list[Desired]:
    """The step's resources; ``facts`` hold the hosted zone discovery looked up (None: the names only)."""
    host = api_host(spec)
    if host is None:
        return []
    zone = (facts or {}).get("zone", {}).get("Id", "<zone>")
    certificate = Ref(NAME, "certificate")
    return [
        Desired("acm-certificate", "certificate", host, {"names": [host]},
                f"ACM certificate for {host}, validated by DNS (renewed by ACM while the record stays)"),
        Desired("dns-record", "record/validation", f"validation CNAME of {host}", {
            "zone": zone, "type": "CNAME", "ttl": 300,
            "name": Ref(NAME, "certificate", f"validation-name/{host}"),
            "values": [Ref(NAME, "certificate", f"validation-value/{host}")]},
            f"ACM's DNS validation record of {host}, in {spec.domain.name if spec.domain else ''} (Route 53 applies it "
            f"in {DNS_CHANGE.spoken})"),
        Desired("certificate-validation", CERTIFICATE.key, f"issuance of {host}", {"certificate": certificate, "host": host},
                f"wait for ACM to issue the certificate of {host} (usually {ISSUANCE.spoken}, up to 30 minutes)"),
    ]


class DomainStep(ResourceStep):
    """The resource step, whose outputs also hold the hosted zone it looked up (the other steps write into it)."""

    def outputs(self, state: StepState) -> dict[str, Any]:
        zone = state.facts.get("zone")
        return {**super().outputs(state), **({DOMAIN_ZONE.key: zone["Id"]} if zone else {})}


STEP = DomainStep(NAME, [Certificate(), DnsRecord(), CertificateValidation()], desired, facts=zone_facts)
