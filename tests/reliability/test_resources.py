"""Resources run out: a full disk mid-write and generation out of memory.

The disk is a small tmpfs mounted for the test (needs root; skipped otherwise). Memory runs out
for real: the generating process lowers its own address-space limit to just above what it uses.

Run: `pytest -m reliability tests/reliability/test_resources.py`
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from sharpen.io import DiskFullError, atomic_write_dir, write_frame, write_json
from sharpen.schemas import Problem
from tests.workspace import env, make_workspace, run

pytestmark = pytest.mark.reliability


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()}); needs root")


def fill(path: Path) -> None:
    """Write zeros under `path` until its filesystem is full."""
    with open(path / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "256k")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def problems(n: int) -> pl.DataFrame:
    return pl.DataFrame({"problem_id": [f"p{i}" for i in range(n)], "prompt": ["x" * 50] * n,
                         "answer": [str(i) for i in range(n)], "category": ["c"] * n})


def test_a_full_disk_keeps_the_previous_parquet_and_says_why(small_disk):
    target = small_disk / "pool.parquet"
    write_frame(problems(10), target, Problem)
    before = target.read_bytes()
    fill(small_disk)
    with pytest.raises(DiskFullError, match="no space left on the device while writing it; the previous version is intact"):
        write_frame(problems(5000), target, Problem)
    assert target.read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "pool.parquet"]


def test_a_full_disk_keeps_the_previous_json_and_directory(small_disk):
    write_json({"v": 1}, small_disk / "m.json")
    atomic_write_dir(small_disk / "model", lambda d: (d / "w.bin").write_bytes(b"1" * 1000))
    fill(small_disk)
    with pytest.raises(DiskFullError):
        write_json({"v": "2" * 100_000}, small_disk / "m.json")
    with pytest.raises(DiskFullError):
        atomic_write_dir(small_disk / "model", lambda d: (d / "w.bin").write_bytes(b"2" * 100_000))
    assert (small_disk / "m.json").read_text().strip().endswith("}") and '"v": 1' in (small_disk / "m.json").read_text()
    assert (small_disk / "model/w.bin").read_bytes() == b"1" * 1000
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "m.json", "model"]


def test_a_stage_on_a_full_disk_exits_cleanly_and_keeps_its_artifact(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run(ws, "dvc", "repro")
    out = ws / "data/round/verify"
    saved = tmp_path / "saved"
    shutil.copytree(out, saved)
    mount_tmpfs(out, "256k")
    try:
        for f in saved.iterdir():
            shutil.copy(f, out / f.name)
        before = hashlib.md5((out / "verdicts.parquet").read_bytes()).hexdigest()
        fill(out)
        proc = run(ws, sys.executable, "-m", "stages.verify", "--samples", "data/round/generate/samples.parquet",
                   "--problems", "data/round/generate/problems.parquet", "--state", "data/state",
                   "--base", "data/base/model", "--out", "data/round/verify", check=False)
        text = proc.stdout + proc.stderr
        assert proc.returncode == 1 and "Traceback" not in text, text[-2000:]
        assert "data/round/verify/verdicts.parquet: no space left on the device" in text
        assert hashlib.md5((out / "verdicts.parquet").read_bytes()).hexdigest() == before
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


OOM_SCRIPT = textwrap.dedent("""
    import resource, sys
    from sharpen.backends import GenerationOOM
    from sharpen.backends.hf import HFBackend
    backend = HFBackend(sys.argv[1], batch_size=4096)
    used = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (used + 256 * 2**20, resource.RLIM_INFINITY))
    try:
        backend.generate(["1+2="] * 4096, n=16, temperature=1.0, top_p=1.0, max_new_tokens=64, seed=0)
    except GenerationOOM as e:
        print(e)
        sys.exit(3)
    print("no error")
""")


def test_generation_out_of_memory_names_the_cause_and_a_smaller_batch(tiny_model_dir):
    proc = subprocess.run([sys.executable, "-c", OOM_SCRIPT, str(tiny_model_dir)], env=env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 3, (proc.stdout + proc.stderr)[-2000:]
    assert "out of memory sampling 4096 prompts x 16 sequences" in proc.stdout
    assert "Lower `batch_size` in the generate/evaluate section of params.yaml (now 4096), e.g. to 2048" in proc.stdout
