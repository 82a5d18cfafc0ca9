"""The CloudTrail event, whatever envelope it came in (`record`), and the records trailguard
writes itself (`synthetic`): the sweep's findings, and calls for the demo and the tests."""
