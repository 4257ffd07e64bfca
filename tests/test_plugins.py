"""Your own verifier and task source, by import path, without editing sharpen.

`verify.verifier: myrewards:score` and `task.name: mytasks:problems` load the user's functions
(sharpen/plugins.py, sharpen/verifiers/registry.py, sharpen/tasks/plugin.py). A plug-in's result
must be a plain verdict, its file is a dependency of the stages that load it, and a stage refuses
a plug-in that dvc.yaml does not list.

Run: `pytest tests/test_plugins.py`
"""

from __future__ import annotations

import importlib
import sys

import polars as pl
import pytest

from sharpen.verifiers import VerifyResult, get_verifier, verify_frame
from tests.workspace import make_workspace, run, sharpen

REWARDS = '''
from sharpen.verifiers import VerifyResult


def score(completions, references, *, prompts=None):
    """Right when the completion, stripped, is the reference; half credit for the right digits reversed."""
    out = []
    for c, r in zip(completions, references):
        c = c.strip()
        out.append(True if c == r else 0.5 if c and c == r[::-1] else False)
    return out
'''

TASKS = '''
def problems(seed):
    return [{"id": f"d{n}", "prompt": f"{n}+{n}=", "answer": str(2 * n)} for n in range(1, 41)]
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """Write a module into a directory on sys.path; returns a function making `name` with `source`."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return name

    yield write
    from sharpen.verifiers.registry import _plugin

    _plugin.cache_clear()


def test_a_plugin_verifier_scores_like_a_built_in_one(plugin_module):
    plugin_module("rewards_ok", REWARDS)
    verifier = get_verifier("rewards_ok:score")
    results = verifier(["12", "21", "7", ""], ["12", "12", "12", "12"])
    assert [(r.reward, r.correct, r.reason) for r in results] == [
        (1.0, True, "ok"), (0.5, False, "wrong"), (0.0, False, "wrong"), (0.0, False, "wrong")]


@pytest.mark.parametrize(("body", "message"), [
    ("return [True]", "one result per completion"),
    ("return None", "got NoneType"),
    ("return ['yes'] * len(completions)", "expected a bool, a number"),
    ("return [float('nan')] * len(completions)", "not in \\[0, 1\\]"),
    ("return [2] * len(completions)", "not in \\[0, 1\\]"),
    # an object that claims to equal anything is no verdict
    ("class Any:\n        def __eq__(self, other): return True\n    return [Any()] * len(completions)",
     "expected a bool, a number"),
    ("return [VerifyResult('1', 0.0, True, 'ok')] * len(completions)", "correct with reward 0.0"),
    ("return [VerifyResult('1', 1.0, 1, 'ok')] * len(completions)", "correct must be a bool"),
    ("return [VerifyResult('1', 1.0, True, 'great')] * len(completions)", "reason 'great'"),
])
def test_a_plugin_result_that_is_no_plain_verdict_is_refused(plugin_module, body, message):
    name = plugin_module("rewards_bad", f"from sharpen.verifiers import VerifyResult\n\n\ndef score(completions, references, *, prompts=None):\n    {body}\n")
    with pytest.raises(ValueError, match=f"verify.verifier: rewards_bad:score.*{message}"):
        get_verifier(f"{name}:score")(["1", "2"], ["1", "2"])


def test_a_float_subclass_cannot_forge_a_pass(plugin_module):
    plugin_module("rewards_forge", (
        "class One(float):\n    def __eq__(self, other): return True\n    __hash__ = float.__hash__\n\n\n"
        "def score(completions, references, *, prompts=None):\n    return [One(0.0)] * len(completions)\n"))
    assert [r.correct for r in get_verifier("rewards_forge:score")(["1"], ["1"])] == [False]


@pytest.mark.parametrize(("name", "message"), [
    ("no_such_module_xyz:score", "cannot find module 'no_such_module_xyz'"),
    ("rewards_ok:nope", "has no function 'nope'"),
    ("not a path", "unknown verifier 'not a path'"),
])
def test_an_unloadable_plugin_names_the_key(plugin_module, name, message):
    plugin_module("rewards_ok", REWARDS)
    with pytest.raises(ValueError, match=f"verify.verifier: .*{message}"):
        get_verifier(name)


def test_majority_labels_need_a_plugin_that_reports_its_answer(plugin_module):
    plugin_module("rewards_ok", REWARDS)
    samples = pl.DataFrame({"round": [1], "problem_id": ["p"], "sample_idx": [0], "prompt": ["1+1="], "completion": ["2"]})
    problems = pl.DataFrame({"problem_id": ["p"], "prompt": ["1+1="], "answer": ["2"]})
    assert verify_frame(samples, problems, "rewards_ok:score")["correct"].to_list() == [True]
    with pytest.raises(ValueError, match="verify.labels: majority labels vote on the answers"):
        verify_frame(samples, problems, "rewards_ok:score", labels="majority")


def test_a_plugin_verifier_result_keeps_its_answer(plugin_module):
    plugin_module("rewards_vr", "from sharpen.verifiers import VerifyResult\n\n\ndef score(c, r, *, prompts=None):\n"
                                "    return [VerifyResult(x, 1.0, True, 'ok') for x in c]\n")
    assert get_verifier("rewards_vr:score")(["7"], ["7"]) == [VerifyResult("7", 1.0, True, "ok")]


def test_plugins_run_a_round_and_editing_one_reruns_its_stages(tmp_path):
    ws = make_workspace(tmp_path / "ws", {"task": {"name": "mytasks:problems", "eval_size": 8},
                                          "verify": {"verifier": "myrewards:score"}})
    (ws / "myrewards.py").write_text(REWARDS)
    (ws / "mytasks.py").write_text(TASKS)
    refused = run(ws, "dvc", "repro", "tasks", check=False)  # dvc.yaml does not list them yet
    assert refused.returncode != 0
    assert "task.name: mytasks.py is not a dependency of stage 'tasks'" in refused.stdout + refused.stderr
    assert not (ws / "data" / "tasks" / "pool.parquet").exists()

    sharpen(ws, "deps")
    deps = {name: spec["deps"] for name, spec in __import__("yaml").safe_load((ws / "dvc.yaml").read_text())["stages"].items()}
    for stage in ("tasks", "verify", "evaluate", "train"):
        assert "myrewards.py" in deps[stage], stage
    assert [s for s, d in deps.items() if "mytasks.py" in d] == ["tasks"]
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-q", "-m", "plug-ins")
    run(ws, "dvc", "repro", "verify")
    pool = pl.read_parquet(ws / "data/tasks/pool.parquet")
    assert pool.height == 32 and pool["problem_id"].str.starts_with("d").all()  # the user's problems
    verdicts = pl.read_parquet(ws / "data/round/verify/verdicts.parquet")
    samples = pl.read_parquet(ws / "data/round/generate/samples.parquet")
    joined = verdicts.join(samples, on=["problem_id", "sample_idx"]).join(pool.select("problem_id", "answer"), on="problem_id")
    assert (joined["verifier"] == "myrewards:score").all()
    assert (joined["correct"] == (joined["completion"].str.strip_chars() == joined["answer"])).all()

    (ws / "myrewards.py").write_text(REWARDS + "\n# edited\n")
    status = run(ws, "dvc", "status", "verify").stdout
    assert "myrewards.py" in status and "modified" in status
