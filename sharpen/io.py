"""Atomic writes and validated reads of the files stages exchange.

Every write goes to a temporary sibling, is flushed and fsynced, then renamed over the target,
so a killed stage leaves either the previous artifact or the new one, never half of one. The
next write of the same path removes what a killed writer left beside it (and puts back a
directory caught between moving the old version aside and moving the new one in).
Every Parquet read and write is validated against its pandera model from `sharpen.schemas`;
a failure names the file and the failing columns. polars and pandera (which imports pandas, about
a second) are imported by the functions that read or validate a frame, so a stage that writes only
JSON never loads them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sharpen import faults
from sharpen.errors import ArtifactError

if TYPE_CHECKING:
    import pandera.errors
    import pandera.polars as pa
    import polars as pl


class DiskFullError(ArtifactError):
    """A write ran out of space; the previous version of the file is intact."""


def _disk_full(error: BaseException) -> bool:
    """ENOSPC/EDQUOT, from Python or from polars/pyarrow (which report it in their message)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text


def _write_or_explain(path: Path, write: Callable[[Path], None], tmp: Path) -> None:
    try:
        write(tmp)
    except Exception as e:
        if not _disk_full(e):
            raise
        raise DiskFullError(
            f"{path}: no space left on the device while writing it; the previous version is intact. "
            f"Free space under {path.parent} and rerun"
        ) from None


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None if it is gone or a zombie.

    Read from /proc: a zombie still answers `kill(pid, 0)` until something reaps it (a killed
    stage's orphans are reparented to PID 1, which in containers often never reaps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X", "x"):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int, since: float) -> bool:
    """Is the writer `pid` of a sibling last touched at `since` still running?

    A zombie is dead, and so is a process that started after the sibling was written: its pid
    was reused."""
    if Path("/proc/self/stat").exists():
        started = _started_at(pid)
        return started is not None and started <= since + 2.0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_siblings(path: Path) -> None:
    """Remove what a killed writer of `path` left beside it; put back a directory caught mid-swap.

    `name.tmp-PID` is an unfinished new version: removed. `name.old-PID` is the previous version
    moved aside; if the kill came before the new one moved in, `path` is missing and the old one
    is put back, so the last good artifact is never lost."""
    for sibling in path.parent.glob(f"{path.name}.*-*"):
        kind, _, pid = sibling.name[len(path.name) + 1 :].partition("-")
        if kind not in ("tmp", "old") or not pid.isdigit():
            continue
        try:
            st = sibling.lstat()
        except FileNotFoundError:
            continue
        # a rename updates ctime, so an `old-PID` sibling is dated from when PID moved it aside
        if _alive(int(pid), max(st.st_mtime, st.st_ctime)):
            continue
        if kind == "old" and not path.exists():
            os.replace(sibling, path)
        elif sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)


def atomic_write(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary sibling of `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_siblings(path)
    tmp = _tmp_sibling(path)
    try:
        _write_or_explain(path, write, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        faults.point(f"write:{'/'.join(path.parts[-3:])}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def atomic_write_dir(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_dir)` to fill a fresh directory, then swap it in for `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_siblings(path)
    tmp = _tmp_sibling(path)
    old = path.with_name(f"{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_or_explain(path, write, tmp)
        if path.exists():
            os.replace(path, old)
        faults.point(f"swap:{'/'.join(path.parts[-3:])}")
        os.replace(tmp, path)
    finally:
        if old.exists() and not path.exists():  # any exception (Ctrl-C too) between the two renames
            os.replace(old, path)  # the previous version stays; never both gone
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)
    return path


def _describe(err: pandera.errors.SchemaErrors | pandera.errors.SchemaError) -> str:
    import polars as pl

    cases = getattr(err, "failure_cases", None)
    if isinstance(cases, pl.DataFrame) and cases.height:
        lines = []
        for row in cases.head(10).iter_rows(named=True):
            col = row["column"]
            what = row["check"]
            if what in ("column_in_dataframe", "column_in_schema"):
                col, what = row["failure_case"], what.replace("_", " ")
            lines.append(f"column {col!r}: {what} (failure case: {str(row['failure_case'])[:80]})")
        more = f"\n  ... {cases.height - 10} more" if cases.height > 10 else ""
        return "\n  ".join(lines) + more
    return str(err)


def validate(df: pl.DataFrame, schema: type[pa.DataFrameModel], where: str) -> pl.DataFrame:
    """Validate a collected frame; raise ArtifactError naming `where` and the failing columns."""
    import pandera.errors

    try:
        return schema.validate(df, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError) as e:
        raise ArtifactError(f"{where}: does not match schema {schema.__name__}:\n  {_describe(e)}") from None


def write_frame(df: pl.DataFrame, path: Path | str, schema: type[pa.DataFrameModel]) -> Path:
    """Validate `df` against `schema`, then write it atomically as Parquet."""
    df = validate(df, schema, str(path))
    return atomic_write(path, lambda tmp: df.write_parquet(tmp))


def read_frame(source: Path | str | BinaryIO, schema: type[pa.DataFrameModel], *, where: str | None = None,
               fix: str = "") -> pl.DataFrame:
    """Read a Parquet artifact and validate it; errors name the file and the failing column. `source`
    is a path, or an open file (DVC's at a tag) that `where` names; `fix` ends a damaged file's error."""
    import polars as pl

    if isinstance(source, str):
        source = Path(source)
    where = where or str(source)
    df = _parquet(source, pl.read_parquet, where, fix)
    return validate(df, schema, where)


def _parquet(source: Path | BinaryIO, read, where: str | None = None, fix: str = ""):
    """`read(source)` of a Parquet artifact; errors name the file: missing, or not readable."""
    where = where or str(source)
    if isinstance(source, Path) and not source.exists():
        raise ArtifactError(f"{where}: not found (has the stage that writes it run? try `dvc repro`)")
    try:
        return read(source)
    except Exception as e:  # polars raises several types for corrupt files
        raise ArtifactError(f"{where}: not a readable Parquet file: {' '.join(str(e).split())[:300]}{fix}") from None


def validate_columns(df: pl.DataFrame, schema: type[pa.DataFrameModel], where: str) -> pl.DataFrame:
    """Validate the columns `df` holds against their fields in `schema`: no foreign column, each
    one's type, nulls and value checks; the model's other columns and its uniqueness checks are
    the caller's (pandera's `unique` costs seconds at 10M rows; keys sorted once check it in one pass)."""
    import pandera.errors

    model = schema.to_schema()
    part = model.select_columns([c for c in df.columns if c in model.columns])
    part.unique = None
    for column in part.columns.values():
        column.unique = False
    try:
        part.validate(df, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError) as e:
        raise ArtifactError(f"{where}: does not match schema {schema.__name__}:\n  {_describe(e)}") from None
    return df


def read_columns(path: Path | str, schema: type[pa.DataFrameModel], *columns: str, **derived: pl.Expr) -> pl.DataFrame:
    """`columns` of a Parquet artifact, and `derived` (expressions of its other columns, e.g. a
    hash of a long text), streamed: the other columns are never held in memory. The file's schema
    (every column, its type, no foreign one) is checked from its footer, the values of `columns`
    once read (`validate_columns`); what read_frame guarantees but uniqueness, without reading it all.
    Each column comes back in one chunk."""
    import polars as pl

    path = Path(path)
    on_file = _parquet(path, pl.read_parquet_schema)
    validate(pl.DataFrame(schema=on_file), schema, str(path))
    try:
        df = pl.scan_parquet(path).select(*columns, **derived).collect(engine="streaming")
    except Exception as e:
        raise ArtifactError(f"{path}: not a readable Parquet file: {e}") from None
    # a streamed read comes in ~100 chunks; one per column, copied a column at a time (one
    # column's memory, not the frame's), makes slices and numpy views of them free
    df = pl.DataFrame([df.drop_in_place(name).rechunk() for name in list(df.columns)])
    validate_columns(df.select(columns), schema, str(path))
    return df


def write_json(obj: Any, path: Path | str) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def parse_json_object(data: str | bytes, where: str) -> dict[str, Any]:
    """A JSON object (every JSON artifact here is one: metrics, state, a controller's choice). A
    metrics file (`metrics.json`, `where` may add " at <rev>") has its values checked (`check_metrics`)."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:  # ValueError: also an integer past Python's digit limit
        raise ArtifactError(f"{where}: not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ArtifactError(f"{where}: holds a JSON {type(value).__name__}, not an object of named values")
    if where.split(" at ", 1)[0].endswith(METRICS_FILE):
        check_metrics(value, where)
    return value


METRICS_FILE = "metrics.json"  # every stage's metrics (sharpen/rounds/layout.py `stage_metrics`)
# what `sharpen rounds`, `diff`, the report and the gate read from a metrics file as numbers, and as text
NUMBER_PREFIXES = ("greedy", "pass@", "maj@", "chance")  # evaluate's accuracies and monitors
NUMBER_SUFFIXES = ("_accuracy", "_share", "_fraction", "_rate", "_ratio", "_mean", "_consistency", "_entropy",
                   "_loss", "wall_s")
NUMBER_KEYS = frozenset({"round", "problems", "samples", "kept", "pairs", "examples", "rollouts", "proposals",
                         "correct", "unparseable", "steps", "tokens", "temperature", "tau"})
TEXT_KEYS = frozenset({"kind", "objective", "init", "select", "labels", "reward_control", "fingerprint", "source",
                       "source_kind", "skipped", "rollouts_from"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_metrics(metrics: dict[str, Any], where: str) -> dict[str, Any]:
    """A metrics file's values that sharpen reads: a number (or null) where it reads a number (the
    accuracies, counts, shares, wall times), text (or null) where it reads text (hashes, kinds);
    anything else is an ArtifactError naming the file and key, not a crash of the reader."""
    for key, value in metrics.items():
        if value is None:
            continue
        if key.startswith(NUMBER_PREFIXES) or key.endswith(NUMBER_SUFFIXES) or key in NUMBER_KEYS:
            if not _is_number(value):
                raise ArtifactError(f"{where}: {key!r} holds {_shown(value)}, not a number")
        elif (key in TEXT_KEYS or key.endswith("_hash")) and not isinstance(value, str):
            raise ArtifactError(f"{where}: {key!r} holds {_shown(value)}, not text")
    return metrics


def _shown(value: Any, limit: int = 40) -> str:
    """A value as a message shows it: JSON, cut short."""
    try:
        text = json.dumps(value)
    except ValueError:  # an integer past Python's int-to-text digit limit
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_json(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        return parse_json_object(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: not found") from None


class YAMLFileError(ArtifactError):
    """A YAML file DVC or sharpen cannot read: bad syntax, a duplicate key, not UTF-8."""


def read_yaml(path: Path | str, text: str | bytes | None = None) -> Any:
    """A YAML file read exactly as DVC reads params.yaml, dvc.yaml and dvc.lock: YAML 1.2 through
    ruamel.yaml's safe loader. So `k: 010` is 10, `dedup: off` is the string 'off' and `lr: 1e-3` a
    float, for the run and for dvc.lock alike; a duplicate key is an error here as it is for DVC."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    path = Path(path)
    try:
        if text is None:
            text = path.read_bytes()
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return YAML(typ="safe", pure=True).load(text)
    except FileNotFoundError:
        raise YAMLFileError(f"{path}: not found") from None
    except UnicodeDecodeError as e:
        raise YAMLFileError(f"{path}: not UTF-8 (byte {e.start})") from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise YAMLFileError(f"{path}{where}: not valid YAML: {' '.join(str(e.problem or e).split())}") from None
    except YAMLError as e:
        raise YAMLFileError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None


def write_csv(df: pl.DataFrame, path: Path | str) -> Path:
    return atomic_write(path, lambda tmp: df.write_csv(tmp))


def hash_path(path: Path | str) -> str:
    """MD5 over a file's bytes, or over a directory's relative paths and file bytes, sorted."""
    path = Path(path)
    h = hashlib.md5()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise ArtifactError(f"{path}: nothing to hash (missing or empty)")
    for f in files:
        if f != path:
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def hash_json(obj: Any) -> str:
    """Stable short hash of a JSON-serialisable value (params, fingerprints)."""
    return hashlib.md5(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
