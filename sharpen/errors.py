"""The one error boundary of every entry point: a stage's `main()`, the `sharpen` CLI and the loop flow.

A failure sharpen knows (a `SharpenError`: bad params, a bad problem file or artifact, a refused
advance, a full disk, a diverged loss, ...) becomes one `error:` line that names the file and key or
row and says what to do. Anything else (an input sharpen does not check yet, or a bug) becomes one
line too: the exception, plus the log file under `.sharpen/logs/` that holds its traceback. With
`SHARPEN_DEBUG=1` (what `sharpen --debug` and `python -m flows.loop --debug` set) the traceback is
printed instead.

Used as `with boundary("sharpen rounds"): ...`; exits 1 on a failure, 130 on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

LOG_DIR = Path(".sharpen/logs")
DEBUG_ENV = "SHARPEN_DEBUG"


class SharpenError(Exception):
    """An error that is the user's to fix; its message names the file and key or row, and what to do."""


class ArtifactError(SharpenError, ValueError):
    """An artifact is missing, unreadable, or does not match its schema (also `sharpen.io.ArtifactError`)."""


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def log_traceback(where: str, error: BaseException) -> Path | None:
    """Write `error`'s traceback to .sharpen/logs/WHERE-TIME-PID.log; None where nothing can be written."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in where)
    path = LOG_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"{where}: {' '.join(sys.argv)}\n")
            f.write("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    except OSError:
        return None
    return path


def _is_dvc_error(error: BaseException) -> bool:
    """DVC's own errors (a damaged dvc.yaml or dvc.lock, a held lock) say what is wrong in their message."""
    return any(c.__module__.startswith("dvc.") and c.__name__ == "DvcException" for c in type(error).__mro__)


def explain(where: str, error: BaseException) -> str:
    """The one line shown for a failure that is not a `SharpenError`."""
    detail = _one_line(error) or "(no message)"
    if _is_dvc_error(error):
        cause = f" ({_one_line(error.__cause__, 200)})" if error.__cause__ else ""
        log = log_traceback(where, error)
        return (f"{where}: DVC: {detail}{cause}. Fix what it names (`dvc status` shows DVC's own report)"
                + (f"; traceback in {log}" if log else ""))
    filename = getattr(error, "filename", None)
    if isinstance(error, OSError) and filename and str(filename) not in detail:
        detail = f"{filename}: {detail}"
    log = log_traceback(where, error)
    where_tb = f"its traceback is in {log}" if log else "its traceback could not be written to .sharpen/logs/"
    return (f"{where} failed: {type(error).__name__}: {detail}. This input is not checked by sharpen yet, or it is "
            f"a bug; {where_tb} (rerun with {DEBUG_ENV}=1 to print it)")


@contextlib.contextmanager
def boundary(where: str) -> Iterator[None]:
    """Turn any failure inside into one line on stderr and exit 1 (130 for Ctrl-C)."""
    try:
        yield
    except SharpenError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        if debugging():
            raise
        print(f"\n{where}: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - this is the boundary: anything else becomes one line and a log
        if debugging():
            raise
        print(f"error: {explain(where, e)}", file=sys.stderr, flush=True)
        sys.exit(1)


class QuietTracebacks(logging.Filter):
    """A log-handler filter: an exception logged with its traceback (as Prefect's engine does for every
    failed task and flow) loses the traceback, which goes to a log file the line then names, unless
    debugging. A `SharpenError` already says what to do, so its traceback is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and not debugging():
            error = record.exc_info[1]
            if not isinstance(error, SharpenError):
                log = getattr(error, "_sharpen_log", None) or log_traceback("loop", error)
                with contextlib.suppress(AttributeError):
                    error._sharpen_log = log  # one log file per exception, however often Prefect logs it
                record.msg, record.args = f"{record.getMessage()} (traceback in {log})", ()
            record.exc_info, record.exc_text = None, None
        return True
