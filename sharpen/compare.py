"""Recipes × seeds × rounds, each run in its own workspace, and what a gain over a control is worth.

`sharpen compare --recipes rest-em,grpo --controls random,format_only --seeds 0,1,2 --rounds 3`
runs one arm per recipe and per (recipe, control) pair (`verify.reward_control: random|format_only`,
or `no_verifier`: `filter.select: all`; a `recipe:control` entry in `--recipes` is that arm alone), each for every seed (params `seed` and `train.seed`), as
`dvc repro` + `sharpen advance` per round, in clones of this workspace's committed HEAD under
`--out`. The clones share one DVC cache, and the tasks and the base model are made once in a
template clone that every run is cloned from, so only the stages a run's params change rerun
(DVC's run-cache does not serve `persist` outputs, so the template is what shares them; an arm of
another recipe than the template's reruns the base, since every stage depends on `recipe`). Runs go
`--jobs` at a time, each a process group of its own with one torch thread per job.

Per arm and round (round 0 is the base model): mean ± sd over seeds of greedy accuracy, pass@k and
maj@k, and the chance baselines; per arm, the paired difference (same seed) against `--against`
(a control name: each recipe against its own control; or an arm name) with a 95% interval, mean
± t(0.975, n-1) · sd/√n. An interval that excludes 0 says the difference held over these seeds,
not that it would hold over others; with 3 seeds it is wide. Everything printed is written to
`<out>/compare.json`.

Run: `sharpen compare --recipes rest-em --controls random --seeds 0,1,2 --rounds 3 --jobs 2 --out runs/`
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sharpen.config import deep_update
from sharpen.errors import SharpenError
from sharpen.rounds.layout import BASE_EVAL_METRICS, ROUND_METRICS
from sharpen.threads import child_env

CONTROL_OVERRIDES = {
    "random": {"verify": {"reward_control": "random"}},
    "format_only": {"verify": {"reward_control": "format_only"}},
    "no_verifier": {"filter": {"select": "all"}},
}
METRICS = ("greedy_accuracy", "pass@", "maj@", "chance_")
# t(0.975, df) for df = 1..30; beyond, the normal 1.96
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


class CompareError(SharpenError, ValueError):
    """A comparison that cannot run as asked (names the option)."""


@dataclass(frozen=True)
class Arm:
    name: str
    recipe: str
    control: str | None = None
    overrides: dict = field(default_factory=dict, hash=False, compare=False)


def arms_for(recipes: list[str], controls: list[str]) -> list[Arm]:
    """Each recipe as itself and under each control; a `recipe:control` entry is that one arm alone."""
    named = [r.split(":", 1)[1] for r in recipes if ":" in r]
    unknown = [c for c in [*controls, *named] if c not in CONTROL_OVERRIDES]
    if unknown:
        raise CompareError(f"--controls: unknown {unknown}; allowed: {', '.join(CONTROL_OVERRIDES)}")
    arms = []
    for entry in recipes:
        recipe, _, control = entry.partition(":")
        wanted = [control] if control else [None, *controls]
        arms += [Arm(recipe, recipe) if c is None else Arm(f"{recipe}:{c}", recipe, c, CONTROL_OVERRIDES[c])
                 for c in wanted]
    if len({a.name for a in arms}) != len(arms):
        raise CompareError(f"--recipes: an arm is named twice ({', '.join(a.name for a in arms)})")
    return arms


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def summary(values: list[float]) -> dict:
    """mean, sd (n-1) and the values themselves."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


def paired(a: list[float], b: list[float]) -> dict:
    """The paired difference a - b (same seeds) with a 95% t interval."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(d)
    half = t975(len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else math.inf
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": len(d), "differences": d}


def _env(jobs: int) -> dict:
    bindir = str(Path(sys.executable).parent)
    return child_env(jobs) | {"PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1",
                              "TOKENIZERS_PARALLELISM": "false"}  # child_env: each run's stages take 1/jobs of the CPUs


def _sh(cwd: Path, *cmd: str, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, start_new_session=True)
    if proc.returncode:
        raise CompareError(f"{' '.join(cmd)} failed in {cwd} (exit {proc.returncode}):\n{proc.stdout[-1500:]}\n"
                           f"{proc.stderr[-1500:]}")
    return proc.stdout


def _git(cwd: Path, *args: str, env: dict) -> str:
    return _sh(cwd, "git", "-c", "user.name=sharpen", "-c", "user.email=sharpen@localhost", *args, env=env)


def _clone(source: Path, dest: Path, cache: Path, env: dict) -> None:
    _sh(dest.parent, "git", "clone", "-q", str(source), str(dest), env=env)
    _sh(dest, "dvc", "cache", "dir", "--local", str(cache), env=env)
    _sh(dest, "dvc", "config", "--local", "cache.type", "hardlink,copy", env=env)
    _sh(dest, "dvc", "config", "--local", "core.analytics", "false", env=env)


def _set_params(ws: Path, update: dict, message: str, env: dict) -> None:
    path = ws / "params.yaml"
    params = deep_update(yaml.safe_load(path.read_text()), update)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    _git(ws, "commit", "-q", "--allow-empty", "-am", message, env=env)


def template(project: Path, out: Path, cache: Path, env: dict) -> Path:
    """A clone with the tasks, base model and baseline made and committed: every run is cloned from it."""
    ws = out / "template"
    if not (ws / ".git").exists():
        _clone(project, ws, cache, env)
        _sh(ws, "dvc", "repro", "evaluate_base", env=env)
        _git(ws, "add", "-A", env=env)
        _git(ws, "commit", "-qm", "tasks and base model, shared by every run", env=env)
    return ws


def run_arm(ws_root: Path, source: Path, cache: Path, arm: Arm, seed: int, rounds: int, env: dict) -> dict:
    """One arm at one seed for `rounds` rounds; returns round -> evaluate metrics (0: the base)."""
    ws = ws_root / f"{arm.name.replace(':', '-')}-seed{seed}"
    if not (ws / ".git").exists():
        _clone(source, ws, cache, env)
        _sh(ws, "dvc", "checkout", "-q", "--with-deps", "evaluate_base", env=env)  # what the template made
        _set_params(ws, deep_update({"recipe": arm.recipe, "seed": seed, "train": {"seed": seed}}, arm.overrides),
                    f"arm {arm.name}, seed {seed}", env)
    done = _tagged_rounds(ws, env)
    for _ in range(done, rounds):
        _sh(ws, "dvc", "repro", env=env)
        _sh(ws, sys.executable, "-m", "sharpen.cli", "advance", env=env)
    metrics = {0: _json_at(ws, "round-1", BASE_EVAL_METRICS, env)}
    for n in range(1, rounds + 1):
        metrics[n] = _json_at(ws, f"round-{n}", ROUND_METRICS, env)
    return metrics


def _tagged_rounds(ws: Path, env: dict) -> int:
    tags = _sh(ws, "git", "tag", "--list", "round-*", env=env).split()
    return max((int(t.split("-")[1]) for t in tags), default=0)


def _json_at(ws: Path, rev: str, path: Path, env: dict) -> dict:
    return json.loads(_sh(ws, "git", "show", f"{rev}:{path}", env=env))


def tabulate(results: dict[tuple[str, int], dict], arms: list[Arm], seeds: list[int], rounds: int,
             against: str) -> dict:
    """The comparison as data: per arm and round, each metric's summary over seeds; per arm, its paired
    difference against `against` (a control: the arm's recipe under it; else the named arm)."""
    out: dict = {"seeds": seeds, "rounds": rounds, "against": against, "arms": {}, "paired": {}}
    names = {a.name for a in arms}
    for arm in arms:
        per_round = {}
        for n in range(rounds + 1):
            keys = sorted({k for s in seeds for k in results[(arm.name, s)][n] if k.startswith(METRICS)})
            per_round[n] = {k: summary([results[(arm.name, s)][n][k] for s in seeds]) for k in keys
                            if all(k in results[(arm.name, s)][n] for s in seeds)}
        out["arms"][arm.name] = {"recipe": arm.recipe, "control": arm.control, "rounds": per_round}
    for arm in arms:
        ref = f"{arm.recipe}:{against}" if against in CONTROL_OVERRIDES else against
        if ref == arm.name or ref not in names:
            continue
        out["paired"][arm.name] = {
            "against": ref,
            "rounds": {n: {k: paired([results[(arm.name, s)][n][k] for s in seeds],
                                     [results[(ref, s)][n][k] for s in seeds])
                           for k in out["arms"][arm.name]["rounds"][n] if not k.startswith("chance_")
                           and k in out["arms"][ref]["rounds"][n]} for n in range(1, rounds + 1)},
        }
    return out


def render(table: dict) -> str:
    """The comparison as text: mean ± sd per arm and round, then the paired differences with their intervals."""
    pct = lambda v: f"{100 * v:5.1f}"  # noqa: E731
    lines = [f"seeds {table['seeds']}: mean ± sd over seeds (%), round 0 = base"]
    for name, arm in table["arms"].items():
        for n, metrics in arm["rounds"].items():
            cells = [f"{k.removesuffix('_accuracy')} {pct(m['mean'])} ± {100 * m['sd']:.1f}" for k, m in metrics.items()]
            lines.append(f"  {name:<24} round {n}: " + "  ".join(cells))
    if table["paired"]:
        lines.append(f"paired difference against {table['against']} (same seed), mean [95% interval], points")
    for name, p in table["paired"].items():
        for n, metrics in p["rounds"].items():
            cells = [f"{k.removesuffix('_accuracy')} {100 * m['mean']:+.1f} [{100 * m['ci95'][0]:+.1f}, "
                     f"{100 * m['ci95'][1]:+.1f}]" for k, m in metrics.items()]
            lines.append(f"  {name} − {p['against']:<18} round {n}: " + "  ".join(cells))
    return "\n".join(lines)


def compare(project: Path, out: Path, recipes: list[str], controls: list[str], seeds: list[int], rounds: int,
            against: str, jobs: int = 1) -> dict:
    """Run every arm at every seed (reusing finished rounds under `out`) and return the table; writes
    `<out>/compare.json`."""
    if len(seeds) < 2:
        raise CompareError("--seeds: at least two seeds (an interval needs a spread), three or more to trust one")
    arms = arms_for(recipes, controls)
    if against not in CONTROL_OVERRIDES and against not in {a.name for a in arms}:
        raise CompareError(f"--against: {against!r} is neither a control ({', '.join(CONTROL_OVERRIDES)}) nor an "
                           f"arm ({', '.join(a.name for a in arms)})")
    out.mkdir(parents=True, exist_ok=True)
    env, cache = _env(jobs), out / "dvc-cache"
    source = template(project, out, cache, env)
    jobs_list = [(arm, seed) for seed in seeds for arm in arms]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {(arm.name, seed): pool.submit(run_arm, out, source, cache, arm, seed, rounds, env)
                   for arm, seed in jobs_list}
        results = {key: f.result() for key, f in futures.items()}
    table = tabulate(results, arms, seeds, rounds, against)
    (out / "compare.json").write_text(json.dumps(table, indent=1))
    return table
