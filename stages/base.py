"""The base model: train the embedded tiny one from scratch, or bring in a pretrained one.

`model: tiny` trains a ~1M-parameter Llama on the arithmetic task. Any other `model` (a preset,
a directory, a .gguf file, a hub id in the local cache) is copied into data/base/model by
`sharpen.models.materialize`, so the rounds depend on one DVC-hashed directory.

Pretraining never sees a held-out prompt (the task's, which may come from a problem file). Deliberately short, so the base is only partly right.

The stage reads nothing of the task but `--pretraining` (data/tasks/pretraining.json, written by the
tasks stage): for `model: tiny`, the operand digits, the scratchpad switch and the held-out prompts
to keep out of pretraining; for any other model, nothing. So changing only the task never reruns a
pretrained model's copy (or SmolLM2's de-quantization).

Run: `python -m stages.base --pretraining data/tasks/pretraining.json --out data/base`
"""

import argparse
from pathlib import Path

import polars as pl

from sharpen import tiny_lm
from sharpen.io import ArtifactError, atomic_write_dir, hash_path, read_json, write_csv, write_json
from sharpen.models import materialize
from sharpen.config import load_params
from sharpen.stage import Timer, progress, run_stage
from sharpen.tasks import arithmetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pretraining", type=Path, required=True, help="what pretraining reads of the task")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    b = params.base
    timer = Timer()
    if params.model != "tiny":
        _materialize(params.model, args.out, timer)
        return
    t = read_json(args.pretraining)
    if t.get("model") != "tiny":
        raise ArtifactError(f"{args.pretraining}: written for model {t.get('model')!r}, not tiny; run `dvc repro`")
    exclude = set(t["exclude"])
    task = arithmetic  # the tiny model learns addition, whatever problems the loop then runs on

    def draw_batch(rng, n):
        return task.pretraining_texts(
            rng, n, min_digits=t["min_digits"], max_digits=t["max_digits"], use_scratchpad=t["scratchpad"], exclude=exclude,
            hint_fraction=b.hint_fraction, propose_fraction=b.propose_fraction,
        )

    tokenizer = tiny_lm.build_tokenizer()
    model = tiny_lm.build_model(
        tokenizer, hidden_size=b.hidden_size, intermediate_size=b.intermediate_size,
        num_layers=b.num_layers, num_heads=b.num_heads, seed=b.seed,
    )
    bar = progress(b.steps, "base: pretrain", "step")

    def on_step(step, loss):
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    curve = tiny_lm.pretrain(
        model, tokenizer, draw_batch, steps=b.steps, batch_size=b.batch_size, lr=b.lr,
        warmup_steps=b.warmup_steps, seed=b.seed, on_step=on_step,
    )
    bar.close()
    atomic_write_dir(args.out / "model", lambda tmp: tiny_lm.save(model, tokenizer, tmp))
    write_csv(pl.DataFrame(curve), args.out / "loss.csv")
    write_json(
        {
            "final_loss": curve[-1]["loss"],
            "num_parameters": sum(p.numel() for p in model.parameters()),
            "model_hash": hash_path(args.out / "model"),
            "wall_s": timer.seconds,
        },
        args.out / "metrics.json",
    )
    print(f"base: {curve[-1]['loss']:.3f} final loss, {timer.seconds:.0f}s")


def _materialize(model: str, out: Path, timer: Timer) -> None:
    """A pretrained model: copy (or de-quantize) it into out/model; the base section does not apply."""
    info: dict = {}

    def write(tmp: Path) -> None:
        info.update(materialize(model, tmp))

    atomic_write_dir(out / "model", write)
    write_csv(pl.DataFrame({"step": [], "loss": []}, schema={"step": pl.Int64, "loss": pl.Float64}), out / "loss.csv")
    write_json(
        {"final_loss": None, "num_parameters": info["parameters"], "source": info["source"],
         "source_kind": info["source_kind"], "model_hash": hash_path(out / "model"), "wall_s": timer.seconds},
        out / "metrics.json",
    )
    print(f"base: {model} ({info['source_kind']}, {info['parameters']:,} parameters) -> {out / 'model'}, "
          f"{timer.seconds:.0f}s")


if __name__ == "__main__":
    run_stage(main)
