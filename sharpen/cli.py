"""The `sharpen` command: advance the loop and inspect its rounds.

Run: `sharpen --help`, `sharpen advance`, `sharpen rounds`, `sharpen params`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
# a table piped to a file or CI log keeps its columns instead of squeezing them to 80 characters
console = Console(width=None if sys.stdout.isatty() else 240)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


@app.command()
def advance() -> None:
    """Gate the finished round, commit and tag it round-N, promote its policy, bump `round`."""
    from sharpen.io import ArtifactError
    from sharpen.params import ParamsError
    from sharpen.state import AdvanceError, advance as do_advance

    try:
        decision, state = do_advance()
    except (AdvanceError, ParamsError, ArtifactError) as e:
        _fail(str(e))
    record = state.history[-1]
    verdict = "[green]accepted[/green]" if decision.accepted else "[yellow]rejected[/yellow]"
    console.print(f"round {record.round}: gate {verdict} ({decision.reason}); tagged round-{record.round}")
    console.print(f"current policy: round {state.policy_round} ({(state.policy_hash or 'base')[:8]}); next: round {record.round + 1}")


@app.command()
def rounds(as_json: bool = typer.Option(False, "--json", help="print JSON rows instead of a table")) -> None:
    """Table of rounds: tag, policy hash, greedy/pass@k/maj@k, samples, kept, wall time per stage."""
    from sharpen.lineage import rounds_table

    rows = rounds_table()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        _fail("no rounds yet: run `dvc repro`")
    metric_cols = sorted({k for r in rows for k in r if k.startswith(("greedy", "pass@", "maj@"))},
                         key=lambda k: (not k.startswith("greedy"), k.split("@")[0], int(k.split("@")[1]) if "@" in k else 0))
    cols = ["round", "tag", "policy", "gate", *metric_cols, "generated", "kept",
            "generate_s", "verify_s", "filter_s", "train_s", "evaluate_s", "total_s"]
    table = Table(title="sharpen rounds (times in seconds)")
    for c in cols:
        table.add_column(c.replace("greedy_accuracy", "greedy").removesuffix("_s"), no_wrap=True,
                         justify="left" if c in ("tag", "policy", "gate") else "right")
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("" if v is None else f"{v:.3f}" if isinstance(v, float) and c in metric_cols else
                         f"{v:.1f}" if isinstance(v, float) else str(v))
        table.add_row(*cells)
    console.print(table)


@app.command("params")
def check_params(path: Path = typer.Argument(Path("params.yaml"), help="params file to validate")) -> None:
    """Validate a params file and print the resolved values."""
    from sharpen.params import ParamsError, load_params

    try:
        p = load_params(path)
    except ParamsError as e:
        _fail(str(e))
    console.print_json(p.model_dump_json())


if __name__ == "__main__":
    app()
