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

# The database's (staging's defaults, ENVIRONMENT_DEFAULTS in pointapp.spec).
CHOICES.update({choice.setting: choice for choice in (
    Choice("RDS.9", "database.activity_logs", "the audit and general logs are not exported to CloudWatch Logs",
           "CloudWatch Logs ingestion and storage of every statement and connection, and some MySQL throughput",
           "staging's traffic is tests; its error and slow-query logs are exported"),
    Choice("RDS.6", "database.monitoring_interval", "no RDS enhanced monitoring",
           "the RDSOSMetrics log group's ingestion, one sample per interval per instance",
           "staging is not watched at the operating-system level; RDS's CloudWatch metrics remain"),
    Choice("RDS.26", "database.backup_plan", "the database is in no AWS Backup plan",
           "AWS Backup storage of a daily snapshot for database.backup_plan_retention_days",
           "staging data is disposable; RDS's automated backups (database.backup_retention_days) remain"),
    Choice("RDS.10", "database.iam_authentication", "IAM database authentication is off",
           "nothing (it is free); database users signing in with IAM tokens need rds-db:connect permissions",
           "the API signs in with the password RDS keeps in Secrets Manager"),
)})

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


def _add(*choices: Choice) -> None:
    for item in choices:
        CHOICES[item.setting] = item


# The load balancer, its logs and the keys (prices read 1 December 2026; each names its pricing page).
_add(
    Choice("ELB.16", "service.waf", "no WAF web ACL in front of the load balancer",
           "AWS WAF: $5 per web ACL and $1 per rule group a month (the three managed groups: $8 a month), plus $0.60 "
           "per million requests (AWS WAF pricing); AWS's baseline and IP reputation rule groups cost nothing more",
           "staging is not where the public's traffic goes (basic auth on its frontend, no real users); prod has it"),
    Choice("ELB.5", "service.access_logs", "no load balancer access logs",
           "ELB delivers them at no charge; S3 storage at $0.025 per GB-month in Tokyo for the days they are kept "
           "(Elastic Load Balancing User Guide, access logs; Amazon S3 pricing)",
           "staging's requests are test traffic; the API's own logs in CloudWatch Logs are kept in every environment"),
    Choice("ELB.6", "service.deletion_protection", "the load balancer has no deletion protection",
           "nothing in money; a confirmed `down` turns the protection off before it deletes the load balancer, and says so",
           "staging is torn down and rebuilt often; prod's protection stops a `down` by mistake"),
    Choice("S3.17, cloudwatch_log_group_kms_encryption_enabled", "security.kms_key",
           "log groups and the artifact bucket use the services' own keys, not a "
           "customer-managed KMS key",
           "$1 a month per key plus $0.03 per 10,000 requests (AWS KMS pricing; the bucket uses an S3 Bucket Key, "
           "so few requests); a key policy to look after, and deleting the key makes what it encrypted unreadable",
           "CloudWatch Logs and S3 encrypt everything at rest with keys AWS manages and rotates; a key of your own "
           "adds control over who may decrypt, which this environment's data does not need by default"),
)


# What no setting turns on: pointapp cannot, or should not, do it for any environment. Each names the Prowler check
# (or FSBP control) it answers for; ``make scan`` accepts a Medium failure only when a choice names it.
CHOICES.update({choice.setting: choice for choice in (
    Choice("S3.20", "s3_mfa_delete", "MFA delete is off on the buckets",
           "only the account's root user, with its MFA device at hand, can turn it on (Amazon S3 User Guide, "
           "Configuring MFA delete); every later delete of a version needs that device",
           "the buckets hold build artifacts and load balancer logs that expire by lifecycle, which MFA delete "
           "would stop; versioning and the lifecycle keep recent versions", always=True),
    Choice("S3.9", "s3_server_access_logs", "S3 server access logging is off on the buckets",
           "a log bucket of its own per bucket (logging into itself loops) and its storage",
           "only AWS services write to these buckets (CodePipeline, ELB log delivery); CloudTrail records who "
           "changes them", always=True),
    Choice("WAF.11", "waf_logging", "the web ACL's full request logs are not delivered",
           "CloudWatch Logs ingestion of every request the web ACL sees (AWS WAF logging, CloudWatch Logs pricing)",
           "the web ACL's CloudWatch metrics and sampled requests are on, which show what its rules block",
           always=True),
    Choice("EC2.28, ec2_ebs_volume_protected_by_backup_plan", "bastion_backup",
           "the bastion's volume is in no AWS Backup plan",
           "daily EBS snapshots of its volume (EBS snapshot pricing)",
           "the bastion holds no data: `up` makes it anew from the current Amazon Linux image", always=True),
    Choice("cloudwatch_log_group_retention_policy_specific_days_enabled", "service.log_retention_days",
           "the log groups keep their events for less than a year (service.log_retention_days, "
           "network.flow_logs_retention_days)",
           "CloudWatch Logs storage of a year of events, about USD 0.033 per GB-month (CloudWatch Logs pricing)",
           "the API's logs serve operations, the flow logs investigations of recent traffic; set both to 365 or "
           "more to keep a year", below=365),
)})
