"""Bad input: every case exits non-zero with one clear message naming the file/key, and changes nothing.

Each case copies a prepared workspace, breaks one thing, hashes the workspace, runs the command a
user would (`dvc repro`, `sharpen advance`, or the stage that reads the broken artifact), and
checks the exit status, the message, that no Python traceback leaked, and the hashes again.
Three fixtures: `pending` (round 1 advanced, round 2 not yet run), `finished` (round 1 run, not
advanced), and the artifacts of `finished` read directly by the next stage.

Run: `pytest -m reliability tests/reliability/test_bad_input.py` (a few minutes).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.workspace import make_workspace, run, sharpen

pytestmark = pytest.mark.reliability

SKIP_DIRS = {".git", "__pycache__"}


def snapshot(ws: Path, scope: tuple[str, ...] = ()) -> dict[str, str]:
    """md5 of every file (or those under `scope`), plus git HEAD, branch and tags.

    Except the resolve stage's record of params.yaml (data/resolved/ and its dvc.lock entry): it is
    params.yaml itself with the recipe laid under it, so it follows an edited params.yaml before a
    later stage refuses the input; nothing the user had is in it."""
    hashes = {}
    for path in sorted(ws.rglob("*")):
        rel = path.relative_to(ws).as_posix()
        if path.is_dir() or SKIP_DIRS & set(path.relative_to(ws).parts) or \
                rel.startswith((".dvc/tmp", ".dvc/cache", ".sharpen/logs", "data/resolved/")):  # logs: where tracebacks go
            continue
        if scope and not rel.startswith(scope):
            continue
        data = path.read_bytes()
        if rel == "dvc.lock":
            try:
                lock = yaml.safe_load(data)
            except yaml.YAMLError:  # a case that damaged it on purpose: compared as bytes
                lock = None
            if isinstance(lock, dict) and isinstance(lock.get("stages"), dict):
                lock["stages"].pop("resolve", None)
                data = yaml.safe_dump(lock, sort_keys=True).encode()
        hashes[rel] = hashlib.md5(data).hexdigest()
    for ref in ("HEAD", "--abbrev-ref HEAD"):
        hashes[f"git {ref}"] = run(ws, "git", "rev-parse", *ref.split(), check=False).stdout
    hashes["git tags"] = run(ws, "git", "tag", "--list").stdout
    return hashes


def edit_params(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        data = yaml.safe_load((ws / "params.yaml").read_text())
        change(data)
        (ws / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return apply


def setter(dotted: str, value) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, key = dotted.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value
    return change


def write(rel: str, content: bytes | str) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = ws / rel
        path.unlink(missing_ok=True)  # never write through a hardlink into DVC's cache
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return apply


def rewrite_frame(rel: str, change: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        frame = change(pl.read_parquet(ws / rel))
        (ws / rel).unlink()
        frame.write_parquet(ws / rel)
    return apply


def remove(rel: str) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = ws / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return apply


def git(*args: str) -> Callable[[Path], None]:
    return lambda ws: run(ws, "git", *args) and None


def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        for step in steps:
            step(ws)
    return apply


def problem_file(name: str, content: bytes | str, **task) -> Callable[[Path], None]:
    """Point the task at data/problems/`name` holding `content`."""
    return both(write(f"data/problems/{name}", content),
                edit_params(setter("task", {"name": "file", "path": f"data/problems/{name}", "eval_size": 1, **task})))


GOOD_ROW = '{"id": "a", "prompt": "1+2=", "answer": "3"}\n'
HUGE = '{"id": "h", "prompt": "' + "9" * 1_000_001 + '", "answer": "1"}\n'
REPRO = ("dvc", "repro")
ADVANCE = ("sharpen", "advance")
FILTER = ("python", "-m", "stages.filter", "--samples", "data/round/generate/samples.parquet",
          "--verdicts", "data/round/verify/verdicts.parquet", "--problems", "data/round/generate/problems.parquet",
          "--state", "data/state", "--controller", "data/round/controller/metrics.json", "--out", "data/round/filter")
GENERATE = ("python", "-m", "stages.generate", "--problems", "data/tasks/pool.parquet", "--state", "data/state",
            "--base", "data/base/model", "--controller", "data/round/controller/metrics.json",
            "--proposed", "data/round/propose/problems.parquet", "--out", "data/round/generate")
TRAIN = ("python", "-m", "stages.train", "--kept", "data/round/filter/kept.parquet",
         "--synthesized", "data/round/synthesize/examples.parquet", "--pairs", "data/round/filter/pairs.parquet",
         "--problems", "data/round/generate/problems.parquet", "--decisions", "data/round/filter/decisions.parquet",
         "--samples", "data/round/generate/samples.parquet", "--verdicts", "data/round/verify/verdicts.parquet",
         "--state", "data/state", "--base", "data/base/model", "--out", "data/round/train")


@dataclass
class Case:
    id: str
    fixture: str  # pending | finished
    apply: Callable[[Path], None]
    command: tuple[str, ...]
    expect: str  # must appear in the output
    scope: tuple[str, ...] = field(default=())  # only these paths must be unchanged (default: everything)


CASES = [
    # params.yaml: the first stage DVC reruns fails before it writes anything
    Case("params-unknown-key", "pending", edit_params(setter("generate.temprature", 0.7)), REPRO, "generate.temprature: unknown key"),
    Case("params-wrong-type", "pending", edit_params(setter("generate.k", "eight")), REPRO, "generate.k"),
    Case("params-out-of-range", "pending", edit_params(setter("generate.k", 0)), REPRO, "generate.k"),
    Case("params-top-p-range", "pending", edit_params(setter("generate.top_p", 1.5)), REPRO, "generate.top_p"),
    Case("params-digits-order", "pending", edit_params(setter("task.min_digits", 5)), REPRO, "min_digits (5) > max_digits"),
    Case("params-unknown-recipe", "pending", edit_params(setter("recipe", "rest-me")), REPRO, "recipe: unknown recipe 'rest-me'"),
    Case("params-foreign-recipe-key", "pending", edit_params(setter("synthesize", {"weakness": {"budget": 3}})), REPRO,
         "synthesize.weakness.budget: recipe 'rest-em' does not take this parameter"),
    Case("params-recipe-kind-switch", "pending", edit_params(setter("controller", {"kind": "bstar"})), REPRO,
         "controller.kind: recipe 'rest-em' uses 'none'"),
    Case("params-bad-group-rule", "pending", edit_params(setter("filter", {"groups": [{"rule": "band"}]})), REPRO, "filter.groups.0"),
    Case("params-threshold-without-tau", "pending", edit_params(setter("filter", {"select": "threshold"})), REPRO, "filter.tau"),
    Case("params-pass-k-above-k", "pending", edit_params(setter("evaluate.pass_k", [1, 64])), REPRO, "pass_k"),
    Case("params-bad-init", "pending", edit_params(setter("train.init", "scratch")), REPRO, "train.init"),
    Case("params-seed-type", "pending", edit_params(setter("seed", "zero")), REPRO, "seed"),
    Case("params-round-zero", "pending", edit_params(setter("round", 0)), REPRO, "round"),
    Case("params-heads", "pending", edit_params(setter("base.num_heads", 3)), REPRO, "multiple of num_heads"),
    Case("params-missing-section", "pending", edit_params(lambda d: d.pop("train")), REPRO, "train"),
    Case("params-yaml-syntax", "pending", write("params.yaml", "round: 2\ngenerate: {k: [\n"), REPRO, "params.yaml"),
    Case("params-not-utf8", "pending", write("params.yaml", b"round: 2\nseed: \xff\xfe\n"), REPRO, "params.yaml"),
    # family 2: one YAML dialect (1.2, DVC's): a duplicate key, yes/no/on/off for a switch
    Case("params-duplicate-key", "pending", lambda ws: write("params.yaml", (ws / "params.yaml").read_text() + "seed: 7\n")(ws),
         ("sharpen", "params"), 'not valid YAML: found duplicate key "seed"'),
    Case("params-duplicate-key-repro", "pending",
         lambda ws: write("params.yaml", (ws / "params.yaml").read_text() + "seed: 7\n")(ws), REPRO, 'duplicate key "seed"'),
    Case("params-duplicate-nested-key", "pending",
         lambda ws: write("params.yaml", (ws / "params.yaml").read_text() + "loop:\n  max_rounds: 2\n  max_rounds: 3\n")(ws),
         ("sharpen", "params"), 'duplicate key "loop"'),
    Case("params-switch-off", "pending", edit_params(setter("filter.dedup", "off")), REPRO,
         "filter.dedup: expected true or false, got 'off'"),
    Case("params-switch-yes", "pending", edit_params(setter("generate.logprobs", "yes")), ("sharpen", "params"),
         "generate.logprobs: expected true or false, got 'yes'"),
    Case("params-loop-section", "finished", edit_params(setter("loop.stage_retries", -1)), ADVANCE, "loop.stage_retries"),
    # problem files: the tasks stage refuses them, naming the file, row and field
    Case("file-missing-field", "pending", problem_file("p.jsonl", GOOD_ROW + '{"id": "b", "prompt": "2+2="}\n'), REPRO,
         "data/problems/p.jsonl line 2: missing field 'answer'"),
    Case("file-wrong-type", "pending", problem_file("p.jsonl", GOOD_ROW + '{"id": "b", "prompt": ["2+2="], "answer": "4"}\n'),
         REPRO, "data/problems/p.jsonl line 2: field 'prompt' must be a string, got list"),
    Case("file-duplicate-ids", "pending", problem_file("p.jsonl", GOOD_ROW * 2), REPRO,
         "data/problems/p.jsonl line 2: duplicate id 'a'"),
    # answers the configured verifier cannot read: refused by the tasks stage, naming the row
    Case("file-answer-in-words", "pending",
         both(problem_file("p.jsonl", GOOD_ROW + '{"id": "b", "prompt": "2+2=", "answer": "four"}\n'),
              edit_params(setter("verify.verifier", "exact_integer"))), REPRO,
         "data/problems/p.jsonl: problem 'b' (held-out): its answer 'four' cannot be read by verify.verifier exact_integer"),
    Case("file-answer-5000-digits", "pending",
         problem_file("p.jsonl", GOOD_ROW + '{"id": "b", "prompt": "2+2=", "answer": "' + "7" * 5000 + '"}\n'), REPRO,
         "data/problems/p.jsonl: problem 'b' (held-out): its answer '777"),
    Case("file-empty", "pending", problem_file("p.jsonl", ""), REPRO, "data/problems/p.jsonl: no problems"),
    Case("file-not-utf8", "pending", problem_file("p.jsonl", GOOD_ROW.encode() + b'{"id": "\xff"}\n'), REPRO,
         "data/problems/p.jsonl line 2: not UTF-8"),
    Case("file-huge-row", "pending", problem_file("p.jsonl", GOOD_ROW + HUGE), REPRO,
         "data/problems/p.jsonl line 2: field 'prompt' has 1,000,001 characters"),
    Case("file-bad-json", "pending", problem_file("p.jsonl", GOOD_ROW + '{"id": "b",\n'), REPRO,
         "data/problems/p.jsonl line 2: not valid JSON"),
    Case("file-parquet-garbage", "pending", problem_file("p.parquet", b"PAR1 garbage"), REPRO,
         "data/problems/p.parquet: not a readable Parquet file"),
    Case("file-outside-problems-dir", "pending",
         both(write("mine.jsonl", GOOD_ROW), edit_params(setter("task", {"name": "file", "path": "mine.jsonl"}))), REPRO,
         "mine.jsonl is outside data/problems/"),
    Case("file-no-path", "pending", edit_params(setter("task", {"name": "file"})), REPRO, "`name: file` needs `path`"),
    Case("file-held-out-overlap", "pending",
         both(write("data/problems/e.jsonl", GOOD_ROW), problem_file("p.jsonl", GOOD_ROW, eval_path="data/problems/e.jsonl")),
         REPRO, "data/problems/e.jsonl: 1 id(s) also in data/problems/p.jsonl"),
    # loop state
    Case("state-json-garbage", "pending", write("data/state/state.json", "{not json"), REPRO, "data/state/state.json",
         scope=("data/state", "dvc.lock", "params.yaml", "data/round/generate", "data/round/train")),
    Case("state-json-schema", "pending", write("data/state/state.json", '{"policy": "elsewhere"}'), REPRO,
         "invalid loop state", scope=("data/state", "dvc.lock", "params.yaml", "data/round/generate", "data/round/train")),
    Case("state-deleted", "pending", remove("data/state"), REPRO, "data/state"),
    # DVC itself re-records a changed data source (data/state/policy.dvc) on `dvc repro`, before any
    # stage runs, even when the .dvc file is frozen; so that file is outside this case's scope, and
    # the message says how to get the good policy back from git + the cache.
    Case("policy-without-tokenizer", "pending", remove("data/state/policy/tokenizer.json"), REPRO,
         "data/state/policy: the policy named by data/state/state.json (`policy: policy`) has no tokenizer",
         scope=("data/state/state.json", "data/state/policy/", "dvc.lock", "params.yaml", "data/round")),
    # advance
    Case("advance-detached-head", "finished", git("checkout", "-q", "--detach"), ADVANCE, "HEAD is detached"),
    # a round-N tag advance did not make is never taken for its own interrupted advance
    Case("advance-foreign-lightweight-tag", "finished", git("tag", "round-1"), ADVANCE, "was not made by `sharpen advance`"),
    Case("advance-foreign-annotated-tag", "finished", git("tag", "-a", "round-1", "-m", "my release"), ADVANCE,
         "was not made by `sharpen advance`"),
    Case("advance-dirty-tree", "finished", write("notes.txt", "mine"), ADVANCE, "not outputs of this round: notes.txt"),
    Case("advance-tag-elsewhere", "finished",
         both(git("commit", "-q", "--allow-empty", "-m", "other"), git("tag", "round-1", "HEAD~1")), ADVANCE,
         "tag round-1 already exists"),
    Case("advance-metrics-garbage", "finished", write("data/round/evaluate/metrics.json", "{"), ADVANCE,
         "data/round/evaluate/metrics.json: not valid JSON"),
    Case("advance-metrics-other-round", "finished", write("data/round/evaluate/metrics.json", '{"round": 7}'), ADVANCE,
         "is from round 7"),
    Case("advance-state-deleted", "finished", remove("data/state/state.json"), ADVANCE, "data/state/state.json: not found"),
    Case("advance-no-dvc-yaml", "finished", remove("dvc.yaml"), ADVANCE, "no dvc.yaml here"),
    Case("advance-unknown-gate-metric", "finished",
         both(edit_params(setter("advance.metric", "accuracy")), git("commit", "-qam", "gate on accuracy")), ADVANCE,
         "advance.metric: 'accuracy' is not in the round's metrics"),
    # artifacts read by the next stage
    Case("verdicts-garbage", "finished", write("data/round/verify/verdicts.parquet", b"PAR1 not really"), FILTER,
         "data/round/verify/verdicts.parquet"),
    Case("verdicts-truncated", "finished",
         lambda ws: write("data/round/verify/verdicts.parquet", (ws / "data/round/verify/verdicts.parquet").read_bytes()[:200])(ws),
         FILTER, "data/round/verify/verdicts.parquet"),
    Case("samples-missing-column", "finished", rewrite_frame("data/round/generate/samples.parquet", lambda f: f.drop("completion")),
         FILTER, "completion"),
    Case("samples-wrong-dtype", "finished",
         rewrite_frame("data/round/generate/samples.parquet", lambda f: f.with_columns(pl.col("sample_idx").cast(pl.String))),
         FILTER, "sample_idx"),
    Case("samples-duplicate-keys", "finished",
         rewrite_frame("data/round/generate/samples.parquet", lambda f: pl.concat([f, f.head(1)])), FILTER, "sample_idx"),
    Case("pool-duplicate-ids", "finished",
         rewrite_frame("data/tasks/pool.parquet", lambda f: pl.concat([f, f.head(1)])), GENERATE, "problem_id"),
    Case("pool-empty-file", "finished", write("data/tasks/pool.parquet", b""), GENERATE, "data/tasks/pool.parquet"),
    Case("kept-foreign-column", "finished",
         rewrite_frame("data/round/filter/kept.parquet", lambda f: f.with_columns(secret=pl.lit(1))), TRAIN, "secret"),
    # family 5: what used to reach the user as a traceback (json, polars, safetensors, DVC)
    Case("file-lone-surrogate", "pending", problem_file("p.jsonl", GOOD_ROW + '{"id": "b", "prompt": "x\\udc80", "answer": "1"}\n'),
         REPRO, "data/problems/p.jsonl line 2: field 'prompt' holds '\\udc80' at character 2"),
    Case("file-lone-surrogate-answer", "pending", problem_file("p.jsonl", GOOD_ROW + '{"id": "b", "prompt": "1+1=", "answer": "\\ud800"}\n'),
         REPRO, "data/problems/p.jsonl line 2: field 'answer' holds"),
    Case("rounds-metrics-list", "finished", write("data/round/evaluate/metrics.json", "[1, 2]"), ("sharpen", "rounds"),
         "data/round/evaluate/metrics.json: holds a JSON list"),
    Case("rounds-stage-metrics-string", "finished", write("data/round/filter/metrics.json", '"kept"'), ("sharpen", "rounds"),
         "data/round/filter/metrics.json: holds a JSON str"),
    Case("advance-metrics-string", "finished", write("data/round/evaluate/metrics.json", '"done"'), ADVANCE,
         "data/round/evaluate/metrics.json: holds a JSON str"),
    Case("generate-truncated-base-weights", "finished",
         lambda ws: write("data/base/model/model.safetensors", (ws / "data/base/model/model.safetensors").read_bytes()[:1000])(ws),
         GENERATE, "data/base/model: cannot load the model (SafetensorError"),
    Case("generate-controller-list", "finished", write("data/round/controller/metrics.json", "[]"), GENERATE,
         "data/round/controller/metrics.json: holds a JSON list"),
    Case("advance-dvc-lock-conflict", "finished",
         lambda ws: write("dvc.lock", "<<<<<<< HEAD\n" + (ws / "dvc.lock").read_text())(ws), ADVANCE, "DVC: unable to read: 'dvc.lock'"),
    Case("advance-tab-in-dvc-yaml", "finished",
         both(lambda ws: write("dvc.yaml", (ws / "dvc.yaml").read_text().replace("    cmd:", "\tcmd:", 1))(ws),
              git("commit", "-qam", "tab")), ADVANCE, "DVC: unable to read: 'dvc.yaml'"),
    # family 8: refusals that said the wrong thing
    Case("file-json-array-in-jsonl", "pending", problem_file("p.jsonl", "[" + GOOD_ROW.strip() + "]\n"), REPRO,
         "data/problems/p.jsonl line 1: a JSON array, but p.jsonl is read as JSON Lines"),
    Case("file-pretty-json-array-in-jsonl", "pending", problem_file("p.jsonl", "[\n  " + GOOD_ROW.strip() + "\n]\n"), REPRO,
         "is read as JSON Lines (one object per line"),
    Case("report-metrics-garbage", "finished", write("data/round/evaluate/metrics.json", "{"), ("sharpen", "report"),
         "data/round/evaluate/metrics.json: not valid JSON"),
    Case("advance-nan-metric", "finished",
         lambda ws: write("data/round/evaluate/metrics.json", (ws / "data/round/evaluate/metrics.json").read_text()
                          .replace('"greedy_accuracy": ', '"greedy_accuracy": NaN, "was": '))(ws), ADVANCE,
         "advance.metric greedy_accuracy is nan, not a number the gate can compare"),
    Case("advance-edited-output", "finished",
         lambda ws: write("data/round/filter/metrics.json", (ws / "data/round/filter/metrics.json").read_text()
                          .replace("{", '{"note": 1,', 1))(ws), ADVANCE,
         "data/round/filter/metrics.json differ from what `dvc repro` wrote"),
]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    finished = make_workspace(tmp_path_factory.mktemp("finished"))
    run(finished, "dvc", "repro")
    pending = tmp_path_factory.mktemp("pending") / "ws"
    shutil.copytree(finished, pending, symlinks=True)
    sharpen(pending, "advance")
    return {"finished": finished, "pending": pending}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(workspaces, tmp_path, case):
    ws = tmp_path / "ws"
    shutil.copytree(workspaces[case.fixture], ws, symlinks=True)
    case.apply(ws)
    before = snapshot(ws, case.scope)
    cmd = case.command
    proc = sharpen(ws, *cmd[1:], check=False) if cmd[0] == "sharpen" else run(ws, *cmd, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert case.expect in out, out[-2000:]
    assert "Traceback (most recent call last)" not in out, out[-3000:]
    assert snapshot(ws, case.scope) == before


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


def test_a_corrupted_output_is_recomputed_not_reused(workspaces, tmp_path):
    """DVC notices a damaged artifact by its hash and reruns the stage that makes it."""
    ws = tmp_path / "ws"
    shutil.copytree(workspaces["finished"], ws, symlinks=True)
    good = (ws / "data/round/verify/verdicts.parquet").read_bytes()
    write("data/round/verify/verdicts.parquet", b"garbage")(ws)
    run(ws, "dvc", "repro")
    assert (ws / "data/round/verify/verdicts.parquet").read_bytes() == good


def test_a_tampered_policy_is_refused_by_its_hash(workspaces, tmp_path):
    """A promoted policy whose weights changed after advance is not sampled from."""
    ws = tmp_path / "ws"
    shutil.copytree(workspaces["pending"], ws, symlinks=True)
    cfg = ws / "data/state/policy/generation_config.json"
    text = cfg.read_text()
    cfg.unlink()
    cfg.write_text(text.replace("{", '{\n  "tampered": true,', 1))
    proc = run(ws, "dvc", "repro", check=False)
    assert proc.returncode != 0
    assert "its files changed since `sharpen advance` promoted it" in proc.stdout + proc.stderr
    assert not (ws / "data/round/generate/.partial").exists() or not any((ws / "data/round/generate/.partial").iterdir())
