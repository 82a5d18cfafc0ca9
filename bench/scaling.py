"""Replay with the built-in playbooks, and with 200 more generated on other event names.

The index is keyed by (eventSource, eventName), so the cost per record should not depend
on how many playbooks there are. The generated playbooks name calls that do not occur in
the corpus (`Generated0` ...), so both runs do the same matching work and differ only in
the catalog's size; runs alternate and the medians are compared.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from bench.common import median, timed
from bench.replay import replay_command

RUNS = 3
GENERATED = 200
TARGET = 1.1

TEMPLATE = """id: generated-{number}
title: Generated playbook {number}
severity: low
when:
  source: {source}
  events: [Generated{number}, GeneratedOther{number}]
  if: requestParameters.name != 'excluded'
mode: notify
"""


def generate(folder: Path, count: int = GENERATED) -> Path:
    sources = [f"service{n}.amazonaws.com" for n in range(20)]
    for number in range(count):
        (folder / f"generated-{number}.yaml").write_text(TEMPLATE.format(number=number, source=sources[number % 20]))
    return folder


def run(corpus: Path, runs: int = RUNS) -> dict:
    from chalicelib.settings import PROJECT_PLAYBOOKS

    with tempfile.TemporaryDirectory() as tmp:
        extra = generate(Path(tmp))
        builtin_command = replay_command(corpus, [str(PROJECT_PLAYBOOKS)])
        many_command = replay_command(corpus, [str(PROJECT_PLAYBOOKS), str(extra)])
        builtin, many = [], []
        for _ in range(runs):
            builtin.append(timed(builtin_command, stderr=subprocess.DEVNULL))
            many.append(timed(many_command, stderr=subprocess.DEVNULL))
    ratio = median(many) / median(builtin)
    return {
        "playbooks_added": GENERATED,
        "builtin_s": round(median(builtin), 2),
        "with_200_s": round(median(many), 2),
        "ratio": round(ratio, 2),
        "target": TARGET,
        "met": ratio <= TARGET,
    }
