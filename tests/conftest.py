"""Shared fixtures: a tiny randomly initialised model directory and a few problems, all built locally.

Run the suite: `pytest` (fast tests only; `-m slow` for long runs, `-m gpu` on a CUDA machine).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 1-layer char-level Llama, untrained: enough to exercise generation and training code."""
    from tests.workspace import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def problems():
    from sharpen.tasks import arithmetic

    pool, _ = arithmetic.make_splits(pool_size=12, eval_size=4, min_digits=1, max_digits=2, seed=7)
    return pool


def samples_for(problems, completions):
    """One `Sample` row per problem with the given completions (round 1, sample 0)."""
    import polars as pl

    return pl.DataFrame(
        {
            "round": 1, "problem_id": problems["problem_id"], "sample_idx": 0, "prompt": problems["prompt"],
            "completion": completions, "num_tokens": 1, "finish_reason": "stop", "policy_hash": "x", "temperature": 0.0,
        }
    )  # fmt: skip
