"""GRPO optimizer steps/s: sharpen's objective (`sharpen.objectives.grpo.train_grpo`, what the
train stage calls: the project verifier as the reward, rollouts recorded, positions from the
mask, a resumable data order) against a plain TRL GRPOTrainer script with the same model,
problems, reward and config.

Each side of each pair is one fresh `python` process (this file, `--worker`), timed from outside,
so each pays its interpreter start, its imports (torch, transformers, trl, datasets, polars),
building the 256 problems, loading the model, `--steps` optimizer steps and saving the model. Both
apply sharpen's torch thread count (`sharpen.threads.apply`, as every stage does), so the ratio is
about the trainer, not threads (benchmarks/threads.py measures those). Not counted: building the
model. The sides alternate (order reversed every pair); it prints each side's median seconds and
steps/s, and the median [min, max] of the per-pair ratios sharpen steps/s / plain steps/s
(= plain seconds / sharpen seconds; > 1: sharpen faster).

The model is the tiny Llama of the embedded default, built here (untrained unless --model names
one, e.g. data/base/model after `dvc repro base`).

Run: `python benchmarks/grpo.py [--pairs 3] [--steps 20] [--model data/base/model]`
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SIDES = {"sharpen": "sharpen train_grpo", "plain": "plain TRL GRPOTrainer"}


def plain_trl(model_dir: Path, out: Path, problems, args) -> None:
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


def through_sharpen(model_dir: Path, out: Path, problems, args) -> None:
    from sharpen.objectives.grpo import train_grpo
    from sharpen.objectives.trainer import TrainerSettings
    from sharpen.params import GRPOParams

    grpo = GRPOParams(steps=args.steps, num_generations=args.num_generations,
                      max_completion_length=args.max_completion_length)
    settings = TrainerSettings(lr=1e-4, lr_scheduler="linear", warmup_ratio=0.0, batch_size=args.batch_size, seed=0,
                               chat="never")
    train_grpo(problems, problems["answer"].to_list(), model_dir, out, settings, grpo=grpo, verifier="exact_integer",
               answer_form="auto")


def worker(args) -> None:
    from sharpen import threads

    threads.apply()
    from sharpen.tasks import arithmetic

    problems, _ = arithmetic.make_splits(pool_size=256, eval_size=8, min_digits=1, max_digits=3, seed=0)
    (through_sharpen if args.worker == "sharpen" else plain_trl)(args.model, args.out, problems, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, alternating (default 3)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=8)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    sys.path.insert(0, str(PROJECT))
    if args.worker:
        worker(args)
        return
    from benchmarks.pairs import alternate, ratio_line, side_line, timed
    from sharpen import tiny_lm

    shared = [f"--{k}={v}" for k, v in (("steps", args.steps), ("batch-size", args.batch_size),
                                        ("num-generations", args.num_generations),
                                        ("max-completion-length", args.max_completion_length))]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model.resolve() if args.model else None
        if model_dir is None:
            tok = tiny_lm.build_tokenizer()
            model_dir = Path(tmp) / "model"
            tiny_lm.save(tiny_lm.build_model(tok, hidden_size=128, intermediate_size=512, num_layers=4, num_heads=4,
                                               seed=0), tok, model_dir)

        def side(name: str):
            def one() -> float:
                out = Path(tempfile.mkdtemp(dir=tmp))
                return timed([sys.executable, __file__, "--worker", name, "--model", str(model_dir),
                              "--out", str(out / "model"), *shared], cwd=PROJECT)

            return one

        print(f"{args.steps} steps, batch {args.batch_size}, {args.num_generations} generations, "
              f"{args.max_completion_length} new tokens, {args.pairs} pairs", flush=True)
        times = alternate({SIDES[s]: side(s) for s in SIDES}, args.pairs)
    for name, seconds in times.items():
        print(f"{side_line(name, seconds)}; {args.steps / statistics.median(seconds):.2f} steps/s")
    print(ratio_line("sharpen/plain TRL steps/s (= plain seconds / sharpen seconds)",
                     times[SIDES["plain"]], times[SIDES["sharpen"]]))


if __name__ == "__main__":
    main()
