"""Train the policy from the base model or the current policy (`train.init`) by `train.objective`:
`sft` on the kept samples plus the synthesize stage's examples, or `dpo` on the filter's
preference pairs (sharpen/objectives/).

If there is nothing to learn from, the init model is written unchanged and `steps: 0` says so
(with the reason in metrics.json: `skipped`).

Training checkpoints (`train.checkpoint_steps`) go to `<out>/.checkpoints/<fingerprint>/`, where the
fingerprint hashes everything that determines the training (init and base models, the examples,
the train params, the round): a killed train resumes from its last checkpoint, and checkpoints
made from other inputs are deleted, never resumed. They are removed once the model is written.

Run: `python -m stages.train --kept data/round/filter/kept.parquet \
        --synthesized data/round/synthesize/examples.parquet --pairs data/round/filter/pairs.parquet --state data/state \
        --base data/base/model --out data/round/train`
"""

import argparse
import shutil
from pathlib import Path

import polars as pl

from sharpen.io import atomic_write_dir, hash_json, hash_path, read_frame, write_csv, write_json
from sharpen.params import DPOParams, load_params
from sharpen.objectives.dpo import train_dpo
from sharpen.objectives.sft import train_sft
from sharpen.schemas import PreferencePair, TrainExample
from sharpen.stage import Timer, run_stage
from sharpen.state import current_policy_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kept", type=Path, required=True)
    parser.add_argument("--synthesized", type=Path, required=True)
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    t = params.train
    timer = Timer()
    examples = pl.concat([read_frame(args.kept, TrainExample), read_frame(args.synthesized, TrainExample)])
    pairs = read_frame(args.pairs, PreferencePair)
    dpo = t.objective == "dpo"
    rows = pairs.height if dpo else examples.height
    init_dir = args.base if t.init == "base" else current_policy_dir(args.state, args.base)
    init_hash = hash_path(init_dir)
    data_hash = hash_json([hash_path(args.pairs)] if dpo else [hash_path(args.kept), hash_path(args.synthesized)])
    fingerprint = hash_json(
        {"init": init_hash, "base": hash_path(args.base) if t.lora else None, "data": data_hash,
         "train": t.model_dump(), "chat": params.task.chat, "round": params.round}
    )[:16]
    checkpoints = args.out / ".checkpoints"
    if checkpoints.exists():
        for stale in checkpoints.iterdir():
            if stale.name != fingerprint:
                shutil.rmtree(stale)
    log: list[dict] = []
    skipped = None
    if rows == 0:
        skipped = ("the filter built no preference pairs (no problem had both a correct and an incorrect sample; "
                   "see data/round/filter/metrics.json)" if dpo else "the filter kept no samples")

    def write(tmp: Path) -> None:
        nonlocal log
        if skipped:
            print(f"train: {skipped}; writing the init model unchanged")
            shutil.copytree(init_dir, tmp, dirs_exist_ok=True)
            return
        if dpo:
            d = t.dpo or DPOParams()
            log = train_dpo(
                pairs, init_dir, tmp, beta=d.beta, nll_weight=d.nll_weight, lr=t.lr, lr_scheduler=t.lr_scheduler,
                warmup_ratio=t.warmup_ratio, epochs=t.epochs, batch_size=t.batch_size, max_length=t.max_length,
                seed=t.seed, chat=params.task.chat, lora=t.lora, base_dir=args.base,
                checkpoints=checkpoints / fingerprint, checkpoint_steps=t.checkpoint_steps,
            )
            return
        log = train_sft(
            examples, init_dir, tmp, lr=t.lr, lr_scheduler=t.lr_scheduler, warmup_ratio=t.warmup_ratio, epochs=t.epochs,
            batch_size=t.batch_size, max_length=t.max_length, seed=t.seed, chat=params.task.chat, lora=t.lora,
            base_dir=args.base, checkpoints=checkpoints / fingerprint, checkpoint_steps=t.checkpoint_steps,
        )

    atomic_write_dir(args.out / "model", write)
    shutil.rmtree(checkpoints, ignore_errors=True)
    columns = {"step": pl.Int64, "loss": pl.Float64, "lr": pl.Float64}
    if dpo:  # DPO's implicit reward margin (chosen - rejected) and how often chosen wins
        columns |= {"reward_margin": pl.Float64, "reward_accuracy": pl.Float64}
    curve = pl.DataFrame(
        [{"step": int(r["step"]), "loss": float(r["loss"]), "lr": float(r.get("learning_rate", 0.0)),
          **({"reward_margin": float(r.get("rewards/margins", float("nan"))),
              "reward_accuracy": float(r.get("rewards/accuracies", float("nan")))} if dpo else {})} for r in log],
        schema=columns,
    )
    write_csv(curve, args.out / "loss.csv")
    write_json(
        {
            "round": params.round,
            "init": t.init,
            "objective": t.objective,
            "pairs": pairs.height if dpo else None,
            "skipped": skipped,
            "lora": t.lora is not None,
            "init_hash": init_hash,
            "examples": examples.height,
            "examples_by_origin": dict(sorted(examples.group_by("origin").len().iter_rows())),
            "steps": curve.height,
            "first_loss": curve["loss"][0] if curve.height else None,
            "final_loss": curve["loss"][-1] if curve.height else None,
            "model_hash": hash_path(args.out / "model"),
            "data_hash": data_hash,
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"train ({t.objective}): {curve.height} steps on {rows} {'pairs' if dpo else 'examples'} from {t.init}, "
          f"{timer.seconds:.0f}s")


if __name__ == "__main__":
    run_stage(main)
