"""The price of orchestration: `python -m flows.loop --rounds N` vs `dvc repro && sharpen advance` N times.

A temporary workspace (a copy of this project, the shipped params with a smaller pool and no
plateau stop) builds tasks, base model and baseline untimed; then every side of every pair starts
from its own fresh copy of it (checked once: those stages are up to date there):
- flow: `python -m flows.loop --rounds N`: its interpreter start and imports (Prefect included), the
  ephemeral Prefect server it starts, `dvc repro --single-item <stage>` per stage and
  `sharpen advance` per round, with its locks, logs and stopping checks;
- plain: `dvc repro` then `python -m sharpen.cli advance`, N times, each command a fresh process.
Each side's time is the wall time of its commands, from outside. Not counted: building and copying
the workspace. The sides alternate (order reversed every pair); it prints each side's median and
the median [min, max] of the per-pair ratios flow / plain. Also timed, median of 3: a no-op
`dvc repro` (everything up to date, in the last plain copy) and `sharpen rounds` over 20 recorded
rounds (tags made from that copy's metrics).

Run: `python benchmarks/loop.py [--pairs 3] [--rounds 2] [--pool-size 1024]`
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from benchmarks import pairs  # noqa: E402
from tests.workspace import env, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, alternating (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side per pair")
    parser.add_argument("--pool-size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sharpen-bench-") as tmp:
        start = time.perf_counter()
        prepared = pairs.prepared_workspace(Path(tmp) / "prepared", {"task": {"pool_size": args.pool_size},
                                                               "loop": {"plateau": None}})
        print(f"prepared workspace in {time.perf_counter() - start:.1f}s (untimed); {args.pairs} pairs of "
              f"{args.rounds} round(s)", flush=True)
        last_plain: list[Path] = []

        def flow() -> float:
            copy = pairs.fresh_copy(prepared)
            try:
                return pairs.timed([sys.executable, "-m", "flows.loop", "--rounds", str(args.rounds)], cwd=copy,
                                   env=env())
            finally:
                shutil.rmtree(copy.parent)

        def plain() -> float:
            copy = pairs.fresh_copy(prepared)
            seconds = sum(pairs.timed(cmd, cwd=copy, env=env()) for _ in range(args.rounds)
                          for cmd in (["dvc", "repro"], [sys.executable, "-m", "sharpen.cli", "advance"]))
            for old in last_plain:
                shutil.rmtree(old.parent)
            last_plain[:] = [copy]
            return seconds

        flow_name, plain_name = (f"`python -m flows.loop --rounds {args.rounds}`",
                                 f"`dvc repro && sharpen advance` x{args.rounds}")
        times = pairs.alternate({flow_name: flow, plain_name: plain}, args.pairs)
        for name, seconds in times.items():
            print(pairs.side_line(name, seconds))
        print(pairs.ratio_line("flow/plain", times[flow_name], times[plain_name]))

        done = last_plain[0]
        run(done, "dvc", "repro")
        noop = [pairs.timed(["dvc", "repro"], cwd=done, env=env()) for _ in range(3)]
        print(pairs.side_line("no-op `dvc repro` (up to date), 3 runs", noop))

        metrics = {p: (done / p).read_text() for p in (
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
        listed = [pairs.timed([sys.executable, "-m", "sharpen.cli", "rounds"], cwd=many, env=env())
                  for _ in range(3)]
        print(pairs.side_line("`sharpen rounds` with 20 rounds, 3 runs", listed))


if __name__ == "__main__":
    main()
