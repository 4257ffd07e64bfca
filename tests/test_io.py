"""Atomic writes and validated reads: bad artifacts fail naming file and column; nothing half-written.

Run: `pytest tests/test_io.py`
"""

import os
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from sharpen import io

from sharpen.io import ArtifactError, atomic_write, atomic_write_dir, hash_path, read_frame, write_frame
from sharpen.schemas import Problem, Verdict


def test_write_rejects_bad_frame_and_writes_nothing(tmp_path, problems):
    bad = problems.with_columns(answer=pl.lit(3))
    with pytest.raises(ArtifactError, match="column 'answer'"):
        write_frame(bad, tmp_path / "p.parquet", Problem)
    assert list(tmp_path.iterdir()) == []


def test_roundtrip_validates(tmp_path, problems):
    write_frame(problems, tmp_path / "p.parquet", Problem)
    assert read_frame(tmp_path / "p.parquet", Problem).equals(problems)


def test_foreign_parquet_names_file_and_column(tmp_path, problems):
    problems.drop("category").write_parquet(tmp_path / "foreign.parquet")
    with pytest.raises(ArtifactError) as err:
        read_frame(tmp_path / "foreign.parquet", Problem)
    assert "foreign.parquet" in str(err.value) and "'category'" in str(err.value)


def test_corrupt_parquet_names_file(tmp_path):
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ArtifactError, match="corrupt.parquet: not a readable Parquet"):
        read_frame(tmp_path / "corrupt.parquet", Problem)


def test_out_of_range_value_is_named(tmp_path):
    df = pl.DataFrame({"round": [1], "problem_id": ["a"], "sample_idx": [0], "extracted": ["1"],
                       "reward": [1.5], "correct": [True], "reason": ["ok"], "verifier": ["exact_integer"]})
    with pytest.raises(ArtifactError, match="column 'reward'"):
        write_frame(df, tmp_path / "v.parquet", Verdict)


def test_duplicate_problem_ids_rejected(tmp_path, problems):
    with pytest.raises(ArtifactError, match="problem_id"):
        write_frame(pl.concat([problems, problems.head(1)]), tmp_path / "p.parquet", Problem)


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def boom(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_dir_write_keeps_previous_dir(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "w.bin").write_text("old")

    def boom(tmp):
        (tmp / "w.bin").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write_dir(target, boom)
    assert (target / "w.bin").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_hash_path_changes_with_content(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("1")
    h1 = hash_path(tmp_path / "d")
    (tmp_path / "d" / "x").write_text("2")
    assert hash_path(tmp_path / "d") != h1


def _dead_writer() -> subprocess.Popen:
    """A finished child that nobody has reaped yet: a zombie, as a killed stage's often are.

    Keep the returned object alive: Popen reaps its child when it is garbage-collected."""
    proc = subprocess.Popen(["true"])
    while not Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1].startswith("Z"):
        time.sleep(0.01)
    return proc


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_zombie_writers_moved_aside_dir_is_put_back(tmp_path):
    target = tmp_path / "model"
    writer = _dead_writer()
    old = tmp_path / f"model.old-{writer.pid}"
    old.mkdir()
    (old / "w.bin").write_text("previous")
    atomic_write_dir(target, lambda tmp: (tmp / "w.bin").write_text("new"))
    assert (target / "w.bin").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    writer.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_pid_reused_after_the_sibling_was_written_is_not_its_writer():
    assert io._alive(os.getpid(), since=time.time())
    assert not io._alive(os.getpid(), since=time.time() - 10 * 365 * 86400)


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit, OSError])
def test_an_interruption_between_the_two_renames_keeps_the_previous_dir(tmp_path, monkeypatch, interruption):
    from sharpen import faults
    from sharpen.io import atomic_write_dir

    target = tmp_path / "policy"
    atomic_write_dir(target, lambda d: (d / "weights").write_text("old"))

    def interrupt(name: str) -> None:
        if name.startswith("swap:"):
            raise interruption()

    monkeypatch.setattr(faults, "point", interrupt)
    with pytest.raises(interruption):
        atomic_write_dir(target, lambda d: (d / "weights").write_text("new"))
    assert (target / "weights").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]  # nothing left beside it
