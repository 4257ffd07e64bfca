"""The error boundary (sharpen.errors): any failure is one line; a traceback goes to a log file, or shows with debug.

Run: `pytest tests/test_errors.py`
"""

import logging
import subprocess
import sys

from sharpen.errors import QuietTracebacks, SharpenError

RAISE = """
from sharpen.errors import SharpenError, boundary
with boundary("sharpen demo"):
    raise {error}
"""


def run_raising(tmp_path, error: str, **env):
    import os

    return subprocess.run([sys.executable, "-c", RAISE.format(error=error)], cwd=tmp_path, capture_output=True,
                          text=True, env=os.environ | env)


def test_an_unchecked_failure_is_one_line_naming_a_log_with_its_traceback(tmp_path):
    proc = run_raising(tmp_path, "KeyError('weights')")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "error: sharpen demo failed: KeyError: 'weights'" in proc.stderr
    logs = list((tmp_path / ".sharpen/logs").glob("sharpen-demo-*.log"))
    assert len(logs) == 1 and str(logs[0].relative_to(tmp_path)) in proc.stderr
    assert "Traceback (most recent call last)" in logs[0].read_text() and "KeyError" in logs[0].read_text()


def test_debug_prints_the_traceback_instead(tmp_path):
    proc = run_raising(tmp_path, "KeyError('weights')", SHARPEN_DEBUG="1")
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr


def test_a_sharpen_error_is_its_message_alone(tmp_path):
    proc = run_raising(tmp_path, "SharpenError('params.yaml: generate.k: must be >= 1')")
    assert proc.returncode == 1 and proc.stderr.strip() == "error: params.yaml: generate.k: must be >= 1"
    assert not (tmp_path / ".sharpen/logs").exists()


def test_an_os_error_names_its_file(tmp_path):
    proc = run_raising(tmp_path, "PermissionError(13, 'Permission denied', 'data/round/x.parquet')")
    assert "data/round/x.parquet" in proc.stderr and "Traceback" not in proc.stderr


def test_logged_tracebacks_move_to_a_log_file(tmp_path, monkeypatch):
    """What Prefect's engine logs with exc_info: the line stays, the traceback goes to a named file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHARPEN_DEBUG", raising=False)
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(logging.Formatter().format(record))
    handler.addFilter(QuietTracebacks())
    logger = logging.getLogger("test_errors")
    logger.addHandler(handler)
    try:
        for error in (ValueError("unexpected"), SharpenError("stage tasks failed: data/problems/p.jsonl line 2")):
            try:
                raise error
            except Exception:
                logger.error("Task run failed", exc_info=True)
    finally:
        logger.removeHandler(handler)
    assert all("Traceback" not in r for r in records)
    assert records[0].startswith("Task run failed (traceback in .sharpen/logs/loop-")
    assert records[1] == "Task run failed"
