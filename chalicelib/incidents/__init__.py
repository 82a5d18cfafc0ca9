"""Incidents: what trailguard decided about one event for one playbook, and what came of it.

`model` (the incident, its state machine), `store` (DynamoDB and memory), `seals` (what the
acting roles wrote, and only that, is acted on), `lifecycle` (`Incidents`: the one door
through which every read and write of an incident goes), `steps` (running its steps and
their undo), `notify` (telling people), `upkeep` (what the sweep tidies).
"""
