"""RESULTS.md's tables from a `sharpen compare` run: mean ± sd per arm and round, paired differences.

Reads the compare.json that `sharpen compare --out DIR` writes and prints Markdown: one table of
mean ± sd over seeds (greedy, pass@1, pass@k, maj@k, in %), then, for each `--against` arm, the
paired difference of every other arm against it (same seeds), mean and 95% t interval, in points.
The numbers are the ones compare.json holds; nothing is recomputed but the pairing.

Run: `python experiments/compare_tables.py runs/compare.json --against rest-em,rest-em:format_only`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sharpen.compare import paired  # noqa: E402

ORDER = ("greedy_accuracy", "pass@1", "pass@", "maj@")


def metric_columns(rounds: dict) -> list[str]:
    names = {m for r in rounds.values() for m in r if m != "chance_accuracy"}
    return sorted(names, key=lambda m: (next(i for i, p in enumerate(ORDER) if m.startswith(p)), m))


def label(metric: str) -> str:
    return "greedy" if metric == "greedy_accuracy" else metric


def means(data: dict) -> str:
    arms = data["arms"]
    cols = metric_columns(next(iter(arms.values()))["rounds"])
    lines = ["| arm | round | " + " | ".join(map(label, cols)) + " |", "|---|---:|" + "---:|" * len(cols)]
    first = next(iter(arms.values()))["rounds"]["0"]
    lines.append("| base | 0 | " + " | ".join(f"{100 * first[c]['mean']:.1f} ± {100 * first[c]['sd']:.1f}" for c in cols) + " |")
    for name, arm in arms.items():
        for rnd, row in sorted(arm["rounds"].items(), key=lambda kv: int(kv[0])):
            if rnd == "0":
                continue
            cells = [f"{100 * row[c]['mean']:.1f} ± {100 * row[c]['sd']:.1f} (n={row[c]['n']})" if row[c]["n"] != len(data["seeds"])
                     else f"{100 * row[c]['mean']:.1f} ± {100 * row[c]['sd']:.1f}" for c in cols]
            lines.append(f"| {name} | {rnd} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def differences(data: dict, against: str) -> str:
    arms = data["arms"]
    if against not in arms:
        raise SystemExit(f"--against {against}: not an arm of this comparison ({', '.join(arms)})")
    ref = arms[against]["rounds"]
    cols = metric_columns(ref)
    lines = [f"| arm − {against} | round | " + " | ".join(map(label, cols)) + " |", "|---|---:|" + "---:|" * len(cols)]
    for name, arm in arms.items():
        if name == against:
            continue
        for rnd, row in sorted(arm["rounds"].items(), key=lambda kv: int(kv[0])):
            if rnd == "0" or rnd not in ref:
                continue
            cells = []
            for c in cols:
                a, b = row[c]["values"], ref[rnd][c]["values"]
                if len(a) != len(b) or len(a) < 2:
                    cells.append("—")
                    continue
                d = paired(a, b)
                lo, hi = d["ci95"]
                cells.append(f"{100 * d['mean']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
            lines.append(f"| {name} | {rnd} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("compare_json", type=Path)
    parser.add_argument("--against", default="", help="arms to pair every other arm against, comma-separated")
    args = parser.parse_args()
    data = json.loads(args.compare_json.read_text())
    print(f"seeds {data['seeds']}, mean ± sd over seeds, %:\n")
    print(means(data))
    for ref in filter(None, args.against.split(",")):
        print(f"\nPaired difference against {ref} (same seed), mean [95% t interval], points:\n")
        print(differences(data, ref))


if __name__ == "__main__":
    main()
