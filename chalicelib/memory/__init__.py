"""What trailguard remembers so that it can put back later what a call deleted or changed.

`rules` (what may be remembered, and when), `documents` (where: memory or DynamoDB,
sealed), the kinds remembered (`trails`, `flow_logs`, `config_channels`) and when they are
refreshed (`refresh`), and the decisions people made that the sweep honours (`decisions`).
"""
