"""Write the round's params as they run: params.yaml with its recipe laid under it and every default filled.

The stages that read nothing the recipe's name decides (tasks, base, evaluate_base, evaluate) take
their params from this file in dvc.yaml, key by key, instead of from params.yaml plus `recipe`: so
switching between two recipes that agree on the task and the base reruns neither, while a recipe
that changes one of their keys (star's scratchpad, base steps) reruns exactly the stages that read it.
The file is committed with each round (`cache: false`), so a round's resolved params are in git.

Run: `python -m stages.resolve --out data/resolve/params.yaml`
"""

import argparse
from pathlib import Path

import yaml

from sharpen.io import atomic_write
from sharpen.config import load_params
from sharpen.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    resolved = load_params().model_dump(mode="json")
    text = "# params.yaml as the round runs it (recipe laid under, defaults filled); written by stages/resolve.py\n"
    text += yaml.safe_dump(resolved, sort_keys=False)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))


if __name__ == "__main__":
    run_stage(main)
