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

    control: str  #: the FSBP control id, e.g. "WAF.2"
    setting: str  #: the spec path whose value turns the control off, e.g. "service.waf"
    what: str  #: what is off, in a few words
    cost: str  #: what meeting the control would cost (money, time, operations)
    reason: str  #: why an environment may choose not to
    lacks: str = ""  #: when set, the choice is made by a setting (a list) that does not hold this value

    def off(self, spec: Any) -> bool:
        """Whether ``spec`` makes this choice: the setting is false, empty or none, or it lacks ``lacks``."""
        value = operator.attrgetter(self.setting)(spec)
        return self.lacks not in value if self.lacks else not value


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

# The network (the interface endpoint's price: AWS PrivateLink pricing, Asia Pacific (Tokyo), 1 December 2026).
CHOICES["endpoints.interface"] = Choice(
    "EC2.10", "endpoints.interface", "no interface endpoint for the EC2 API",
    "$0.014 an hour per zone: about $20 a month for two zones, plus $0.01 per GB (AWS PrivateLink pricing)",
    "nothing in the VPC calls the EC2 API: the tasks call ECR, CloudWatch Logs and Secrets Manager (their "
    "endpoints are there) and the bastion's agent calls SSM; add \"ec2\" to endpoints.interface if something will",
    lacks="ec2")


def choice(setting: str) -> Choice:
    """The documented choice behind ``setting``; a KeyError names a setting nobody documented."""
    return CHOICES[setting]
