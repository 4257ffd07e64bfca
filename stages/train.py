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

from sharpen.io import atomic_write_dir, hash_json, hash_path, read_frame, write_csv, write_frame, write_json
from sharpen.params import DPOParams, GRPOParams
from sharpen.config import load_params
from sharpen.filters import PROBLEM_RULES
from sharpen.objectives.dpo import train_dpo
from sharpen.objectives.lengths import fit_max_length
from sharpen.objectives.grpo import train_grpo, train_grpo_round, without_equal_reward_groups
from sharpen.objectives.processes import ProcessesError, is_main_process, quiet_other_ranks, relaunch, under_launcher
from sharpen.objectives.sft import checkpoints_for, train_sft
from sharpen.io import ArtifactError
from sharpen.schemas import Decision, PreferencePair, Problem, Rollout, Sample, TrainExample, Verdict, columns
from sharpen.verifiers import REFERENCES, preflight, references_for
from sharpen.stage import Timer, run_stage
from sharpen.state import current_policy_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kept", type=Path, required=True)
    parser.add_argument("--synthesized", type=Path, required=True)
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--decisions", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--verdicts", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    t = params.train
    if t.processes > 1 and not under_launcher():  # this process becomes torchrun's parent; its children train
        code = relaunch(t.processes, "stages.train", sys.argv[1:])
        if code:
            raise ProcessesError(f"train.processes: {t.processes}: the training processes exited {code} (their "
                              "errors are above)")
        return
    quiet_other_ranks()
    timer = Timer()
    examples = pl.concat([read_frame(args.kept, TrainExample), read_frame(args.synthesized, TrainExample)])
    pairs = read_frame(args.pairs, PreferencePair)
    dpo, grpo = t.objective == "dpo", t.objective == "grpo"
    g = t.grpo or GRPOParams()
    stored = grpo and g.rollouts == "round"
    problems = _learnable(read_frame(args.problems, Problem), read_frame(args.decisions, Decision)) if grpo else None
    groups, zero_variance = None, 0
    if stored:
        groups, zero_variance = _stored_groups(problems, read_frame(args.samples, Sample),
                                               read_frame(args.verdicts, Verdict), args.samples)
        problems = problems.join(groups.select("problem_id").unique(), on="problem_id")
    rows = pairs.height if dpo else problems.height if grpo else examples.height
    unit = "pairs" if dpo else "problems" if grpo else "examples"
    init_dir = args.base if t.init == "base" else current_policy_dir(args.state, args.base)
    init_hash = hash_path(init_dir)
    data_hash = hash_json([hash_path(args.pairs)] if dpo else
                          [hash_path(args.problems), hash_path(args.decisions), hash_path(args.samples),
                           hash_path(args.verdicts)] if stored else
                          [hash_path(args.problems), hash_path(args.decisions)] if grpo
                          else [hash_path(args.kept), hash_path(args.synthesized)])
    fingerprint = hash_json(
        {"init": init_hash, "base": hash_path(args.base) if t.lora else None, "data": data_hash,
         "train": t.model_dump(), "chat": params.task.chat, "round": params.round}
    )[:16]
    checkpoints = checkpoints_for(args.out, fingerprint)
    log: list[dict] = []
    skipped = None
    if rows == 0:
        skipped = ("the filter built no preference pairs (why, per problem: problems_without_pairs in "
                   "data/round/filter/metrics.json)" if dpo else
                   "the filter's problem rules kept no problem (see data/round/filter/metrics.json: all right or all "
                   "wrong groups teach GRPO nothing)" if grpo else "the filter kept no samples")
        if stored and zero_variance:
            skipped = f"every stored group had equal rewards ({zero_variance} dropped; they teach GRPO nothing)"
    rollouts: list[dict] = []
    max_length = t.max_length
    if grpo and not stored and not skipped and params.verify.labels == "gold":
        preflight(problems, params.verify.verifier, params.verify.answer_form)  # the reward runs before a step does
    if not skipped and not grpo:  # sized from the data, or refused, before any model loads
        data = pairs if dpo else examples
        sides = [data["chosen"].to_list(), data["rejected"].to_list()] if dpo else [data["completion"].to_list()]
        max_length = fit_max_length(init_dir, data["prompt"].to_list(), sides, data["problem_id"].to_list(),
                                    max_length=t.max_length, chat=params.task.chat, what=unit)

    def write(tmp: Path) -> None:
        nonlocal log, rollouts
        if skipped:
            print(f"train: {skipped}; writing the init model unchanged")
            shutil.copytree(init_dir, tmp, dirs_exist_ok=True)
            return
        if dpo:
            d = t.dpo or DPOParams()
            log = train_dpo(
                pairs, init_dir, tmp, beta=d.beta, nll_weight=d.nll_weight, lr=t.lr, lr_scheduler=t.lr_scheduler,
                warmup_ratio=t.warmup_ratio, epochs=t.epochs, batch_size=t.batch_size, max_length=max_length,
                seed=t.seed, chat=params.task.chat, lora=t.lora, base_dir=args.base,
                checkpoints=checkpoints, checkpoint_steps=t.checkpoint_steps,
            )
            return
        if stored:
            log, rollouts = train_grpo_round(
                groups, init_dir, tmp, grpo=g, lr=t.lr, lr_scheduler=t.lr_scheduler, warmup_ratio=t.warmup_ratio,
                batch_size=t.batch_size, seed=t.seed, chat=params.task.chat, lora=t.lora, base_dir=args.base,
                checkpoints=checkpoints, checkpoint_steps=t.checkpoint_steps,
            )
            return
        if grpo:
            v = params.verify
            refs = ([None] * problems.height if v.labels == "majority"  # each group's own vote; gold is never read
                    else (references_for(v.verifier, problems) if v.verifier in REFERENCES else problems["answer"]).to_list())
            log, rollouts = train_grpo(
                problems, refs, init_dir, tmp, grpo=g, verifier=v.verifier, answer_form=v.answer_form, labels=v.labels,
                control=v.reward_control,
                lr=t.lr, lr_scheduler=t.lr_scheduler, warmup_ratio=t.warmup_ratio, batch_size=t.batch_size, seed=t.seed,
                chat=params.task.chat, lora=t.lora, base_dir=args.base, checkpoints=checkpoints,
                checkpoint_steps=t.checkpoint_steps,
            )
            return
        log = train_sft(
            examples, init_dir, tmp, lr=t.lr, lr_scheduler=t.lr_scheduler, warmup_ratio=t.warmup_ratio, epochs=t.epochs,
            batch_size=t.batch_size, max_length=max_length, seed=t.seed, chat=params.task.chat, lora=t.lora,
            base_dir=args.base, checkpoints=checkpoints, checkpoint_steps=t.checkpoint_steps,
        )

    if not is_main_process():  # DDP: every process trains; process 0 writes the stage's outputs
        with tempfile.TemporaryDirectory(prefix="sharpen-rank-") as scratch:
            write(Path(scratch))
        return
    atomic_write_dir(args.out / "model", write)
    shutil.rmtree(checkpoints.parent, ignore_errors=True)
    curve_columns = {"step": pl.Int64, "loss": pl.Float64, "lr": pl.Float64}
    extra = DPO_CURVE if dpo else GRPO_CURVE if grpo else {}
    curve_columns |= {name: pl.Float64 for name in extra}
    curve = pl.DataFrame(
        [{"step": int(r["step"]), "loss": float(r["loss"]), "lr": float(r.get("learning_rate", 0.0)),
          **{name: _logged(r, key) for name, key in extra.items()}} for r in log],
        schema=curve_columns,
    )
    rollout_frame = pl.DataFrame(rollouts, schema={k: v for k, v in columns(Rollout).items() if k != "round"})
    rollout_frame = rollout_frame.select(pl.lit(params.round, pl.Int64).alias("round"), pl.all())
    write_frame(rollout_frame, args.out / "rollouts.parquet", Rollout)
    scored = rollout_frame.group_by("step", "group").agg(pl.col("reward").std(ddof=0).alias("std"))
    write_csv(curve, args.out / "loss.csv")
    write_json(
        {
            "round": params.round,
            "init": t.init,
            "objective": t.objective,
            "pairs": pairs.height if dpo else None,
            # DPO's reference: the init policy (SPIN, init previous: the previous round's), or with LoRA the base
            "reference_hash": (hash_path(args.base) if t.lora else init_hash) if dpo else None,
            "problems": problems.height if grpo else None,
            "rollouts": rollout_frame.height,
            "rollout_reward_mean": float(rollout_frame["reward"].mean()) if rollout_frame.height else None,
            "rollouts_from": g.rollouts if grpo else None,
            # round: stored groups dropped before training; online: scored groups whose rewards were all equal
            "zero_variance_groups": zero_variance if stored else int((scored["std"] == 0).sum()) if grpo else None,
            "groups": scored.height if grpo else None,
            "skipped": skipped,
            "lora": t.lora is not None,
            "init_hash": init_hash,
            "examples": examples.height,
            "examples_by_origin": dict(sorted(examples.group_by("origin").len().iter_rows())),
            "max_length": None if grpo else max_length,
            "steps": curve.height,
            "first_loss": curve["loss"][0] if curve.height else None,
            "final_loss": curve["loss"][-1] if curve.height else None,
            "model_hash": hash_path(args.out / "model"),
            "data_hash": data_hash,
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"train ({t.objective}): {curve.height} steps on {rows} {unit} from {t.init}, {timer.seconds:.0f}s")


# per-step columns of loss.csv beyond step, loss, lr: our name -> the trainer's log key
DPO_CURVE = {"reward_margin": "rewards/margins", "reward_accuracy": "rewards/accuracies"}
GRPO_CURVE = {"reward_mean": "reward", "reward_std": "reward_std", "kl": "kl", "entropy": "entropy",
              "clip_fraction": "clip_ratio/region_mean"}


def _logged(row: dict, key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _learnable(problems: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """The round's problems that no problem rule (filter.groups) dropped: GRPO's training prompts."""
    dropped = decisions.filter(pl.col("reason").is_in(PROBLEM_RULES)).select("problem_id").unique()
    sampled = decisions.select("problem_id").unique()
    return problems.join(sampled, on="problem_id").join(dropped, on="problem_id", how="anti").sort("problem_id")


def _stored_groups(problems: pl.DataFrame, samples: pl.DataFrame, verdicts: pl.DataFrame,
                   path: Path) -> tuple[pl.DataFrame, int]:
    """`rollouts: round`: the learnable problems' samples with their tokens, log-probabilities and
    rewards; groups whose rewards are all equal are dropped (returned: their count)."""
    if "logprobs" not in samples.columns or samples["logprobs"].null_count():
        raise ArtifactError(f"{path}: has no per-token log-probabilities (generate ran with generate.logprobs off); "
                            "`rollouts: round` needs them: `dvc repro` reruns generate")
    lengths = samples.filter(pl.col("token_ids").list.len() != pl.col("logprobs").list.len())
    if lengths.height:
        raise ArtifactError(f"{path}: sample {lengths.row(0, named=True)['problem_id']!r} has token_ids and logprobs "
                            "of different lengths")
    joined = (samples.join(problems.select("problem_id"), on="problem_id")
              .join(verdicts.select("problem_id", "sample_idx", "reward"), on=["problem_id", "sample_idx"], how="left"))
    if joined["reward"].null_count():
        raise ArtifactError(f"{path}: some samples have no verdict; `dvc repro` reruns verify")
    kept, dropped = without_equal_reward_groups(joined, "problem_id")
    return kept.sort("problem_id", "sample_idx"), dropped


if __name__ == "__main__":
    run_stage(main)
