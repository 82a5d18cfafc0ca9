"""trailguard: automated response to dangerous AWS API calls recorded by CloudTrail."""

__version__ = "0.25.0"
