"""Round tags in git (`round-N`): which rounds exist, and the commit each names.

Read by the other modules of sharpen/rounds (advance, git, lineage, report); it imports none of
them, so they share it without importing each other.

Run: `git tag --list 'round-*'` shows the same tags.
"""

from __future__ import annotations

import re
import subprocess


def round_tags() -> list[tuple[int, str]]:
    out = subprocess.run(["git", "tag", "--list", "round-*"], capture_output=True, text=True).stdout.split()
    tags = [(int(m.group(1)), t) for t in out if (m := re.fullmatch(r"round-(\d+)", t))]
    return sorted(tags)


def tag_commit(tag: str) -> str | None:
    out = subprocess.run(["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"], capture_output=True, text=True)
    return out.stdout.strip() or None
