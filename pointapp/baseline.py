"""The security baseline: AWS Foundational Security Best Practices (FSBP) controls pointapp follows, and the
documented choices, where an environment does not meet a control on purpose.

A choice is a spec setting that turns a control off (WAF off in staging, say), with what it saves and why.
The audit reports a choice as ``choice``, not as a finding; ``make scan`` accepts an outside scanner's
failure only when it is one of these. Control ids are those of the AWS Security Hub FSBP standard
(AWS Security Hub User Guide, "Security Hub controls reference").
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Choice:
    """A control an environment does not meet on purpose: the setting that decides it, its cost and reason."""

    #: The FSBP control id, e.g. "ELB.16" (a WAF web ACL on the load balancer); for a scanner check that follows
    #: no FSBP control, the Prowler check id, e.g. "s3_bucket_no_mfa_delete" (``make scan`` matches either).
    #: A setting that turns off several: their ids, comma-separated ("S3.17, cloudwatch_log_group_kms_encryption_enabled").
    control: str
    setting: str  #: the spec path whose value turns the control off, e.g. "service.waf"
    what: str  #: what is off, in a few words
    cost: str  #: what meeting the control would cost (money, time, operations)
    reason: str  #: why an environment may choose not to

    @property
    def controls(self) -> list[str]:
        """Each control id this choice answers for."""
        return [part.strip() for part in self.control.split(",") if part.strip()]

    def off(self, spec: Any) -> bool:
        """Whether ``spec`` makes this choice (the setting is false, empty or none)."""
        return not operator.attrgetter(self.setting)(spec)


#: Every documented choice, keyed by its spec setting. Each part of the baseline adds its own.
CHOICES: dict[str, Choice] = {
    # An ACM certificate names a domain the user owns: pointapp cannot make one up, so without domain.name (or
    # service.certificate_arn) the load balancer speaks HTTP. The frontend stays on HTTPS all the same: Amplify
    # serves it over HTTPS and passes /api on to the load balancer itself (steps/frontend.py, api_rewrite).
    "serves_https": Choice(
        "ELB.1", "serves_https", "HTTPS on the production listener (HTTP 80 redirecting to 443)",
        "a domain you own in Route 53 (a hosted zone costs USD 0.50 a month) or a certificate of your own; "
        "ACM public certificates are free",
        "without a domain a certificate can name nothing: set domain.name (or service.certificate_arn) to turn "
        "HTTPS on; until then the API is reached over plain HTTP at the load balancer's DNS name"),
}


def choice(setting: str) -> Choice:
    """The documented choice behind ``setting``; a KeyError names a setting nobody documented."""
    return CHOICES[setting]
