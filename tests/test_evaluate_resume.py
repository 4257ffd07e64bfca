"""Evaluation resumes after a kill: finished shards are kept (drawn, unverified), shards from other inputs are not.

Run: `pytest tests/test_evaluate_resume.py` (about 30 s: real `dvc repro` subprocesses).
"""

import subprocess

import polars as pl
import pytest

from tests.workspace import env, kill_after_files, make_workspace, run

SAMPLES = "data/base/evaluate/samples.parquet"
PARTIAL = "data/base/evaluate/.partial"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("resume"), {"evaluate": {"shard_size": 2}})  # 24 held out: 12 shards
    run(ws, "dvc", "repro", "base")
    return ws


def test_killed_evaluate_resumes_to_the_same_samples(ws):
    kill_after_files(ws, "evaluate_base", f"{PARTIAL}/*/shard-*.parquet", 3)
    assert not (ws / SAMPLES).exists()  # no half-written artifact
    done = len(list(ws.glob(f"{PARTIAL}/*/shard-*.parquet")))
    out = run(ws, "dvc", "repro", "evaluate_base").stdout
    assert f"resuming, {done}/12 shards already drawn" in out
    resumed = pl.read_parquet(ws / SAMPLES)
    assert not (ws / PARTIAL).exists()

    (ws / SAMPLES).unlink()
    run(ws, "dvc", "repro", "evaluate_base", "--force")
    assert resumed.equals(pl.read_parquet(ws / SAMPLES))


def test_stale_evaluation_shards_are_never_reused(ws):
    stale = ws / PARTIAL / "0123456789abcdef"
    stale.mkdir(parents=True)
    bogus = pl.read_parquet(ws / SAMPLES).head(8).with_columns(completion=pl.lit("999999"))
    bogus.write_parquet(stale / "shard-00000.parquet")
    out = run(ws, "dvc", "repro", "evaluate_base", "--force").stdout
    assert "resuming" not in out
    assert not stale.exists()
    assert "999999" not in pl.read_parquet(ws / SAMPLES)["completion"].to_list()


def test_draws_killed_before_verification_are_verified_without_sampling_again(ws):
    cut = subprocess.run(["dvc", "repro", "evaluate_base", "--force"], cwd=ws, env=env() | {"SHARPEN_FAULT": "drawn"},
                         start_new_session=True, capture_output=True, text=True)
    assert cut.returncode != 0
    assert len(list(ws.glob(f"{PARTIAL}/*/shard-*.parquet"))) == 12  # all drawn, kept
    out = run(ws, "dvc", "repro", "evaluate_base", "--force").stdout
    assert "resuming, 12/12 shards already drawn" in out
    assert "evaluate: round 0" in out and not (ws / PARTIAL).exists()
