"""Empty Parquet artifacts of a `sharpen.schemas` model, written and checked without importing pandera.

A stage with nothing to do for the recipe (propose, synthesize, train_proposer outside self-play and
synthesis) still writes its artifacts, empty. A frame with no rows that holds exactly a model's
columns and types is one validation passes (it has no value to check), so these functions skip
pandera (with pandas, about a second of imports) and read the columns from sharpen/schemas.py's
source: each field's annotation (`str`, `int`, `float`, `bool`, `list[...]`, `Optional[...]`) typed
as pandera's polars engine types it. A model declared any other way is read through pandera
(tests/test_noop_stages.py checks that every model reads from its source, to the same columns).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sharpen.io import atomic_write

if TYPE_CHECKING:
    import polars as pl

SCHEMAS = Path(__file__).with_name("schemas.py")
SCALARS = {"str": "String", "int": "Int64", "float": "Float64", "bool": "Boolean"}


def write_empty(path: Path | str, model: str, columns: Iterable[str] | None = None) -> Path:
    """An empty Parquet artifact of `model` (a class name in sharpen.schemas), written atomically:
    its `columns` in that order (default: all, in the model's order); a column left out must be optional."""
    import polars as pl

    fields = model_fields(model)
    names = list(fields) if columns is None else list(columns)
    unknown = [c for c in names if c not in fields]
    missing = [c for c, (_, required) in fields.items() if required and c not in names]
    if unknown or missing:
        raise ValueError(f"an empty {model} cannot have columns {names}: unknown {unknown}, required {missing}")
    df = pl.DataFrame(schema={c: fields[c][0] for c in names})
    return atomic_write(path, lambda tmp: df.write_parquet(tmp))


def read_empty(path: Path | str, model: str) -> pl.DataFrame | None:
    """The frame in `path` if it has no rows and holds only `model`'s columns, with their types, and
    every required one (what validation passes); None otherwise (missing or unreadable too), for the
    caller to read through `sharpen.io.read_frame`, whose error names what is wrong."""
    import polars as pl

    try:
        df = pl.read_parquet(path)
    except Exception:  # missing, damaged: read_frame says which
        return None
    fields = model_fields(model)
    typed = all(c in fields and fields[c][0] == dtype for c, dtype in df.schema.items())
    complete = all(c in df.columns for c, (_, required) in fields.items() if required)
    return df if df.height == 0 and typed and complete else None


def model_fields(model: str) -> dict[str, tuple[pl.DataType, bool]]:
    """`model`'s columns in order, each (polars type, required); from the source where it can, else pandera."""
    found = source_fields(model)
    if found is not None:
        return found
    from sharpen import schemas

    return {name: (column.dtype.type, column.required)
            for name, column in getattr(schemas, model).to_schema().columns.items()}


@functools.cache
def source_fields(model: str) -> dict[str, tuple[pl.DataType, bool]] | None:
    """`model_fields` read from sharpen/schemas.py's source; None where a field (or the class) is not in
    the plain form: a direct `pa.DataFrameModel` whose annotations are the types above, no alias."""
    import polars as pl

    tree = ast.parse(SCHEMAS.read_text(encoding="utf-8"), str(SCHEMAS))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == model), None)
    if cls is None or [ast.unparse(b) for b in cls.bases] != ["pa.DataFrameModel"]:
        return None
    found = {}
    for node in cls.body:
        if not isinstance(node, ast.AnnAssign):
            continue
        renamed = isinstance(node.value, ast.Call) and any(k.arg in ("alias", "regex") for k in node.value.keywords)
        typed = _annotation(node.annotation, pl)
        if not isinstance(node.target, ast.Name) or renamed or typed is None:
            return None
        found[node.target.id] = typed
    return found


def _annotation(node: ast.expr, pl) -> tuple[pl.DataType, bool] | None:
    """(polars type, required) of a field's annotation; None for one outside the plain forms."""
    if isinstance(node, ast.Name) and node.id in SCALARS:
        return getattr(pl, SCALARS[node.id]), True
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        inner = _annotation(node.slice, pl)
        if inner is None or not inner[1]:  # Optional inside Optional or list: not a plain form
            return None
        if node.value.id == "Optional":
            return inner[0], False
        if node.value.id == "list":
            return pl.List(inner[0]), True
    return None
