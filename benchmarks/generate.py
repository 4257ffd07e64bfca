"""Samples/s of the generate stage's backend against a naive baseline, same model, same run.

Baseline: no batching at all, one sequence per `generate` call. Also shown: one prompt per call
(its k samples batched), and the backend as the stage runs it (`generate.batch_size` prompts x k
sequences per call) plus a few other batch sizes.
Uses data/base/model if `dvc repro base` has run, else a freshly initialised model of the same size.

Run: `python benchmarks/generate.py [--prompts 256] [--k 8]`
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sharpen import tiny_lm  # noqa: E402
from sharpen.backends.hf import HFBackend  # noqa: E402
from sharpen.config import load_params  # noqa: E402
from sharpen.tasks import arithmetic  # noqa: E402


def rate(backend: HFBackend, prompts: list[str], k: int, max_new_tokens: int) -> tuple[float, int]:
    """Samples per second of one `generate` call over all prompts, and the tokens it made."""
    start = time.perf_counter()
    out = backend.generate(prompts, n=k, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0)
    seconds = time.perf_counter() - start
    tokens = sum(c.num_tokens for o in out for c in o)
    return len(prompts) * k / seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=2048)
    parser.add_argument("--baseline-prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[64, 1024])
    args = parser.parse_args()
    params = load_params()
    model_dir = Path("data/base/model")
    tmp = None
    if not (model_dir / "config.json").exists():
        tmp = tempfile.TemporaryDirectory()
        model_dir = Path(tmp.name) / "model"
        b = params.base
        tok = tiny_lm.build_tokenizer()
        tiny_lm.save(tiny_lm.build_model(tok, hidden_size=b.hidden_size, intermediate_size=b.intermediate_size,
                                         num_layers=b.num_layers, num_heads=b.num_heads, seed=b.seed),
                      tok, model_dir)
        print(f"(no data/base/model: using an untrained model of the same size)")
    pool, _ = arithmetic.make_splits(pool_size=args.prompts, eval_size=1, min_digits=1, max_digits=3, seed=0)
    prompts = pool["prompt"].to_list()
    g = params.generate
    one = HFBackend(model_dir, batch_size=1)
    rate(one, prompts[:8], args.k, g.max_new_tokens)  # warm-up
    base_prompts = prompts[: args.baseline_prompts]
    start = time.perf_counter()
    for i, p in enumerate(base_prompts):
        for j in range(args.k):
            one.generate([p], n=1, temperature=1.0, top_p=1.0, max_new_tokens=g.max_new_tokens, seed=i * args.k + j)
    naive_rate = len(base_prompts) * args.k / (time.perf_counter() - start)
    print(f"model: {model_dir}  k={args.k}  max_new_tokens={g.max_new_tokens}")
    print(f"naive: 1 sequence per call ({args.baseline_prompts} prompts)      {naive_rate:8.1f} samples/s  1.0x")
    per_prompt, _ = rate(one, base_prompts, args.k, g.max_new_tokens)
    print(f"1 prompt x k per call ({args.baseline_prompts} prompts)             {per_prompt:8.1f} samples/s "
          f"{per_prompt / naive_rate:5.1f}x")
    for bs in sorted({g.batch_size, *args.batch_sizes}):
        r, tokens = rate(HFBackend(model_dir, batch_size=bs), prompts, args.k, g.max_new_tokens)
        tag = " (generate.batch_size)" if bs == g.batch_size else ""
        print(f"{bs:4d} prompts x k per call ({args.prompts} prompts){tag:22s} {r:8.1f} samples/s "
              f"{r / naive_rate:5.1f}x")

if __name__ == "__main__":
    main()
