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
CHOICES: dict[str, Choice] = {}


def choice(setting: str) -> Choice:
    """The documented choice behind ``setting``; a KeyError names a setting nobody documented."""
    return CHOICES[setting]
