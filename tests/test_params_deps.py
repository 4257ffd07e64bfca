"""Stages depend on exactly the params they read: a task change keeps a pretrained base, a recipe switch
that agrees on the task and base settings reruns neither the tasks nor the base model.

Run: `pytest tests/test_params_deps.py` (about 40 s)
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


def test_switching_recipe_keeps_the_tasks_base_and_baseline(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run(ws, "dvc", "repro", "evaluate_base")
    _set(ws, recipe="iterative-dpo")  # same task, base and evaluation settings as rest-em
    out = run(ws, "dvc", "repro", "evaluate_base").stdout
    assert "Running stage 'resolve'" in out
    for stage in ("tasks", "base", "evaluate_base"):
        assert f"Stage '{stage}' didn't change, skipping" in out
    _set(ws, recipe="star")  # star pretrains with hints on a scratchpad: its base differs
    out = run(ws, "dvc", "repro", "base").stdout
    assert "Running stage 'base'" in out
