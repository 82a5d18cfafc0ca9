"""trailguard: automated response to dangerous AWS API calls recorded by CloudTrail."""
