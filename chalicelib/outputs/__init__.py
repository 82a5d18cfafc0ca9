"""What trailguard tells tools other than Slack about its incidents: metric lines, Security
Hub findings (ASFF, and the OCSF rendering of the same finding) and its own events on an
EventBridge bus. Each is a listener of the incidents' state-change hook
(`incidents.changes`), given to the acting functions' door by the runtime, and optional
per stage but the metrics. `facts` is what all of them read from an incident, so that they
tell one story.
"""
