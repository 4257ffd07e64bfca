"""A shared cache for a team: rounds pushed to a DVC remote (a local directory here) by `sharpen
advance`, and a second clone that diffs and reproduces them without recomputing.

Run: `pytest -m slow tests/test_remote.py` (two tiny rounds, about two minutes)
"""

import json
import shutil

import pytest

from tests.workspace import make_workspace, run, sharpen

pytestmark = pytest.mark.slow  # two rounds through `dvc repro`, past the fast suite's budget


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    root = tmp_path_factory.mktemp("team")
    a = make_workspace(root / "a")
    run(a, "dvc", "remote", "add", "-d", "team", str(root / "remote"))
    run(a, "git", "commit", "-qam", "the team's DVC remote")
    advanced = []
    for _ in range(2):
        run(a, "dvc", "repro")
        advanced.append(sharpen(a, "advance").stdout)
    b = root / "b"
    run(root, "git", "clone", "-q", str(a), str(b))
    return a, b, root / "remote", advanced


def test_advance_pushes_each_round_to_the_remote(team):
    a, _, remote, advanced = team
    assert all("pushed round-" in out for out in advanced)
    assert "in sync" in run(a, "dvc", "status", "--cloud").stdout


def test_a_second_clone_diffs_rounds_it_never_computed(team):
    _, b, _, _ = team
    assert not (b / ".dvc/cache").exists()
    d = json.loads(sharpen(b, "diff", "round-1", "round-2", "--json").stdout)
    assert d["categories"] and sum(c["problems"] for c in d["categories"]) > 0


def test_a_second_clone_reproduces_a_round_by_pulling_not_recomputing(team):
    a, b, _, _ = team
    run(b, "git", "checkout", "-q", "round-2")
    out = run(b, "dvc", "repro", "--pull").stdout
    assert "Running stage" not in out
    assert run(b, "dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    model = "data/round/train/model/model.safetensors"
    assert (b / model).read_bytes() == (a / model).read_bytes()


def test_an_unwritable_remote_is_one_error_line_naming_it(team):
    _, b, _, _ = team
    run(b, "dvc", "remote", "modify", "--local", "team", "url", "/proc/sharpen-remote")
    proc = sharpen(b, "push", check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "'team'" in lines[0] and "/proc/sharpen-remote" in lines[0] and "core.remote" in lines[0]
