"""What every stage's `main()` shares: clean errors for bad input, its wall time, a progress bar.

A stage that fails on bad params, a bad artifact, a full disk, generation out of memory, a
training loss gone NaN/inf or a sandbox it cannot use prints one `error:` line naming the file,
key or column and exits 1, instead of a traceback. Anything else prints one line naming the
exception and the log file under .sharpen/logs/ that holds its traceback (sharpen.errors.boundary;
`SHARPEN_DEBUG=1 dvc repro` prints it instead).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sharpen import faults, threads
from sharpen.errors import SharpenError, boundary

if TYPE_CHECKING:
    from tqdm import tqdm


class TrainingDiverged(SharpenError, RuntimeError):
    """A training loss that stopped being a finite number; the stage writes no model (the previous stays)."""


def run_stage(main: Callable[[], None]) -> None:
    name = _stage_name(main)
    faults.point(f"start:{name}")
    with boundary(f"stage {name}"):
        from sharpen.rounds.lock import refuse_outside_loop

        refuse_outside_loop(f"stage {name}")  # a by-hand `dvc repro` while a loop runs: refused, the loop goes on
        if name != "resolve":  # never on values other than those DVC recorded for this stage
            from sharpen.config import check_resolved
            from sharpen.rounds.layout import RESOLVED_DIR

            check_resolved(RESOLVED_DIR)
        threads.apply()  # torch threads: the CPUs free for this stage, shared with its peers (sharpen/threads.py)
        main()


def _stage_name(main: Callable[[], None]) -> str:
    """`generate` for stages/generate.py, whether imported or run as `python -m stages.generate`."""
    module = main.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec else sys.argv[0].rsplit("/", 1)[-1].removesuffix(".py")
    return module.rsplit(".", 1)[-1]


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 2)


def shard_dir(out: Path, fingerprint: str) -> Path:
    """Where a stage keeps its finished shards across a killed run: `out/.partial/<fingerprint>`, the
    fingerprint hashing every input the shards depend on. Directories of other fingerprints (shards
    made from other inputs) are deleted here, never reused; the stage deletes `out/.partial` once its
    artifact is written."""
    partial = out / ".partial"
    if partial.exists():
        for stale in partial.iterdir():
            if stale.name != fingerprint:
                shutil.rmtree(stale)
    (partial / fingerprint).mkdir(parents=True, exist_ok=True)
    return partial / fingerprint


def progress(total: int, desc: str, unit: str) -> tqdm:
    """A progress bar with rate and ETA; redrawn every 10 s when stderr is a log file, not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, mininterval=0.2 if sys.stderr.isatty() else 10.0,
                dynamic_ncols=True)
