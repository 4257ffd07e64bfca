"""A loop's vLLM engines (`generate.server.lifetime: loop`, the default): started once, they serve every
stage of every round whose policy sits on the same base, instead of each stage starting its own.

The loop (`python -m flows.loop`, sharpen/rounds/runner.py) runs its stages with SHARPEN_ENGINES set
to a folder (.sharpen/engines) and SHARPEN_LOOP_PID to its own pid. A `vllm-server` stage then asks
`loop_engines` for engines instead of starting its own:

- The folder's engines.json records the running engines: their URLs, the watchdog pids, and the
  key they were started with (what they serve, `replicas`, `dtype`, `tensor_parallel_size`, the
  vLLM environment). A stage whose key matches and whose engines answer `/health` reuses them.
- What they serve: a LoRA policy's base, under `sharpen-<hash12 of the base>`, with LoRA enabled up
  to the adapter's rank; the round's adapter is then loaded into the running engines at run time
  (vLLM's `/v1/load_lora_adapter`, VLLM_ALLOW_RUNTIME_LORA_UPDATING) under the policy's own served
  name, and the adapter loaded before it is unloaded. So a LoRA loop starts its engines once: each
  new policy is only a new adapter. A full-weights policy is itself what is served (keyed by its
  content hash), so the engines restart when the weights change: once a round, where per-stage
  engines start in every stage that samples.
- Anything else (another base, a higher LoRA rank, other settings, an engine that died) stops the
  recorded engines and starts new ones. The key is a fingerprint, never a guess: a base is named by
  its resolved path and its files' sizes and modification times.
- The engines outlive the stage but not the loop: each runs under a small watchdog that stops it
  when the loop's process is gone (a SIGKILLed loop included), and the loop stops them at its end
  (`stop_loop_engines`).

Samples do not depend on which engines answered: a request carries its own seed, and the tests check
a loop engine's samples equal a per-stage engine's (tests/test_backend_openai.py, marker `vllm`).
Outside a loop (`dvc repro` by hand), or with `lifetime: stage`, every stage starts and stops its own.
On a GPU that training shares, use `lifetime: stage`: a loop's engine keeps its GPU memory between stages.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from sharpen.backends.server import Engine, VLLMServerError, lora_rank, start_vllm_servers, stop_engines
from sharpen.rounds.lock import LOOP_ENV as OWNER_ENV  # the loop's pid, set by its runner: the engines die with it

ENGINES_ENV = "SHARPEN_ENGINES"  # set by the loop's runner: the folder holding its engines' record
RECORD = "engines.json"


def in_loop() -> bool:
    return bool(os.environ.get(ENGINES_ENV) and os.environ.get(OWNER_ENV))


def fingerprint(model_dir: Path) -> str:
    """A model folder named by its resolved path and its files' sizes and modification times: cheap, and
    any rewrite of a file changes it (a needless restart at worst, never a stale engine)."""
    from sharpen.io import hash_json

    root = Path(model_dir).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return hash_json([str(root)] + [(p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                                    for p in files])


@contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RECORD).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write(folder: Path, record: dict) -> None:
    from sharpen.io import write_json

    write_json(record, folder / RECORD)


def loop_engines(policy_dir: Path | str, name: str, *, replicas: int, env: str, timeout_s: float,
                 tensor_parallel_size: int = 1, dtype: str = "auto", log_dir: Path | None = None) -> list[str]:
    """The `/v1` URLs of the loop's engines, serving the policy at `policy_dir` under `name`: reused when
    they serve its base with the same settings, else (re)started."""
    from sharpen.backends.openai import served_name
    from sharpen.models import adapter_base, is_adapter

    folder, owner = Path(os.environ[ENGINES_ENV]), int(os.environ[OWNER_ENV])
    policy_dir = Path(policy_dir).resolve()
    adapter = is_adapter(policy_dir)
    serves = adapter_base(policy_dir).resolve() if adapter else policy_dir
    base_name = served_name(fingerprint(serves)) if adapter else name
    rank = lora_rank(policy_dir) if adapter else None
    key = {"serves": base_name, "lora": adapter, "replicas": replicas, "tensor_parallel_size": tensor_parallel_size,
           "dtype": dtype, "vllm_env": str(Path(env).resolve())}
    with _locked(folder):
        record = _read(folder)
        engines = [Engine(**e) for e in record["engines"]] if record else []
        reuse = (record is not None and {k: v for k, v in record["key"].items() if k != "rank"} == key
                 and record["key"]["rank"] >= (rank or 0) and record.get("owner") == owner
                 and all(e.healthy() for e in engines))
        if reuse:
            _say(f"vllm-server: the loop's engines serve {base_name} already (started {record['started_at']}); "
                 "no engine start")
        else:
            if engines:
                _say(f"vllm-server: stopping the loop's engines for {record['key']['serves']}; starting them for "
                     f"{base_name}")
                stop_engines(engines)
                (folder / RECORD).unlink(missing_ok=True)
            engines = start_vllm_servers(serves, replicas=replicas, env=env, timeout_s=timeout_s,
                                         tensor_parallel_size=tensor_parallel_size, dtype=dtype,
                                         log_dir=log_dir or folder, name=base_name, owner_pid=owner,
                                         runtime_lora_rank=rank)
            record = {"key": key | {"rank": rank or 0}, "owner": owner, "engines": [e.to_json() for e in engines],
                      "started_at": time.strftime("%Y-%m-%d %H:%M:%S"), "starts": (record or {}).get("starts", 0) + 1}
            _write(folder, record)
            with open(folder / "starts.jsonl", "a") as log:  # every start, kept after the loop stops them
                log.write(json.dumps({"at": record["started_at"], "serves": base_name, "owner": owner}) + "\n")
        if adapter:
            for engine in engines:
                _load_adapter(engine.url, name, policy_dir, keep=base_name)
    return [e.url for e in engines]


def _load_adapter(url: str, name: str, adapter_dir: Path, *, keep: str) -> None:
    """Serve the adapter at `adapter_dir` as `name` on the engine at `url`, unloading any other adapter."""
    import httpx

    served = [m["id"] for m in httpx.get(url + "/models", timeout=30).json().get("data", [])]
    for other in served:
        if other not in (keep, name):
            httpx.post(url + "/unload_lora_adapter", json={"lora_name": other}, timeout=60)
    if name in served:
        return
    reply = httpx.post(url + "/load_lora_adapter", json={"lora_name": name, "lora_path": str(adapter_dir)},
                       timeout=600)
    if reply.status_code >= 400:
        raise VLLMServerError(f"generate.backend: vllm-server: the loop's engine at {url} did not load the LoRA "
                              f"adapter {adapter_dir} (HTTP {reply.status_code}: {reply.text[:200]})")


def stop_loop_engines(folder: Path | str) -> int:
    """Stop the engines recorded in `folder` (the loop's end); how many were stopped."""
    folder = Path(folder)
    if not (folder / RECORD).exists():
        return 0
    with _locked(folder):
        record = _read(folder)
        engines = [Engine(**e) for e in record["engines"]] if record else []
        stop_engines(engines)
        (folder / RECORD).unlink(missing_ok=True)
    return len(engines)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
