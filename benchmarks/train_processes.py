"""SFT optimizer steps/s on 2 processes (torchrun, DDP on gloo, one thread each) against 1 process
(torch's default threads) with the same global batch, alternating in one run. Both go through
what the train stage runs: `python -m stages.train` in a throwaway workspace, `train.processes`
1 or 2, so process start, model loading and saving are in the time.

The model is the embedded default's shape (hidden 128, 4 layers), untrained; the data are
`--examples` additions.

Run: `python benchmarks/train_processes.py [--examples 1024] [--batch-size 32] [--repeats 2]`
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

PROJECT = Path(__file__).resolve().parent.parent


def workspace(root: Path, processes: int, args) -> Path:
    from sharpen.io import write_frame
    from sharpen.schemas import PreferencePair, TrainExample, empty

    ws = root / f"ws-{processes}"
    for name in ("sharpen", "stages"):
        shutil.copytree(PROJECT / name, ws / name, ignore=shutil.ignore_patterns("__pycache__"))
    (ws / "data/state").mkdir(parents=True)
    shutil.copy(PROJECT / "data/state/state.json", ws / "data/state/state.json")
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["train"].update(processes=processes, batch_size=args.batch_size, epochs=1, checkpoint_steps=0)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    n = range(args.examples)
    kept = pl.DataFrame({"round": [1] * args.examples, "problem_id": [f"{i}+{i % 97}" for i in n],
                         "sample_idx": [0] * args.examples, "prompt": [f"{i}+{i % 97}=" for i in n],
                         "completion": [str(i + i % 97) for i in n], "reward": [1.0] * args.examples,
                         "origin": ["sampled"] * args.examples})
    filt = ws / "data/round/filter"
    write_frame(kept, filt / "kept.parquet", TrainExample)
    write_frame(empty(TrainExample), filt / "examples.parquet", TrainExample)
    write_frame(empty(PreferencePair), filt / "pairs.parquet", PreferencePair)
    return ws


def train(ws: Path, model: Path) -> float:
    """Seconds for one `python -m stages.train`; asserts it trained."""
    filt, unread = ws / "data/round/filter", str(ws / "unread.parquet")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stages.train", "--kept", str(filt / "kept.parquet"),
                    "--synthesized", str(filt / "examples.parquet"), "--pairs", str(filt / "pairs.parquet"),
                    "--problems", unread, "--decisions", unread, "--samples", unread, "--verdicts", unread,
                    "--state", "data/state", "--base", str(model), "--out", "data/round/train"],
                   cwd=ws, check=True, capture_output=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - start
    assert json.loads((ws / "data/round/train/metrics.json").read_text())["steps"] > 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from sharpen import tiny_lm

    steps = args.examples // args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        tok = tiny_lm.build_tokenizer()
        model = Path(tmp) / "model"
        tiny_lm.save(tiny_lm.build_model(tok, hidden_size=128, intermediate_size=512, num_layers=4, num_heads=4, seed=0),
                     tok, model)
        spaces = {n: workspace(Path(tmp), n, args) for n in (1, 2)}
        rates: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for n in (1, 2):
                rates[n].append(steps / train(spaces[n], model))
    base = statistics.median(rates[1])
    print(f"\n{steps} steps of {args.batch_size} examples (global), {args.repeats} runs each (median), "
          f"{os.cpu_count()} CPU cores")
    for n, r in rates.items():
        rate = statistics.median(r)
        print(f"train.processes {n}: {rate:6.2f} steps/s  {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
