"""A job's two untrusted-code processes, each forked from the zygote by the job's supervisor.

- C, the candidate (`run_candidate`): confines itself (`confine.py`), runs the program, then
  (kinds `tests`, `calls`) answers calls of its functions over a socket (`_serve`): [name, args,
  kwargs] in, ["ok", result] | ["raise", exception name, text] | ["bad", why] out, all in
  `wire.encode`'s data-only form.
- T, the tests (`run_tests`, kind `tests` only; trusted problem code, confined the same way
  under another uid): receives the prompt and tests only after C was forked, runs the prompt's
  helpers (its stubs are dropped), and binds every other name the tests use that is not a
  builtin to a proxy (`_proxy`) that calls C. T holds only builtins decoded afresh, so no object
  of C's (an always-equal result, a patched builtin) reaches it. Tests that never got an answer
  from C exit 3: nothing was checked.

Each never returns: it exits with the program's (C) or the tests' (T) status.
Standard library only, run inside the sandbox. Not run on its own; tested by
`pytest tests/test_sandbox.py tests/test_reward_hacks.py`.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import sys
import traceback

from .confine import confine, not_dumpable, private_mounts, redirect
from .wire import decode, encode, read_message, write_message


def flush() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass


def exit_code(e: SystemExit) -> int:
    code = e.code
    return code if type(code) is int else (0 if code is None else 1)


# --- C: the candidate -----------------------------------------------------------------------------


def run_candidate(job: dict, sock: int | None, out: int, err: int, namespaces: bool) -> None:
    """C: run the program; then answer calls. Never returns."""
    code = 1
    try:
        os.setsid()
        limits = job["limits"]
        if namespaces:
            private_mounts(limits, job["uid"], job["workdir"], True)
        workdir = job["workdir"]
        redirect(out, err, () if sock is None else (sock,))
        confine(limits, job["uid"], job["nproc"])
        os.chdir(workdir)
    except BaseException:
        traceback.print_exc()
        os._exit(70)
    try:
        sys.argv = ["program.py"]
        scope = {"__name__": "__main__", "__builtins__": builtins}
        exec(compile(job["program"], "program.py", "exec"), scope)
        if sock is not None:
            _serve(sock, scope)
        code = 0
    except SystemExit as e:
        code = exit_code(e)
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    flush()
    os._exit(code)


def _serve(sock: int, scope: dict) -> None:
    """Answer [name, args, kwargs] with ["ok", result] | ["raise", exception name, text] | ["bad", why]."""
    while True:
        message = read_message(sock)
        if message is None:
            return
        name, args, kwargs = decode(message)
        try:
            fn = scope[name]
            result = fn(*args, **kwargs)
            try:
                reply = encode(["ok", result])
            except (TypeError, ValueError, RecursionError) as e:
                reply = encode(["bad", f"{name} returned {e}"[:300]])
        except SystemExit:
            raise
        except BaseException as e:
            reply = encode(["raise", type(e).__name__, _text(e)])
        write_message(sock, reply)


def _text(e: BaseException) -> str:
    try:
        return str.__str__(str(e))[:300]
    except BaseException:
        return "<unprintable>"


# --- T: the tests ---------------------------------------------------------------------------------

_ANSWERED = [0]  # calls the candidate answered with data, in this tests process


class CandidateError(Exception):
    """The candidate's function did not give a data result (it died, or returned an object)."""


def _proxy(name: str, sock: int):
    def call(*args, **kwargs):
        try:
            write_message(sock, encode([name, list(args), kwargs]))
            message = read_message(sock)
        except OSError as e:
            raise CandidateError(f"{name}: the candidate process is gone ({e})") from None
        if message is None:
            raise CandidateError(f"{name}: the candidate process exited")
        reply = decode(message)
        if reply[0] == "ok" and len(reply) == 2:
            _ANSWERED[0] += 1
            return reply[1]
        if reply[0] == "raise" and len(reply) == 3:
            kind = getattr(builtins, str(reply[1]), None)
            if isinstance(kind, type) and issubclass(kind, Exception) and kind is not AssertionError:
                raise kind(reply[2])
            raise CandidateError(f"{name} raised {str(reply[1])[:80]}: {reply[2]}")
        raise CandidateError(f"{name}: {str(reply[-1])[:300]}")

    call.__name__ = name
    return call


def _stubs(tree: ast.Module) -> set[str]:
    """Functions the prompt only declares (a docstring, `pass`, `...`, imports): the candidate writes them."""
    def empty(stmt) -> bool:
        return isinstance(stmt, (ast.Pass, ast.Import, ast.ImportFrom)) or (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        )

    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and all(map(empty, n.body))}


def _prompt_tree(prompt: str) -> ast.Module | None:
    for source in (prompt, prompt + "\n    pass\n"):
        try:
            return ast.parse(source)
        except SyntaxError:
            continue
    return None


def run_tests(job: dict, tests_fd: int, sock: int, out: int, err: int, namespaces: bool) -> None:
    """T: run the problem's tests with the candidate's functions behind proxies. Never returns."""
    try:
        os.setsid()
        spec = json.loads(read_message(tests_fd) or b"{}")
        limits = job["limits"]
        if namespaces:
            private_mounts(limits, job["tests_uid"], job["tests_workdir"], False)
        redirect(out, err, (sock,))
        confine(limits, job["tests_uid"], job["nproc"])
        not_dumpable()
        os.chdir(job["tests_workdir"])
        scope: dict = {"__name__": "__main__", "__builtins__": builtins}
        tree = _prompt_tree(spec.get("prompt") or "")
        if tree is not None:
            exec(compile(tree, "prompt.py", "exec"), scope)
            for name in _stubs(tree):
                del scope[name]
        tests = ast.parse(spec["tests"])
        for node in ast.walk(tests):
            if isinstance(node, ast.Name) and node.id not in scope and not hasattr(builtins, node.id):
                scope[node.id] = _proxy(node.id, sock)
        exec(compile(tests, "tests.py", "exec"), scope)
        if _ANSWERED[0] == 0:
            print("the tests never called the program: nothing was checked, so nothing is passed", file=sys.stderr)
            code = 3
        else:
            code = 0
    except SystemExit as e:
        code = exit_code(e)
    except BaseException:
        traceback.print_exc()
        code = 1
    flush()
    os._exit(code)
