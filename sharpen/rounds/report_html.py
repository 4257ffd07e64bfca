"""The report's parts that show answers and rounds as they are: charts per round as inline SVG, what
each round trained on, newly solved and newly failed problems, and the sample browser.

Charts are drawn here as SVG, not with a plotting library: the file stays offline and small, every
point has a hover tooltip in the table's format (%, one decimal), a click on a legend entry hides or
shows its line, the legend sits beside the plot and never covers a line, and the round not advanced
yet is drawn hollow on a shaded band. Per-step curves (hundreds of points) stay matplotlib images in
sharpen/rounds/report.py. The browser's filters are a few lines of JavaScript in the page.

Run: `sharpen report` (sharpen/rounds/report.py calls `charts` and `answers`).
"""

from __future__ import annotations

import html
import math

import polars as pl

from sharpen.rounds.layout import stage_metrics
from sharpen.rounds.lineage import json_at
from sharpen.rounds.samples import (
    CHANGES,
    GROUPS,
    RoundRef,
    RoundSamples,
    Transition,
    round_refs,
    round_samples,
    round_transitions,
    trained_on,
)

ACCURACY = ("greedy_accuracy", "pass@", "maj@")  # the accuracy chart; every other share of evaluate's is a monitor
MONITOR_PREFIXES = ("chance", "greedy_", "self_consistency")
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
          "#64b5cd")
_e = html.escape


def _is_accuracy(key: str) -> bool:
    return key == "greedy_accuracy" or key.startswith(("pass@", "maj@"))


def _is_monitor(key: str) -> bool:
    return key.startswith(MONITOR_PREFIXES) and not _is_accuracy(key)


# --- charts ----------------------------------------------------------------------------------------


def svg_chart(title: str, xs: list[int], series: dict[str, list[float | None]], *, current: int | None = None,
              percent: bool = True, unit: str = "", dashed: tuple[str, ...] = ()) -> str:
    """A line chart of values per round: y in % (0 to 100) when `percent`, else from 0 to the largest
    value; `current` (a round not advanced yet) drawn hollow on a shaded band; the legend on the right."""
    w, h, left, top, plot_w, plot_h = 860, 300, 52, 30, 560, 220
    values = [v for vs in series.values() for v in vs if v is not None and not math.isnan(v)]
    y_max = 100.0 if percent else _nice(max(values, default=1.0))
    scale = 100.0 if percent else 1.0
    lo, hi = min(xs, default=0), max(xs, default=1)
    span = max(hi - lo, 1)

    pad = 20  # no point on the plot's edge

    def X(x):  # noqa: N802
        return left + pad + (x - lo) / span * (plot_w - 2 * pad) if len(xs) > 1 else left + plot_w / 2

    def Y(v):  # noqa: N802
        return top + plot_h - min(v * scale, y_max) / y_max * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(title)}">',
           f'<text x="{left}" y="18" class="t">{_e(title)}</text>']
    if current is not None and current in xs:  # the round not advanced yet
        half = min((plot_w - 2 * pad) / span / 2 if len(xs) > 1 else pad, pad * 2)
        x0, x1 = max(X(current) - half, left), min(X(current) + half, left + plot_w)
        out.append(f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{plot_h}" class="cur">'
                   "<title>not advanced yet: `sharpen advance` gates and tags it</title></rect>"
                   f'<text x="{X(current):.1f}" y="{top - 4}" class="xa">not advanced</text>')
    for i in range(5):  # y grid
        v = y_max * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="g"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" class="ya">{_fmt_axis(v)}{"%" if percent else ""}</text>')
    for x in xs:
        label = f"{x}*" if x == current else str(x)
        out.append(f'<text x="{X(x):.1f}" y="{top + plot_h + 16}" class="xa">{label}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" class="xa">round (0 = base'
               f'{"; * not advanced yet" if current is not None else ""})</text>')
    for i, (name, vs) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        pts = [(x, v) for x, v in zip(xs, vs) if v is not None and not math.isnan(v)]
        dash = ' stroke-dasharray="5 4"' if name in dashed else ""
        out.append(f'<g class="s" data-s="{i}">')
        done = [(x, v) for x, v in pts if x != current]
        if len(done) > 1:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="'
                       + " ".join(f"{X(x):.1f},{Y(v):.1f}" for x, v in done) + '"/>')
        if current is not None and done and pts and pts[-1][0] == current:
            (x0, v0), (x1, v1) = done[-1], pts[-1]
            out.append(f'<line x1="{X(x0):.1f}" y1="{Y(v0):.1f}" x2="{X(x1):.1f}" y2="{Y(v1):.1f}" stroke="{color}" '
                       'stroke-width="2" stroke-dasharray="2 3"/>')
        for x, v in pts:
            fill = "#fff" if x == current else color
            tip = f"{name}, round {x}{' (not advanced)' if x == current else ''}: {_fmt(v, percent)}{unit}"
            out.append(f'<circle cx="{X(x):.1f}" cy="{Y(v):.1f}" r="4" fill="{fill}" stroke="{color}" stroke-width="2">'
                       f"<title>{_e(tip)}</title></circle>")
        out.append("</g>")
        ly = top + 4 + 18 * i  # the legend: right of the plot, one entry a line
        out.append(f'<g class="lg" data-s="{i}"><title>click: hide or show</title>'
                   f'<line x1="{left + plot_w + 24}" x2="{left + plot_w + 48}" y1="{ly}" y2="{ly}" stroke="{color}" '
                   f'stroke-width="3"{dash}/><text x="{left + plot_w + 54}" y="{ly + 4}">{_e(name)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= v)


def _fmt_axis(v: float) -> str:
    return f"{v:.0f}" if v == int(v) else f"{v:.3g}"


def _fmt(v: float, percent: bool) -> str:
    return f"{100 * v:.1f}%" if percent else f"{v:.2f}"


def charts(rows: list[dict], tags: list[tuple[int, str]]) -> str:
    """Accuracy per round, and apart from it the chance baselines and the monitors (shares in %, and
    answer entropy in bits), every value as the rounds table shows it."""
    refs = round_refs(rows, tags)
    xs = [r["round"] for r in rows]
    current = next((ref.round for ref in refs if not ref.advanced), None)
    metrics = [{**row, **_monitors(ref)} for row, ref in zip(rows, refs)]
    keys = sorted({k for m in metrics for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    acc = [k for k in keys if _is_accuracy(k)]
    mon = [k for k in keys if _is_monitor(k)]
    parts = [svg_chart("Held-out accuracy per round", xs, {_label(k): [m.get(k) for m in metrics] for k in acc},
                       current=current)]
    if mon:
        series = {_label(k): [m.get(k) for m in metrics] for k in mon}
        if "greedy_accuracy" in keys:  # the line the baselines and monitors are read against
            series["greedy (reference)"] = [m.get("greedy_accuracy") for m in metrics]
        parts.append(svg_chart("Chance baselines and monitors per round", xs, series, current=current,
                               dashed=tuple(s for s in series if s.startswith(("chance", "greedy (reference)")))))
    if any(m.get("answer_entropy") is not None for m in metrics):
        parts.append(svg_chart("Answer entropy per round (bits; 0: one answer)", xs,
                               {"answer_entropy": [m.get("answer_entropy") for m in metrics]}, current=current,
                               percent=False, unit=" bits"))
    note = ("<p class=note>Hover a point for its value (as in the table); click a legend entry to hide or show its "
            "line. Chance: what answering without reading scores; monitors: form and agreement of the policy's "
            "answers (README, Reward hacks).</p>")
    return '<h2>Per round</h2>' + note + "".join(f'<div class="chartbox">{p}</div>' for p in parts)


def _label(key: str) -> str:
    return key.replace("_accuracy", "") if key in ("greedy_accuracy", "chance_accuracy") else key


def _monitors(ref: RoundRef) -> dict:
    """The monitors of evaluate's metrics.json that the rounds table leaves out (self_consistency, answer_entropy)."""
    metrics = json_at(ref.rev, ref.eval_metrics) or {}
    return {k: v for k, v in metrics.items() if k in ("self_consistency", "answer_entropy")}


# --- what each round trained on --------------------------------------------------------------------


def trained_on_table(refs: list[RoundRef]) -> str:
    body = []
    for ref in refs:
        if ref.round == 0:
            continue
        m = {s: json_at(ref.rev, stage_metrics(s)) or {} for s in ("generate", "filter", "train", "train_proposer")}
        line = trained_on(m["train"], m["filter"], m["generate"])
        proposer = m["train_proposer"]
        if proposer.get("kind", "none") != "none":
            mean = proposer.get("reward_mean")
            line += (f"; proposer ({proposer['kind']}): {proposer.get('proposals', '?')} proposals, rewards mean "
                     f"{'?' if mean is None else f'{mean:.2f}'}")
        body.append(f'<tr><td class="l">{_e(_round_label(ref))}</td><td class="l">{_e(line)}</td></tr>')
    if not body:
        return ""
    return ('<h2>What each round trained on</h2><p class=note>SFT: the kept samples; where a kept share means '
            'nothing (DPO, GRPO, self-play), what the trainer learnt from instead.</p>'
            '<table class="plain"><thead><tr><th class="l">round</th><th class="l">trained on</th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _round_label(ref: RoundRef) -> str:
    return "base" if ref.round == 0 else f"round {ref.round}" + ("" if ref.advanced else " (not advanced)")


# --- newly solved, newly failed --------------------------------------------------------------------


def _code(value) -> str:
    return '<span class="na">none read</span>' if value is None else f"<code>{_e(str(value))}</code>"


def _pre(text: str | None) -> str:
    return f"<pre>{_e(text)}</pre>" if text is not None else '<span class="na">not read</span>'


def _answer(row: dict, side: str) -> str:
    ok = "right" if (row["group"] == CHANGES[0]) == (side == "b") else "wrong"
    return (f'<div class="ans"><b class="{ok}">{ok}</b> extracted {_code(row[f"extracted_{side}"])}'
            f' ({_e(str(row[f"reason_{side}"]))}); samples right {row[f"right_{side}"]}/{row[f"k_{side}"]}</div>'
            + _pre(row[f"completion_{side}"]))


def transitions_section(transitions: list[Transition]) -> str:
    if not transitions:
        return ""
    blocks = []
    for i, t in enumerate(reversed(transitions)):  # the newest pair first, open
        head = f"{_round_label(t.a)} → {_round_label(t.b)}"
        if t.rows is None:
            blocks.append(f"<details><summary>{_e(head)}: {_e(t.missing or 'not readable')}</summary></details>")
            continue
        shown = t.rows.height
        summary = (f"{head}: {t.totals.get(CHANGES[0], 0):,} newly solved, {t.totals.get(CHANGES[1], 0):,} newly failed"
                   + (f" (showing {shown})" if shown < sum(t.totals.values()) else ""))
        body = "".join(
            f'<tr class="{"up" if r["group"] == CHANGES[0] else "down"}"><td class="l">{_e(r["group"])}</td>'
            f'<td class="l">{_e(r["problem_id"])}<br><span class="na">{_e(r["category"])}</span></td>'
            f'<td class="l">{_pre(r["prompt"])}</td><td class="l"><code>{_e(str(r["gold"]))}</code></td>'
            f'<td class="l">{_answer(r, "a")}</td><td class="l">{_answer(r, "b")}</td></tr>'
            for r in t.rows.iter_rows(named=True))
        table = ("" if not shown else
                 '<div class="scroll"><table class="answers"><thead><tr><th class="l">change</th>'
                 '<th class="l">problem</th><th class="l">prompt</th><th class="l">gold</th>'
                 f'<th class="l">{_e(_round_label(t.a))} (greedy)</th><th class="l">{_e(_round_label(t.b))} (greedy)</th>'
                 f"</tr></thead><tbody>{body}</tbody></table></div>")
        blocks.append(f"<details{' open' if i == 0 else ''}><summary>{_e(summary)}</summary>{table}</details>")
    return ("<h2>Newly solved and newly failed</h2><p class=note>Held-out problems whose greedy answer turned right "
            "(newly solved) or wrong (newly failed) from one round to the next, as `sharpen diff` counts them, with "
            "both rounds' answers; a fixed seeded sample where there are many.</p>" + "".join(blocks))


# --- the sample browser ----------------------------------------------------------------------------


def _sample_no(idx: int) -> str:
    return "" if idx < 0 else f" #{idx}"  # -1: the greedy decode


def browser(samples: list[RoundSamples]) -> str:
    rows, counts, notes = [], [], []
    for s in samples:
        label = _round_label(s.ref)
        notes += [f"{label}: {m}" for m in s.missing]
        shown = s.rows.group_by("group", "reason").len("shown") if s.rows.height else None
        for g, why, total in s.totals.iter_rows():
            n = 0 if shown is None else int(shown.filter((pl.col("group") == g) & (pl.col("reason") == why))["shown"]
                                            .sum())
            counts.append(f'<tr data-round="{s.ref.round}"><td class="l">{_e(label)}</td><td class="l">{_e(g)}</td>'
                          f'<td class="l">{_e(why)}</td><td class="n">{total:,}</td><td class="n">{n:,}</td></tr>')
        for r in s.rows.iter_rows(named=True):
            gold = f"<code>{_e(str(r['gold']))}</code>" + (
                f'<br><span class="na">scored against {_e(r["label"])}</span>' if r["label"] else "")
            rows.append(
                f'<tr data-round="{s.ref.round}" data-group="{_e(r["group"])}" data-reason="{_e(str(r["reason"]))}" '
                f'data-category="{_e(str(r["category"]))}"><td class="l">{_e(label)}</td>'
                f'<td class="l">{_e(r["group"])}<br><span class="na">{_e(str(r["reason"]))}</span></td>'
                f'<td class="l">{_e(r["problem_id"])}{_sample_no(r["sample_idx"])}'
                f'<br><span class="na">{_e(str(r["category"]))}</span></td>'
                f'<td class="l">{_pre(r["prompt"])}</td><td class="l">{_pre(r["completion"])}</td>'
                f'<td class="l">{_code(r["extracted"])}</td><td class="l">{gold}</td></tr>')
    if not rows and not notes:
        return ""

    def options(key: str, values) -> str:
        return (f'<label>{key} <select data-key="{key}"><option value="">all</option>'
                + "".join(f'<option value="{_e(str(v))}">{_e(str(t))}</option>' for v, t in values) + "</select></label>")

    rounds = [(s.ref.round, _round_label(s.ref)) for s in samples]
    present = {g for s in samples for g in s.rows["group"].unique().to_list()}
    reasons = sorted({x for s in samples for x in s.rows["reason"].drop_nulls().unique().to_list()})
    cats = sorted({x for s in samples for x in s.rows["category"].drop_nulls().unique().to_list()})
    filters = (options("round", rounds) + options("group", [(g, g) for g in GROUPS if g in present])
               + options("reason", [(x, x) for x in reasons]) + options("category", [(x, x) for x in cats]))
    latest = samples[-1].ref.round if samples else ""
    return (
        '<h2>Answers</h2><p class=note>Per round, a fixed seeded sample of the held-out greedy answers the verifier '
        "rewarded and rejected, the training samples the filter kept, and those the verifier rejected, grouped by its "
        "reason. Pick a round, group, reason or category.</p>"
        + "".join(f'<p class="warn">{_e(n)}</p>' for n in notes)
        + f'<div id="browser" data-latest="{latest}"><div class="filters">{filters} <span id="shown"></span></div>'
        + '<details><summary>How many of each group, and how many are shown</summary><table class="plain" id="counts">'
        '<thead><tr><th class="l">round</th><th class="l">group</th><th class="l">reason</th><th class="n">total</th>'
        f'<th class="n">shown</th></tr></thead><tbody>{"".join(counts)}</tbody></table></details>'
        '<div class="scroll"><table class="answers" id="samples"><thead><tr><th class="l">round</th>'
        '<th class="l">group</th><th class="l">problem</th><th class="l">prompt</th><th class="l">completion</th>'
        f'<th class="l">extracted</th><th class="l">gold</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        "</div>")


SCRIPT = """
document.querySelectorAll('svg.chart .lg').forEach(function (lg) {
  lg.addEventListener('click', function () {
    var s = lg.closest('svg').querySelector('g.s[data-s="' + lg.dataset.s + '"]');
    s.classList.toggle('off'); lg.classList.toggle('off');
  });
});
var browser = document.getElementById('browser');
if (browser) {
  var selects = browser.querySelectorAll('select');
  var apply = function () {
    var want = {}, shown = 0;
    selects.forEach(function (s) { want[s.dataset.key] = s.value; });
    browser.querySelectorAll('#samples tbody tr').forEach(function (tr) {
      var ok = Object.keys(want).every(function (k) { return !want[k] || tr.dataset[k] === want[k]; });
      tr.hidden = !ok; shown += ok ? 1 : 0;
    });
    browser.querySelectorAll('#counts tbody tr').forEach(function (tr) {
      tr.hidden = !!want.round && tr.dataset.round !== want.round;
    });
    document.getElementById('shown').textContent = shown + ' answers shown';
  };
  selects.forEach(function (s) { s.addEventListener('change', apply); });
  browser.querySelector('select[data-key="round"]').value = browser.dataset.latest;
  apply();
}
"""

STYLE = """
.note { font-size: 0.85rem; color: #555; max-width: 70rem; }
.warn { font-size: 0.85rem; color: #a33; }
.chartbox { max-width: 900px; margin-bottom: 1rem; }
svg.chart { width: 100%; height: auto; font-size: 12px; }
svg.chart .t { font-size: 14px; font-weight: 600; }
svg.chart .g { stroke: #e3e3e3; }
svg.chart .ya { text-anchor: end; fill: #555; }
svg.chart .xa { text-anchor: middle; fill: #555; }
svg.chart .cur { fill: #f6ecd2; }
svg.chart .lg { cursor: pointer; }
svg.chart .off { opacity: 0.15; }
svg.chart circle:hover { r: 6; }
table.plain td.l, table.plain th.l, table.answers td.l, table.answers th.l { text-align: left; }
table.answers td { vertical-align: top; white-space: normal; }
table.answers pre { margin: 0; max-height: 14rem; max-width: 32rem; overflow: auto; white-space: pre-wrap;
  word-break: break-word; font-size: 0.75rem; background: #f8f8f8; padding: 0.2rem; }
tr.up td:first-child { color: #2a7a2a; } tr.down td:first-child { color: #a33; }
b.right { color: #2a7a2a; } b.wrong { color: #a33; }
.na { color: #777; font-size: 0.75rem; }
.filters { margin: 0.5rem 0; display: flex; gap: 1rem; flex-wrap: wrap; align-items: center; font-size: 0.85rem; }
details { margin: 0.4rem 0; } summary { cursor: pointer; }
"""


def answers(rows: list[dict], tags: list[tuple[int, str]]) -> str:
    """What each round trained on, newly solved and failed problems, and the sample browser."""
    refs = round_refs(rows, tags)
    return (trained_on_table(refs) + transitions_section(round_transitions(refs))
            + browser([round_samples(ref) for ref in refs]))
