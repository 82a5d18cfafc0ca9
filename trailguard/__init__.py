"""trailguard's tooling: what people run on their machines and in CI, never shipped to Lambda.

The command line (`trailguard`, `python -m trailguard`), the demo, a local AWS and Slack,
the generators of documentation, IAM policies and CloudFormation templates, playbook
authoring and tests, replay over CloudTrail's files, and the stage's bootstrap. It reads
the runtime package (`chalicelib`), which never imports it: `chalice package` zips only
`app.py`, `chalicelib/` and `vendor/`.
"""

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
"""The checkout: its playbooks/, docs/, deploy/ and .chalice/."""
