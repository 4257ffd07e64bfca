"""What every stage's `main()` shares: clean errors for bad input, and its wall time.

A stage that fails on bad params or a bad artifact prints one `error:` line naming the file,
key or column and exits 1, instead of a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from sharpen.io import ArtifactError
from sharpen.params import ParamsError


def run_stage(main: Callable[[], None]) -> None:
    try:
        main()
    except (ParamsError, ArtifactError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 2)
