"""Inputs that used to reach the catch-all ("not checked by sharpen yet, or it is a bug"): each is now one
`error:` line naming the file, row or key, with no traceback, or (a model's own output) a verdict.

Each case builds only what its command reads in a fresh workspace (no `dvc repro`), breaks one thing,
and runs the command a user would.

Run: `pytest -m reliability tests/reliability/test_catch_all.py` (about a minute).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.workspace import make_workspace, run, sharpen

pytestmark = pytest.mark.reliability

CATCH_ALL = "not checked by sharpen yet"
BIG = "7" * 5000  # past Python's 4300-digit int <-> text limit


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("catch-all") / "ws")


@pytest.fixture
def ws(prepared, tmp_path) -> Path:
    subprocess.run(["cp", "-a", str(prepared), str(tmp_path / "ws")], check=True)
    return tmp_path / "ws"


def set_params(ws: Path, **sections) -> None:
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for key, value in sections.items():
        params[key] = value if not isinstance(value, dict) else {**params.get(key, {}), **value}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write(ws: Path, rel: str, content: str | bytes) -> None:
    path = ws / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def refused(proc: subprocess.CompletedProcess, *names: str) -> str:
    """The one `error:` line of a refused command, checked: non-zero exit, no catch-all, no traceback."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert CATCH_ALL not in out and "Traceback" not in out, out[-2000:]
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out[-2000:]
    message = out[out.index(errors[0]):]  # params errors list their keys on the lines below
    for name in names:
        assert name in message, message[-2000:]
    return errors[0]


def stage(ws: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    return run(ws, sys.executable, "-m", f"stages.{name}", *args, check=False)


GOOD = '{"id": "a", "prompt": "1+2=", "answer": "3"}\n{"id": "c", "prompt": "2+3=", "answer": "5"}\n'


# 1. a 5,000-digit number: in a problem file, as a JSON number Python's json refuses to read
@pytest.mark.parametrize("row", ['{"id": "b", "prompt": "2+2=", "answer": %s}' % BIG,
                                 '{"id": %s, "prompt": "2+2=", "answer": "4"}' % BIG])
def test_a_5000_digit_number_in_a_problem_file_names_its_line(ws, row):
    write(ws, "data/problems/p.jsonl", GOOD + row + "\n")
    set_params(ws, task={"name": "file", "path": "data/problems/p.jsonl", "eval_size": 1})
    refused(stage(ws, "tasks", "--out", "data/tasks"), "data/problems/p.jsonl line 3", "4,300 digits")


def round_files(ws: Path, answer: str, completion: str) -> tuple[str, ...]:
    """The generate stage's outputs for one problem whose gold answer is `answer`; verify's command."""
    from sharpen.backends import Completion
    from sharpen.io import write_frame
    from sharpen.sampling import sample_frame
    from sharpen.schemas import Problem, Sample

    problems = pl.DataFrame({"problem_id": ["2+2", "2+3"], "prompt": ["2+2=", "2+3="], "answer": [answer, "5"],
                             "category": ["1+1", "1+1"]})
    samples = sample_frame(problems, [[Completion(completion, 2, "stop")]] * 2, round_=1, policy_hash="p",
                           temperature=1.0)
    write_frame(problems, ws / "data/round/generate/problems.parquet", Problem)
    write_frame(samples, ws / "data/round/generate/samples.parquet", Sample)
    return ("--samples", "data/round/generate/samples.parquet", "--problems", "data/round/generate/problems.parquet",
            "--state", "data/state", "--base", "data/base/model", "--out", "data/round/verify")


# 1 and 2. a gold answer the verifier cannot read (words, 5,000 digits) reaching verify: the problem is named
@pytest.mark.parametrize("answer", ["seven", BIG])
def test_a_gold_answer_verify_cannot_read_names_the_problem(ws, answer):
    args = round_files(ws, answer, "|4")
    line = refused(stage(ws, "verify", *args), "problem '2+2'", "verify.verifier exact_integer")
    assert len(line) < 600


# 1. a 5,000-digit value from the model (a program's return value) is a wrong answer, not a crash
def test_a_program_returning_a_5000_digit_integer_is_scored_wrong():
    from sharpen.verifiers import get_verifier
    from sharpen.verifiers.execution import unit_test_reference

    cases = {"entry_point": "f", "cases": [{"input": "(1,)", "output": "5"}]}
    ref = unit_test_reference("def f(x):\n", json.dumps(cases))
    result = get_verifier("unit_tests")(["    return 10**5000\n"], [ref])[0]
    assert (result.correct, result.reason) == (False, "wrong")


# 3. task.template: fields the task does not fill, attributes, indexes, positions, a lone brace
@pytest.mark.parametrize("template", ["{a.b}{prompt}", "{prompt}{prompt.upper}", "{prompt}{nope}", "{0}{prompt}",
                                      "{prompt[0]}{prompt}", "{prompt}{"])
def test_a_bad_template_is_refused_by_the_params_check(ws, template):
    set_params(ws, task={"template": template})
    refused(sharpen(ws, "params", check=False), "task.template")  # so by every stage, before it reads anything


# 4. a metrics value that is not a number (or a number Python cannot read), read by rounds, report and advance
def metrics(ws: Path, **evaluate) -> None:
    for s in ("generate", "verify", "filter", "synthesize", "train", "train_proposer", "controller", "propose"):
        write(ws, f"data/round/{s}/metrics.json", json.dumps({"round": 1, "wall_s": 1.0}))
    write(ws, "data/round/evaluate/metrics.json", json.dumps({"round": 1, "greedy_accuracy": 0.5, "pass@1": 0.5,
                                                               "wall_s": 1.0} | evaluate).replace('"BIG"', BIG))


@pytest.mark.parametrize("command", [("rounds",), ("report",), ("advance",)])
@pytest.mark.parametrize("value", ["abc", "BIG"])
def test_a_corrupt_metrics_value_names_the_file_and_key(ws, command, value):
    metrics(ws, greedy_accuracy=value)
    refused(sharpen(ws, *command, check=False), "data/round/evaluate/metrics.json")


def test_a_corrupt_stage_wall_time_names_the_file_and_key(ws):
    metrics(ws)
    write(ws, "data/round/train/metrics.json", json.dumps({"round": 1, "wall_s": "abc"}))
    refused(sharpen(ws, "rounds", check=False), "data/round/train/metrics.json", "'wall_s'")


def test_a_corrupt_plots_csv_names_the_file_and_column(ws):
    metrics(ws)
    write(ws, "data/base/evaluate/metrics.json", json.dumps({"round": 0, "greedy_accuracy": 0.1}))
    write(ws, "data/base/evaluate/categories.csv", "category,greedy_accuracy\n1+1,abc\n")
    refused(sharpen(ws, "report", check=False), "data/base/evaluate/categories.csv", "'greedy_accuracy'")


# 5. a damaged Parquet file read at a round's tag by `sharpen diff`
def test_a_damaged_parquet_at_a_tag_names_the_file(ws):
    metrics(ws)
    write(ws, "data/round/evaluate/samples.parquet", b"PAR1 damaged PAR1")
    run(ws, "git", "add", "-f", "data/round")
    run(ws, "git", "commit", "-qm", "round 1")
    run(ws, "git", "tag", "-a", "round-1", "-m", "round 1")
    refused(sharpen(ws, "diff", "round-1", "round-1", check=False),
            "data/round/evaluate/samples.parquet at round-1: not a readable Parquet file")


# 6. `model:` naming a folder that is not a checkpoint
@pytest.mark.parametrize("files", [{"readme.txt": "mine"}, {"config.json": "{}"}])
def test_a_model_folder_that_is_not_a_checkpoint_names_the_key(ws, files):
    for name, text in files.items():
        write(ws, f"models/mine/{name}", text)
    set_params(ws, model="models/mine")
    line = refused(stage(ws, "base", "--pretraining", "data/tasks/pretraining.json", "--out", "data/base"),
                   "model: 'models/mine'")
    assert "sentencepiece" not in line and ("config.json" in line or "tokenizer" in line)


# 7. a pool that cannot be drawn, and a stage run out of order: their own messages, without the "bug" label
def test_a_pool_larger_than_the_task_names_the_keys(ws):
    set_params(ws, task={"max_digits": 1, "pool_size": 200, "eval_size": 10})
    refused(stage(ws, "tasks", "--out", "data/tasks"), "pool_size")


def test_a_stage_run_out_of_order_is_a_checked_error(ws):
    write(ws, "data/round/controller/metrics.json", json.dumps({"kind": "none", "round": 7}))
    refused(stage(ws, "generate", "--problems", "data/tasks/pool.parquet", "--state", "data/state",
                  "--base", "data/base/model", "--controller", "data/round/controller/metrics.json",
                  "--proposed", "data/round/propose/problems.parquet", "--out", "data/round/generate"),
            "data/round/controller/metrics.json: written for another round")
