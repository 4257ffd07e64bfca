"""Checks/s of the math_equiv verifier: one process against its process pool, and against
math-verify alone (`lenient_math_equiv`, what the verifier was before answer forms), same items.

Items: each answer of examples/math_sample.jsonl, written as a completion in several forms
(LaTeX, decimal, boxed, wrong), repeated to `--items`.

Run: `python benchmarks/verify_math.py [--items 2000] [--workers 2]`
"""

import argparse
import os
import time

from sharpen.tasks.files import read_problem_file
from sharpen.verifiers import math as math_verifier
from sharpen.verifiers.math import lenient_math_equiv, math_equiv

FORMS = ["The answer is ${a}$.", "\\boxed{{{a}}}", "So we get {a}", "The answer is $-{a}$"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    problems, _ = read_problem_file("examples/math_sample.jsonl")
    pairs = [(f.format(a=a), a) for a in problems["answer"] for f in FORMS]
    pairs = (pairs * (args.items // len(pairs) + 1))[: args.items]
    completions, golds = [c for c, _ in pairs], [g for _, g in pairs]
    math_verifier.IN_PROCESS_BELOW = 0
    rates = {}
    for name, workers in (("one process", 1), (f"pool of {args.workers} processes", args.workers)):
        math_verifier._parse_gold.cache_clear()
        start = time.perf_counter()
        results = math_equiv(completions, golds, workers=workers)
        rates[name] = len(pairs) / (time.perf_counter() - start)
        print(f"{name:24s} {rates[name]:7.1f} checks/s  ({sum(r.correct for r in results)} correct of {len(pairs)})")
    math_verifier._parse_gold.cache_clear()
    start = time.perf_counter()
    lenient_math_equiv(completions, golds, workers=1)
    rates["math-verify alone, one process"] = len(pairs) / (time.perf_counter() - start)
    print(f"{'math-verify alone, one process':24s} {rates['math-verify alone, one process']:7.1f} checks/s")
    base = rates["one process"]
    for name, r in rates.items():
        print(f"{name:24s} {r / base:5.2f}x")


if __name__ == "__main__":
    main()
