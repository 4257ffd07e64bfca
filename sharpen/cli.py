"""The `sharpen` command: advance the loop and inspect its rounds.

Run: `sharpen --help`, `sharpen advance`, `sharpen rounds`, `sharpen params`. Every failure is one
`error:` line (sharpen.errors.boundary); `sharpen --debug COMMAND` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

# tracebacks are the boundary's business (`main`), not typer's pretty printer
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0],
                  pretty_exceptions_enable=False)
# a table piped to a file or CI log keeps its columns instead of squeezing them to 80 characters
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 240)  # (rich reads COLUMNS)


@app.callback()
def _at_workspace_root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="on a failure, print the traceback instead of one line"),
) -> None:
    """Every command works on the workspace that holds the current directory: from a subdirectory,
    move up to the nearest folder with a dvc.yaml (artifact paths are relative to it)."""
    from sharpen.errors import DEBUG_ENV

    if debug:
        os.environ[DEBUG_ENV] = "1"
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").exists():
            if folder != here:
                os.chdir(folder)
            if ctx.invoked_subcommand in _READ_THE_LOOP_STATE:
                _require_loop_state()
            return


# the commands that read data/state/state.json in the workspace (the others read tags, or nothing of a loop)
_READ_THE_LOOP_STATE = {"advance", "new-loop", "rounds", "report"}


def _require_loop_state() -> None:
    """Refuse, naming data/state and the command that restores it, when the loop state is gone (deleted
    by hand): without it `rounds` would show no gates. (`dvc repro` stops earlier, in DVC, with a bare
    `[Errno 2] ... data/state`; the same command restores it.)"""
    import subprocess

    from sharpen.rounds.layout import STATE_DIR, STATE_FILE

    if (STATE_DIR / STATE_FILE).exists():
        return
    committed = subprocess.run(["git", "ls-tree", "-r", "--name-only", "HEAD", "--", str(STATE_DIR)],
                               capture_output=True, text=True).stdout.split()
    what = f"{STATE_DIR if not STATE_DIR.exists() else STATE_DIR / STATE_FILE}: not found (the loop state: the " \
        "current policy, the gate history)"
    if f"{STATE_DIR}/{STATE_FILE}" not in committed:
        _fail(f"{what}, and the last commit holds none; restore it from the commit that last had it "
              f"(`git log -- {STATE_DIR}/{STATE_FILE}`, then `git checkout COMMIT -- {STATE_DIR}`)")
    tracked = [p for p in committed if p.endswith(".dvc")]  # the promoted policies, in DVC's cache
    fix = f"git checkout HEAD -- {STATE_DIR}" + (f" && dvc checkout {' '.join(tracked)}" if tracked else "")
    _fail(f"{what}; restore it as of the last commit: `{fix}`")


def _json_safe(value):
    """NaN and infinities become null: JSON has no such numbers."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _fail(message: str) -> None:
    """Refuse, through the one boundary (`main`): one `error:` line on stderr, exit 1."""
    from sharpen.errors import SharpenError

    raise SharpenError(message)


@app.command()
def advance() -> None:
    """Gate the finished round, commit and tag it round-N, promote its policy, bump `round`."""
    from sharpen.rounds.advance import advance as do_advance

    decision, state = do_advance()
    record = state.history[-1]
    verdict = "[green]accepted[/green]" if decision.accepted else "[yellow]rejected[/yellow]"
    console.print(f"round {record.round}: gate {verdict} ({decision.reason}); tagged round-{record.round}")
    console.print(f"current policy: round {state.policy_round} ({(state.policy_hash or 'base')[:8]}); next: round {record.round + 1}")
    from sharpen.rounds.remote import push

    pushed = push(all_tags=False, what=f"round-{record.round} (it is advanced and tagged here)")
    if pushed is not None:
        console.print(f"pushed round-{record.round} to the DVC remote ({pushed} file(s) new there)")


@app.command("push")
def push_command() -> None:
    """Push every tagged round (outputs, promoted policies, run-cache) to DVC's default remote."""
    from sharpen.rounds.remote import default_remote, push

    pushed = push(all_tags=True, what="the tagged rounds")
    if pushed is None:
        _fail("no DVC remote is set (core.remote): `dvc remote add -d NAME URL`, then `sharpen push`")
    name, url = default_remote()
    console.print(f"pushed {pushed} file(s) to DVC remote {name!r} ({url}); the rest were there already")


@app.command("checkout")
def checkout_command(rev: str = typer.Argument(..., help="a round tag (round-2) or a branch (main)")) -> None:
    """Go to a round (or back to a branch): `git checkout` and `dvc checkout` together, so `dvc status` is clean."""
    from sharpen.rounds.git import checkout

    back = checkout(rev)
    if rev.startswith("round-"):
        console.print(f"at {rev}: code, params, metrics and DVC outputs as they were (`dvc status` is clean); come "
                      f"back with `sharpen checkout {back}`", highlight=False)
    else:
        console.print(f"at {rev}, with its DVC outputs; `dvc repro` runs the round its params.yaml names", highlight=False)


@app.command("new-loop")
def new_loop_command() -> None:
    """Start a new loop from the base model here, after changing the recipe, model, task or base
    settings mid-loop (the switch is recorded in the loop state and committed)."""
    from sharpen.rounds.advance import new_loop

    state = new_loop()
    switch = state.new_loops[-1]
    console.print(f"new loop from the base model at round {switch['round']} (round {switch['left_policy_round']}'s "
                  f"policy left behind, still at its tag); next: `dvc repro`", highlight=False)


@app.command()
def rounds(
    as_json: bool = typer.Option(False, "--json", help="print JSON rows instead of a table"),
    wide: bool = typer.Option(False, "--wide", help="every column: all monitors, sample volumes, per-stage times"),
) -> None:
    """Table of rounds: tag, gate, greedy/pass@k/maj@k, kept samples and total time (`--wide`: everything)."""
    from sharpen.rounds.lineage import round_cell, round_columns, rounds_table

    rows = rounds_table()
    if as_json:
        print(json.dumps(_json_safe(rows), indent=2, allow_nan=False))
        return
    if not rows:
        _fail("no rounds yet: run `dvc repro`")
    cols, metric_cols = round_columns(rows, wide)
    if wide:
        for table in _wide_tables(rows, cols, metric_cols, console.width):
            console.print(table)
    else:
        table = Table(title="sharpen rounds (accuracy in %, times in seconds; --wide for all)",
                      collapse_padding=True, pad_edge=False)
        for c in cols:
            table.add_column(c.replace("greedy_accuracy", "greedy").replace("chance_accuracy", "chance")
                             .replace("chance_pass@", "chance@").replace("loop_stop", "loop stopped").removesuffix("_s"),
                             no_wrap=c != "loop_stop",
                             justify="left" if c in ("tag", "policy", "control", "gate", "loop_stop") else "right")
        for r in rows:
            table.add_row(*[round_cell(r.get(c), c, metric_cols) for c in cols])
        console.print(table)
    if rows[-1].get("tag") == "(not advanced)":
        console.print("the last row is this workspace's round, not yet advanced: `sharpen advance` gates, commits "
                      "and tags it", highlight=False)


def _wide_tables(rows: list[dict], cols: list[str], metric_cols: list[str], width: int) -> list[Table]:
    """`rounds --wide`, turned on its side: one line per column of the table (every metric, volume and
    stage time, by its full name) and one column per round, as many rounds side by side as fit in
    `width`; the rest follow in further tables, so no line is longer than the terminal."""
    from sharpen.rounds.lineage import round_cell

    fields = [c for c in cols if c != "round"]
    labels = {c: "loop stopped" if c == "loop_stop" else
              (f"{c.removesuffix('_s')} time" if c.endswith("_s") else c) for c in fields}
    label_w = max(map(len, labels.values()))
    heads = [f"round {r['round']}" for r in rows]
    cells = [[round_cell(r.get(c), c, metric_cols) for c in fields] for r in rows]
    cap = max(12, min(30, width - label_w - 7))  # a round's column at most this wide; a longer cell wraps
    widths = [min(cap, max(len(h), *map(len, cs))) for h, cs in zip(heads, cells)]
    groups: list[list[int]] = [[]]
    used = label_w + 4  # the label column with its padding, and the outer borders
    for i, w in enumerate(widths):
        if groups[-1] and used + w + 3 > width:
            groups.append([])
            used = label_w + 4
        groups[-1].append(i)
        used += w + 3  # the column, its padding and its border
    tables = []
    for k, group in enumerate(groups):
        first, last = rows[group[0]]["round"], rows[group[-1]]["round"]
        part = "" if len(groups) == 1 else f"; {f'round {first}' if first == last else f'rounds {first}-{last}'}, " \
            f"table {k + 1} of {len(groups)}"
        table = Table(title=f"sharpen rounds --wide (accuracy in %, times in seconds{part})", title_justify="left")
        table.add_column("", no_wrap=True)
        for i in group:
            table.add_column(heads[i], justify="right", overflow="fold", max_width=widths[i])
        for j, c in enumerate(fields):
            table.add_row(labels[c], *(cells[i][j] for i in group))
        tables.append(table)
    return tables


@app.command("lineage")
def show_lineage(
    tag: str = typer.Argument(None, help="a round tag, e.g. round-3 (default: the latest)", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """What produced a round (the latest if no tag): commit, params, each stage's input/output hashes, the
    policy chain to base."""
    from sharpen.rounds.lineage import lineage

    info = lineage(tag)
    tag = info["tag"]
    if as_json:
        print(json.dumps(_json_safe(info), indent=2, default=str, allow_nan=False))
        return
    console.print(f"[bold]{tag}[/bold] at commit {info['commit'][:10]}  (recipe {info['params'].get('recipe')}, "
                  f"seed {info['params'].get('seed')})", highlight=False)
    for switch in info.get("new_loops", []):
        console.print(f"[bold]new loop[/bold] at round {switch['round']}: from the base model, leaving round "
                      f"{switch['left_policy_round']}'s policy ({(switch.get('left_policy_hash') or '?')[:8]}); "
                      f"recipe {(switch.get('from') or {}).get('recipe')} -> {switch['to'].get('recipe')}", highlight=False)
    console.print("[bold]policy chain[/bold]")
    for link in info["chain"]:
        h = (link.get("policy") or "?")[:8]
        if link["round"] == 0:
            console.print(f"  base {h}: {link['trained_from']}, {link.get('num_parameters')} parameters", highlight=False)
        else:
            objective = link.get("objective", "sft")
            if link.get("skipped"):
                data = f"nothing ({link['skipped']})"
            elif objective == "dpo":
                data = (f"{link['pairs']} preference pairs (reference {(link.get('reference_hash') or '?')[:8]}) "
                        f"from {link['kept_of']} samples")
            elif objective == "grpo":
                source = "the round's stored groups" if link.get("rollouts_from") == "round" else "sampled in training"
                data = f"{link['problems']} problems, {link['rollouts']} rollouts ({source})"
            else:
                data = f"{link['examples']} of {link['kept_of']} samples ({link['filter_rule']})"
            console.print(
                f"  round {link['round']} policy {h}: {objective.upper()} of {link['trained_from']} "
                f"({(link['init_hash'] or '?')[:8]}) on {data}; samples generated by "
                f"{link['generated_by']} ({(link['generator_hash'] or '?')[:8]})", highlight=False)
    if info["proposer_chain"]:
        console.print("[bold]proposer chain[/bold] (self-play's other role)")
    for link in info["proposer_chain"]:
        share = lambda x: "?" if x is None else f"{100 * x:.0f}%"  # noqa: E731
        trained = (f"nothing ({link['skipped']})" if link.get("skipped") else
                   f"GRPO of {link['trained_from']} ({(link['init_hash'] or '?')[:8]}), {link['steps']} steps")
        console.print(
            f"  round {link['round']} proposer {(link['proposer'] or '?')[:8]}: {trained}, on {link['proposals']} "
            f"proposals written by {link['written_by']} ({(link['writer_hash'] or '?')[:8]}): {share(link['valid_share'])} "
            f"valid, {share(link['distinct_share'])} distinct, solver rate {share(link['solver_rate_mean'])}, "
            f"mean reward {link['reward_mean'] if link['reward_mean'] is None else round(link['reward_mean'], 3)}",
            highlight=False)
    console.print("[bold]stages[/bold] (md5 of inputs and outputs, from dvc.lock)")
    for name, st in info["stages"].items():
        data_deps = {k: v for k, v in st["deps"].items() if k.startswith("data/")}
        console.print(f"  {name}: params {st['params']}", highlight=False)
        for path, md5 in data_deps.items():
            console.print(f"      in  {path} {str(md5)[:8]}", highlight=False)
        for path, md5 in st["outs"].items():
            console.print(f"      out {path} {str(md5)[:8]}", highlight=False)


@app.command("diff")
def show_diff(
    tag_a: str = typer.Argument(..., help="the earlier round tag"),
    tag_b: str = typer.Argument(..., help="the later round tag"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Metrics and params deltas, data volumes, and per-problem changes between two rounds."""
    from sharpen.rounds.diff import diff

    d = diff(tag_a, tag_b)
    if as_json:
        print(json.dumps(_json_safe(d), indent=2, default=str, allow_nan=False))
        return
    table = Table(title=f"{tag_a} → {tag_b}: metrics")
    for c in ("metric", tag_a, tag_b, "delta"):
        table.add_column(c, justify="left" if c == "metric" else "right")
    for k, v in d["metrics"].items():
        if k.endswith("wall_s") or k.endswith("_per_s"):
            continue
        fmt = (lambda x: f"{x:.4f}") if isinstance(v["a"], float) or isinstance(v["b"], float) else str
        table.add_row(k, fmt(v["a"]), fmt(v["b"]), f"{v['delta']:+.4f}" if isinstance(v["delta"], float) else f"{v['delta']:+d}")
    console.print(table)
    if d["chance"]:
        console.print("chance on this held-out set (no reading): " + ", ".join(
            f"{k.removeprefix('chance_')} {100 * v:.1f}%" for k, v in d["chance"].items()), highlight=False)
    console.print("data: " + ", ".join(f"{k} {v[tag_a]} → {v[tag_b]}" for k, v in d["volumes"].items()), highlight=False)
    if d["params"]:
        console.print("params changed: " + ", ".join(f"{k}: {v['a']} → {v['b']}" for k, v in d["params"].items()),
                      highlight=False)
    cat = Table(title="held-out by category (sampled pass rate, greedy accuracy)")
    for c in ("category", "problems", f"pass {tag_a}", f"pass {tag_b}", "shift", f"greedy {tag_a}", f"greedy {tag_b}"):
        cat.add_column(c, justify="right")
    for r in d["categories"]:
        cat.add_row(r["category"], str(r["problems"]), f"{r['pass_rate_a']:.3f}", f"{r['pass_rate_b']:.3f}",
                    f"{r['shift']:+.3f}", f"{r['greedy_a']:.3f}", f"{r['greedy_b']:.3f}")
    console.print(cat)
    for label, ids in (("newly solved (greedy)", d["newly_solved"]), ("newly failed (greedy)", d["newly_failed"])):
        console.print(f"{label}: {len(ids)}" + (f"  e.g. {', '.join(ids[:8])}" if ids else ""), highlight=False)


@app.command()
def report(out: Path = typer.Option(Path("reports/sharpen.html"), help="where to write the HTML file")) -> None:
    """Write one self-contained HTML file: the rounds table and plots across rounds."""
    from sharpen.rounds.report import write_report

    path = write_report(out)
    console.print(f"wrote {path}")


@app.command()
def recipes(name: str = typer.Argument(None, help="show one recipe's parameters in full")) -> None:
    """List the recipes (named methods): what each does, its parameters, and what it measured on the
    embedded default and cost (RESULTS.md), with which one to start with."""
    from sharpen.recipe_outcomes import COLUMNS, NOT_MEASURED, OUTCOMES, START, rows
    from sharpen.recipes import RECIPES, flatten, get_recipe

    if name:
        chosen = [get_recipe(name)]
    else:
        chosen = list(RECIPES.values())
    for r in chosen:
        console.print(f"[bold]{r.name}[/bold]  {r.summary}", highlight=False)
        if r.sources:
            console.print(f"  source: {r.sources}", highlight=False)
        if r.on_default_task:
            console.print(f"  on the embedded tiny task: {r.on_default_task}", highlight=False)
        o = OUTCOMES[r.name]
        if o.seeds:
            console.print(f"  measured on the embedded default (held-out greedy %, after 3 rounds): {o.result}; "
                          f"{o.seeds} seed{'s' if o.seeds > 1 else ''} (RESULTS.md: {o.source})", highlight=False)
            console.print(f"  cost: samples over 3 rounds {o.samples}; wall for base + 3 rounds, min: {o.minutes}",
                          highlight=False)
        else:
            console.print(f"  measured on the embedded default: {NOT_MEASURED}", highlight=False)
        console.print("  " + ", ".join(f"{k}={v}" for k, v in flatten(r.defaults).items()), highlight=False)
        console.print()
    if not name:
        table = Table(title="measured on the embedded default (held-out greedy accuracy; base 27.6%)")
        for c in COLUMNS:
            table.add_column(c, justify="right" if c == "seeds" else "left", no_wrap=c == "recipe")
        for row in rows():
            table.add_row(*row)
        console.print(table)
        console.print(START, highlight=False)
    console.print("Pick one with `recipe: NAME` in params.yaml; any key set there overrides the recipe's.")


@app.command("params")
def check_params(path: Path = typer.Argument(Path("params.yaml"), help="params file to validate")) -> None:
    """Validate a params file and print the resolved values."""
    from sharpen.config import load_params

    p = load_params(path)
    console.print_json(p.model_dump_json())


@app.command("compare")
def compare_cmd(
    recipes: str = typer.Option(..., "--recipes", help="recipes to run, comma-separated: rest-em,grpo"),
    controls: str = typer.Option("", "--controls", help="controls run for each recipe: random,format_only,no_verifier"),
    seeds: str = typer.Option("0,1,2", "--seeds", help="seeds (params seed and train.seed), three or more"),
    rounds: int = typer.Option(3, "--rounds", min=1),
    against: str = typer.Option("random", "--against", help="a control (each recipe against its own) or an arm name"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="runs at a time (each gets cores / jobs torch threads)"),
    out: Path = typer.Option(Path("compare"), "--out", help="workspaces, shared DVC cache and compare.json"),
) -> None:
    """Recipes × seeds × rounds in workspaces of their own: mean ± sd per round, paired differences against a control."""
    from sharpen.compare import CompareError, compare, render

    items = lambda text: [t.strip() for t in text.split(",") if t.strip()]  # noqa: E731
    try:
        seed_list = [int(s) for s in items(seeds)]
    except ValueError:
        raise CompareError(f"--seeds: integers, comma-separated (got {seeds!r})") from None
    table = compare(Path.cwd(), out.resolve(), items(recipes), items(controls), seed_list, rounds, against, jobs)
    console.print(render(table), highlight=False, soft_wrap=True)
    console.print(f"written: {out / 'compare.json'}")


@app.command("deps")
def deps(check: bool = typer.Option(False, "--check", help="list stages whose code deps differ; exit 1 if any")) -> None:
    """Write each dvc.yaml stage's code deps: the transitive closure of its imports (sharpen/codedeps.py)."""
    from sharpen.codedeps import differences, rewrite

    root = Path.cwd()
    if check:
        diff = differences(root)
        for stage, (missing, extra) in diff.items():
            console.print(f"{stage}: missing {missing or '-'}; not imported {extra or '-'}")
        if diff:
            console.print("run `sharpen deps` to write them")
            raise typer.Exit(1)
        console.print("dvc.yaml: every stage depends on exactly the code it imports")
        return
    changed = rewrite(root)
    console.print(f"dvc.yaml: code deps rewritten for {', '.join(changed)}" if changed else "dvc.yaml: already current")


def main() -> None:
    """The `sharpen` command, inside the error boundary: any failure is one line, its traceback in a log."""
    from sharpen.errors import boundary

    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    with boundary(f"sharpen {command}".strip()):
        app()


if __name__ == "__main__":
    main()
