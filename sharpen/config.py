"""Load params.yaml: read it as DVC does, lay the recipe under it, validate it against the schema.

`load_params()` is what every stage calls: YAML 1.2 through DVC's own parser (so what runs is what
dvc.lock records), every section required, the recipe's defaults laid under the file
(sharpen/recipes.py), then the pydantic models of sharpen/params/; any error is a ParamsError
naming the file and the key. Kept apart from the schema so neither imports the recipes' module
the other way round.

Run: `sharpen params [FILE]` validates a file and prints the resolved values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

from pydantic import BaseModel, ValidationError

from sharpen.io import YAMLFileError, read_yaml
from sharpen.params import Params, ParamsError
from sharpen.recipes import RecipeError, flatten, resolve

PARAMS_FILE = Path("params.yaml")


def deep_update(base: dict, extra: dict) -> dict:
    """`extra`'s keys written into `base`, section by section (a nested dict updates, anything else
    replaces); returns `base`. How a run's overrides are laid over a params file."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def format_error(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid params"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
            parent = e["loc"][:-1]
            model: type[BaseModel] = Params
            for part in parent:
                field = model.model_fields.get(str(part))
                candidates = [field.annotation, *get_args(field.annotation)] if field else []
                sections = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
                if not sections:
                    break
                model = sections[0]
            msg += f"; allowed: {', '.join(model.model_fields)}"
        named = re.fullmatch(r"Value error, (\w+): (.*)", msg, flags=re.S)
        if named and named[1] not in key.split("."):  # a section's validator naming one of its keys
            lines.append(f"  {key}.{named[1]}: {named[2]}")
            continue
        lines.append(f"  {key}: {msg} (got {e['input']!r})" if e["type"] != "missing" else f"  {key}: {msg}")
    return "\n".join(lines)


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate the whole params file; raise ParamsError naming the bad key."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: not found (run from the project root)")
    try:
        raw = read_yaml(path)  # YAML 1.2, DVC's parser: what runs is what dvc.lock records
    except YAMLFileError as e:
        raise ParamsError(str(e)) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    missing = [name for name in Params.model_fields if name not in raw]
    if missing:  # every stage's DVC params deps name these; a default here would hide a deleted section
        raise ParamsError(f"{path}: missing {', '.join(missing)} (every section must be present, `{{}}` for defaults)")
    try:
        raw = resolve(raw)
    except RecipeError as e:
        raise ParamsError(f"{path}: {e}") from None
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(format_error(e, path)) from None


# The sections a recipe can set (sharpen/recipes.py). The resolve stage writes each one's resolved
# values to its own file, and stages depend on those files instead of on `recipe` (dvc.yaml).
RESOLVED_SECTIONS = ("task", "base", "generate", "verify", "filter", "synthesize", "controller", "propose",
                     "train", "evaluate")


def resolved_sections(params: Params) -> dict[str, dict]:
    """Each resolved section as plain JSON values (what `stages/resolve.py` writes)."""
    return {s: json.loads(json.dumps(getattr(params, s).model_dump(mode="json"))) for s in RESOLVED_SECTIONS}


def check_resolved(resolved_dir: Path, path: Path | str = PARAMS_FILE) -> None:
    """Refuse to run a stage while the resolve stage's files disagree with params.yaml.

    `dvc repro` always reruns the resolve stage first when params.yaml changed; a single-stage
    `dvc repro -s <stage>` (or the stage run by hand) does not, and DVC would then record values
    the stage did not run on. Outside a DVC workspace (no resolved files yet) there is nothing to
    check."""
    if not resolved_dir.is_dir():
        return
    now = resolved_sections(load_params(path))
    for section in RESOLVED_SECTIONS:
        file = resolved_dir / f"{section}.json"
        if not file.exists():
            continue
        try:
            recorded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            recorded = None
        if recorded == now[section]:
            continue
        old = flatten(recorded, f"{section}.") if isinstance(recorded, dict) else {}
        new = flatten(now[section], f"{section}.")
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k, "(unset)") != new.get(k, "(unset)"))
        shown = "; ".join(f"{k}: {old.get(k, '(unset)')!r} there, {new.get(k, '(unset)')!r} in {path}"
                          for k in keys[:3]) or "unreadable"
        raise ParamsError(
            f"{file}: out of date with {path} ({shown}); run `dvc repro` (it reruns the resolve stage first), "
            "or `dvc repro resolve` before a single-stage `dvc repro -s`"
        )
