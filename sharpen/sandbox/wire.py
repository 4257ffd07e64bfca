"""The sandbox's wire format: how messages and values cross between its processes.

- Messages: `write_message(fd, data)` / `read_message(fd, deadline)`, a 4-byte big-endian length
  then the bytes, over a pipe or socket (host <-> zygote, zygote <-> job, tests <-> candidate).
- Values: `encode(value)` / `decode(data)`, a data-only JSON form of exact builtin types (None,
  bool, int, float, complex, str, bytes, list, tuple, set, frozenset, dict), nothing with methods
  of its own, so a decoded value is always a fresh builtin, never an object of the sender's.

Standard library only: it runs inside the sandbox as part of the zygote (`zygote.py`) as well as
on the host (`sharpen.sandbox`). Not run on its own; tested by `pytest tests/test_sandbox.py`.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time

MAX_MESSAGE = 64 << 20
MAX_DEPTH = 100

# --- data-only encoding: exact builtin types, nothing with methods of its own --------------------


def _enc(x, depth: int):
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(x)
    if x is None:
        return ["n"]
    if t is bool:
        return ["b", x is True]
    if t is int:
        return ["i", int.__index__(x).__format__("x") if x >= 0 else "-" + (-x).__format__("x")]
    if t is float:
        return ["f", float.hex(x)]
    if t is complex:
        return ["c", float.hex(x.real), float.hex(x.imag)]
    if t is str:
        return ["s", str.__str__(x)]
    if t is bytes:
        return ["y", bytes.hex(x)]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
        return [tag, [_enc(v, depth + 1) for v in t.__iter__(x)]]
    if t is dict:
        return ["d", [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in dict.items(x)]]
    raise TypeError(f"not data: a {t.__name__!s:.60} (only None, bool, int, float, complex, str, bytes, list, tuple, set, dict)")


def encode(value) -> bytes:
    return json.dumps(_enc(value, 0), ensure_ascii=True).encode()


class DecodeError(ValueError):
    """Bytes that are not `encode`'s data-only form."""


def _dec(x, depth: int):
    if depth > MAX_DEPTH or type(x) is not list or not x or type(x[0]) is not str:
        raise DecodeError("malformed value")
    tag, rest = x[0], x[1:]
    try:
        if tag == "n" and not rest:
            return None
        if tag == "b" and len(rest) == 1 and type(rest[0]) is bool:
            return rest[0]
        if tag == "i" and len(rest) == 1 and type(rest[0]) is str and len(rest[0]) < 1 << 20:
            return int(rest[0], 16)
        if tag == "f" and len(rest) == 1 and type(rest[0]) is str:
            return float.fromhex(rest[0])
        if tag == "c" and len(rest) == 2 and all(type(r) is str for r in rest):
            return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
        if tag == "s" and len(rest) == 1 and type(rest[0]) is str:
            return rest[0]
        if tag == "y" and len(rest) == 1 and type(rest[0]) is str:
            return bytes.fromhex(rest[0])
        if tag in ("l", "t", "S", "F") and len(rest) == 1 and type(rest[0]) is list:
            items = [_dec(v, depth + 1) for v in rest[0]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and len(rest) == 1 and type(rest[0]) is list:
            pairs = rest[0]
            if not all(type(p) is list and len(p) == 2 for p in pairs):
                raise DecodeError("malformed dict")
            return {_dec(k, depth + 1): _dec(v, depth + 1) for k, v in pairs}
    except (ValueError, TypeError, OverflowError) as e:  # unhashable set member, bad hex, ...
        raise DecodeError(f"malformed {tag!r}: {e}") from None
    raise DecodeError(f"unknown or malformed tag {tag!r}")


def decode(data: bytes):
    if len(data) > MAX_MESSAGE:
        raise DecodeError("value too large")
    try:
        return _dec(json.loads(data), 0)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise DecodeError(str(e)[:200]) from None


# --- messages: a 4-byte big-endian length, then the bytes -----------------------------------------


def write_message(fd: int, data: bytes) -> None:
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None = None, limit: int = MAX_MESSAGE) -> bytes | None:
    """One message, or None at end of file. Reads exactly its bytes: nothing of the next message."""
    head = _read_exact(fd, 4, deadline)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > limit:
        raise DecodeError(f"frame of {n} bytes over the limit")
    return _read_exact(fd, n, deadline) if n else b""
