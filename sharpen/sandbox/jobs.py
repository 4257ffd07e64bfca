"""The sandbox's vocabulary: the jobs it runs, their limits, what comes back, and its error.

    Limits(timeout_s, cpu_s, memory_mb, processes, file_size_mb, open_files, tmp_mb, output_chars)
    Run(program) | Tests(program, prompt, tests) | Calls(program, entry_point, inputs)  -> Job
    Outcome(status, exit_code, stdout, stderr, seconds, tests_stderr, values)

What each kind of job means is in `sharpen/sandbox/__init__.py`; all are re-exported there
(`from sharpen.sandbox import Limits, Tests, run_jobs`). Not run on its own; tested by
`pytest tests/test_sandbox.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from sharpen.errors import SharpenError

Status = Literal["passed", "failed", "timeout"]


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock per job, then everything it started is killed
    cpu_s: int = 10
    memory_mb: int = 1024  # address space per process
    processes: int = 32
    file_size_mb: int = 16  # any one file, stdout and stderr included
    open_files: int = 64
    tmp_mb: int = 64  # size of each tmpfs the program may write (working directory, /tmp, ...)
    output_chars: int = 4096  # kept of stdout and of stderr


@dataclass(frozen=True)
class Run:
    program: str


@dataclass(frozen=True)
class Tests:
    program: str
    prompt: str  # Python: its functions with a body are helpers the tests may use; its stubs are the program's
    tests: str


@dataclass(frozen=True)
class Calls:
    program: str
    entry_point: str
    inputs: Sequence[tuple[Sequence[Any], dict[str, Any]]] = field(default_factory=tuple)  # (args, kwargs) each


Job = Run | Tests | Calls


class Outcome(NamedTuple):
    status: Status
    exit_code: int | None  # the program's (Run) or the tests' (Tests); negative: a signal; None: timed out
    stdout: str
    stderr: str
    seconds: float
    tests_stderr: str = ""  # Tests: the tests' own traceback, if they failed
    values: tuple | None = None  # Calls: one ("ok", value) | ("raise", name, text) | ("bad", why) per input answered


class SandboxError(SharpenError, RuntimeError):
    """The sandbox refuses to run code it cannot confine."""
