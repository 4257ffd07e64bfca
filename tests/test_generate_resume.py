"""Generation resumes after a kill: finished shards are kept, stale shards from other inputs are not.

Run: `pytest tests/test_generate_resume.py` (about 30 s: real `dvc repro` subprocesses).
"""

import polars as pl
import pytest

from tests.workspace import kill_after_files, make_workspace, run

SAMPLES = "data/round/generate/samples.parquet"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("resume"), {"generate": {"shard_size": 1, "k": 4}})
    run(ws, "dvc", "repro", "base")
    return ws


def test_killed_generate_resumes_to_the_same_samples(ws):
    kill_after_files(ws, "generate", "data/round/generate/.partial/*/shard-*.parquet", 3)
    assert not (ws / SAMPLES).exists()  # no half-written artifact
    done = len(list(ws.glob("data/round/generate/.partial/*/shard-*.parquet")))
    out = run(ws, "dvc", "repro", "generate").stdout
    assert f"resuming, {done}/48 shards already done" in out
    resumed = pl.read_parquet(ws / SAMPLES)
    assert not (ws / "data/round/generate/.partial").exists()

    (ws / SAMPLES).unlink()
    run(ws, "dvc", "repro", "generate", "--force")
    uninterrupted = pl.read_parquet(ws / SAMPLES)
    assert resumed.equals(uninterrupted)


def test_stale_shards_are_never_reused(ws):
    stale = ws / "data/round/generate/.partial/0123456789abcdef"
    stale.mkdir(parents=True)
    bogus = pl.read_parquet(ws / SAMPLES).with_columns(completion=pl.lit("999999"))
    bogus.write_parquet(stale / "shard-00000.parquet")
    out = run(ws, "dvc", "repro", "generate", "--force").stdout
    assert "resuming" not in out
    assert not stale.exists()
    assert "999999" not in pl.read_parquet(ws / SAMPLES)["completion"].to_list()
