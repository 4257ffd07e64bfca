"""A shared cache for a team: rounds pushed to DVC's default remote, so another clone reads and
reproduces them without recomputing.

The remote is DVC's own setting (`dvc remote add -d team s3://bucket/sharpen`, or a directory;
`pip install 'dvc[s3]'` / `'dvc[gs]'` for the clouds), committed in `.dvc/config`. With one set,
`sharpen advance` pushes the round it tagged (its outputs, the promoted policy and DVC's
run-cache) once the round is committed; `sharpen push` pushes every tagged round (catching up
after a push failed, or after the remote was added). Rounds travel in git as usual (`git push
--follow-tags`). A second clone then reads any round (`sharpen diff round-1 round-3`, `sharpen
report`: their Parquet is read through DVC from the remote when it is not cached locally), and
`dvc repro --pull` checks out what is already computed instead of running it.

A push that fails (an unreachable or read-only remote) is one error line naming the remote and its
URL. It never undoes or half-writes a round: the round is committed and tagged before the push,
DVC uploads content-addressed files whole, and `sharpen push` retries.

Run: `sharpen push` (every tagged round and the run-cache)
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from sharpen.errors import SharpenError


class RemoteError(SharpenError, RuntimeError):
    """A push to (or a read from) the DVC remote failed."""


def default_remote() -> tuple[str, str] | None:
    """(name, url) of DVC's default remote (`core.remote`), or None when none is set."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        config = repo.config
        name = config.get("core", {}).get("remote")
        if not name:
            return None
        remote = config.get("remote", {}).get(name)
        if remote is None:
            raise RemoteError(f"core.remote: names DVC remote {name!r}, which .dvc/config does not define "
                              f"(`dvc remote list`; `dvc remote add -d {name} URL`)")
        return name, str(remote.get("url"))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message} ({record.exc_info[1]})" if message else str(record.exc_info[1])
        if message:
            self.messages.append(message)


DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects")


@contextmanager
def _dvc_quiet():
    """DVC's warnings and errors collected (for the error line), not printed."""
    import dvc.repo  # noqa: F401 -- importing dvc installs its own handlers: replace them after that

    handler = _Collect()
    saved = []
    for name in DVC_LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.handlers[:], log.propagate, log.level))
        log.handlers, log.propagate = [handler], False
        log.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        for log, handlers, propagate, level in saved:
            log.handlers, log.propagate = handlers, propagate
            log.setLevel(level)


def push(*, all_tags: bool, what: str) -> int | None:
    """Push to the default remote: the workspace's outputs (`all_tags` False: the round just advanced)
    or every commit a tag names, with the run-cache. Returns the number of files pushed, or None
    when no remote is set. A failure is a RemoteError naming the remote, its URL and DVC's cause."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    remote = default_remote()
    if remote is None:
        return None
    name, url = remote
    with _dvc_quiet() as collected:
        try:
            with Repo(".") as repo:
                return repo.push(all_tags=all_tags, run_cache=True)
        except (DvcException, OSError) as e:
            cause = str(e) or "; ".join(dict.fromkeys(collected.messages)) or type(e).__name__
            raise RemoteError(
                f"DVC remote {name!r} ({url}, core.remote): cannot push {what}: {cause[:400]}. "
                "Nothing local is lost; fix the remote (or `dvc remote modify`), then `sharpen push`"
            ) from None
