"""Problems from the user's own file: JSONL, Parquet, or a Hugging Face dataset saved on disk.

Fields (the documented schema; README "Problem files"):

    id        string (an integer is read as its decimal string), unique, non-empty
    prompt    string, non-empty: what the model is given
    answer    string (a number is read as its shortest decimal string): the gold answer the
              verifier compares against; may be "" only when `tests` is given
    category  optional string: the breakdown key in reports and SwS (default "all")
    tests     optional string, for the `unit_tests` verifier: Python test code calling the
              program's functions (e.g. HumanEval's `check(candidate)`; it runs in its own
              process against data-only proxies and must call the program at least once), or
              input/output cases as JSON: {"entry_point": "add", "cases": [{"input": "(2, 3)",
              "output": "5"}]} (Python literals, compared type-strictly; sharpen/verifiers/execution.py)

Other fields are ignored and listed once in the stage's log. Every error names the file, the
row (1-based line of a JSONL file, 1-based row of a Parquet file or dataset) and the field.

Data in another shape is mapped, not rewritten: `task.fields` names the source column for each of
ours (e.g. GSM8K saved with `datasets`: `{prompt: question, id: "@row"}`; `@row` numbers the
rows). A directory is read with `datasets.load_from_disk` (its `task.split` if it holds several).

The held-out set is a second file (`task.eval_path`) or, without one, `task.eval_size` rows
drawn from the file with `task.seed`; the rest is the pool.

Run: `python -m stages.tasks --out data/tasks` with `task: {name: file, path: data/problems/x.jsonl}`.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from pathlib import Path

import polars as pl

from sharpen.io import ArtifactError

FIELDS = ("id", "prompt", "answer", "category", "tests")
REQUIRED = ("id", "prompt", "answer")
DEFAULT_CATEGORY = "all"
MAX_FIELD_CHARS = 1_000_000  # a larger field is an error, not a silent memory hog
PROBLEMS_DIR = Path("data/problems")  # the `tasks` stage's DVC dependency


class ProblemFileError(ArtifactError):
    """A problem file that cannot be read as the documented schema; the message names the row and field."""


def _as_text(value, field: str, where: str, *, number_ok: bool) -> str:
    if isinstance(value, str):
        text = value
    elif number_ok and isinstance(value, bool):
        raise ProblemFileError(f"{where}: field '{field}' must be a string, got a boolean ({value!r})")
    elif number_ok and isinstance(value, int):
        try:
            text = str(value)
        except ValueError:  # past Python's int-to-text digit limit
            raise _too_long_number(f"{where}: field '{field}'") from None
    elif number_ok and field == "answer" and isinstance(value, float) and math.isfinite(value):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        kind = "null" if value is None else type(value).__name__
        raise ProblemFileError(f"{where}: field '{field}' must be a string, got {kind} ({str(value)[:40]!r})")
    if len(text) > MAX_FIELD_CHARS:
        raise ProblemFileError(f"{where}: field '{field}' has {len(text):,} characters (most allowed: {MAX_FIELD_CHARS:,})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON's "\ud800" escapes decode to lone surrogates, which are not text
        raise ProblemFileError(
            f"{where}: field '{field}' holds {text[e.start]!r} at character {e.start + 1}, half of a UTF-16 "
            f"surrogate pair, which is not valid Unicode text; fix or drop that character"
        ) from None
    return text


def _row(record, where: str) -> dict:
    if not isinstance(record, dict):
        raise ProblemFileError(f"{where}: expected an object with fields {', '.join(REQUIRED)}, got {type(record).__name__}")
    for field in REQUIRED:
        if field not in record:
            raise ProblemFileError(f"{where}: missing field '{field}' (required: {', '.join(REQUIRED)})")
    row = {
        "problem_id": _as_text(record["id"], "id", where, number_ok=True),
        "prompt": _as_text(record["prompt"], "prompt", where, number_ok=False),
        "answer": _as_text(record["answer"], "answer", where, number_ok=True),
        "category": DEFAULT_CATEGORY,
        "tests": None,
    }
    if record.get("category") is not None:
        row["category"] = _as_text(record["category"], "category", where, number_ok=True)
    if record.get("tests") is not None:
        row["tests"] = _as_text(record["tests"], "tests", where, number_ok=False)
    for field in ("problem_id", "prompt", "category"):
        if not row[field].strip():
            name = "id" if field == "problem_id" else field
            raise ProblemFileError(f"{where}: field '{name}' is empty")
    if not row["answer"].strip() and row["tests"] is None:
        raise ProblemFileError(f"{where}: field 'answer' is empty (allowed only when 'tests' is given)")
    return row


ROW_NUMBER = "@row"  # `fields: {id: "@row"}`: ids are the 1-based row numbers


def _mapped(records, fields: dict[str, str]):
    """Rename the source's columns to ours (`task.fields`, ours -> theirs); `@row` numbers the rows."""
    for n, (where, record) in enumerate(records, start=1):
        if fields and isinstance(record, dict):
            record = dict(record)
            for ours, theirs in fields.items():
                if theirs == ROW_NUMBER:
                    record[ours] = str(n)
                elif theirs in record:
                    record[ours] = record.pop(theirs)
        yield where, record


def _dataset_records(path: Path, split: str):
    """(where, record) for each row of a Hugging Face dataset saved with `save_to_disk`."""
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except Exception as e:  # FileNotFoundError or datasets' own errors for a non-dataset folder
        raise ProblemFileError(f"{path}: not a dataset saved with `save_to_disk` ({type(e).__name__}: {e})") from None
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise ProblemFileError(f"task.split: {path} has no split {split!r}; it has {', '.join(data)}")
        data = data[split]
    for n, record in enumerate(data, start=1):
        yield f"{path} row {n}", record


_NOT_LINES = ("{where}: a JSON array, but {name} is read as JSON Lines (one object per line, no enclosing [ ]); "
              "write one object per line, or save the array as a .json file")


def _too_long_number(where: str) -> ProblemFileError:
    return ProblemFileError(f"{where}: holds a number of more than {sys.get_int_max_str_digits():,} digits, longer "
                            "than Python reads; write it as a JSON string (\"answer\": \"123...\"), or shorten it")


def _json_array(path: Path) -> list | None:
    """The records of a .json file holding one array of objects; None for anything else (read as JSON Lines)."""
    try:
        value = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except ValueError:  # an integer past Python's digit limit
        raise _too_long_number(str(path)) from None
    return value if isinstance(value, list) else None


def _records(path: Path, split: str = "train"):
    """(where, record) for each row of a JSONL or Parquet file or a saved Hugging Face dataset."""
    suffix = path.suffix.lower()
    if path.is_dir():
        yield from _dataset_records(path, split)
    elif suffix == ".json" and (items := _json_array(path)) is not None:
        for n, record in enumerate(items, start=1):
            yield f"{path} item {n}", record
    elif suffix in (".jsonl", ".json"):
        with open(path, "rb") as f:
            for n, raw in enumerate(f, start=1):
                where = f"{path} line {n}"
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ProblemFileError(f"{where}: not UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    if n == 1 and line.lstrip().startswith("["):
                        raise ProblemFileError(_NOT_LINES.format(where=where, name=path.name)) from None
                    raise ProblemFileError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
                except ValueError:  # an integer past Python's digit limit
                    raise _too_long_number(where) from None
                if isinstance(record, list):
                    raise ProblemFileError(_NOT_LINES.format(where=where, name=path.name))
                yield where, record
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise ProblemFileError(f"{path}: not a readable Parquet file ({type(e).__name__}: {e})") from None
        for n, record in enumerate(table.to_pylist(), start=1):
            yield f"{path} row {n}", record
    else:
        raise ProblemFileError(f"{path}: unknown format {suffix!r}; use .jsonl or .parquet")


def read_problem_file(
    path: Path | str, fields: dict[str, str] | None = None, split: str = "train"
) -> tuple[pl.DataFrame, list[str]]:
    """(problems in the `Problem` schema sorted by id, ignored field names) of one file or saved dataset."""
    path = Path(path)
    if not path.exists():
        raise ProblemFileError(f"{path}: no such problem file")
    unknown = sorted(set(fields or {}) - set(FIELDS))
    if unknown:
        raise ProblemFileError(f"task.fields: {', '.join(unknown)} are not problem fields ({', '.join(FIELDS)})")
    return problems_from_records(_mapped(_records(path, split), fields or {}), f"{path}: no problems (the file is empty)")


def problems_from_records(records, empty: str) -> tuple[pl.DataFrame, list[str]]:
    """(problems in the `Problem` schema sorted by id, ignored field names) of (where, record) pairs,
    each checked as a problem file's row is; `empty`: the error when there are none."""
    rows, seen, ignored = [], {}, set()
    for where, record in records:
        row = _row(record, where)
        if row["problem_id"] in seen:
            raise ProblemFileError(f"{where}: duplicate id {row['problem_id']!r} (first at {seen[row['problem_id']]})")
        seen[row["problem_id"]] = where
        ignored.update(k for k in record if k not in FIELDS)
        rows.append(row)
    if not rows:
        raise ProblemFileError(empty)
    schema = {"problem_id": pl.String, "prompt": pl.String, "answer": pl.String, "category": pl.String, "tests": pl.String}
    frame = pl.DataFrame(rows, schema=schema, orient="row").sort("problem_id")
    if frame["tests"].null_count() == frame.height:
        frame = frame.drop("tests")
    return frame, sorted(ignored)


def split_held_out(problems: pl.DataFrame, eval_size: int, seed: int, what: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pool, held-out): `eval_size` problems drawn with `seed`, the rest the pool; both sorted."""
    if eval_size >= problems.height:
        raise ProblemFileError(
            f"task.eval_size: {eval_size} held-out problems leave none of {what}'s {problems.height} for the pool"
        )
    ids = sorted(problems["problem_id"].to_list())
    held = set(random.Random(seed).sample(ids, eval_size))
    mask = problems["problem_id"].is_in(list(held))
    return problems.filter(~mask).sort("problem_id"), problems.filter(mask).sort("problem_id")


def _lexical(path: Path) -> Path:
    """The absolute path with `..` folded but symlinks kept, as DVC sees a dependency's files."""
    return Path(os.path.normpath(path.absolute()))


def make_splits(
    path: str, eval_path: str | None, eval_size: int, seed: int, fields: dict[str, str] | None = None,
    split: str = "train",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    for p in (path, eval_path):
        # lexically inside (a symlink in data/problems/ to a file elsewhere is fine: DVC hashes what it points to)
        if p is not None and not _lexical(Path(p)).is_relative_to(_lexical(PROBLEMS_DIR)):
            raise ProblemFileError(
                f"task.path/eval_path: {p} is outside {PROBLEMS_DIR}/, the tasks stage's DVC dependency, so "
                f"editing it would not rerun the round; copy it, or put a symlink to it, into {PROBLEMS_DIR}/"
            )
    problems, ignored = read_problem_file(path, fields, split)
    if ignored:
        print(f"tasks: ignored field(s) in {path}: {', '.join(ignored)}")
    if eval_path is None:
        return split_held_out(problems, eval_size, seed, path)
    held_out, ignored = read_problem_file(eval_path, fields, split)
    if ignored:
        print(f"tasks: ignored field(s) in {eval_path}: {', '.join(ignored)}")
    overlap = set(problems["problem_id"].to_list()) & set(held_out["problem_id"].to_list())
    if overlap:
        raise ProblemFileError(f"{eval_path}: {len(overlap)} id(s) also in {path}, e.g. {sorted(overlap)[0]!r}; held-out must be disjoint")
    if "tests" in problems.columns and "tests" not in held_out.columns:
        held_out = held_out.with_columns(tests=pl.lit(None, dtype=pl.String))
    if "tests" in held_out.columns and "tests" not in problems.columns:
        problems = problems.with_columns(tests=pl.lit(None, dtype=pl.String))
    return problems, held_out
