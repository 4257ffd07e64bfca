"""End to end: in a temporary git + DVC repo, base + 2 ReST-EM rounds with tiny settings.

Run: `pytest tests/test_pipeline.py` (about a minute: each stage is a real `dvc repro` subprocess).
"""

import json
import shutil
import subprocess

import polars as pl
import pytest

from tests.workspace import make_workspace, run, sharpen


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    # keep_all: a 20-step base model answers almost nothing right, and train must still really train
    ws = make_workspace(tmp_path_factory.mktemp("ws"), {"filter": {"select": "all"}})
    logs = {}
    logs["repro1"] = run(ws, "dvc", "repro").stdout
    logs["repro1_again"] = run(ws, "dvc", "repro").stdout
    (ws / "scratch.txt").write_text("not an output of the round")
    head = run(ws, "git", "rev-parse", "HEAD").stdout
    logs["dirty"] = sharpen(ws, "advance", check=False)
    logs["dirty_head_unchanged"] = run(ws, "git", "rev-parse", "HEAD").stdout == head
    (ws / "scratch.txt").unlink()
    logs["advance1"] = sharpen(ws, "advance").stdout
    logs["repro2"] = run(ws, "dvc", "repro").stdout
    logs["advance2"] = sharpen(ws, "advance").stdout
    logs["status3"] = run(ws, "dvc", "status").stdout
    return ws, logs


def git(ws, *args):
    return run(ws, "git", *args).stdout


def test_round_tags_exist(two_rounds):
    ws, _ = two_rounds
    assert git(ws, "tag", "--list", "round-*").split() == ["round-1", "round-2"]


def test_metrics_committed_at_each_tag(two_rounds):
    ws, _ = two_rounds
    for n in (1, 2):
        metrics = json.loads(git(ws, "show", f"round-{n}:data/round/evaluate/metrics.json"))
        assert metrics["round"] == n and 0.0 <= metrics["greedy_accuracy"] <= 1.0


def test_tag_is_a_consistent_snapshot(two_rounds):
    ws, _ = two_rounds
    lock = git(ws, "show", "round-1:params.yaml")
    assert "round: 1" in lock


def test_params_bumped_and_state_promoted(two_rounds):
    ws, _ = two_rounds
    assert "round: 3" in (ws / "params.yaml").read_text()
    state = json.loads((ws / "data/state/state.json").read_text())
    assert state["policy"] == "policy" and state["policy_round"] == 2
    assert [h["round"] for h in state["history"]] == [1, 2]
    assert (ws / "data/state/policy.dvc").exists()


def test_round_two_resamples(two_rounds):
    ws, _ = two_rounds
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(ws), rev="round-1")
    with fs.open("data/round/generate/samples.parquet", "rb") as f:
        r1 = pl.read_parquet(f)
    r2 = pl.read_parquet(ws / "data/round/generate/samples.parquet")
    assert set(r1["round"]) == {1} and set(r2["round"]) == {2}
    assert r1["completion"].to_list() != r2["completion"].to_list()
    trained = json.loads(git(ws, "show", "round-1:data/round/train/metrics.json"))
    assert trained["steps"] > 0
    assert r2["policy_hash"][0] == trained["model_hash"] != r1["policy_hash"][0]  # round 2 sampled round 1's policy


def test_unchanged_repro_does_nothing(two_rounds):
    _, logs = two_rounds
    assert "Data and pipelines are up to date" in logs["repro1_again"]
    assert "Running stage" not in logs["repro1_again"]


def test_advance_makes_next_generate_due(two_rounds):
    _, logs = two_rounds
    assert "generate" in logs["status3"] and "evaluate_base" not in logs["status3"]


def test_rounds_lists_both(two_rounds):
    ws, _ = two_rounds
    rows = json.loads(sharpen(ws, "rounds", "--json").stdout)
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert all(r["generated"] == 48 * 2 for r in rows[1:])
    assert rows[1]["gate"] == "accepted"


def test_dvc_metrics_and_params_diff_across_rounds(two_rounds):
    ws, _ = two_rounds
    metrics = run(ws, "dvc", "metrics", "diff", "round-1", "round-2").stdout
    params = run(ws, "dvc", "params", "diff", "round-1", "round-2").stdout
    assert "greedy_accuracy" in metrics or "data/round" in metrics
    assert "round" in params


def test_advance_refuses_unfinished_round(two_rounds):
    ws, _ = two_rounds
    head = git(ws, "rev-parse", "HEAD")
    proc = sharpen(ws, "advance", check=False)
    assert proc.returncode == 1 and "round 3 has not finished" in proc.stderr
    assert git(ws, "rev-parse", "HEAD") == head


def test_advance_refuses_unrelated_changes(two_rounds):
    _, logs = two_rounds
    assert logs["dirty"].returncode == 1
    assert "scratch.txt" in logs["dirty"].stderr and "not outputs of this round" in logs["dirty"].stderr
    assert logs["dirty_head_unchanged"]


def test_advance_refuses_an_existing_tag(two_rounds):
    ws, _ = two_rounds
    params = (ws / "params.yaml").read_text()
    head = git(ws, "rev-parse", "HEAD")
    try:
        (ws / "params.yaml").write_text(params.replace("round: 3", "round: 2"))
        proc = sharpen(ws, "advance", check=False)
    finally:
        (ws / "params.yaml").write_text(params)
    assert proc.returncode == 1 and "tag round-2 already exists" in proc.stderr
    assert git(ws, "rev-parse", "HEAD") == head and git(ws, "tag", "--list", "round-*").split() == ["round-1", "round-2"]


def test_lineage_walks_the_policy_chain_to_base(two_rounds):
    ws, _ = two_rounds
    info = json.loads(sharpen(ws, "lineage", "round-2", "--json").stdout)
    assert [link["round"] for link in info["chain"]] == [2, 1, 0]
    assert info["chain"][0]["generated_by"] == "round 1" and info["chain"][1]["generated_by"] == "base"
    assert info["chain"][0]["trained_from"] == "base"  # ReST-EM: init: base
    assert info["stages"]["generate"]["params"]["round"] == 2


def test_diff_per_problem_changes_add_up_to_the_metric_delta(two_rounds):
    ws, _ = two_rounds
    d = json.loads(sharpen(ws, "diff", "round-1", "round-2", "--json").stdout)
    problems = sum(c["problems"] for c in d["categories"])
    greedy = d["metrics"].get("evaluate.greedy_accuracy", {"delta": 0.0})["delta"]
    assert len(d["newly_solved"]) - len(d["newly_failed"]) == round(greedy * problems)
    assert d["params"]["round"] == {"a": 1, "b": 2}
    assert d["volumes"]["generated"] == {"round-1": 96, "round-2": 96}


def test_lineage_of_an_unknown_round_is_a_clear_error(two_rounds):
    ws, _ = two_rounds
    proc = sharpen(ws, "lineage", "round-9", check=False)
    assert proc.returncode == 1 and "no tag round-9" in proc.stderr and "round-1, round-2" in proc.stderr


def test_report_is_one_self_contained_html_file(two_rounds, tmp_path):
    ws, _ = two_rounds
    out = tmp_path / "report.html"
    sharpen(ws, "report", "--out", str(out))
    page = out.read_text()
    assert page.count('<img alt="') == 4  # per category, kept fraction, pass rates, loss curves (accuracy: SVG)
    assert "http://" not in page and "https://" not in page  # nothing fetched when opened offline
    assert "round-2" in page


def test_report_table_has_the_cli_columns_order_and_formats(two_rounds, tmp_path):
    import re

    from sharpen.rounds.lineage import round_columns

    ws, _ = two_rounds
    sharpen(ws, "report", "--out", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    rows = json.loads(sharpen(ws, "rounds", "--json").stdout)
    cols, _ = round_columns(rows, wide=True)
    headers = re.findall(r"<th>([^<]*)</th>", page)
    assert headers == [c.replace("greedy_accuracy", "greedy").removesuffix("_s") for c in cols]
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert cells and not [c for c in cells if re.fullmatch(r"-?\d+\.\d{2,}", c)]  # one decimal at most
    assert 'class="scroll"' in page  # a wide table scrolls inside its box instead of widening the page


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(two_rounds, tmp_path):
    ws, _ = two_rounds
    out, shot = tmp_path / "report.html", tmp_path / "report.png"
    sharpen(ws, "report", "--out", str(out))
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2000",
                    f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 50_000  # a blank page is a few kB


def test_rounds_fits_100_columns_with_the_essential_columns(two_rounds):
    ws, _ = two_rounds
    out = sharpen_narrow(ws)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100 and "…" not in out
    header = next(line for line in lines if "greedy" in line)
    assert all(col in header for col in ("round", "tag", "gate", "greedy", "pass@1", "maj@2", "kept", "total"))
    assert any("round-2" in line for line in lines)


def sharpen_narrow(ws) -> str:
    """`sharpen rounds` in a 100-column terminal."""
    import subprocess

    from tests.workspace import env

    proc = subprocess.run(["sharpen", "rounds"], cwd=ws, env=env() | {"COLUMNS": "100"}, capture_output=True,
                          text=True, check=True)
    return proc.stdout


def test_commands_from_a_subdirectory_work_on_the_workspace(two_rounds):
    ws, _ = two_rounds
    rows = json.loads(sharpen(ws / "data" / "round", "rounds", "--json").stdout)
    assert [r.get("gate") for r in rows if r["tag"].startswith("round-")] == ["accepted", "accepted"]


def test_checkout_of_a_round_leaves_dvc_status_clean_and_comes_back(two_rounds):
    ws, _ = two_rounds  # last in the file: it moves the workspace, and puts it back
    for tag in ("round-1", "round-2"):
        out = sharpen(ws, "checkout", tag).stdout
        assert "up to date" in run(ws, "dvc", "status").stdout, tag
        assert run(ws, "git", "describe", "--tags", "--exact-match").stdout.strip() == tag
        assert "sharpen checkout main" in out
    sharpen(ws, "checkout", "main")
    assert run(ws, "git", "symbolic-ref", "--short", "HEAD").stdout.strip() == "main"
    assert run(ws, "git", "status", "--porcelain").stdout.strip() == ""
    assert "modified outs" not in run(ws, "dvc", "status").stdout  # only round 3's changed params remain


def test_rounds_and_diff_show_the_chance_baseline_beside_accuracy(two_rounds):
    ws, _ = two_rounds
    golds = pl.read_parquet(ws / "data/tasks/eval.parquet")["answer"]
    most_common = golds.value_counts(sort=True)["count"][0] / golds.len()
    rows = json.loads(sharpen(ws, "rounds", "--json").stdout)
    assert all(r["chance_accuracy"] == pytest.approx(most_common) for r in rows)
    assert "chance" in sharpen_narrow(ws)  # a column of the table, in 100 columns
    d = json.loads(sharpen(ws, "diff", "round-1", "round-2", "--json").stdout)
    assert d["chance"]["chance_accuracy"] == pytest.approx(most_common)
