"""Lay the recipe under params.yaml and write each section's resolved values, one file per section.

A recipe sets defaults for the sections (sharpen/recipes.py), so a stage's inputs are the resolved
values of the sections it reads, not the recipe's name. Each stage depends on the files it reads
here (`data/resolved/<section>.json` in dvc.yaml), so switching between two recipes that agree on
`task` and `base` reruns this stage and whatever the sections that changed feed, never the task or
the base model. An invalid params.yaml fails here, before any work.

Stages still read their params through `load_params()`; sharpen/stage.py refuses to run a stage
while these files disagree with params.yaml (a `dvc repro -s` after an edit), so a stage never runs
on values DVC did not record.

Run: `python -m stages.resolve --out data/resolved`
"""

import argparse
from pathlib import Path

from sharpen.config import RESOLVED_SECTIONS, load_params, resolved_sections
from sharpen.io import write_json
from sharpen.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    values = resolved_sections(load_params())
    for section in RESOLVED_SECTIONS:
        write_json(values[section], args.out / f"{section}.json")
    print(f"resolve: recipe laid under params.yaml; {len(RESOLVED_SECTIONS)} sections in {args.out}/")


if __name__ == "__main__":
    run_stage(main)
