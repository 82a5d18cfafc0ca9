"""Local stand-ins for the services trailguard talks to: AWS (moto's server) and Slack (a stub)."""
