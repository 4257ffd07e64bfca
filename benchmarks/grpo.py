"""GRPO optimizer steps/s: sharpen's objective (`sharpen.objectives.grpo.train_grpo`, what the
train stage calls: the project verifier as the reward, rollouts recorded, positions from the
mask, a resumable data order) against a plain TRL GRPOTrainer script with the same model,
problems, reward, and config, alternating in one run. Both include loading and saving the model.

The model is the tiny Llama of the embedded default, built here (untrained unless --model names
one, e.g. data/base/model after `dvc repro base`).

Run: `python benchmarks/grpo.py [--steps 20] [--repeats 2] [--model data/base/model]`
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def plain_trl(model_dir: Path, out: Path, problems: pl.DataFrame, args) -> None:
    """The reference: the script a user would write with TRL alone."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from sharpen.verifiers import get_verifier

    verifier = get_verifier("exact_integer")

    def reward(prompts, completions, answer, **_):
        return [r.reward for r in verifier(completions, answer, prompts=prompts)]

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = Dataset.from_dict({"prompt": problems["prompt"].to_list(), "answer": problems["answer"].to_list()})
    with tempfile.TemporaryDirectory() as scratch:
        config = GRPOConfig(output_dir=scratch, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
                            num_generations=args.num_generations, max_completion_length=args.max_completion_length,
                            learning_rate=1e-4, logging_steps=1, save_strategy="no", report_to="none", seed=0,
                            use_cpu=not torch.cuda.is_available(), bf16=False, activation_checkpointing=False,
                            epsilon_high=0.28, loss_type="dapo")
        trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                              processing_class=tokenizer)
        trainer.train()
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def through_sharpen(model_dir: Path, out: Path, problems: pl.DataFrame, args) -> None:
    from sharpen.objectives.grpo import train_grpo
    from sharpen.objectives.trainer import TrainerSettings
    from sharpen.params import GRPOParams

    grpo = GRPOParams(steps=args.steps, num_generations=args.num_generations,
                      max_completion_length=args.max_completion_length)
    settings = TrainerSettings(lr=1e-4, lr_scheduler="linear", warmup_ratio=0.0, batch_size=args.batch_size, seed=0,
                               chat="never")
    train_grpo(problems, problems["answer"].to_list(), model_dir, out, settings, grpo=grpo, verifier="exact_integer",
               answer_form="auto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=8)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    from sharpen import tiny_lm
    from sharpen.tasks import arithmetic

    problems, _ = arithmetic.make_splits(pool_size=256, eval_size=8, min_digits=1, max_digits=3, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            tok = tiny_lm.build_tokenizer()
            model_dir = Path(tmp) / "model"
            tiny_lm.save(tiny_lm.build_model(tok, hidden_size=128, intermediate_size=512, num_layers=4, num_heads=4,
                                               seed=0), tok, model_dir)
        runs: dict[str, list[float]] = {"plain TRL GRPOTrainer": [], "sharpen train_grpo": []}
        for i in range(args.repeats):
            for name, fn in (("plain TRL GRPOTrainer", plain_trl), ("sharpen train_grpo", through_sharpen)):
                start = time.perf_counter()
                fn(model_dir, Path(tmp) / f"out-{i}-{len(runs[name])}", problems, args)
                runs[name].append(args.steps / (time.perf_counter() - start))
    base = statistics.median(runs["plain TRL GRPOTrainer"])
    print(f"\n{args.steps} steps, batch {args.batch_size}, {args.num_generations} generations, "
          f"{args.max_completion_length} new tokens, {args.repeats} runs each (median)")
    for name, rates in runs.items():
        rate = statistics.median(rates)
        print(f"{name:24s} {rate:6.2f} steps/s  {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
