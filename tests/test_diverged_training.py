"""A training loss that goes NaN or infinite stops the train stage with a clear error, and the
previous model stays where it was (issue: numbers without bounds).

Run: `pytest tests/test_diverged_training.py`
"""

import math

import polars as pl
import pytest

from sharpen.io import atomic_write_dir, hash_path
from sharpen.objectives.sft import train_sft
from sharpen.objectives.trainer import TrainerSettings, check_finite_loss
from sharpen.stage import TrainingDiverged


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_is_refused(loss):
    with pytest.raises(TrainingDiverged, match="train.lr"):
        check_finite_loss({"loss": loss}, step=3, lr=1e-3)


def test_a_finite_loss_passes():
    check_finite_loss({"loss": 0.5, "grad_norm": math.nan}, step=1, lr=1e-3)  # only the loss decides


def test_a_model_whose_loss_goes_nan_is_not_written(tiny_model_dir, tmp_path):
    import torch

    from sharpen import tiny_lm
    from sharpen.models import load_causal_lm

    model, tok = load_causal_lm(tiny_model_dir)
    with torch.no_grad():
        next(model.parameters()).fill_(math.nan)  # a policy whose every loss is NaN
    broken = tmp_path / "broken"
    tiny_lm.save(model, tok, broken)
    out = tmp_path / "round" / "model"
    atomic_write_dir(out, lambda tmp: tiny_lm.save(*load_causal_lm(tiny_model_dir), tmp))  # the previous model
    before = hash_path(out)
    examples = pl.DataFrame({"prompt": ["1+2="] * 8, "completion": ["3"] * 8})
    with pytest.raises(TrainingDiverged, match="nan"):
        atomic_write_dir(out, lambda tmp: train_sft(examples, broken, tmp, TrainerSettings(
            lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, epochs=1, batch_size=4, seed=0), max_length=16))
    assert hash_path(out) == before
