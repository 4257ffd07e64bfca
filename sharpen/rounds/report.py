"""One self-contained HTML report of the loop: the rounds table and the plots people look at.

Per round (inline SVG with hover and legend toggles, sharpen/rounds/report_html.py): held-out accuracy
and pass@k; apart from them the chance baselines and the monitors (form, agreement, answer entropy);
the round not advanced yet drawn and marked. What each round trained on (SFT's kept samples, DPO's
pairs, GRPO's groups and rewards), the held-out problems each round newly solved or newly failed
with both rounds' answers, and a browser of seeded samples of the answers: rewarded and rejected
greedy answers, kept training samples, and rejected ones by the verifier's reason
(sharpen/rounds/samples.py). Plots (matplotlib, embedded as PNG): greedy accuracy per category per
round; kept fraction of SFT rounds; the distribution of per-problem pass rates per round (how much
reward varies, i.e. what is left to learn); the training loss of every round, and for reward
learning the GRPO reward or DPO margin per step. Self-play rounds add the proposer's panel:
validity, diversity, the solver's rate on the proposals and the proposer's reward per round, and a
table of what it wrote (rejections by reason, the best-rewarded questions).
Everything is read from git tags and DVC's cache, like `sharpen rounds`; no server, no CDN, no script
from elsewhere.

Run: `sharpen report [--out reports/sharpen.html]`
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import polars as pl

from sharpen.io import atomic_write
from sharpen.rounds import report_html
from sharpen.rounds.layout import BASE_CATEGORIES, ROUND_CATEGORIES, ROUND_LOSS, ROUND_PROPOSALS, ROUND_STATS, stage_metrics
from sharpen.rounds.lineage import LineageError, file_at, frame_at, json_at, round_cell, round_columns, rounds_table
from sharpen.rounds.tags import round_tags
from sharpen.schemas import ProblemStats, Proposal


def _csv_at(rev: str | None, path: Path) -> pl.DataFrame | None:
    """A plots CSV at `rev` (None: the workspace; None if absent), every column but `category` numbers;
    a damaged one is a LineageError naming the file and column."""
    data = file_at(rev, path)
    if not data:
        return None
    where = f"{path} at {rev}" if rev else str(path)
    try:
        df = pl.read_csv(io.BytesIO(data))
    except Exception as e:  # polars raises several types for a damaged file
        raise LineageError(f"{where}: not a readable CSV file: {' '.join(str(e).split())[:200]}") from None
    for column, dtype in df.schema.items():
        if column != "category" and not dtype.is_numeric() and df[column].null_count() < df.height:
            bad = df[column].filter(df[column].cast(pl.Float64, strict=False).is_null() & df[column].is_not_null())
            shown = bad[0] if bad.len() else df[column].drop_nulls()[0]
            raise LineageError(f"{where}: column {column!r} holds {shown!r}, not a number; the stage that wrote it "
                               f"(`dvc repro`) rewrites it, or `git checkout {rev or 'HEAD'} -- {path}`")
    return df


def _pass_rates(tag: str) -> pl.Series | None:
    from sharpen.io import ArtifactError

    try:
        return frame_at(tag, ROUND_STATS, ProblemStats)["pass_rate"]
    except ArtifactError:  # not in the local cache: the plot leaves the round out
        return None


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _figures(tags: list[tuple[int, str]]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []  # accuracy, baselines and monitors per round: SVG (report_html.charts)
    per_cat = []
    base_cat = _csv_at(tags[0][1] if tags else None, BASE_CATEGORIES)
    if base_cat is not None:
        per_cat.append(base_cat.with_columns(pl.lit(0).alias("round")))
    for n, tag in tags:
        df = _csv_at(tag, ROUND_CATEGORIES)
        if df is not None:
            per_cat.append(df.with_columns(pl.lit(n).alias("round")))
    if per_cat:
        cats = pl.concat([d.select("round", "category", "greedy_accuracy") for d in per_cat])
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for cat in sorted(cats["category"].unique()):
            sub = cats.filter(pl.col("category") == cat).sort("round")
            ax.plot(sub["round"], sub["greedy_accuracy"] * 100, marker=".", label=cat)  # % like the table
        ax.set(xlabel="round", ylabel="greedy accuracy (%)", title="Greedy accuracy per category", ylim=(0, 100))
        ax.set_xticks(sorted(cats["round"].unique()))
        ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.2))
        ax.grid(alpha=0.3)
        figs.append(("Per category", _png(fig)))
        plt.close(fig)

    kept = [(n, json_at(tag, stage_metrics("filter")) or {}) for n, tag in tags  # SFT rounds: others train on
            if (json_at(tag, stage_metrics("train")) or {}).get("objective", "sft") == "sft"]  # something else
    if kept:
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        ax.bar([n for n, _ in kept], [m.get("kept_fraction", 0) for _, m in kept], color="#4c72b0")
        ax.set(xlabel="round", ylabel="kept / generated", title="Kept fraction (SFT rounds)")
        ax.set_xticks([n for n, _ in kept])
        figs.append(("Kept fraction", _png(fig)))
        plt.close(fig)

    rates = [(n, _pass_rates(tag)) for n, tag in tags]
    rates = [(n, r) for n, r in rates if r is not None]
    if rates:
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        bins = [i / 8 for i in range(9)]
        for n, r in rates:
            ax.hist(r.to_list(), bins=bins, histtype="step", linewidth=1.5, label=f"round {n}")
        ax.set(xlabel="per-problem pass rate over k samples", ylabel="problems",
               title="Pass-rate distribution (0 and 1: no reward variance)")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the plot, covering nothing
        figs.append(("Pass-rate histogram", _png(fig)))
        plt.close(fig)

    losses = [(n, _csv_at(tag, ROUND_LOSS)) for n, tag in tags]
    losses = [(n, d) for n, d in losses if d is not None and d.height]
    if losses:  # one small panel per round: overlaid per-step curves of several rounds are unreadable
        cols = min(len(losses), 4)
        rows_ = -(-len(losses) // cols)
        fig, axes = plt.subplots(rows_, cols, figsize=(3.2 * cols, 2.4 * rows_), squeeze=False, sharey=True)
        for ax, (n, d) in zip(axes.flat, losses):
            ax.plot(d["step"], d["loss"], linewidth=0.6, color="#bbbbbb")
            window = max(1, d.height // 20)
            ax.plot(d["step"], d["loss"].rolling_mean(window, min_samples=1), linewidth=1.4, color="#4c72b0")
            ax.set(title=f"round {n}", xlabel="step")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(losses):]:
            ax.axis("off")
        axes[0][0].set_ylabel("loss")
        fig.suptitle("Training loss per round (raw, and a moving mean)")
        fig.tight_layout()
        figs.append(("Training loss", _png(fig)))
        plt.close(fig)
    # what reward learning saw: GRPO's reward per step, DPO's chosen-rejected margin per step
    for column, title in (("reward_mean", "GRPO: mean reward of the trained groups per step"),
                          ("reward_margin", "DPO: chosen - rejected reward margin per step")):
        curves = [(n, d) for n, d in losses if column in d.columns and d[column].is_not_nan().any()]
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        for n, d in curves:
            ax.plot(d["step"], d[column], linewidth=1, label=f"round {n}")
        ax.set(xlabel="step", ylabel=column, title=title)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.grid(alpha=0.3)
        figs.append((title.split(":")[0] + " training signal", _png(fig)))
        plt.close(fig)
    return figs


PROPOSER_CURVES = {"valid_share": "valid", "distinct_share": "distinct", "solver_rate_mean": "solver rate",
                   "true_solve_rate": "true solve rate", "reward_mean": "proposer reward"}


def _proposer_rounds(tags: list[tuple[int, str]]) -> list[tuple[int, str, dict]]:
    rounds = [(n, tag, json_at(tag, stage_metrics("train_proposer")) or {}) for n, tag in tags]
    return [(n, tag, m) for n, tag, m in rounds if m.get("kind", "none") != "none"]


def _proposer_figure(proposer: list[tuple[int, str, dict]]) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    rounds = [n for n, _, _ in proposer]
    for key, label in PROPOSER_CURVES.items():
        values = [m.get(key) for _, _, m in proposer]
        if any(v is not None for v in values):
            ax.plot(rounds, [float("nan") if v is None else v for v in values], marker="o", label=label)
    ax.set(xlabel="round", ylabel="share / reward", title="Self-play: what the proposer wrote, under the solver")
    ax.set_xticks(rounds)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3)
    title = "Proposer per round"
    png = _png(fig)
    plt.close(fig)
    return title, png


def _proposals_table(proposer: list[tuple[int, str, dict]], best: int = 3) -> str:
    """Per self-play round: proposals by outcome (ok, or why rejected) and the best-rewarded questions."""
    from sharpen.io import ArtifactError

    body = []
    for n, tag, _ in proposer:
        try:
            df = frame_at(tag, ROUND_PROPOSALS, Proposal)
        except ArtifactError:  # not in the local cache (`dvc pull`): the row says so
            body.append(f"<tr><td>{n}</td><td colspan=2>proposals not in the local cache</td></tr>")
            continue
        reasons = ", ".join(f"{r} {c}" for r, c in df.group_by("reason").len().sort("len", descending=True).iter_rows())
        top = (df.filter(pl.col("reason") == "ok").sort("reward", descending=True, maintain_order=True)
               .unique("question", keep="first", maintain_order=True).head(best))
        fmt = lambda x: "?" if x is None else f"{x:.2f}"  # noqa: E731
        examples = "<br>".join(f"{html.escape(q)} (solver {fmt(r)}, reward {fmt(w)})"
                               for q, r, w in top.select("question", "solver_rate", "reward").iter_rows())
        body.append(f"<tr><td>{n}</td><td>{html.escape(reasons)}</td><td style='text-align:left'>{examples}</td></tr>")
    return ("<h2>What the proposer wrote</h2><div class=\"scroll\"><table><thead><tr><th>round</th>"
            "<th>proposals by outcome</th><th>best-rewarded questions</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _table(rows: list[dict]) -> str:
    """Every column of `sharpen rounds --wide`, in its order and format; scrolls sideways if the window is narrow."""
    cols, metrics = round_columns(rows, wide=True)
    head = "".join(f"<th>{html.escape(c.replace('greedy_accuracy', 'greedy').removesuffix('_s'))}</th>" for c in cols)
    body = ["<tr>" + "".join(f"<td>{html.escape(round_cell(r.get(c), c, metrics))}</td>" for c in cols) + "</tr>"
            for r in rows]
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def write_report(out: Path) -> Path:
    rows = rounds_table()
    if not rows:
        raise LineageError("no rounds to report yet: run `dvc repro`")
    tags = round_tags()
    figures = _figures(tags)
    proposer = _proposer_rounds(tags)
    if proposer:
        figures.append(_proposer_figure(proposer))
    images = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b64}"><figcaption>{html.escape(t)}'
        "</figcaption></figure>" for t, b64 in figures
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sharpen report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
.scroll {{ overflow-x: auto; max-width: 100%; margin-bottom: 2rem; }}
table {{ border-collapse: collapse; font-size: 0.8rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.4rem; text-align: right; white-space: nowrap; }}
th {{ background: #f3f3f3; }}
figure {{ display: block; margin: 0 0 1.5rem 0; max-width: 1100px; }}
figure img {{ max-width: 100%; height: auto; }}
figcaption {{ font-size: 0.8rem; color: #555; }}
{report_html.STYLE}</style></head><body>
<h1>sharpen: {len(tags)} round(s)</h1>
<p>Held-out metrics per round in % (round 0 is the base model); stage times in seconds.</p>
{_table(rows)}
{report_html.charts(rows, tags)}
{report_html.answers(rows, tags)}
<h2>Detail plots</h2>
{images}
{_proposals_table(proposer) if proposer else ""}
<script type="application/json" id="rounds">{html.escape(json.dumps(rows))}</script>
<script>{report_html.SCRIPT}</script>
</body></html>
"""
    return atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
