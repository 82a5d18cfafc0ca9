"""Playbooks: YAML files read (`yamlfile`) and checked against their schema (`schema`) and
their expressions (`expressions`) by the `loader`, compiled into a `playbook` that plans
what to do about an event, and indexed by the `catalog`, which also makes the EventBridge
rules they need."""
