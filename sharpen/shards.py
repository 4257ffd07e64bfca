"""The sharded, resumable draw that generate and evaluate share: calls to a backend, each a shard's
prompts with its own seed, made in this process or on a Ray cluster's actors, with the same results.

A stage lists its calls as (key, prompts, sampling) requests, skips the shards already on disk
(`<out>/.partial/<fingerprint>/shard-NNNNN.parquet`, `sharpen.stage.shard_dir`), and writes each
shard as its calls come back, so a killed run resumes at its last finished shard. Where a call runs
(`<section>.ray.address`) never changes what it returns: every call carries its own seed.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path

from sharpen.backends import Completion, load_backend


def shard_path(shards_at: Path, i: int) -> Path:
    return shards_at / f"shard-{i:05d}.parquet"


def finished(shards_at: Path, count: int) -> set[int]:
    """The shards of `count` already written by an earlier run of the same inputs."""
    return {i for i in range(count) if shard_path(shards_at, i).exists()}


def draw(
    requests: Sequence[tuple[Hashable, list[str], dict]], *, stage: str, backend: str, policy: Path | str,
    backend_kwargs: dict, ray, bar,
) -> Iterator[tuple[Hashable, str, list[list[Completion]]]]:
    """(key, the node that made it: "local" or a Ray node, completions) for each request, as they come
    back; `ray` is the section's RayParams (its `address` set: the calls go to the cluster); `bar`
    counts completions."""
    if not requests:
        return
    if ray.address:
        from sharpen.backends.fanout import generate_on_ray

        for key, node, completions in generate_on_ray(
            requests, stage=stage, address=ray.address, workers=ray.workers, cpus_per_worker=ray.cpus_per_worker,
            gpus_per_worker=ray.gpus_per_worker, backend=backend, policy=policy, backend_kwargs=backend_kwargs,
        ):
            bar.update(sum(len(row) for row in completions))
            yield key, node, completions
        return
    local = load_backend(backend, policy, **backend_kwargs)
    for key, prompts, sampling in requests:
        yield key, "local", local.generate(prompts, on_progress=bar.update, **sampling)
