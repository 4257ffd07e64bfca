"""What a proposer wrote: the question it parses to, and how alike the batch's questions are.

`question_of(text, kind, program)` reads one proposal (None: unparsable). On the embedded arithmetic
task a question is an addition `a+b` (R-Zero: the first one written on a line, so an LLM's
"Here is one: 27 + 89 =" states 27+89) or a Python expression over integer literals (Absolute
Zero's program, scaled down: `sharpen.selfplay.execution` runs it); the tiny base learnt to write
them after the marker prompt `?` (`base.propose_fraction`). With `propose.program: function` (an LLM
proposer) an Absolute Zero question is a small Python program: definitions, then one call.

`repetition_penalty(questions, threshold)` is R-Zero's: questions are clustered by BLEU
similarity (average linkage: two clusters merge while the mean similarity between their members
is at least `threshold`, so a chain of near neighbours does not become one cluster), and each
question's penalty is its cluster's share of the batch. BLEU here is sentence BLEU over tokens (numbers, words and single
symbols), up to 4-grams (fewer for shorter questions), add-one smoothing above unigrams, with the
brevity penalty, symmetrised (the mean of both directions).
"""

from __future__ import annotations

import math
import re
from collections import Counter

ADDITION = re.compile(r"(?<![\w.+-])(\d{1,9})\s*\+\s*(\d{1,9})(?![\w.+])")
EXPRESSION_MAX_CHARS = 64
_TOKEN = re.compile(r"\d+|\w+|[^\w\s]")


PROGRAM_MAX_CHARS = 2048
_FENCE = re.compile(r"^\s*```[\w+-]*\s*$")


def call_line(line: str) -> str | None:
    """The call a top-level line states, unparsed (`f(4)`), or None: a call of a name, unindented,
    alone on its line; `print(f(4))` states `f(4)`, and a trailing comment (`f(4)  # 11`) is
    dropped, as Python drops it."""
    import ast

    if not line[:1].isalpha() and not line.startswith("_"):
        return None
    try:
        tree = ast.parse(line)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr) or not isinstance(tree.body[0].value, ast.Call):
        return None
    call = tree.body[0].value
    printed = isinstance(call.func, ast.Name) and call.func.id == "print" and not call.keywords
    if printed and len(call.args) == 1 and isinstance(call.args[0], ast.Call):
        call = call.args[0]
    return ast.unparse(call) if isinstance(call.func, ast.Name) else None


def program_of(text: str) -> str | None:
    """A function-form program (definitions, then one or more calls with literal arguments, a line
    each), normalised by Python's own unparser; None if the text holds none. Code fences are
    ignored; the program ends at the last of the call lines that directly follow the first call
    line completing it (whatever comes after is ignored). A call line written as `print(f(4))`
    states the call `f(4)`: the sandbox calls f and the value returned is the gold, so nothing is
    printed either way; a comment after a call is dropped (`call_line`)."""
    import ast

    lines = [line for line in text.replace("\r\n", "\n").split("\n") if not _FENCE.match(line)]
    stated = [call_line(line) for line in lines]
    lines = [call or line for call, line in zip(stated, lines, strict=True)]
    starts = [i for i, line in enumerate(lines) if line.startswith("def ")]
    calls = [i for i, call in enumerate(stated) if call is not None]
    for start in starts[:1]:  # the program starts at the first definition; prose before it is ignored
        for end in (i for i in calls if i > start):
            source = "\n".join(lines[start : end + 1])
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError, MemoryError, RecursionError):
                continue
            while end + 1 in calls:  # more calls, a line each
                try:
                    tree = ast.parse("\n".join(lines[start : end + 2]))
                except (SyntaxError, ValueError, MemoryError, RecursionError):
                    break
                end += 1
            source = ast.unparse(tree)
            if len(source) > PROGRAM_MAX_CHARS or not source.isascii():
                return None
            return source
    return None


def question_of(text: str, kind: str, program: str = "expression") -> str | None:
    """The question a proposal states, normalised (no spaces; a function-form program unparsed), or
    None if it is not one."""
    if kind == "absolute-zero" and program == "function":
        return program_of(text)
    if kind == "r-zero":  # the first addition written on one line, whatever surrounds it
        m = next((m for line in text.split("\n") if (m := ADDITION.search(line))), None)
        return f"{int(m.group(1))}+{int(m.group(2))}" if m else None
    line = text.strip().split("\n", 1)[0].strip()
    if kind == "absolute-zero":
        line = line.removesuffix("=").strip()
        if not line or len(line) > EXPRESSION_MAX_CHARS or not line.isascii():
            return None
        return line.replace(" ", "")
    raise ValueError(f"propose.kind: {kind!r} has no proposal format")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def bleu(candidate: list[str], reference: list[str]) -> float:
    """Sentence BLEU of `candidate` against one reference (see the module docstring)."""
    if not candidate or not reference:
        return 0.0
    order = min(4, len(candidate), len(reference))
    logs = []
    for n in range(1, order + 1):
        cand = Counter(tuple(candidate[i : i + n]) for i in range(len(candidate) - n + 1))
        ref = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
        overlap = sum((cand & ref).values())
        total = sum(cand.values())
        if n == 1 and overlap == 0:
            return 0.0
        logs.append(math.log((overlap + (n > 1)) / (total + (n > 1))))
    brevity = min(0.0, 1 - len(reference) / len(candidate))
    return math.exp(brevity + sum(logs) / order)


def similarity(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    return (bleu(ta, tb) + bleu(tb, ta)) / 2


def clusters(questions: list[str], threshold: float) -> list[int]:
    """A cluster id per question: average-linkage agglomeration on similarity, stopped at `threshold`."""
    distinct = list(dict.fromkeys(questions))
    count = {q: 0 for q in distinct}
    for q in questions:
        count[q] += 1
    n = len(distinct)
    sim = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            sim[i][j] = sim[j][i] = similarity(distinct[i], distinct[j])
    members = {i: [i] for i in range(n)}
    size = {i: count[distinct[i]] for i in range(n)}  # identical questions are one cluster from the start
    while len(members) > 1:
        keys = list(members)
        best, pair = threshold, None
        for x, a in enumerate(keys):
            for b in keys[x + 1 :]:
                if sim[a][b] >= best:
                    best, pair = sim[a][b], (a, b)
        if pair is None:
            break
        a, b = pair
        for c in members:  # Lance-Williams update for average linkage (weighted by proposals)
            if c not in (a, b):
                sim[a][c] = sim[c][a] = (size[a] * sim[a][c] + size[b] * sim[b][c]) / (size[a] + size[b])
        members[a] += members.pop(b)
        size[a] += size.pop(b)
    cluster_of = {}
    for cid, (_, ids) in enumerate(sorted(members.items())):
        for i in ids:
            cluster_of[distinct[i]] = cid
    return [cluster_of[q] for q in questions]


def repetition_penalty(questions: list[str], threshold: float) -> tuple[list[int], list[float]]:
    """(cluster id, penalty = the cluster's share of the batch) for each question."""
    ids = clusters(questions, threshold)
    sizes = Counter(ids)
    return ids, [sizes[c] / len(questions) for c in ids]
