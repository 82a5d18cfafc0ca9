"""Slack: the messages people read, the buttons they press, and the clients that carry both.

Imported only when Slack is configured or a click arrives, so that the event handler's
cold start does not pay for slack_sdk.
"""
