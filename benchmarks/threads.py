"""Torch threads on this machine: sharpen's default (sharpen/threads.py) against one thread and against
torch's own default, idle and under load.

The workload is the embedded default's: training steps of the demo's base model (a ~1M-parameter
Llama, params.yaml `base`: hidden 128, 4 layers; batches of 64 three-digit sums) and one sampling
batch as generate draws it (32 prompts x k=8, 8 new tokens). Each side runs in its own
process, started with its thread setting:
- sharpen: `sharpen.threads.apply()` as every stage calls it (run_stage);
- one: `SHARPEN_THREADS=1`;
- torch: nothing set (no OMP_NUM_THREADS): torch's default, one thread per core it sees.
Under load, a busy-loop process per CPU of this process's affinity competes at the same priority.
The sides alternate (their order reversed each pair), `--pairs` times per load; it prints each side's
median seconds and the median [min, max] of the per-pair ratios side / sharpen (> 1: sharpen faster).

Run: `python benchmarks/threads.py [--pairs 3] [--steps 5] [--loads idle busy] [--sides sharpen one torch]`
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SIDES = ("sharpen", "one", "torch")


def workload(model_dir: Path, steps: int) -> float:
    """Seconds for `steps` training steps of the base model and one generate batch (after a warm-up step)."""
    import torch

    from sharpen import tiny_lm
    from sharpen.models import load_causal_lm

    model, tok = load_causal_lm(model_dir)
    pairs = [(f"{a}+{b}=", str(a + b)) for a, b in zip(range(100, 164), range(300, 364), strict=True)]
    ids, mask, labels = tiny_lm.encode_batch(tok, pairs)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    model.eval()
    tok.padding_side = "left"
    batch = tok([p for p, _ in pairs[:32]], return_tensors="pt", padding=True)
    with torch.no_grad():
        model.generate(**batch, do_sample=True, num_return_sequences=8, max_new_tokens=8, pad_token_id=tok.pad_token_id)
    return time.perf_counter() - start


def worker(side: str, model_dir: Path, steps: int) -> None:
    if side != "torch":
        from sharpen import threads

        threads.apply()
    import torch

    seconds = workload(model_dir, steps)
    print(f"{seconds:.4f} {torch.get_num_threads()}")


def run_side(side: str, model_dir: Path, steps: int) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SHARPEN_THREADS")}
    if side == "one":
        env["SHARPEN_THREADS"] = "1"
    out = subprocess.run([sys.executable, __file__, "--worker", side, "--model", str(model_dir), "--steps", str(steps)],
                         env=env, cwd=PROJECT, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def build_model(out: Path) -> Path:
    from sharpen import tiny_lm

    tok = tiny_lm.build_tokenizer()
    model = tiny_lm.build_model(tok, hidden_size=128, intermediate_size=512, num_layers=4, num_heads=4, seed=0)
    tiny_lm.save(model, tok, out)
    return out


def competitors(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--loads", nargs="+", default=["idle", "busy"], choices=["idle", "busy"])
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES, help="sharpen always runs")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.steps)
        return
    sides = ["sharpen", *(s for s in args.sides if s != "sharpen")]
    sys.path.insert(0, str(PROJECT))
    from sharpen import threads

    cpus = threads.affinity_cpus()
    print(f"{cpus} CPU(s) by affinity, cgroup quota {threads.cgroup_quota()}, {os.cpu_count()} seen; load average "
          f"{os.getloadavg()[0]:.1f} at the start; {args.steps} training steps + 1 generate batch; {args.pairs} pairs")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp) / "model")
        print(f"{'load':6} {'side':8} {'threads':>7} {'median s':>9} {'ratio to sharpen: median [min, max]':>36}")
        for load in args.loads:
            busy = competitors(cpus) if load == "busy" else []
            try:
                times: dict[str, list[float]] = {s: [] for s in sides}
                used: dict[str, int] = {}
                for i in range(args.pairs):
                    for side in sides if i % 2 == 0 else reversed(sides):
                        seconds, used[side] = run_side(side, model_dir, args.steps)
                        times[side].append(seconds)
            finally:
                for p in busy:
                    p.kill()
                    p.wait()
            for side in sides:
                ratios = [t / s for t, s in zip(times[side], times["sharpen"], strict=True)]
                print(f"{load:6} {side:8} {used[side]:>7} {statistics.median(times[side]):>9.2f} "
                      f"{statistics.median(ratios):>14.2f} [{min(ratios):.2f}, {max(ratios):.2f}]", flush=True)


if __name__ == "__main__":
    main()
