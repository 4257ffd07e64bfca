"""`generate.backend: vllm-server`: the stage starts `vllm serve` from the vLLM environment, samples
through the OpenAI-compatible backend, and stops the engines when it ends.

Why a server rather than importing vLLM: vLLM's CPU build (and vLLM on GPUs) pins a transformers
and a fastapi the project cannot share with Prefect, so it lives in its own environment
(`make vllm` makes `.venv-vllm`); a process boundary keeps the two apart, and the same client then
serves a user's own servers (`backend: openai`) and N engines (`generate.server.replicas`: one per
GPU, or the CPU cores split between them), which is how generation fans out on one machine.

- Each replica: `vllm serve <policy> --served-model-name sharpen-<hash12> --port <free port>
  --seed 0 --no-enable-chunked-prefill` on 127.0.0.1. A LoRA policy serves its base with
  `--enable-lora` and the adapter as a LoRA module under the served name, so requests name the
  adapter and it is never merged on disk. Chunked prefill is off: on CPU it splits a seeded
  request across steps and vLLM 0.32 then fails (`CPU Generator does not use offset`).
- With GPUs, replica i sees GPUs [i*tp, (i+1)*tp) (`CUDA_VISIBLE_DEVICES`,
  `generate.tensor_parallel_size` each); on CPU, replica i is bound to its share of the cores
  (`VLLM_CPU_OMP_THREADS_BIND`).
- The engines die with the stage: they are started with the parent-death signal set, and
  stopped (SIGTERM, then SIGKILL) at exit. A missing or wrong-version environment, or an engine
  that exits or does not answer within `generate.server.start_timeout_s`, is one error line
  naming the setting and where the engine's log is.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sharpen.errors import SharpenError

VLLM_VERSION = "0.32.0"  # what `make vllm` installs and what this module is tested against


RUNNING: list[subprocess.Popen] = []  # engines this process started, stopped at its exit


class VLLMServerError(SharpenError, RuntimeError):
    """The vLLM environment or an engine started from it cannot serve the round."""


def vllm_python(env: str | Path) -> Path:
    """The vLLM environment's interpreter, checked: vLLM importable, at the version this module knows."""
    python = Path(env) / "bin" / "python"
    if not python.exists():
        raise VLLMServerError(f"generate.server.vllm_env: {env} is not a virtual environment with vLLM; "
                              f"create it with `make vllm` (vllm-cpu {VLLM_VERSION}; on GPUs install vllm there)")
    probe = subprocess.run([str(python), "-c", "import vllm, sys; sys.stdout.write(vllm.__version__)"],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise VLLMServerError(f"generate.server.vllm_env: vLLM does not import in {env} ({why}); rebuild it with "
                              f"`rm -rf {env} && make vllm`")
    if probe.stdout.split("+")[0] != VLLM_VERSION:
        raise VLLMServerError(f"generate.server.vllm_env: {env} has vLLM {probe.stdout}, not {VLLM_VERSION}; "
                              f"rebuild it with `rm -rf {env} && make vllm`")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def serve_command(python: Path, policy_dir: Path, name: str, port: int, tensor_parallel_size: int,
                  dtype: str = "auto", *, runtime_lora_rank: int | None = None) -> list[str]:
    """`vllm serve` for the policy under `name`. A LoRA policy: its base with the adapter as a LoRA module.
    `runtime_lora_rank`: the policy is a base served under `name`, ready for adapters up to that rank
    loaded at run time (`/v1/load_lora_adapter`, the loop's engines: sharpen/backends/engines.py)."""
    from sharpen.models import adapter_base, is_adapter

    # the API server module, not the `vllm` script: vllm-cpu's distribution is not named `vllm`, and the
    # script looks its own version up by that name
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server"]
    if is_adapter(policy_dir):
        cmd += ["--model", str(adapter_base(policy_dir)), "--enable-lora", "--max-lora-rank", str(lora_rank(policy_dir)),
                "--lora-modules", f"{name}={policy_dir}"]
    else:
        cmd += ["--model", str(policy_dir), "--served-model-name", name]
        if runtime_lora_rank is not None:
            cmd += ["--enable-lora", "--max-lora-rank", str(runtime_lora_rank)]
    return cmd + ["--host", "127.0.0.1", "--port", str(port), "--seed", "0", "--no-enable-chunked-prefill",
                  "--tensor-parallel-size", str(tensor_parallel_size), "--dtype", dtype, "--disable-log-stats"]


def lora_rank(adapter_dir: Path) -> int:
    """The `--max-lora-rank` an adapter needs (at least 8: vLLM's smallest choice above 1)."""
    return max(8, json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"])


# Runs in the vLLM environment's interpreter between a loop and its engine: the engine (its child) dies
# with it, and it stops the engine when the loop's process is gone (a loop killed with SIGKILL included).
WATCHDOG = """
import ctypes, os, signal, sys, time
owner, cmd = int(sys.argv[1]), sys.argv[2:]
child = os.fork()
if child == 0:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    os.execv(cmd[0], cmd)
def stop(*_):
    os.kill(child, signal.SIGTERM)
    for _ in range(60):
        if os.waitpid(child, os.WNOHANG)[0]:
            os._exit(0)
        time.sleep(0.5)
    os.kill(child, signal.SIGKILL)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    done, status = os.waitpid(child, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status))
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        stop()
    time.sleep(1)
"""


def start_vllm_servers(policy_dir: Path | str, *, replicas: int, env: str, timeout_s: float,
                       tensor_parallel_size: int = 1, dtype: str = "auto", log_dir: Path | None = None,
                       name: str | None = None, owner_pid: int | None = None,
                       runtime_lora_rank: int | None = None) -> list[Engine]:
    """Start `replicas` engines serving the policy under `name` (default: its `served_name`); the engines
    once every one answers. They stop when this process exits; with `owner_pid`, they are left running
    (in their own session) and stop when that process is gone or `stop_engines` stops them."""
    from sharpen.backends.openai import served_name
    from sharpen.io import hash_path

    policy_dir = Path(policy_dir).resolve()
    python = vllm_python(env)
    name = name or served_name(hash_path(policy_dir))
    log_dir = Path(log_dir or os.environ.get("SHARPEN_VLLM_LOGS", "/tmp/sharpen-vllm"))
    log_dir.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    engines = []
    for i in range(replicas):
        port = _free_port()
        env_vars = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
        if runtime_lora_rank is not None:
            env_vars["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        if os.environ.get("CUDA_VISIBLE_DEVICES") is None and _has_gpus():
            env_vars["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in range(i * tensor_parallel_size,
                                                                              (i + 1) * tensor_parallel_size))
        elif "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:  # CPU: replica i gets its own share of the cores
            share = max(1, cores // replicas)
            env_vars["VLLM_CPU_OMP_THREADS_BIND"] = f"{i * share}-{i * share + share - 1}"
        log = log_dir / f"{name}-{port}.log"
        cmd = serve_command(python, policy_dir, name, port, tensor_parallel_size, dtype,
                            runtime_lora_rank=runtime_lora_rank)
        with open(log, "wb") as out:
            if owner_pid is None:
                proc = subprocess.Popen(cmd, env=env_vars, stdout=out, stderr=subprocess.STDOUT,
                                        preexec_fn=_die_with_parent)
                RUNNING.append(proc)
            else:
                proc = subprocess.Popen([str(python), "-c", WATCHDOG, str(owner_pid), *cmd], env=env_vars, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        engines.append(Engine(proc.pid, f"http://127.0.0.1:{port}/v1", str(log), proc))
    deadline = time.monotonic() + timeout_s
    for engine in engines:
        while True:
            if engine.proc.poll() is not None:
                tail = Path(engine.log).read_text(errors="replace").strip().splitlines()[-1:] or ["(empty)"]
                stop_engines(engines)
                raise VLLMServerError(f"generate.backend: vllm-server: the engine exited with code "
                                      f"{engine.proc.returncode} before serving ({tail[0][:200]}); its log: {engine.log}")
            if engine.healthy():
                break
            if time.monotonic() > deadline:
                stop_engines(engines)
                raise VLLMServerError(f"generate.server.start_timeout_s: the engine at {engine.url} did not answer "
                                      f"within {timeout_s:.0f}s; its log: {engine.log}")
            time.sleep(2)
    return engines


@dataclass
class Engine:
    """One running engine: its process (the watchdog's, for a loop's engine), `/v1` URL and log file;
    `proc` when this process started it."""

    pid: int
    url: str
    log: str
    proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(self.url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def to_json(self) -> dict:
        return {"pid": self.pid, "url": self.url, "log": self.log}


def stop_engines(engines: list[Engine]) -> None:
    """Stop engines (SIGTERM, then SIGKILL after 30 s), whether this process started them or not."""
    import psutil

    for engine in engines:
        if engine.proc is not None:
            _stop(engine.proc)
            continue
        try:
            proc = psutil.Process(engine.pid)
            proc.terminate()
            proc.wait(timeout=30)  # reaps it too where it is this process's child
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            proc.kill()


def _has_gpus() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@atexit.register
def stop_all() -> None:
    """Stop every engine this process started."""
    while RUNNING:
        _stop(RUNNING.pop())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
