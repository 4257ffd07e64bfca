"""The price of orchestration: `python -m flows.loop --rounds 2` vs `dvc repro && sharpen advance` twice.

Both start from copies of one workspace whose base model is already built (untimed), in the same
command on the same machine. Also timed: a no-op `dvc repro` (everything up to date) and
`sharpen rounds` over 20 recorded rounds (tags made from a real round's metrics).

Run: `python benchmarks/loop.py [--pool-size 1024]`
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import workspace  # noqa: E402
from tests.workspace import make_workspace, run  # noqa: E402


def timed(cwd: Path, *cmd: str) -> float:
    start = time.perf_counter()
    run(cwd, *cmd)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool-size", type=int, default=1024)
    args = parser.parse_args()
    workspace.TINY.clear()  # the shipped params, but a smaller pool
    with tempfile.TemporaryDirectory(prefix="sharpen-bench-") as tmp:
        plain = make_workspace(Path(tmp) / "plain", {"task": {"pool_size": args.pool_size}, "loop": {"plateau": None}})
        run(plain, "dvc", "repro", "evaluate_base")
        run(plain, "git", "add", "-A")
        run(plain, "git", "commit", "-qm", "base")
        flow = Path(tmp) / "flow"
        shutil.copytree(plain, flow, symlinks=True)

        plain_s = 0.0
        for _ in range(2):
            plain_s += timed(plain, "dvc", "repro")
            plain_s += timed(plain, sys.executable, "-m", "sharpen.cli", "advance")
        print(f"plain `dvc repro && sharpen advance` x2: {plain_s:.1f}s")
        flow_s = timed(flow, sys.executable, "-m", "flows.loop", "--rounds", "2")
        print(f"`python -m flows.loop --rounds 2`:      {flow_s:.1f}s")
        print(f"ratio flow/plain: {flow_s / plain_s:.2f}x (overhead {flow_s - plain_s:+.1f}s for 2 rounds)")

        run(plain, "dvc", "repro")
        noop = min(timed(plain, "dvc", "repro") for _ in range(3))
        print(f"no-op `dvc repro` (up to date): {noop:.2f}s")

        metrics = {p: (plain / p).read_text() for p in (
            "data/round/evaluate/metrics.json", "data/round/generate/metrics.json",
            "data/round/filter/metrics.json", "data/round/train/metrics.json")}
        many = Path(tmp) / "many"
        many.mkdir()
        run(many, "git", "init", "-q")
        for n in range(1, 21):
            for path, text in metrics.items():
                (many / path).parent.mkdir(parents=True, exist_ok=True)
                (many / path).write_text(json.dumps(json.loads(text) | {"round": n}))
            run(many, "git", "add", "-A")
            run(many, "git", "commit", "-qm", f"round {n}")
            run(many, "git", "tag", f"round-{n}")
        rounds_s = min(timed(many, sys.executable, "-m", "sharpen.cli", "rounds") for _ in range(3))
        print(f"`sharpen rounds` with 20 rounds: {rounds_s:.2f}s")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
