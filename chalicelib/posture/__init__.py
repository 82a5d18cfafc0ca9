"""What no event tells: the posture `sweep` looks on a schedule (trails logging, keys
enabled), turns what it finds into synthetic events for the same playbooks, and runs the
incidents' upkeep."""
