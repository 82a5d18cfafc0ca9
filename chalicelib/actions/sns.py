"""SNS remediations: take away what a topic policy gives to anyone."""

from __future__ import annotations

from chalicelib.actions import tags
from chalicelib.actions.base import TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS, Parameter, ResourceType, register
from chalicelib.actions.resource_policy import PublicStatementsRemoval

TOPIC = ResourceType("Topic", ("arn:*:sns:*:*:*",))
"""An SNS topic."""


@register
class RemovePublicTopicPolicyStatements(PublicStatementsRemoval):
    """Remove the statements of a topic policy that any principal may use (the console's
    "Everyone" choices `__console_pub_0` / `__console_sub_0`, Principal `*` without a
    condition that pins the caller to the organization), keeping every other statement
    as written, the default one included (pinned to the owner by `AWS:SourceOwner`).
    Anyone could otherwise publish to the topic or subscribe to what it carries. A topic
    always has a policy: with no statement left, the step fails and a person fixes it.
    Undo puts the previous policy back exactly.

    Example:

        steps:
          - action: sns.remove_public_policy_statements
            with:
              topic: requestParameters.topicArn || responseElements.topicArn
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "sns.remove_public_policy_statements"
    service = "sns"
    permissions = {
        "sns:ListTagsForResource": TOPIC,
        "sns:GetTopicAttributes": TOPIC,
        "sns:SetTopicAttributes": TOPIC,
    }
    parameters = (Parameter("topic", "string", "The topic's ARN."), TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS)
    resource_param = "topic"

    def resource_tags(self) -> dict[str, str] | None:
        return tags.topic_tags(self.client, self.params["topic"])

    can_delete = False

    def _get(self) -> str | None:
        policy: str | None = self.client.get_topic_attributes(TopicArn=self.params["topic"])["Attributes"].get("Policy")
        return policy

    def _put(self, policy: str) -> None:
        self.client.set_topic_attributes(TopicArn=self.params["topic"], AttributeName="Policy", AttributeValue=policy)
