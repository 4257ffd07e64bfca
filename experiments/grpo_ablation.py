"""GRPO on the embedded default: what makes it learn. Each arm trains the base policy for one
round's worth of GRPO on the round's learnable problems (the grpo recipe's filter: groups
neither all right nor all wrong), then scores the 500 held-out sums: greedy accuracy and pass@8
/ maj@8 from 8 samples at T=1, the evaluate stage's seed. Arm `plain-trl` is the parity check: a
plain TRL GRPOTrainer script with the same model, problems, reward and settings.

Arms named `round-...` replay the round's stored groups (`rollouts: round`), so they need the generate
stage's log-probabilities (`generate.logprobs: true`). RESULTS.md has the table and what it says.

Run in a workspace where `dvc repro filter` ran with `recipe: grpo` (and `generate.logprobs: true`
for the `round-` arms), one torch thread per run on a shared machine:
    OMP_NUM_THREADS=1 python experiments/grpo_ablation.py --arms default,plain-trl --out runs/grpo_ablation.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import polars as pl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

# arm -> overrides: keys of train.grpo, or train-level lr / lr_scheduler / warmup_ratio / batch_size
ARMS: dict[str, dict] = {
    "default": {},
    "plain-trl": {"plain": True},
    "lr5e-5": {"lr": 5e-5},
    "lr1e-4": {"lr": 1e-4},
    "lr1e-4-cosine": {"lr": 1e-4, "lr_scheduler": "cosine"},
    "iters4": {"num_iterations": 4},
    "iters4-lr5e-5": {"num_iterations": 4, "lr": 5e-5},
    "steps600": {"steps": 600},
    "dr-grpo": {"loss_type": "dr_grpo", "scale_rewards": "none"},
    "dr-grpo-lr1e-4": {"loss_type": "dr_grpo", "scale_rewards": "none", "lr": 1e-4},
    "kl0.04-lr1e-4": {"beta": 0.04, "lr": 1e-4},
    "g16": {"num_generations": 16, "batch_size": 64},
    "pos-only": {"negative_weight": 0.0},
    "pos-only-lr1e-4": {"negative_weight": 0.0, "lr": 1e-4},
    "pos-only-lr2e-4": {"negative_weight": 0.0, "lr": 2e-4},
    "neg0.1-lr1e-4": {"negative_weight": 0.1, "lr": 1e-4},
    "neg0.1-lr2e-4": {"negative_weight": 0.1, "lr": 2e-4},
    "loss-grpo": {"loss_type": "grpo"},
    # more problems per step: 32 x 8 completions a step (SFT's batch is 32 problems)
    "b256-lr2e-4-s60": {"batch_size": 256, "lr": 2e-4, "steps": 60},
    "b256-lr1e-4-s60": {"batch_size": 256, "lr": 1e-4, "steps": 60},
    "b256-lr5e-5-s120": {"batch_size": 256, "lr": 5e-5, "steps": 120},
    "b128-lr1e-4": {"batch_size": 128, "lr": 1e-4},
    "b256-lr2e-4-s60-pos": {"batch_size": 256, "lr": 2e-4, "steps": 60, "negative_weight": 0.0},
    # the round's stored groups (generate's samples, verify's rewards): no sampling in train
    "round-default": {"rollouts": "round"},
    "round-b256-lr1e-4-s60": {"rollouts": "round", "batch_size": 256, "lr": 1e-4, "steps": 60},
    "round-b256-lr1e-4-s180": {"rollouts": "round", "batch_size": 256, "lr": 1e-4, "steps": 180},
    "round-b256-lr2e-4-s180": {"rollouts": "round", "batch_size": 256, "lr": 2e-4, "steps": 180},
    "round-b256-lr2e-4-s180-pos": {"rollouts": "round", "batch_size": 256, "lr": 2e-4, "steps": 180, "negative_weight": 0.0},
    "round-b32-lr2e-4-s600-pos": {"rollouts": "round", "batch_size": 32, "lr": 2e-4, "steps": 600, "negative_weight": 0.0},
    "round-b128-lr1e-4-s360": {"rollouts": "round", "batch_size": 128, "lr": 1e-4, "steps": 360},
    "round-b128-lr1e-4-s600": {"rollouts": "round", "batch_size": 128, "lr": 1e-4, "steps": 600},
    "round-b128-lr2e-4-s360": {"rollouts": "round", "batch_size": 128, "lr": 2e-4, "steps": 360},
    "round-b128-lr2e-4-s360-pos": {"rollouts": "round", "batch_size": 128, "lr": 2e-4, "steps": 360, "negative_weight": 0.0},
    "round-b128-lr5e-4-s360": {"rollouts": "round", "batch_size": 128, "lr": 5e-4, "steps": 360},
    "round-b128-lr2e-4-s600": {"rollouts": "round", "batch_size": 128, "lr": 2e-4, "steps": 600},
    "round-b256-lr5e-4-s180": {"rollouts": "round", "batch_size": 256, "lr": 5e-4, "steps": 180},
}
TRAIN_KEYS = ("lr", "lr_scheduler", "warmup_ratio", "batch_size")


def learnable(workspace: Path) -> tuple[pl.DataFrame, list[str]]:
    """The problems train would hand GRPO: sampled this round and dropped by no problem rule."""
    from sharpen.objectives.table import learnable as learnable_problems

    problems = pl.read_parquet(workspace / "data/round/generate/problems.parquet")
    decisions = pl.read_parquet(workspace / "data/round/filter/decisions.parquet")
    kept = learnable_problems(problems, decisions)
    return kept, kept["answer"].to_list()


def evaluate(model_dir: Path, workspace: Path, seed: int) -> dict:
    from sharpen.backends import load_backend
    from sharpen.metrics import per_problem, summarize
    from sharpen.sampling import derive_seed, eval_draws, eval_requests, verified_eval_frame

    problems = pl.read_parquet(workspace / "data/tasks/eval.parquet")
    backend = load_backend("hf", model_dir, batch_size=128)
    requests = eval_requests(problems["prompt"].to_list(), shard_size=0, k=8, temperature=1.0, top_p=1.0,
                             max_new_tokens=8, seed=derive_seed(seed, "evaluate"))
    made = {key: backend.generate(prompts, **sampling) for key, prompts, sampling in requests}
    samples = verified_eval_frame(eval_draws(problems, made, round_=1), problems, "exact_integer")
    return summarize(per_problem(samples, (1, 8)), (1, 8), 8)


def plain_trl(model_dir: Path, out: Path, problems: pl.DataFrame, answers: list[str], settings: dict) -> None:
    """The reference: the script a user would write with TRL alone (same data order as sharpen's)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from sharpen.verifiers import get_verifier

    verifier = get_verifier("exact_integer")

    def reward(prompts, completions, answer, **_):
        return [r.reward for r in verifier(completions, answer, prompts=prompts)]

    torch.manual_seed(settings["seed"])
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = Dataset.from_dict({"prompt": problems["prompt"].to_list(), "answer": answers})
    with tempfile.TemporaryDirectory() as scratch:
        g = settings["grpo"]
        config = GRPOConfig(output_dir=scratch, max_steps=g["steps"], per_device_train_batch_size=settings["batch_size"],
                            num_generations=g["num_generations"], max_completion_length=g["max_completion_length"],
                            learning_rate=settings["lr"], lr_scheduler_type=settings["lr_scheduler"],
                            warmup_steps=settings["warmup_ratio"], logging_steps=10, save_strategy="no",
                            report_to="none", seed=settings["seed"], use_cpu=True, bf16=False,
                            activation_checkpointing=False, loss_type=g["loss_type"], beta=g["beta"],
                            epsilon=g["epsilon"], epsilon_high=g["epsilon_high"], scale_rewards=g["scale_rewards"])
        trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                              processing_class=tokenizer)
        trainer.train()
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def run_arm(name: str, workspace: Path, seed: int) -> dict:
    from sharpen.config import load_params
    from sharpen.objectives.grpo import train_grpo
    from sharpen.objectives.trainer import TrainerSettings
    from sharpen.params import GRPOParams

    params = load_params(workspace / "params.yaml")
    overrides = dict(ARMS[name])
    plain = overrides.pop("plain", False)
    t = params.train
    settings = {"lr": t.lr, "lr_scheduler": t.lr_scheduler, "warmup_ratio": t.warmup_ratio, "batch_size": t.batch_size,
                "seed": seed}
    settings |= {k: overrides.pop(k) for k in TRAIN_KEYS if k in overrides}
    grpo = GRPOParams(**{**t.grpo.model_dump(), **overrides})
    settings["grpo"] = grpo.model_dump()
    problems, answers = learnable(workspace)
    base = workspace / "data/base/model"
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="ablation-") as scratch:
        out = Path(scratch) / "model"
        trainer = TrainerSettings(lr=settings["lr"], lr_scheduler=settings["lr_scheduler"],
                                  warmup_ratio=settings["warmup_ratio"], batch_size=settings["batch_size"], seed=seed)
        if plain:
            plain_trl(base, out, problems, answers, settings)
            rollouts = []
        elif grpo.rollouts == "round":
            from sharpen.objectives.grpo import train_grpo_round
            from sharpen.objectives.table import stored_groups

            data = workspace / "data/round"
            groups, _ = stored_groups(problems, pl.read_parquet(data / "generate/samples.parquet"),
                                      pl.read_parquet(data / "verify/verdicts.parquet"), data / "generate/samples.parquet")
            _, rollouts = train_grpo_round(groups, base, out, trainer, grpo=grpo)
        else:
            _, rollouts = train_grpo(problems, answers, base, out, trainer, grpo=grpo, verifier="exact_integer",
                                     answer_form="auto")
        train_s = time.time() - start
        metrics = evaluate(out, workspace, params.seed)
    mixed = None
    if rollouts:
        r = pl.DataFrame(rollouts).group_by("step", "group").agg(pl.col("reward").std(ddof=0).alias("std"))
        mixed = float((r["std"] > 0).mean())
    return {"arm": name, "seed": seed, "problems": problems.height, **{k: v for k, v in settings.items() if k != "grpo"},
            "grpo": {k: v for k, v in settings["grpo"].items() if k not in ("rollouts", "temperature")},
            "train_s": round(train_s, 1), "informative_groups": mixed,
            **{k: metrics[k] for k in metrics if k in ("greedy_accuracy", "pass@1", "pass@8", "maj@8")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="default,plain-trl")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.out.exists():
        done = {(r["arm"], r["seed"]) for r in map(json.loads, args.out.read_text().splitlines())}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for arm in args.arms.split(","):
            if (arm, seed) in done:
                continue
            row = run_arm(arm, args.workspace, seed)
            print(json.dumps(row), flush=True)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
