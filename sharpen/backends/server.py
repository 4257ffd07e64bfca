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
                  dtype: str = "auto") -> list[str]:
    from sharpen.models import adapter_base, is_adapter

    # the API server module, not the `vllm` script: vllm-cpu's distribution is not named `vllm`, and the
    # script looks its own version up by that name
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server"]
    if is_adapter(policy_dir):
        rank = json.loads((policy_dir / "adapter_config.json").read_text())["r"]
        cmd += ["--model", str(adapter_base(policy_dir)), "--enable-lora", "--max-lora-rank", str(max(8, rank)),
                "--lora-modules", f"{name}={policy_dir}"]
    else:
        cmd += ["--model", str(policy_dir), "--served-model-name", name]
    return cmd + ["--host", "127.0.0.1", "--port", str(port), "--seed", "0", "--no-enable-chunked-prefill",
                  "--tensor-parallel-size", str(tensor_parallel_size), "--dtype", dtype, "--disable-log-stats"]


def start_vllm_servers(policy_dir: Path | str, *, replicas: int, env: str, timeout_s: float,
                       tensor_parallel_size: int = 1, dtype: str = "auto", log_dir: Path | None = None,
                       name: str | None = None) -> list[str]:
    """Start `replicas` engines serving the policy under `name` (default: its `served_name`); their
    `/v1` URLs once every one answers."""
    import httpx

    from sharpen.backends.openai import served_name
    from sharpen.io import hash_path

    policy_dir = Path(policy_dir).resolve()
    python = vllm_python(env)
    name = name or served_name(hash_path(policy_dir))
    log_dir = Path(log_dir or os.environ.get("SHARPEN_VLLM_LOGS", "/tmp/sharpen-vllm"))
    log_dir.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    servers = []
    for i in range(replicas):
        port = _free_port()
        env_vars = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
        if os.environ.get("CUDA_VISIBLE_DEVICES") is None and _has_gpus():
            env_vars["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in range(i * tensor_parallel_size,
                                                                              (i + 1) * tensor_parallel_size))
        elif "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:  # CPU: replica i gets its own share of the cores
            share = max(1, cores // replicas)
            env_vars["VLLM_CPU_OMP_THREADS_BIND"] = f"{i * share}-{i * share + share - 1}"
        log = log_dir / f"{name}-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(serve_command(python, policy_dir, name, port, tensor_parallel_size, dtype), env=env_vars,
                                    stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        servers.append((proc, f"http://127.0.0.1:{port}/v1", log))
        RUNNING.append(proc)
    deadline = time.monotonic() + timeout_s
    for proc, url, log in servers:
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty)"]
                raise VLLMServerError(f"generate.backend: vllm-server: the engine exited with code {proc.returncode} "
                                      f"before serving ({tail[0][:200]}); its log: {log}")
            try:
                if httpx.get(url.removesuffix("/v1") + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                _stop(proc)
                raise VLLMServerError(f"generate.server.start_timeout_s: the engine at {url} did not answer within "
                                      f"{timeout_s:.0f}s; its log: {log}")
            time.sleep(2)
    return [url for _, url, _ in servers]


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
