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
from pathlib import Path
from typing import Any

import yaml


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
    lacks: str = ""  #: when set, the choice is made by a setting (a list) that does not hold this value
    below: int = 0  #: when set, the choice is made by a setting (a number) below this value
    always: bool = False  #: made by every environment: no setting turns the control on (``setting`` names it)

    @property
    def controls(self) -> list[str]:
        """Each control id this choice answers for."""
        return [part.strip() for part in self.control.split(",") if part.strip()]

    def off(self, spec: Any) -> bool:
        """Whether ``spec`` makes this choice: the setting is false, empty or none, or it lacks ``lacks``."""
        if self.always:
            return True
        value = operator.attrgetter(self.setting)(spec)
        if self.below:
            return bool(value < self.below)
        return self.lacks not in value if self.lacks else not value


#: Where the documented choices are written down: one entry per spec setting, in the order the README lists them.
CHOICES_FILE = Path(__file__).with_name("baseline.yaml")


def load_choices(path: Path = CHOICES_FILE) -> dict[str, Choice]:
    """The documented choices of ``path``, keyed by their setting; a field the file gives that a choice does
    not have, or a missing one, is an error naming the entry."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    choices: dict[str, Choice] = {}
    for setting, fields in entries.items():
        try:
            choices[setting] = Choice(setting=setting, **fields)
        except TypeError as error:
            raise ValueError(f"{path.name}: the choice {setting!r} is malformed: {error}") from None
    return choices


#: Every documented choice, keyed by its spec setting (pointapp/baseline.yaml).
CHOICES: dict[str, Choice] = load_choices()


def choice(setting: str) -> Choice:
    """The documented choice behind ``setting``; a KeyError names a setting nobody documented."""
    return CHOICES[setting]
