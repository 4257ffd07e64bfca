"""The base stage depends on exactly what it reads of the task: a pretrained model's copy never reruns for a task change.

Run: `pytest tests/test_base_deps.py` (about 20 s)
"""

import yaml

from tests.workspace import build_tiny_model, make_workspace, run


def test_changing_only_the_task_keeps_a_pretrained_base(tmp_path):
    model = build_tiny_model(tmp_path / "pretrained")
    ws = make_workspace(tmp_path / "ws", {"model": str(model)})
    run(ws, "dvc", "repro", "base")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["task"]["eval_size"] = 12
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(ws, "dvc", "repro", "base").stdout
    assert "Running stage 'tasks'" in out  # the task did change
    assert "Stage 'base' didn't change, skipping" in out
