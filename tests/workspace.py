"""A throwaway sharpen workspace: a git + DVC repo holding a copy of this project, with tiny params."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from sharpen.config import deep_update  # noqa: F401  (the tests' overrides, as sharpen compare lays them)
from tests.conftest import PROJECT

TINY = {
    "task": {"pool_size": 48, "eval_size": 24, "max_digits": 2},
    "base": {"hidden_size": 32, "intermediate_size": 64, "num_layers": 1, "num_heads": 2, "steps": 20,
             "batch_size": 32, "warmup_steps": 2},
    "generate": {"k": 2, "max_new_tokens": 4, "batch_size": 16, "shard_size": 16},
    "train": {"batch_size": 16, "epochs": 1},
    "evaluate": {"k": 2, "max_new_tokens": 4, "batch_size": 16, "pass_k": [1, 2]},
}


def env() -> dict:
    """The environment stages run in: this interpreter's bin first, offline, git identity set."""
    bindir = str(Path(sys.executable).parent)
    return os.environ | {
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@localhost",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost",
    }


def run(cwd: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def sharpen(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", "sharpen.cli", *args, check=check)


def make_workspace(root: Path, overrides: dict | None = None) -> Path:
    """Copy the project's pipeline, code and initial state into `root`; git init, dvc init, commit."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(PROJECT / name, root / name)
    for name in ("sharpen", "stages", "flows"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT / "data" / "problems", root / "data" / "problems")
    (root / "data" / "state").mkdir(parents=True)
    shutil.copy(PROJECT / "data" / "state" / "state.json", root / "data" / "state" / "state.json")
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    deep_update(params, TINY)
    deep_update(params, overrides or {})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "dvc", "init", "-q")
    run(root, "dvc", "config", "core.analytics", "false")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-q", "-m", "workspace")
    return root


def stage_processes(ws: Path) -> list[str]:
    """Command lines of the live stage processes (`python -m stages.*`) working in `ws`; zombies excluded."""
    import psutil

    found = []
    for p in psutil.process_iter(["cwd", "cmdline", "status"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["cwd"] == str(ws) and p.info["status"] != psutil.STATUS_ZOMBIE and "stages." in cmd:
                found.append(cmd)
        except psutil.Error:
            pass
    return found


def build_tiny_model(out: Path, *, hidden_size: int = 32, num_heads: int = 2) -> Path:
    """A 1-layer char-level Llama, untrained, saved in `out`."""
    import torch

    from sharpen import tiny_lm

    torch.manual_seed(0)
    tok = tiny_lm.build_tokenizer()
    model = tiny_lm.build_model(tok, hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_layers=1,
                                num_heads=num_heads, seed=0)
    tiny_lm.save(model, tok, out)
    return out


def kill_after_files(ws: Path, stage: str, pattern: str, n: int) -> None:
    """Run `dvc repro <stage>` and SIGKILL its whole process group once `n` files match `pattern`
    (a stage's finished shards) under the workspace."""
    import signal
    import time

    import pytest

    proc = subprocess.Popen(["dvc", "repro", stage], cwd=ws, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(ws.glob(pattern))) < n:
        if proc.poll() is not None:
            pytest.fail(f"{stage} finished before it could be killed")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def fit_tiny_model(out: Path, prompts: list[str], answers: list[str], *, wrong: str = "?", steps: int = 200,
                   max_positions: int = 1024, seed: int = 0) -> Path:
    """A tiny char-level Llama (newlines and tabs in its vocabulary, for code) fitted so that, sampled at
    T=1, each prompt gets its answer about half the time and `wrong` otherwise: the round then holds
    right and wrong samples for every objective to learn from. Saved in `out`."""
    import random

    from sharpen import tiny_lm

    tok = tiny_lm.build_tokenizer(extra="\n\t")
    model = tiny_lm.build_model(tok, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, seed=seed,
                                max_positions=max_positions)
    pairs = list(zip(prompts, answers, strict=True))

    def draw(rng: random.Random, n: int) -> list[tuple[str, str]]:
        return [(p, a if i % 2 else wrong) for i, (p, a) in enumerate(rng.choice(pairs) for _ in range(n))]

    tiny_lm.pretrain(model, tok, draw, steps=steps, batch_size=16, lr=3e-3, warmup_steps=10, seed=seed)
    tiny_lm.save(model, tok, out)
    return out
