"""Train the policy from the base model or the current policy (`train.init`) by `train.objective`:
`sft` on the kept samples plus the synthesize stage's examples, `dpo` on the filter's
preference pairs, or `grpo` on the problems the filter's problem rules kept: online, rewarded by the
round's verifier, or (`rollouts: round`) on the groups generate sampled and verify scored, groups
with equal rewards dropped (sharpen/objectives/). GRPO's scored generations go to rollouts.parquet
(empty for the other objectives).

If there is nothing to learn from, the init model is written unchanged and `steps: 0` says so
(with the reason in metrics.json: `skipped`).

Training checkpoints (`train.checkpoint_steps`) go to `<out>/.checkpoints/<fingerprint>/`, where the
fingerprint hashes everything that determines the training (init and base models, the examples,
the train params, the round): a killed train resumes from its last checkpoint, and checkpoints
made from other inputs are deleted, never resumed. They are removed once the model is written.

Run: `python -m stages.train --kept data/round/filter/kept.parquet \
        --synthesized data/round/synthesize/examples.parquet --pairs data/round/filter/pairs.parquet \
        --problems data/round/generate/problems.parquet --decisions data/round/filter/decisions.parquet \
        --samples data/round/generate/samples.parquet --verdicts data/round/verify/verdicts.parquet --state data/state \
        --base data/base/model --out data/round/train`
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl

from sharpen.config import load_params
from sharpen.io import atomic_write_dir, hash_json, hash_path, read_frame, write_csv, write_frame, write_json
from sharpen.objectives.processes import ProcessesError, is_main_process, quiet_other_ranks, relaunch, under_launcher
from sharpen.objectives.table import METRICS, OBJECTIVES, Inputs, objective_key
from sharpen.objectives.trainer import TrainerSettings, checkpoints_for
from sharpen.schemas import Rollout, TrainExample, columns
from sharpen.stage import Timer, run_stage
from sharpen.rounds.state import current_policy_dir

INPUTS = ("kept", "synthesized", "pairs", "problems", "decisions", "samples", "verdicts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in (*INPUTS, "state", "base", "out"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    t = params.train
    if t.processes > 1 and not under_launcher():  # this process becomes torchrun's parent; its children train
        _in_processes(t.processes)
        return
    quiet_other_ranks()
    timer = Timer()
    examples = pl.concat([read_frame(args.kept, TrainExample), read_frame(args.synthesized, TrainExample)])
    inputs = Inputs(examples, **{name: getattr(args, name) for name in (*INPUTS, "base")})
    objective = OBJECTIVES[objective_key(t)](inputs, params)  # reads what it trains on
    init_dir = args.base if t.init == "base" else current_policy_dir(args.state, args.base)
    init_hash = hash_path(init_dir)
    data_hash = hash_json([hash_path(path) for path in objective.hashed])
    fingerprint = hash_json({"init": init_hash, "base": hash_path(args.base) if t.lora else None, "data": data_hash,
                             "train": t.model_dump(), "chat": params.task.chat, "round": params.round})[:16]
    settings = TrainerSettings.from_train(t, chat=params.task.chat, base_dir=args.base,
                                          checkpoints=checkpoints_for(args.out, fingerprint))
    max_length = t.max_length if objective.skipped else objective.check(init_dir)  # before any model loads (grpo: None)
    log, rollouts = [], []

    def write(tmp: Path) -> None:
        nonlocal log, rollouts
        if objective.skipped:
            print(f"train: {objective.skipped}; writing the init model unchanged")
            shutil.copytree(init_dir, tmp, dirs_exist_ok=True)
        else:
            log, rollouts = objective.train(init_dir, tmp, settings, max_length)

    if not is_main_process():  # DDP: every process trains; process 0 writes the stage's outputs
        with tempfile.TemporaryDirectory(prefix="sharpen-rank-") as scratch:
            write(Path(scratch))
        return
    atomic_write_dir(args.out / "model", write)
    shutil.rmtree(settings.checkpoints.parent, ignore_errors=True)
    curve = loss_curve(log, objective.curve)
    rollout_frame = rollout_rows(rollouts, params.round)
    write_frame(rollout_frame, args.out / "rollouts.parquet", Rollout)
    write_csv(curve, args.out / "loss.csv")
    write_json(
        {
            "round": params.round, "init": t.init, "objective": t.objective, "lora": t.lora is not None,
            "rollouts": rollout_frame.height,
            "rollout_reward_mean": float(rollout_frame["reward"].mean()) if rollout_frame.height else None,
            "skipped": objective.skipped, "init_hash": init_hash, "examples": examples.height,
            "examples_by_origin": dict(sorted(examples.group_by("origin").len().iter_rows())),
            "max_length": max_length, "steps": curve.height,
            "first_loss": curve["loss"].first(), "final_loss": curve["loss"].last(),
            "model_hash": hash_path(args.out / "model"), "data_hash": data_hash, "wall_s": timer.seconds,
            **dict.fromkeys(METRICS), **objective.metrics(rollout_frame, init_hash),
        },
        args.out / "metrics.json",
    )
    print(f"train ({t.objective}): {curve.height} steps on {objective.rows} {objective.unit} from {t.init}, "
          f"{timer.seconds:.0f}s")


def _in_processes(n: int) -> None:
    """Run this stage as n torchrun processes (train.processes); raise if they fail."""
    code = relaunch(n, "stages.train", sys.argv[1:])
    if code:
        raise ProcessesError(f"train.processes: {n}: the training processes exited {code} (their errors are above)")


def loss_curve(log: list[dict], extra: dict[str, str]) -> pl.DataFrame:
    """loss.csv: step, loss, lr, then the objective's columns (`extra`: our name -> the trainer's log key)."""
    schema = {"step": pl.Int64, "loss": pl.Float64, "lr": pl.Float64} | {name: pl.Float64 for name in extra}
    return pl.DataFrame(
        [{"step": int(r["step"]), "loss": float(r["loss"]), "lr": float(r.get("learning_rate", 0.0)),
          **{name: _logged(r, key) for name, key in extra.items()}} for r in log],
        schema=schema,
    )


def rollout_rows(rollouts: list[dict], round_: int) -> pl.DataFrame:
    """rollouts.parquet: the scored generations (GRPO's; none for the other objectives), with the round."""
    frame = pl.DataFrame(rollouts, schema={k: v for k, v in columns(Rollout).items() if k != "round"})
    return frame.select(pl.lit(round_, pl.Int64).alias("round"), pl.all())


def _logged(row: dict, key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) else float("nan")


if __name__ == "__main__":
    run_stage(main)
