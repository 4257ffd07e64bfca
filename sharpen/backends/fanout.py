"""Fan a stage's backend calls out over a Ray cluster (`generate.ray.address`, `evaluate.ray.address`).

Ray is the scheduler: `ray.workers` actors, each holding the policy in its backend (the stage's
`backend`, `ray.cpus_per_worker` / `ray.gpus_per_worker` each), are placed on the cluster's nodes
by Ray, and an `ActorPool` hands them the stage's jobs: one `backend.generate(prompts, **sampling)`
call each, exactly as the stage's own process would make it (the generate stage's shards, the
evaluate stage's greedy and sampled shards, each with its own seed), so the samples equal a
single-process run's. The generate stage writes each shard's file as it comes back, so a killed
run resumes per shard as before.

The cluster: `ray start --head` on one machine (it prints the address), `ray start --address
HEAD:6379` on each other one, every node with the project's environment (`make setup`) and the
workspace at the same path (shared storage, or `dvc pull` on each): the actors load the policy
from its path. A cluster that cannot be reached is one line naming `<stage>.ray.address`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path

from sharpen.backends.completion import Completion
from sharpen.errors import SharpenError


class RayClusterError(SharpenError, RuntimeError):
    """The Ray cluster named in `<stage>.ray.address` cannot take the stage's jobs."""


def _generator_class(ray):
    @ray.remote
    class Generator:
        """One generation engine on a Ray node: the stage's backend, loaded once."""

        def __init__(self, backend: str, policy: str, backend_kwargs: dict):
            from sharpen.backends import load_backend

            self.backend = load_backend(backend, policy, **backend_kwargs)

        def generate(self, key: Hashable, prompts: list[str], sampling: dict) -> tuple[Hashable, str, list[list[Completion]]]:
            return key, ray.get_runtime_context().get_node_id(), self.backend.generate(prompts, **sampling)

    return Generator


def connect(address: str, setting: str):
    """The `ray` module, connected to the cluster at `address` (the params key `setting` names it)."""
    import ray

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():  # ray.init retries an unreachable address for minutes: knock first
        import socket

        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as e:
            raise RayClusterError(f"{setting}: no Ray cluster at {address!r} ({e}); start one with "
                                  "`ray start --head` and give the address it prints") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise RayClusterError(f"{setting}: no Ray cluster at {address!r} ({str(e).splitlines()[0][:160]}); "
                                  "start one with `ray start --head` and give the address it prints") from None
    return ray


def generate_on_ray(
    jobs: Sequence[tuple[Hashable, list[str], dict]], *, stage: str, address: str, workers: int, cpus_per_worker: float,
    gpus_per_worker: float, backend: str, policy: Path | str, backend_kwargs: dict,
) -> Iterator[tuple[Hashable, str, list[list[Completion]]]]:
    """(job key, the Ray node that made it, completions) for each (key, prompts, sampling) job, in the
    order they finish; `stage` (generate, evaluate) names the params section in errors."""
    ray = connect(address, f"{stage}.ray.address")
    from ray.util import ActorPool

    Generator = _generator_class(ray)
    actors = [Generator.options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, scheduling_strategy="SPREAD")
              .remote(backend, str(Path(policy).resolve()), backend_kwargs) for _ in range(min(workers, len(jobs)))]
    try:
        pool = ActorPool(actors)
        yield from pool.map_unordered(lambda actor, job: actor.generate.remote(*job), list(jobs))
    finally:
        for actor in actors:
            ray.kill(actor)
