"""What each reward pays for: SmolLM2-135M-Instruct's own samples of 2-digit sums, scored by
`math_equiv` (answer forms) and by math-verify alone (`lenient_math_equiv`); prints the verdict
reasons and every sample only the form-blind check rewards.

Run: `python experiments/smollm2_rewards.py [--questions 16] [--k 4]` (about a minute on 2 CPU cores)
"""

import argparse
import collections
import random
import tempfile
from pathlib import Path

from sharpen.backends.hf import HFBackend
from sharpen.models import materialize
from sharpen.verifiers.math import lenient_math_equiv, math_equiv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sharpen-smollm2-") as tmp:
        materialize("smollm2-135m", Path(tmp))
        backend = HFBackend(tmp, batch_size=16, chat="auto", autocast="bfloat16")
        rng = random.Random(0)
        pairs = [(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(args.questions)]
        prompts = [f"What is {a} + {b}? Reply with only the number." for a, b in pairs]
        outs = backend.generate(prompts, n=args.k, temperature=1.0, top_p=1.0, max_new_tokens=16, seed=0)
    rows = [(c.text, str(a + b), p) for (a, b), p, o in zip(pairs, prompts, outs, strict=True) for c in o]
    strict = math_equiv([r[0] for r in rows], [r[1] for r in rows], prompts=[r[2] for r in rows])
    lenient = lenient_math_equiv([r[0] for r in rows], [r[1] for r in rows])
    print(f"{len(rows)} samples: math_equiv rewards {sum(r.correct for r in strict)}, math-verify alone {sum(lenient)}")
    print("reasons:", dict(collections.Counter(r.reason for r in strict)))
    for (text, gold, _), s, ok in zip(rows, strict, lenient, strict=True):
        if ok and not s.correct:
            print(f"  only math-verify pays: {text!r} (gold {gold}; {s.reason})")


if __name__ == "__main__":
    main()
