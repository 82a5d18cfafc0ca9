"""What is generated from the code's declarations and committed: the playbook reference and
Slack examples (docs/), the IAM policies (.chalice/) and the CloudFormation templates (deploy/)."""
