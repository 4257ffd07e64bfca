"""sharpen/rounds/layout.py and dvc.yaml state the same `data/` layout: every path the code between
rounds reads is one a stage declares, and the stages are dvc.yaml's, in its order.

Run: `pytest tests/test_layout.py`
"""

from __future__ import annotations

import copy
from pathlib import Path

from sharpen.config import RESOLVED_SECTIONS
from sharpen.io import read_yaml
from sharpen.rounds import layout
from tests.conftest import PROJECT

DVC_STAGES = read_yaml(PROJECT / "dvc.yaml")["stages"]


def declared(stages: dict) -> dict[str, set[Path]]:
    """stage -> every path it declares as a dep, an out, a metric or a plot."""
    out = {}
    for name, spec in stages.items():
        paths = set()
        for kind in ("deps", "outs", "metrics", "plots"):
            for entry in spec.get(kind) or []:
                paths |= {Path(p) for p in (entry if isinstance(entry, dict) else [entry])}
        out[name] = paths
    return out


def layout_paths() -> dict[str, Path]:
    """Every data/ path layout.py states: its Path constants, the loop state's files, each stage's metrics."""
    paths = {k: v for k, v in vars(layout).items() if isinstance(v, Path) and not k.startswith("_")}
    paths |= {f"STATE_DIR/{name}": layout.STATE_DIR / name for name in layout.STATE_FILES}
    paths |= {f"stage_metrics({s})": layout.stage_metrics(s) for s in layout.STAGES}
    del paths["RESOLVED_DIR"]  # a folder of one file per resolved section: each file must be declared
    paths |= {f"RESOLVED_DIR/{s}.json": layout.RESOLVED_DIR / f"{s}.json" for s in RESOLVED_SECTIONS}
    return paths


def undeclared(stages: dict) -> list[str]:
    """layout's paths that no stage declares, itself or as a directory holding it (data/state)."""
    every = set().union(*declared(stages).values())
    return sorted(f"{k}: {p}" for k, p in layout_paths().items() if not any(p == d or d in p.parents for d in every))


def test_every_layout_path_is_declared_in_dvc_yaml():
    assert undeclared(DVC_STAGES) == []


def test_every_round_stage_writes_the_metrics_layout_names():
    for stage in layout.STAGES:
        assert layout.stage_metrics(stage) in declared({stage: DVC_STAGES[stage]})[stage], stage


def test_the_stages_are_dvc_yamls_in_its_order():
    assert layout.SETUP_STAGES + layout.STAGES == tuple(DVC_STAGES)


def test_a_path_dvc_yaml_no_longer_declares_is_found():
    stages = copy.deepcopy(DVC_STAGES)
    stages["train"]["outs"] = [{"data/round/train/weights": {"persist": True}} if "data/round/train/model" in o else o
                               for o in stages["train"]["outs"]]
    for spec in stages.values():  # other stages read the model nowhere, but drop it from deps too
        spec["deps"] = [d for d in spec.get("deps", []) if d != "data/round/train/model"]
    assert undeclared(stages) == ["ROUND_MODEL: data/round/train/model"]
