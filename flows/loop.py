"""The continuous loop on Prefect: one flow run = rounds back to back until a stopping rule fires.

Each round runs every stage of dvc.yaml in order as `dvc repro --single-item <stage>` (its own process group,
output streamed into the Prefect run logs, killed whole on timeout or cancel, retried on failure;
DVC skips what already finished), then `sharpen advance`. Its `vllm-server` stages share one set of
vLLM engines for the whole loop (sharpen/backends/engines.py), stopped when the loop ends. Stopping
rules, timeouts and retries come from the `loop` section of params.yaml. Ctrl-C or SIGTERM to a loop run in the foreground
stops it in seconds: the stage is killed, DVC's locks released, the stop recorded in
.sharpen/loops.jsonl and one line says how to resume (`sharpen.rounds.runner.stop_on_signals`).
The flow only sequences: the logic is in sharpen/rounds/ (runner, stopping, advance). One loop
per workspace (a file lock, sharpen/rounds/lock.py).

Run:
    python -m flows.loop --rounds 5                       # ephemeral Prefect, no server needed
    python -m flows.loop serve --cron '0 * * * *'          # a deployment on a running Prefect server
    python -m flows.loop serve --interval 600 --rounds 1   # or every 10 minutes, one round each
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

# no anonymous usage telemetry from the temporary Prefect server: offline it only fails, and on a first
# run it raced the database migration ("database is locked", a 90-line traceback before a good run)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
from prefect import flow, get_run_logger, task  # noqa: E402

from sharpen.errors import DEBUG_ENV, QuietTracebacks, SharpenError, boundary  # noqa: E402
from sharpen.io import read_json, read_yaml  # noqa: E402
from sharpen.config import load_params  # noqa: E402
from sharpen.rounds.advance import advance, finish_interrupted_advance  # noqa: E402
from sharpen.rounds.layout import ROUND_METRICS  # noqa: E402
from sharpen.rounds.lock import LoopBusy, workspace_lock  # noqa: E402
from sharpen.rounds.remote import push  # noqa: E402
from sharpen.backends.engines import stop_loop_engines  # noqa: E402
from sharpen.rounds.runner import ENGINES, VERBOSE_ENV, kill_live_groups, reap_orphans, repro, stop_on_signals  # noqa: E402
from sharpen.rounds.state import current_policy_metrics  # noqa: E402
from sharpen.rounds.stopping import check_params_unchanged, params_text, record_stop, stop_reason  # noqa: E402
from sharpen.rounds.tracking import end_loop_run, start_loop_run  # noqa: E402


def pipeline_stages(dvc_yaml: Path = Path("dvc.yaml")) -> list[str]:
    """The stages of one round, in the order dvc.yaml lists them (which is topological)."""
    return list((read_yaml(dvc_yaml) or {}).get("stages", {}))


@task(task_run_name="dvc repro {stage}")
def repro_stage(stage: str, timeout_s: float | None, round_: int) -> None:
    repro(stage, round_, get_run_logger().info, timeout_s=timeout_s)


@task(task_run_name="advance round {round_}", retries=2, retry_delay_seconds=[2, 10])
def advance_round(round_: int) -> dict:
    decision, state = advance()
    logger = get_run_logger()
    logger.info(f"round {round_}: gate {'accepted' if decision.accepted else 'rejected'} ({decision.reason})")
    return {"accepted": decision.accepted, "metrics": read_json(ROUND_METRICS), "policy_round": state.policy_round,
            "collapsed": decision.reason if decision.collapsed else None}


@task(task_run_name="push round {round_}", retries=2, retry_delay_seconds=[5, 30])
def push_round(round_: int) -> None:
    """The advanced round to DVC's default remote, if one is set (sharpen/rounds/remote.py); idempotent, so retried."""
    pushed = push(all_tags=False, what=f"round-{round_}")
    if pushed is not None:
        get_run_logger().info(f"round {round_}: pushed {pushed} file(s) to the DVC remote")


def _kill_stages(flow, flow_run, state) -> None:
    """Flow hook on cancel or crash: kill any stage process group still running.

    `run_command` already kills its stage when Prefect's SIGTERM bridge raises TerminationSignal
    in it; this catches a stage caught elsewhere. The flow installs no SIGTERM handler of its own:
    Prefect acknowledges a runner's cancel only while its own handler is installed, and records a
    cancel it could not acknowledge as a crash."""
    kill_live_groups()


# what a loop run in the foreground has done so far, for the record a signal-stopped loop writes
_progress: dict = {}
_foreground = False  # `run` (not `serve`): Ctrl-C and SIGTERM stop the loop in seconds (stop_on_signals)


def _stopped_by(signal_name: str) -> None:
    """Record and report a loop stopped by a signal (called from the signal handler)."""
    p = _progress
    where = f"round {p['round']}, stage {p['stage']}" if p.get("stage") else f"round {p.get('round', '?')}"
    record_stop({"first_round": p.get("first_round"), "rounds_done": p.get("done", 0),
                 "reason": f"stopped by {signal_name} during {where}", "values": p.get("values", []),
                 "elapsed_s": round(time.monotonic() - p.get("started", time.monotonic()), 1)})
    print(f"loop stopped by {signal_name} during {where}; the running stage was killed and its DVC locks released. "
          f"{resume_hint(p.get('asked'), p.get('done', 0) + _advanced(p))}", file=sys.stderr, flush=True)


def resume_hint(asked: int | None, done: int) -> str:
    """What finishes the run that was asked for (`asked` rounds; None: not known yet), `done` of them finished."""
    if asked is None:
        return "Resume with `python -m flows.loop` (DVC skips the stages that finished)"
    left = asked - done
    if left < 1:
        return f"All {asked} round(s) asked for had finished; nothing is left to resume"
    return (f"Resume with `python -m flows.loop --rounds {left}`: the rest of the {asked} round(s) asked for, {done} "
            "done (DVC skips the stages that finished)")


def _advanced(p: dict) -> int:
    """1 if the round stopped in its advance had already moved params.yaml on (it counts as done), else 0."""
    if p.get("stage") != "advance":
        return 0
    try:
        return int(load_params().round > p["round"])
    except Exception:  # noqa: BLE001 -- a hint, in a signal handler: never in the way of the stop
        return 0


@flow(name="sharpen-loop", log_prints=True, on_cancellation=[_kill_stages], on_crashed=[_kill_stages])
def loop(rounds: int | None = None) -> str:
    """Run rounds until a stopping rule fires; return (and record) the reason."""
    if _foreground:  # inside the flow engine, whose own SIGTERM bridge would wait on its API first
        try:
            stop_on_signals(_stopped_by)
        except ValueError:  # not the main thread: the handlers main() installed stand
            pass
    logger = get_run_logger()
    params = load_params()
    lp = params.loop
    if rounds is not None and rounds < 1:
        raise ValueError(f"rounds: {rounds} rounds is no loop; give 1 or more (or leave it out for loop.max_rounds)")
    max_rounds = lp.max_rounds if rounds is None else rounds
    _progress.update(asked=max_rounds)  # for the resume hint: the rounds still to run of those asked for
    started, first_round = time.monotonic(), params.round
    values: list[float] = []
    done, reason, tracker_run = 0, "not started", None
    _progress.update(first_round=first_round, round=first_round, done=0, values=values, started=started, stage=None)
    try:
        with workspace_lock():
            orphans = reap_orphans()  # stages a killed loop left running here
            if orphans:
                logger.warning(f"killed {len(orphans)} stage process(es) left by a killed loop: {orphans}")
            if finish_interrupted_advance():
                logger.warning("finished the advance a killed loop left half done")
            stages = pipeline_stages()
            tracker_run = start_loop_run(first_round)  # the rounds' tracker runs nest under it; never raises
            repro = repro_stage.with_options(retries=lp.stage_retries, retry_delay_seconds=5)
            while True:
                began = params_text()  # a params.yaml edited mid-round stops the loop before its next step
                round_ = load_params().round
                _progress.update(round=round_)
                for stage in stages:
                    _progress.update(stage=stage)
                    check_params_unchanged(began, round_, f"stage {stage}")
                    repro(stage, lp.stage_timeout_s, round_)
                _progress.update(stage="advance")
                check_params_unchanged(began, round_, "its advance")
                if not values:
                    values.append(float(current_policy_metrics().get(_metric(lp), 0.0)))
                result = advance_round(round_)
                push_round(round_)
                done += 1
                _progress.update(done=done, stage=None)
                values.append(float(result["metrics"].get(_metric(lp), 0.0)))
                reason = stop_reason(lp, rounds_done=done, max_rounds=max_rounds, values=values,
                                     rejected=not result["accepted"], elapsed_s=time.monotonic() - started,
                                     collapsed=result.get("collapsed"))
                if reason:
                    break
    except LoopBusy as e:
        reason = str(e)
        logger.error(reason)
        raise
    except SharpenError as e:  # a failed stage (after its retries), bad params, a refused advance
        reason = str(e)
        raise
    finally:
        stop_loop_engines(ENGINES)  # the vLLM engines its stages shared (generate.server.lifetime: loop)
        end_loop_run(tracker_run, reason)
        record_stop({"first_round": first_round, "rounds_done": done, "reason": reason, "values": values,
                     "elapsed_s": round(time.monotonic() - started, 1)})
    logger.info(f"loop stopped after {done} round(s): {reason}")
    return reason


def _metric(lp) -> str:
    return lp.plateau.metric if lp.plateau else "greedy_accuracy"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} rounds is no loop; give 1 or more (or leave --rounds out for loop.max_rounds)")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["run", "serve", "deploy"], default="run")
    parser.add_argument("--rounds", type=_positive, default=None, help="rounds to run, >= 1 (default: loop.max_rounds)")
    parser.add_argument("--cron", help="serve: a cron schedule, e.g. '0 * * * *'")
    parser.add_argument("--interval", type=int, help="serve: seconds between scheduled runs")
    parser.add_argument("--name", default="sharpen-loop", help="serve, deploy: the deployment's name")
    parser.add_argument("--pool", help="deploy: the Prefect work pool whose workers run the loop (`prefect work-pool "
                        "create NAME --type process`, then `prefect worker start --pool NAME` where the workspace is)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show DVC's own lines around each stage too")
    parser.add_argument("--debug", action="store_true", help="on a failure, print tracebacks instead of one line")
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"
    if args.debug:
        os.environ[DEBUG_ENV] = "1"
    _quiet_prefect_tracebacks()
    if args.command == "deploy":
        if not args.pool:
            parser.error("deploy needs --pool NAME (a Prefect work pool: `prefect work-pool create NAME --type process`)")
        with boundary("deploy"):
            deploy(args.name, args.pool, cron=args.cron, interval=args.interval, rounds=args.rounds)
        return
    if args.command == "serve":
        # limit=1: at most one run at a time from this server; the workspace lock refuses any other loop
        loop.serve(name=args.name, cron=args.cron, interval=args.interval, limit=1,
                   parameters={"rounds": args.rounds})
        return
    global _foreground
    _foreground = True
    stop_on_signals(_stopped_by)  # also covers the start-up, before the flow engine runs
    _progress.update(asked=args.rounds)
    with boundary("loop"), workspace_lock():  # the lock, held across the run, refuses a second loop first
        start_prefect_server()
        print(loop(rounds=args.rounds))


SERVER_TRIES = 3


def start_prefect_server(tries: int = SERVER_TRIES) -> None:
    """Start Prefect's temporary server (ephemeral mode: no PREFECT_API_URL) before the flow does, retried:
    on a loaded machine it can miss its start-up timeout. Each try waits longer (the timeout, twice it, ...);
    after `tries` it stops with one line saying so. Nothing to do against a running Prefect server."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED,
                                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    base = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    server = SubprocessASGIServer()  # the one the flow's client uses
    for attempt in range(1, tries + 1):
        try:
            server.start(timeout=base * attempt)
            return
        except Exception as e:  # noqa: BLE001 -- a timeout, a port taken meanwhile: retried, then reported
            error = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            process, server.server_process, server.port, server.running = server.server_process, None, None, False
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            if attempt < tries:
                print(f"Prefect's temporary server did not start within {base * attempt} s (try {attempt} of {tries}; "
                      f"the machine may be busy); trying again for {base * (attempt + 1)} s", file=sys.stderr, flush=True)
    waits = ", ".join(f"{base * a} s" for a in range(1, tries + 1))
    raise SharpenError(
        f"Prefect's temporary server did not start in {tries} tries ({waits}; last: {error}). This is not a bug in "
        "your workspace: the machine is too busy to start it. Retry when it is less loaded, raise "
        f"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (now {base}), or start a Prefect server (`prefect server "
        "start`) and set PREFECT_API_URL to its address"
    )


def deploy(name: str, pool: str, *, cron: str | None, interval: int | None, rounds: int | None) -> None:
    """Register the loop as a deployment of `pool`: a worker of that pool (`prefect worker start --pool
    POOL`, on this machine or any that sees this workspace at the same path) runs it in a subprocess,
    from this directory, one run at a time. The pool must exist; the error names it otherwise."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            raise SharpenError(f"--pool: no Prefect work pool {pool!r} on {client.api_url}; create it with "
                               f"`prefect work-pool create {pool} --type process`") from None
    deployment_id = loop.from_source(source=str(Path.cwd()), entrypoint="flows/loop.py:loop").deploy(
        name=name, work_pool_name=pool, cron=cron, interval=interval, parameters={"rounds": rounds},
        concurrency_limit=1, build=False, push=False, print_next_steps=False)
    print(f"deployment sharpen-loop/{name} ({deployment_id}) on work pool {pool!r}; start a worker where this workspace "
          f"is: `prefect worker start --pool {pool}`; run it: `prefect deployment run sharpen-loop/{name}`")


def _quiet_prefect_tracebacks() -> None:
    """Prefect's engine logs every failed task and flow with its traceback; ours say what to do in
    one line, and any other traceback goes to a log file the line names (sharpen.errors)."""
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(QuietTracebacks())


if __name__ == "__main__":
    main()
