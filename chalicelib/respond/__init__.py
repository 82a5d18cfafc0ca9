"""Answering one event: the `guards` no playbook overrides, the `responder` (decide, then act
by mode through the incidents), and the rules' `handler` (its answer and its log lines)."""
