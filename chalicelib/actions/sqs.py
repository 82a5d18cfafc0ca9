"""SQS remediations: take away what a queue policy gives to anyone."""

from __future__ import annotations

from chalicelib.actions import tags
from chalicelib.actions.base import TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS, Parameter, ResourceType, register
from chalicelib.actions.resource_policy import PublicStatementsRemoval

QUEUE = ResourceType("Queue", ("arn:*:sqs:*:*:*",))
"""An SQS queue."""


@register
class RemovePublicQueuePolicyStatements(PublicStatementsRemoval):
    """Remove the statements of a queue policy that any principal may use (Principal `*`
    without a condition that pins the caller to the organization), keeping every other
    statement as written; with none left, the policy is removed. Anyone could otherwise
    send to the queue or read from it. Undo puts the previous policy back exactly.

    Example:

        steps:
          - action: sqs.remove_public_policy_statements
            with:
              queue: requestParameters.queueUrl
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "sqs.remove_public_policy_statements"
    service = "sqs"
    permissions = {
        "sqs:ListQueueTags": QUEUE,
        "sqs:GetQueueAttributes": QUEUE,
        "sqs:SetQueueAttributes": QUEUE,
    }
    parameters = (Parameter("queue", "string", "The queue's URL."), TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS)
    resource_param = "queue"

    def resource_tags(self) -> dict[str, str] | None:
        return tags.queue_tags(self.client, self.params["queue"])

    def _get(self) -> str | None:
        attributes = self.client.get_queue_attributes(QueueUrl=self.params["queue"], AttributeNames=["Policy"])
        policy: str | None = attributes.get("Attributes", {}).get("Policy") or None
        return policy

    def _put(self, policy: str) -> None:
        self.client.set_queue_attributes(QueueUrl=self.params["queue"], Attributes={"Policy": policy})

    def _delete(self) -> None:
        self.client.set_queue_attributes(QueueUrl=self.params["queue"], Attributes={"Policy": ""})
