"""Samples/s of the generate stage's backend against a naive baseline, same model, same run.

Baseline: one prompt at a time (its k samples still drawn in one `generate` call). Candidate:
the backend as the stage runs it (`generate.batch_size` prompts x k per forward pass).
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
from sharpen.params import load_params  # noqa: E402
from sharpen.tasks import arithmetic  # noqa: E402


def rate(backend: HFBackend, prompts: list[str], k: int, max_new_tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    out = backend.generate(prompts, n=k, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0)
    seconds = time.perf_counter() - start
    tokens = sum(c.num_tokens for o in out for c in o)
    return len(prompts) * k / seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--baseline-prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=8)
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
    batched = HFBackend(model_dir, batch_size=g.batch_size)
    naive = HFBackend(model_dir, batch_size=1)
    rate(batched, prompts[:8], args.k, g.max_new_tokens)  # warm-up
    naive_rate, _ = rate(naive, prompts[: args.baseline_prompts], args.k, g.max_new_tokens)
    batched_rate, tokens = rate(batched, prompts, args.k, g.max_new_tokens)
    print(f"model: {model_dir}  k={args.k}  max_new_tokens={g.max_new_tokens}")
    print(f"naive (1 prompt/call, {args.baseline_prompts} prompts): {naive_rate:8.1f} samples/s")
    print(f"batched ({g.batch_size} prompts/call, {args.prompts} prompts): {batched_rate:8.1f} samples/s "
          f"({tokens / (len(prompts) * args.k):.1f} tokens/sample)")
    print(f"ratio batched/naive: {batched_rate / naive_rate:.1f}x")


if __name__ == "__main__":
    main()
