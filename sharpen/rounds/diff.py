"""What changed between two tagged rounds: metrics, params, data volumes, and per-problem results.

Read like `sharpen rounds`, from the files each round committed (sharpen/rounds/lineage.py) and,
for the held-out samples, DVC's cache.

Run: `sharpen diff round-1 round-2` (`--json` for tools).
"""

from __future__ import annotations

from sharpen.rounds.layout import ROUND_EVAL_SAMPLES, ROUND_METRICS, stage_metrics
from sharpen.rounds.lineage import frame_at, json_at, tag_ref, yaml_at


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _flatten(v, key + ".")
        else:
            out[key] = v
    return out


def diff(tag_a: str, tag_b: str) -> dict:
    """Metrics, params and data-volume deltas, and per-problem changes, between two tagged rounds."""
    import polars as pl

    for t in (tag_a, tag_b):
        tag_ref(t)
    metrics = {}
    for stage in ("evaluate", "propose", "generate", "filter", "train", "train_proposer"):
        a = json_at(tag_a, stage_metrics(stage)) or {}
        b = json_at(tag_b, stage_metrics(stage)) or {}
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key), b.get(key)
            if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and key != "round" and va != vb:
                metrics[f"{stage}.{key}"] = {"a": va, "b": vb, "delta": vb - va}
    pa, pb = _flatten(yaml_at(tag_a, "params.yaml")), _flatten(yaml_at(tag_b, "params.yaml"))
    params = {k: {"a": pa.get(k), "b": pb.get(k)} for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}

    from sharpen.schemas import EvalSample

    sa, sb = (frame_at(t, ROUND_EVAL_SAMPLES, EvalSample) for t in (tag_a, tag_b))

    def per_problem(df):
        return df.group_by("problem_id", "category").agg(
            greedy=pl.col("correct").filter(pl.col("sample_idx") == -1).any(),
            pass_rate=pl.col("correct").filter(pl.col("sample_idx") >= 0).mean(),
        )

    joined = per_problem(sa).join(per_problem(sb), on=["problem_id", "category"], suffix="_b")
    solved = joined.filter(~pl.col("greedy") & pl.col("greedy_b"))["problem_id"].sort().to_list()
    failed = joined.filter(pl.col("greedy") & ~pl.col("greedy_b"))["problem_id"].sort().to_list()
    categories = (
        joined.group_by("category")
        .agg(pass_rate_a=pl.col("pass_rate").mean(), pass_rate_b=pl.col("pass_rate_b").mean(),
             greedy_a=pl.col("greedy").mean(), greedy_b=pl.col("greedy_b").mean(), problems=pl.len())
        .with_columns(shift=pl.col("pass_rate_b") - pl.col("pass_rate_a"))
        .sort("category")
    )
    volumes = {}
    for label, stage, key in (("generated", "generate", "samples"), ("kept", "filter", "kept"),
                              ("trained_on", "train", "examples"), ("pairs", "filter", "pairs"),
                              ("rl_problems", "train", "problems"), ("rollouts", "train", "rollouts"),
                              ("proposals", "propose", "proposals"), ("proposed_problems", "propose", "problems")):
        volumes[label] = {t: (json_at(t, stage_metrics(stage)) or {}).get(key) for t in (tag_a, tag_b)}
    evaluated = json_at(tag_b, ROUND_METRICS) or {}
    chance = {k: v for k, v in evaluated.items() if k.startswith("chance_")}  # the same held-out set: one value
    return {"a": tag_a, "b": tag_b, "metrics": metrics, "params": params, "volumes": volumes, "chance": chance,
            "newly_solved": solved, "newly_failed": failed,
            "categories": categories.to_dicts()}
