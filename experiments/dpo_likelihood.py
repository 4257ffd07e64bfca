"""Where a DPO round moved the likelihoods: the mean log-probability of the round's chosen and
rejected completions under the model the round started from and the model it trained.

A falling chosen log-probability (while the margin grows) is DPO's likelihood displacement: the
policy learns to prefer the chosen answer by pushing both down.

Run, in a workspace put at a round: `sharpen checkout round-1 && python experiments/dpo_likelihood.py [--pairs 300]`
"""

import argparse
import json
from pathlib import Path

import polars as pl
import torch
import yaml

from sharpen.io import hash_path
from sharpen.models import load_causal_lm
from sharpen.prompting import render


def mean_logprob(model, tok, prompts: list[str], completions: list[str]) -> float:
    total = 0.0
    for prompt, completion in zip(prompts, completions, strict=True):
        prefix = tok(prompt).input_ids
        ids = tok(prompt + completion + (tok.eos_token or "")).input_ids
        with torch.no_grad():
            logp = model(torch.tensor([ids])).logits.log_softmax(-1)[0, :-1]
        target = torch.tensor(ids[1:])
        total += logp[len(prefix) - 1 :].gather(1, target[len(prefix) - 1 :, None]).sum().item()
    return total / len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=300, help="pairs sampled (seed 0)")
    args = parser.parse_args()
    pairs = pl.read_parquet("data/round/filter/pairs.parquet")
    pairs = pairs.sample(min(args.pairs, pairs.height), seed=0)
    train = json.loads(Path("data/round/train/metrics.json").read_text())
    init = next(d for d in (Path("data/base/model"), Path("data/state/policy"))
                if d.is_dir() and hash_path(d) == train["init_hash"])
    chat = yaml.safe_load(Path("params.yaml").read_text()).get("task", {}).get("chat", "auto")
    for name, path in (("init", init), ("trained", Path("data/round/train/model"))):
        model, tok = load_causal_lm(path)
        model.eval()
        prompts = render(tok, pairs["prompt"].to_list(), chat)
        print(f"{name} ({path}): chosen {mean_logprob(model, tok, prompts, pairs['chosen'].to_list()):.3f}, "
              f"rejected {mean_logprob(model, tok, prompts, pairs['rejected'].to_list()):.3f} "
              f"(mean log-prob over {pairs.height} pairs)")


if __name__ == "__main__":
    main()
