"""Users' own code, named by import path in params.yaml: `module:function` (a module importable
from the project root, or an installed package). Two kinds: a verifier (`verify.verifier`,
sharpen/verifiers/registry.py) and a task source (`task.name`, sharpen/tasks/plugin.py).

A plug-in is code the round depends on, so its file is a DVC dependency of every stage that can
load it (`sharpen deps` adds it, sharpen/codedeps.py), and a stage that loads a plug-in its
dvc.yaml entry does not list refuses before any work (`require_listed`): editing the plug-in
always reruns the stages it feeds, never silently reuses their outputs.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def is_import_path(value: str) -> bool:
    return bool(IMPORT_PATH.match(value))


def source_of(value: str, key: str) -> Path:
    """The file of the plug-in's module, found without importing it."""
    module = value.split(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise ValueError(f"{key}: cannot find module {module!r} ({e})") from None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        raise ValueError(f"{key}: cannot find module {module!r} (it must be importable from the project root, "
                         "or installed)")
    return Path(spec.origin).resolve()


def load(value: str, key: str):
    """The function `value` names, after checking that the running stage depends on its file."""
    module_name, _, attr = value.partition(":")
    require_listed(source_of(value, key), key)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # the user's module failed to import: say so, with its error
        raise ValueError(f"{key}: importing {module_name!r} failed: {type(e).__name__}: {e}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ValueError(f"{key}: {module_name!r} has no function {attr!r}")
    return function


def running_stage() -> str | None:
    """The stage module this process runs (`python -m stages.verify`), if it runs one."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    return name if name and name.startswith("stages.") else None


def require_listed(source: Path, key: str, root: Path | None = None, module: str | None = None) -> None:
    """Refuse when the stage running `module` (default: this process's) would load `source` while its
    dvc.yaml deps do not list it. Outside a stage or a DVC workspace there is nothing to keep fresh."""
    from sharpen.io import read_yaml

    root = Path.cwd() if root is None else root
    module = module or running_stage()
    if module is None or not (root / "dvc.yaml").exists():
        return
    try:
        shown = source.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = str(source.resolve())
    for name, spec in (read_yaml(root / "dvc.yaml").get("stages") or {}).items():
        cmd = spec.get("cmd", "")
        runs = cmd.split("python -m ", 1)[1].split()[0] if "python -m " in cmd else None
        if runs == module and shown not in spec.get("deps", []):
            raise ValueError(f"{key}: {shown} is not a dependency of stage {name!r} in dvc.yaml, so editing it "
                             "would not rerun the stage; run `sharpen deps` after naming a plug-in in params.yaml")
