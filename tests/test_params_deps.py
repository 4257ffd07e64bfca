"""Stages depend on exactly the params they read: a task change keeps a pretrained base.

Run: `pytest tests/test_params_deps.py` (about 20 s)
"""

import yaml

from tests.workspace import build_tiny_model, make_workspace, run


def _set(ws, **sections):
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for key, value in sections.items():
        params[key] = value if not isinstance(value, dict) else {**params[key], **value}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_changing_only_the_task_keeps_a_pretrained_base(tmp_path):
    model = build_tiny_model(tmp_path / "pretrained")
    ws = make_workspace(tmp_path / "ws", {"model": str(model)})
    run(ws, "dvc", "repro", "base")
    _set(ws, task={"eval_size": 12})
    out = run(ws, "dvc", "repro", "base").stdout
    assert "Running stage 'tasks'" in out  # the task did change
    assert "Stage 'base' didn't change, skipping" in out


def test_switching_between_recipes_that_agree_on_task_and_base_reruns_neither(tmp_path):
    model = build_tiny_model(tmp_path / "pretrained")
    ws = make_workspace(tmp_path / "ws", {"model": str(model)})
    run(ws, "dvc", "repro", "base")
    _set(ws, recipe="iterative-dpo")  # sets filter and train; not task, base or verify
    out = run(ws, "dvc", "repro", "base").stdout
    assert "Running stage 'resolve'" in out  # the recipe did change
    assert "Stage 'tasks' didn't change, skipping" in out
    assert "Stage 'base' didn't change, skipping" in out


def test_a_recipe_that_changes_the_task_reruns_it(tmp_path):
    model = build_tiny_model(tmp_path / "pretrained")
    ws = make_workspace(tmp_path / "ws", {"model": str(model)})
    run(ws, "dvc", "repro", "tasks")
    _set(ws, recipe="star")  # task.scratchpad: true
    assert "Running stage 'tasks'" in run(ws, "dvc", "repro", "tasks").stdout


def test_a_stage_run_alone_after_a_params_edit_refuses_naming_the_resolved_file(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run(ws, "dvc", "repro", "tasks")
    _set(ws, task={"eval_size": 12})
    result = run(ws, "dvc", "repro", "-s", "-f", "tasks", check=False)
    assert result.returncode != 0
    assert "data/resolved/task.json: out of date with params.yaml" in result.stdout + result.stderr
    assert "task.eval_size" in result.stdout + result.stderr
