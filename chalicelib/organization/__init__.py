"""The organization's own choices, one settings file per stage (`settings/STAGE.yaml`): who
"we" are (named lists), where trailguard answers (scope), how far it may go (mode
ceilings), which resources opt out by tag, how long exceptions may last, and the
organization's own playbooks and actions (extensions). Checked when it is loaded, like a
playbook (file, line, key, did-you-mean); read by `respond`, which decides with it.
"""
