"""Paired, alternating timings for the benchmarks: every side runs once per pair, in an order reversed
each pair (A B, B A, A B, ...), so a drift in the machine's load falls on both sides alike; the
result is each side's median and the median [min, max] of the per-pair ratios. Also the prepared
workspace that round.py and loop.py copy afresh for every side of every pair.

Not run on its own; imported by benchmarks/round.py, loop.py, grpo.py, sandbox.py.
"""

import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def alternate(sides: dict[str, Callable[[], float]], pairs: int) -> dict[str, list[float]]:
    """Call each side (which returns its seconds) once per pair, the order reversed every pair."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(pairs):
        for name in list(sides) if i % 2 == 0 else reversed(list(sides)):
            times[name].append(sides[name]())
            print(f"  pair {i + 1}: {name} {times[name][-1]:.2f}s", flush=True)
    return times


def timed(cmd: list[str], **kwargs) -> float:
    """Wall seconds of one command (a fresh process: its interpreter start and imports count); raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def side_line(name: str, seconds: list[float]) -> str:
    return f"{name}: median {statistics.median(seconds):.2f}s [min {min(seconds):.2f}s, max {max(seconds):.2f}s]"


def ratio_line(label: str, numerator: list[float], denominator: list[float]) -> str:
    """`ratio <label>: median 1.23x [min 1.10x, max 1.40x] over 3 pairs`, from per-pair ratios."""
    ratios = [n / d for n, d in zip(numerator, denominator, strict=True)]
    return (f"ratio {label}: median {statistics.median(ratios):.2f}x [min {min(ratios):.2f}x, "
            f"max {max(ratios):.2f}x] over {len(ratios)} pair{'s' if len(ratios) != 1 else ''}")


def prepared_workspace(root: Path, overrides: dict) -> Path:
    """A workspace (tests/workspace.py, shipped params + `overrides`) whose tasks, base model and baseline
    are built and committed, untimed; fails if a copy of it would rebuild them."""
    from tests import workspace

    workspace.TINY.clear()  # the shipped params, not the test sizes
    ws = workspace.make_workspace(root, overrides)
    for cmd in (["dvc", "repro", "evaluate_base"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        workspace.run(ws, *cmd)
    check = fresh_copy(ws)
    status = workspace.run(check, "dvc", "status", "evaluate_base").stdout
    shutil.rmtree(check.parent)
    if "up to date" not in status:
        raise SystemExit(f"a copy of the prepared workspace would rebuild its base:\n{status}")
    return ws


def fresh_copy(prepared: Path) -> Path:
    """A copy of `prepared` (symlinks kept) in a new folder beside it; remove it with `shutil.rmtree(copy.parent)`."""
    copy = Path(tempfile.mkdtemp(dir=prepared.parent)) / "ws"
    shutil.copytree(prepared, copy, symlinks=True)
    return copy
