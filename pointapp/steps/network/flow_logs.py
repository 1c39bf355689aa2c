"""VPC flow logs: an IAM role, a log group and the flow log of the VPC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.errors import StepError
from pointapp.kinds import LogGroup, Role, customer_key, policy, trust_policy
from pointapp.resources import FLOW_LOGS_ROLE, Arn, Desired, Found, Kind, Ref, Request, ignore_codes, retry_refused
from pointapp.spec import Spec
from pointapp.tags import add_tags, from_aws_tags, owner_filters, tag_specifications

from .discovery import NAME, paginate


class FlowLog(Kind):
    """A VPC flow log delivered to CloudWatch Logs. Flow logs cannot change in place: they are replaced."""

    name = "flow-log"
    service = "ec2"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        ec2 = ctx.client("ec2")
        logs = paginate(ec2, "describe_flow_logs", "FlowLogs", Filters=owner_filters(spec, step))
        return self.owned(spec, step, logs, lambda f: f["FlowLogId"], lambda f: from_aws_tags(f.get("Tags")))

    @staticmethod
    def _settings(props: Mapping[str, Any]) -> dict[str, Any]:
        return {"ResourceId": props["vpc"], "TrafficType": props["traffic"], "LogGroupName": props["log_group"],
                "DeliverLogsPermissionArn": props["role"]}

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        wanted = self._settings(props)
        if any(value.startswith("<") for value in wanted.values()):
            return None  # the VPC or the role is still to be made: compared once both exist
        differ = [name for name, value in wanted.items() if found.raw.get(name) != value]
        return ", ".join(f"{name} changes" for name in differ) or None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        settings = self._settings(props)
        return {"create_flow_logs": dict(
            ResourceIds=[settings["ResourceId"]], ResourceType="VPC", TrafficType=settings["TrafficType"],
            LogDestinationType="cloud-watch-logs", LogGroupName=settings["LogGroupName"],
            DeliverLogsPermissionArn=settings["DeliverLogsPermissionArn"],
            TagSpecifications=tag_specifications("vpc-flow-log", tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        settings = self._settings(props)
        request = self.request(ctx.spec, desired, props, tags)["create_flow_logs"]
        answer = retry_refused(ctx, FLOW_LOGS_ROLE, settings["DeliverLogsPermissionArn"],
                                lambda: ctx.client("ec2").create_flow_logs(**request))
        if answer.get("Unsuccessful") or not answer.get("FlowLogIds"):
            problem = (answer.get("Unsuccessful") or [{}])[0].get("Error", {})
            raise StepError(NAME, f"flow log {desired.name}", problem.get("Message", "was not created"), problem.get("Code"))
        return Found(self.name, desired.key, answer["FlowLogIds"][0], dict(tags), settings)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "ec2", found.id, tags)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("ec2").delete_flow_logs, ["InvalidFlowLogId.NotFound"], FlowLogIds=[found.id])
        return None

    def describe(self, found: Found) -> str:
        return f"{found.raw.get('TrafficType')} traffic of {found.raw.get('ResourceId')} to {found.raw.get('LogGroupName')}"


def flow_log_group(spec: Spec) -> str:
    """The log group the VPC's flow logs go to."""
    return f"{LogGroup.prefix(spec)}vpc-flow-logs"


def flow_log_resources(spec: Spec) -> list[Desired]:
    """The flow log of the VPC, its log group and the role it delivers with (none when ``network.flow_logs`` is off)."""
    if not spec.network.flow_logs:
        return []
    group = flow_log_group(spec)
    days = spec.network.flow_logs_retention_days
    deliver = {"Effect": "Allow", "Resource": Arn("logs", f"log-group:{group}:*"),
               "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]}
    return [
        Desired("log-group", "flow-logs/log-group", group, {"retention_days": days, "kms_key": customer_key(spec)},
                f"retention {days} days"),
        Desired("iam-role", "flow-logs/role", spec.name("vpc-flow-logs"),
                {"trust": trust_policy("vpc-flow-logs.amazonaws.com", spec=spec), "managed": [], "inline": {"deliver": policy(deliver)}},
                "the VPC flow log service writes to its own log group only"),
        Desired("flow-log", "flow-logs/vpc", spec.name("vpc-flow-log"),
                {"vpc": Ref(NAME, "vpc"), "traffic": "ALL", "log_group": group,
                 "role": Ref(NAME, "flow-logs/role", "Arn")}, f"all traffic of the VPC to {group}"),
    ]


#: The kinds of the flow logs, in creation order.
FLOW_LOG_KINDS = (LogGroup(), Role(), FlowLog())
