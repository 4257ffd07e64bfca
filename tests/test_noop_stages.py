"""Stages with nothing to do for the recipe (controller, propose, synthesize, train_proposer under
rest-em, the default params.yaml) write their small outputs without importing torch, a trainer or
pandera (with pandas, about a second): their empty Parquet files take the columns of sharpen/schemas.py
read from its source (sharpen/empty.py), and read back valid.

Run: `pytest tests/test_noop_stages.py` (a few seconds: each stage is a subprocess, as dvc.yaml runs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import polars as pl
import pytest

from sharpen import schemas
from sharpen.empty import read_empty, source_fields, write_empty
from sharpen.io import read_frame
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
# the Parquet files each one writes, and the model a later stage reads them with
WRITES = {
    "controller": {},
    "propose": {"proposals": "Proposal", "problems": "Problem"},
    "synthesize": {"problems": "SynthesizedProblem", "attempts": "Sample", "examples": "TrainExample"},
    "train_proposer": {"proposals": "Proposal"},
}
MODELS = sorted(name for name, value in vars(schemas).items()
                if isinstance(value, type) and issubclass(value, schemas.pa.DataFrameModel)
                and value is not schemas.pa.DataFrameModel)


@pytest.fixture(scope="module")
def noop(tmp_path_factory) -> SimpleNamespace:
    """`ws`: a workspace holding only params.yaml, the loop state and a base model directory with nothing
    but its file names (a no-op stage loads no model), where each no-op stage has run once; `imported`: the heavy modules each one imported."""
    ws = tmp_path_factory.mktemp("noop")
    shutil.copy(PROJECT / "params.yaml", ws / "params.yaml")
    (ws / "data/state").mkdir(parents=True)
    shutil.copy(PROJECT / "data/state/state.json", ws / "data/state/state.json")
    (ws / "data/base/model").mkdir(parents=True)
    for name in ("config.json", "tokenizer.json"):
        (ws / "data/base/model" / name).write_text("{}")
    imported = {}
    for stage, args in STAGES.items():
        proc = subprocess.run([sys.executable, "-c", WRAPPER, f"stages.{stage}", *args], cwd=ws, capture_output=True,
                              text=True, env=env() | {"PYTHONPATH": str(PROJECT)})
        assert proc.returncode == 0, f"{stage}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert json.loads((ws / f"data/round/{stage}/metrics.json").read_text())["kind"] == "none"
        imported[stage] = json.loads(proc.stdout.strip().splitlines()[-1])
    return SimpleNamespace(ws=ws, imported=imported)


@pytest.mark.parametrize("stage", list(STAGES))
def test_noop_stage_imports_no_torch(noop, stage):
    assert [m for m in noop.imported[stage] if m != "pandera"] == []


@pytest.mark.parametrize("stage", list(STAGES))
def test_noop_stage_imports_no_pandera(noop, stage):
    assert "pandera" not in noop.imported[stage]


@pytest.mark.parametrize("stage", [s for s in STAGES if WRITES[s]])
def test_noop_stage_outputs_read_back_valid(noop, stage):
    for name, model in WRITES[stage].items():
        df = read_frame(noop.ws / f"data/round/{stage}/{name}.parquet", getattr(schemas, model))
        assert df.height == 0


@pytest.mark.parametrize("model", MODELS)
def test_every_schema_reads_from_its_source_as_pandera_types_it(model):
    pandera_fields = {name: (column.dtype.type, column.required)
                      for name, column in getattr(schemas, model).to_schema().columns.items()}
    assert source_fields(model) == pandera_fields
    assert list(source_fields(model)) == list(pandera_fields)  # the same order


@pytest.mark.parametrize("case", ["a row", "a foreign column", "a wrong type", "a required column missing"])
def test_read_empty_leaves_anything_but_a_valid_empty_frame_to_validation(tmp_path, case):
    df = pl.DataFrame(schema=schemas.columns(schemas.Proposal))
    df = {
        "a row": pl.DataFrame([{**{c: None for c in df.columns}, "round": 1}], schema=df.schema),
        "a foreign column": df.with_columns(extra=pl.lit(None, pl.String)),
        "a wrong type": df.with_columns(pl.col("round").cast(pl.Int32)),
        "a required column missing": df.drop("slot"),
    }[case]
    df.write_parquet(tmp_path / "proposals.parquet")
    assert read_empty(tmp_path / "proposals.parquet", "Proposal") is None


def test_write_empty_refuses_to_leave_out_a_required_column(tmp_path):
    with pytest.raises(ValueError, match="required"):
        write_empty(tmp_path / "problems.parquet", "Problem", columns=["problem_id", "prompt", "answer"])
