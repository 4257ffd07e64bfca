"""Stages with nothing to do for the recipe (controller, propose, synthesize, train_proposer under
rest-em, the default params.yaml) write their small outputs without importing torch or a trainer;
the controller, which writes only JSON and CSV, without pandera either.

Run: `pytest tests/test_noop_stages.py` (a few seconds: each stage is a subprocess, as dvc.yaml runs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PROJECT
from tests.workspace import env

HEAVY = ("torch", "transformers", "trl", "datasets", "peft", "vllm", "pandera")

# runs the stage as `python -m` would, then prints which heavy modules it imported
WRAPPER = f"""
import json, runpy, sys
module, sys.argv = sys.argv[1], sys.argv[1:]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
finally:
    print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""

# in the order dvc.yaml runs them: train_proposer reads propose's proposals.parquet
STAGES = {
    "controller": ["--problems", "data/tasks/pool.parquet", "--state", "data/state", "--base", "data/base/model",
                   "--out", "data/round/controller"],
    "propose": ["--state", "data/state", "--base", "data/base/model", "--held-out", "data/tasks/eval.parquet",
                "--out", "data/round/propose"],
    "synthesize": ["--problems", "data/round/generate/problems.parquet", "--stats", "data/round/filter/stats.parquet",
                   "--tasks", "data/tasks", "--state", "data/state", "--base", "data/base/model",
                   "--out", "data/round/synthesize"],
    "train_proposer": ["--proposals", "data/round/propose/proposals.parquet",
                       "--verdicts", "data/round/verify/verdicts.parquet", "--state", "data/state",
                       "--base", "data/base/model", "--out", "data/round/train_proposer"],
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, list[str]]:
    """Each no-op stage run once in a workspace holding only params.yaml, the loop state and a base
    model directory with nothing but its file names (a no-op stage loads no model); the heavy modules
    each one imported."""
    ws = tmp_path_factory.mktemp("noop")
    shutil.copy(PROJECT / "params.yaml", ws / "params.yaml")
    (ws / "data/state").mkdir(parents=True)
    shutil.copy(PROJECT / "data/state/state.json", ws / "data/state/state.json")
    (ws / "data/base/model").mkdir(parents=True)
    for name in ("config.json", "tokenizer.json"):
        (ws / "data/base/model" / name).write_text("{}")
    found = {}
    for stage, args in STAGES.items():
        proc = subprocess.run([sys.executable, "-c", WRAPPER, f"stages.{stage}", *args], cwd=ws, capture_output=True,
                              text=True, env=env() | {"PYTHONPATH": str(PROJECT)})
        assert proc.returncode == 0, f"{stage}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert json.loads((ws / f"data/round/{stage}/metrics.json").read_text())["kind"] == "none"
        found[stage] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("stage", list(STAGES))
def test_noop_stage_imports_no_torch(imported, stage):
    assert [m for m in imported[stage] if m != "pandera"] == []


def test_controller_none_imports_no_pandera(imported):
    # it writes metrics.json and an empty grid.csv; no Parquet is read or validated
    assert "pandera" not in imported["controller"]
