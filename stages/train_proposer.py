"""Self-play: reward each of the proposer's proposals by how the solver did on it, and train the
proposer by GRPO on its own groups (`train.grpo.rollouts: round`'s mechanism: nothing is sampled
here, the importance ratio is against the log-probabilities the propose stage recorded).

Rewards (sharpen/selfplay/rewards.py): r-zero max(0, min(p̂, 1 − p̂) − repetition), p̂ the
majority answer's share among the solver's m answers (the truth is never read); absolute-zero
1 − the solver's success rate against the executor's gold (0 at 0 or 1); −1 for a proposal that
became no problem (unparsable, refused by the executor, or a held-out question). Groups whose
rewards are all equal teach GRPO nothing and are dropped (`zero_variance_groups`).

Writes the proposer's next policy (model/), every proposal with its solver rate and reward
(proposals.parquet), the training curve (loss.csv) and metrics.json: the proposer's validity,
the difficulty of what it wrote under the solver (mean p̂ or success rate), its diversity, and
where the task computes the truth, the solver's true success rate on the proposed questions.
With `propose.kind: none` nothing is trained and model/ holds only a note saying so; the empty
proposals propose wrote pass through, checked without pandera (sharpen/empty.py). The training
modules and sharpen.schemas are imported only past that point.

Run: `python -m stages.train_proposer --proposals data/round/propose/proposals.parquet \
        --verdicts data/round/verify/verdicts.parquet --state data/state --base data/base/model \
        --out data/round/train_proposer`
"""

import argparse
import dataclasses
import shutil
from pathlib import Path

import polars as pl

from sharpen.empty import read_empty
from sharpen.io import (atomic_write, atomic_write_dir, hash_json, hash_path, read_frame, write_csv, write_frame,
                        write_json)
from sharpen.params import GRPOParams
from sharpen.config import load_params
from sharpen.selfplay.rewards import reward
from sharpen.stage import Timer, run_stage
from sharpen.rounds.state import current_policy_dir

NO_PROPOSER = "NO_PROPOSER"  # model/ of a round without self-play holds only this note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proposals", type=Path, required=True)
    parser.add_argument("--verdicts", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    p, t = params.propose, params.train
    timer = Timer()
    if p.kind == "none":
        proposals = read_empty(args.proposals, "Proposal")  # as propose wrote them: valid, no pandera needed
        if proposals is None:  # rows, or a file whose fault validation names
            from sharpen.schemas import Proposal

            proposals = read_frame(args.proposals, Proposal)
        atomic_write_dir(args.out / "model", lambda tmp: (tmp / NO_PROPOSER).write_text(
            "propose.kind is none: this round has no proposer to train\n"))
        atomic_write(args.out / "proposals.parquet", lambda tmp: proposals.write_parquet(tmp))  # valid as read
        write_csv(pl.DataFrame(schema={"step": pl.Int64, "loss": pl.Float64}), args.out / "loss.csv")
        write_json({"round": params.round, "kind": "none", "wall_s": timer.seconds}, args.out / "metrics.json")
        return
    from sharpen.objectives.grpo import train_grpo_round, without_equal_reward_groups
    from sharpen.objectives.trainer import TrainerSettings, checkpoints_for
    from sharpen.schemas import Proposal, Verdict

    proposals = read_frame(args.proposals, Proposal)
    scored = score(proposals, read_frame(args.verdicts, Verdict), p.kind, p.repetition_weight)
    learnable, flat = without_equal_reward_groups(scored, "slot")
    groups = (learnable
              .select(pl.col("slot").alias("problem_id"), "prompt", "sample_idx", "completion", "token_ids", "logprobs",
                      "reward", "temperature"))
    init_dir = current_policy_dir(args.state, args.base, role="proposer")
    grpo = GRPOParams(rollouts="round", steps=p.steps, num_generations=p.group, max_completion_length=p.max_new_tokens,
                      temperature=p.temperature)
    fingerprint = hash_json({"init": hash_path(init_dir), "base": hash_path(args.base) if t.lora else None,
                             "proposals": hash_path(args.proposals), "verdicts": hash_path(args.verdicts),
                             "propose": p.model_dump(), "lora": t.lora.model_dump() if t.lora else None,
                             "round": params.round})[:16]
    checkpoints = checkpoints_for(args.out, fingerprint)
    # the proposer's own lr and batch; the rest as the solver trains
    settings = dataclasses.replace(TrainerSettings.from_train(t, chat=params.task.chat, base_dir=args.base,
                                                              checkpoints=checkpoints), lr=p.lr, batch_size=p.batch_size)
    log: list[dict] = []
    skipped = None if groups.height else f"every proposer group had equal rewards ({flat} dropped)"

    def write(tmp: Path) -> None:
        nonlocal log
        if skipped:
            print(f"train_proposer: {skipped}; writing the proposer unchanged")
            shutil.copytree(init_dir, tmp, dirs_exist_ok=True)
            return
        log, _ = train_grpo_round(groups, init_dir, tmp, settings, grpo=grpo)

    atomic_write_dir(args.out / "model", write)
    shutil.rmtree(checkpoints.parent, ignore_errors=True)
    write_frame(scored, args.out / "proposals.parquet", Proposal)
    curve = pl.DataFrame([{"step": int(r["step"]), "loss": float(r["loss"]),
                           "reward_mean": float(r.get("reward", float("nan")))} for r in log],
                         schema={"step": pl.Int64, "loss": pl.Float64, "reward_mean": pl.Float64})
    write_csv(curve, args.out / "loss.csv")
    valid = scored.filter(pl.col("reason") == "ok")
    write_json(
        {
            "round": params.round,
            "kind": p.kind,
            "proposals": scored.height,
            "valid_share": valid.height / max(scored.height, 1),
            "reward_mean": float(scored["reward"].mean()) if scored.height else None,
            # difficulty under the solver: r-zero's mean p̂ (1: the solver always agrees with itself), or
            # absolute-zero's mean success rate against the executor's gold
            "solver_rate_mean": float(valid["solver_rate"].mean()) if valid.height else None,
            "true_solve_rate": true_solve_rate(valid, read_frame(args.verdicts, Verdict)),
            "distinct_share": (valid["question"].n_unique() / valid.height) if valid.height else None,
            "zero_variance_groups": flat,
            "groups": scored["slot"].n_unique(),
            "steps": curve.height,
            "skipped": skipped,
            "init_hash": hash_path(init_dir),
            "model_hash": hash_path(args.out / "model"),
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"train_proposer ({p.kind}): {curve.height} steps on {groups['problem_id'].n_unique()} groups, "
          f"mean reward {scored['reward'].mean():.3f}, {timer.seconds:.0f}s")


def score(proposals: pl.DataFrame, verdicts: pl.DataFrame, kind: str, weight: float | None = None) -> pl.DataFrame:
    """Proposals with `solver_rate` (r-zero: p̂; absolute-zero: success rate) and `reward` filled in;
    `weight` is propose.repetition_weight (None: the kind's paper value)."""
    from sharpen.schemas import Proposal

    if kind == "r-zero":
        rates = verdicts.group_by("problem_id").agg(pl.col("majority_ratio").first().alias("rate"))
    else:
        rates = verdicts.group_by("problem_id").agg(pl.col("correct").cast(pl.Float64).mean().alias("rate"))
    missing = proposals.filter(pl.col("problem_id").is_not_null()).join(rates, on="problem_id", how="anti")
    if missing.height:
        raise ValueError(f"proposal {missing['problem_id'][0]!r} has no solver verdicts; `dvc repro` reruns generate "
                         "and verify on this round's proposals")
    joined = proposals.drop("solver_rate", "reward").join(rates, on="problem_id", how="left", maintain_order="left")
    rewards = [reward(kind, r if ok == "ok" else None, rep, weight)
               for r, ok, rep in zip(joined["rate"], joined["reason"], joined["repetition"], strict=True)]
    return joined.with_columns(
        solver_rate=pl.col("rate").cast(pl.Float64), reward=pl.Series(rewards, dtype=pl.Float64)
    ).select(list(Proposal.to_schema().columns))


def true_solve_rate(valid: pl.DataFrame, verdicts: pl.DataFrame) -> float | None:
    """The share of the solver's answers on proposed questions that equal the truth (logged only; r-zero
    never trains on it). None where no truth is known."""
    truth = valid.filter(pl.col("answer").is_not_null()).unique("problem_id").select("problem_id", "answer")
    if not truth.height:
        return None
    joined = verdicts.join(truth, on="problem_id")
    right = [e is not None and e.strip() == a for e, a in zip(joined["extracted"], joined["answer"], strict=True)]
    return sum(right) / len(right) if right else None


if __name__ == "__main__":
    run_stage(main)
