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
