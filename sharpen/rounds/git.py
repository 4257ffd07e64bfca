"""Raw git and DVC calls for the code between rounds, and `sharpen checkout`.

`advance` (sharpen/rounds/advance.py) commits, tags and `dvc add`s through these; a failed git
command is an AdvanceError quoting git's own message. Commits and tags get a fallback identity
(`sharpen <sharpen@localhost>`) where git has none.

Run: `sharpen checkout round-2` (code, params and DVC outputs of a round; `sharpen checkout main` back).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sharpen.config import PARAMS_FILE
from sharpen.io import read_yaml
from sharpen.rounds.state import AdvanceError
from sharpen.rounds.tags import round_tags


def run_git(*args: str, check: bool = True) -> str:
    """git's stdout; with `check`, an AdvanceError when it fails."""
    ident: list[str] = []
    if args and args[0] in ("commit", "tag"):
        if not subprocess.run(["git", "config", "user.email"], capture_output=True, text=True).stdout.strip():
            ident = ["-c", "user.name=sharpen", "-c", "user.email=sharpen@localhost"]
    proc = subprocess.run(["git", *ident, *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AdvanceError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def on_a_branch() -> bool:
    """Whether HEAD is a branch (not detached)."""
    return subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], capture_output=True).returncode == 0


def pipeline_outputs(dvc_yaml: Path = Path("dvc.yaml")) -> set[str]:
    """Paths git tracks for the pipeline: dvc.lock, params.yaml and every `cache: false` output."""
    paths = {"dvc.lock", str(PARAMS_FILE)}
    stages = (read_yaml(dvc_yaml) or {}).get("stages", {})
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []) or []:
                if isinstance(entry, dict):
                    for path, opts in entry.items():
                        if isinstance(opts, dict) and opts.get("cache") is False:
                            paths.add(path)
    return paths


# what read-only commands and tools leave in a work tree: never a change of the user's, never committed.
# `dvc plots show/diff` (dvc_plots/), DVC's own scratch, Python, Jupyter, linters, `sharpen report`,
# sharpen's logs, Prefect's local state, editors and file browsers.
SCRATCH_DIRS = frozenset({"dvc_plots", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache",
                          ".ruff_cache", ".hypothesis", ".sharpen", ".prefect", "reports", "wandb"})
SCRATCH_PREFIXES = (".dvc/tmp/", ".dvc/cache/")
SCRATCH_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
SCRATCH_SUFFIXES = (".pyc", ".pyo", ".swp", ".swo", "~")


def is_scratch(path: str) -> bool:
    """Whether an untracked path is what a read-only command or a tool leaves behind (`dvc plots
    show`'s dvc_plots/, __pycache__/, .ipynb_checkpoints/, .dvc/tmp/, `sharpen report`'s reports/...)."""
    parts = path.split("/")
    return (path.startswith(SCRATCH_PREFIXES) or any(p in SCRATCH_DIRS for p in parts[:-1])
            or parts[-1] in SCRATCH_NAMES or parts[-1].endswith(SCRATCH_SUFFIXES))


def changed_paths() -> list[str]:
    """Every path `git status` shows: changed, staged or untracked, except untracked scratch (is_scratch)."""
    out = run_git("status", "--porcelain", "--untracked-files=all")
    paths = []
    for line in out.splitlines():
        if not line:
            continue
        path = line[3:].split(" -> ")[-1].strip('"')
        if not (line.startswith("??") and is_scratch(path)):
            paths.append(path)
    return paths


def dvc_outputs() -> dict[str, str]:
    """Every output DVC caches (not git): path -> the stage or .dvc file that records it, read from the
    pipeline (dvc.yaml, the .dvc files), never from .gitignore."""
    from dvc.repo import Repo

    root = Path.cwd().resolve()
    with Repo(".") as repo:
        return {Path(out.fs_path).resolve().relative_to(root).as_posix(): out.stage.addressing
                for out in repo.index.outs if out.use_cache}


def restore_ignores() -> tuple[list[str], list[str]]:
    """Put back the .gitignore entries of DVC-cached outputs that went missing, as DVC writes them: a
    `dvc repro` interrupted or failing after a stage finished undoes the entries it added, and the next
    run skips that stage. A stage that depends on a directory holding such a .gitignore (`data/tasks`)
    and that ran without it is stale only by that file: it is re-recorded (`dvc commit -f`), not rerun.
    Returns (the outputs re-ignored, the stages re-recorded)."""
    import logging

    from dvc.repo import Repo

    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)
    try:
        with Repo(".") as repo:
            missing = [out for out in repo.index.outs if out.use_cache and out.use_scm_ignore
                       and not repo.scm.is_tracked(out.fs_path) and not repo.scm.is_ignored(out.fs_path)]
            if not missing:
                return [], []
            before = repo.status()
            gitignores = {Path(repo.scm.ignore(out.fs_path) or out.fs_path).parent.resolve() for out in missing}
        with Repo(".") as repo:
            after = repo.status()
            root = Path.cwd().resolve()
            only_ignores = []
            for stage, entries in after.items():
                if stage in before:
                    continue
                changed = [e.get("changed deps") for e in entries if isinstance(e, dict)]
                if len(changed) == len(entries) and all(
                        (root / d).resolve() in gitignores for c in changed for d in c):
                    only_ignores.append(stage)
            for stage in only_ignores:
                repo.commit(stage, force=True)
        return [str(out) for out in missing], only_ignores
    finally:
        dvc_log.setLevel(level)


def dvc_add(path: Path) -> None:
    """`dvc add path`, without DVC's "to track the changes with git, run..." hint (advance commits them)."""
    import logging

    from dvc.repo import Repo

    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)
    try:
        with Repo(".") as repo:
            repo.add(str(path))
    finally:
        dvc_log.setLevel(level)


def dvc_status() -> dict:
    """`dvc status` of the pipeline: stage -> what changed ({} when every stage is up to date)."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        return repo.status()


def stale_stages(status: dict) -> str:
    """What `dvc status` found, in words: outputs edited after the run are not "a stage that changed"."""
    edited, changed = [], []
    for stage, entries in sorted(status.items()):
        kinds = {k for e in entries for k in (e if isinstance(e, dict) else {e: None})}
        if kinds == {"changed outs"}:
            edited += [p for e in entries for p in e["changed outs"]]
        else:
            what = sorted(k.removeprefix("changed ") + (" changed" if k.startswith("changed ") else "") for k in kinds)
            changed.append(f"{stage} ({', '.join(what)})")
    parts = [f"{', '.join(edited)} differ from what `dvc repro` wrote (edited or damaged since; dvc.lock "
             f"records other hashes)"] if edited else []
    if changed:
        parts.append("`dvc status` shows stale stages: " + "; ".join(changed))
    return "; ".join(parts)


def checkout(rev: str) -> str:
    """Put the workspace at a round tag (or a branch): git's files and DVC's outputs together, so
    `dvc status` is clean there. Refuses a work tree with uncommitted changes. Returns where HEAD was
    (the branch name to come back to, or a commit)."""
    from sharpen.rounds.lock import LoopBusy, refuse_outside_loop

    try:
        refuse_outside_loop(f"`sharpen checkout {rev}`")
    except LoopBusy as e:
        raise AdvanceError(str(e)) from None
    if changed_paths():
        raise AdvanceError("the work tree has uncommitted changes (a round not yet advanced? `sharpen advance` it); "
                           "commit or stash them first (`git status`)")
    if subprocess.run(["git", "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], capture_output=True).returncode:
        tags = ", ".join(t for _, t in round_tags()) or "none yet"
        raise AdvanceError(f"{rev}: no such round tag or branch (round tags: {tags})")
    back = run_git("symbolic-ref", "-q", "--short", "HEAD", check=False).strip()
    if not back:  # already at a round: the most recently committed branch is the loop's
        branches = run_git("for-each-ref", "--sort=-committerdate", "--format=%(refname:short)", "refs/heads").split()
        back = branches[0] if branches else run_git("rev-parse", "HEAD").strip()
    run_git("checkout", "-q", rev)
    proc = subprocess.run(["dvc", "checkout", "--quiet"], capture_output=True, text=True)
    if proc.returncode:
        raise AdvanceError(f"`dvc checkout` at {rev} failed (are the round's outputs in this workspace's DVC cache, or "
                           f"a remote? `dvc pull`): {proc.stderr.strip()[-500:]}")
    return back
