"""Named fault points for the reliability suite: a crash on demand at a chosen place.

`SHARPEN_FAULT=<point>` (or `<point>@<n>`, the n-th time it is reached in one process) makes
`point(name)` SIGKILL the whole process group: the stage, and the `dvc repro` or flow that started
it, as a power cut or the OOM killer would. Unset (always, outside tests), `point` does nothing.

Points: `start:<stage module>` (a stage's first line), `write:<a>/<b>/<file>` (an atomic write of
a path ending in those three parts, after the temporary file is complete and before the rename),
`swap:<a>/<b>/<dir>` (a directory swap, between moving the old one aside and moving the new one in), `shard` (generate, after each shard),
`drawn` (evaluate: every shard drawn, none verified), `train-step` (each optimizer step), and `advance:<step>` (between advance's steps).

Run: `pytest -m reliability tests/reliability/test_kill.py`
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "SHARPEN_FAULT"
_seen: Counter[str] = Counter()


def point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _seen[name] += 1
    if _seen[name] == int(nth or 1):
        os.killpg(os.getpgrp(), signal.SIGKILL)
