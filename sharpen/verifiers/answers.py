"""Final answers: the one answer a completion commits to, and whether it is in the form the task asks for.

A reward is the verifier's opinion of *the answer*, so the answer must be one answer, in final
form. `final_answer(completion)` reads it:

1. every `\\boxed{...}`: one value (repeats allowed), else `multiple`;
2. otherwise the text after the last "answer is" / "answer:", else the last line with a number
   (else the last line);
3. an equation keeps its right-hand side (`58 + 67 = 125`, `58 + 67 equals 125` → `125`).

`classify(text, form, prompt)` then decides the form (`ANSWER_FORMS`):

- `integer`: an integer literal (`125`, `-3`, `1,000`), words around it allowed ("It is 125.");
- `number`: an integer, a decimal, or a reduced fraction (`3/4`, `\\frac{3}{4}`);
- `expression` / `latex`: any expression math-verify reads (latex: only from `\\boxed{}`).

Rejections, each its own reason (`sharpen.schemas.VERDICT_REASONS`):
- `restated`: an unevaluated expression built from the prompt's own numbers (`37 * 6` for
  "What is 37 * 6?"), or, for expression forms, the prompt's own expression copied back;
- `not_final`: any other unevaluated expression where a number is asked for (`2^7`, `16/4`, `\\sqrt{16}`);
- `multiple`: several candidate answers (`12 or 13`, `4, 5`, two different boxed values);
- `unparseable`: no answer at all, or one longer than `MAX_ANSWER_CHARS`.

`auto` (the default) takes `integer` when the gold is an integer literal, `number` when it is a
number, `expression` otherwise. Used by `sharpen/verifiers/math.py`; `pytest tests/test_answers.py`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import gcd
from typing import Literal, NamedTuple

AnswerForm = Literal["auto", "integer", "number", "expression", "latex"]
ANSWER_FORMS = ("auto", "integer", "number", "expression", "latex")
FORM_REASONS = ("restated", "not_final", "multiple")  # the value may be right; the form is not an answer
MAX_ANSWER_CHARS = 512  # a final answer longer than this is not an answer (and would stall a parser)

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_EQUALS = re.compile(r"=|\b(?:equals|is\s+equal\s+to)\b", re.IGNORECASE)
_MARKER = re.compile(r"(?i)\b(?:final\s+answer|answer)\s*(?:is|:|=)?\s*:?")
# Unsigned number literals: 1,000,000 | 3.25 | \frac{3}{4} | 3/4 | 125   (a sign is read separately)
_FRAC = r"\\[dt]?frac\s*\{\s*(\d{1,400})\s*\}\s*\{\s*(\d{1,400})\s*\}"
_LITERAL = re.compile(rf"{_FRAC}|(\d{{1,3}}(?:,\d{{3}})+(?![\d,]))|(\d{{1,400}}\.\d{{1,400}}|\.\d{{1,400}})|(\d{{1,400}})\s*/\s*(\d{{1,400}})|(\d{{1,400}})")
_OPERATOR = re.compile(r"[-+*/^×÷!%=<>()\[\]{}]|\\(?:times|cdot|div|sqrt|frac|binom|log|ln|sum|prod|pm|mp)|\bsqrt\b|\blog\b|\bmod\b")
_NOISE = re.compile(r"\\[,;:! ]|\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|\\left|\\right|[$\s]")
_SYMBOL_OPS = {"\\times": "*", "\\cdot": "*", "×": "*", "\\div": "/", "÷": "/", "**": "^", "\\left": "", "\\right": "", "\\dfrac": "\\frac", "\\tfrac": "\\frac"}


class Final(NamedTuple):
    text: str | None  # the answer as read; None when there is none
    reason: str | None  # None: one answer was read; else why not ("multiple", "unparseable")


class Classified(NamedTuple):
    form: str  # "integer" | "number" | a rejection reason
    value: Fraction | None  # the exact value, where one literal was read
    literal: str | None = None  # that literal as written, with its sign


def _boxed_contents(text: str) -> list[str]:
    out = []
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end() : i - 1].strip())
    return out


def _strip(text: str) -> str:
    text = text.strip().strip("$").strip()
    while len(text) > 2 and text[0] == text[-1] and text[0] in "*_`":  # markdown emphasis or code
        text = text[1:-1].strip()
    for a, b in (("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(a) and text.endswith(b):
            text = text[len(a) : -len(b)].strip()
    return text.rstrip(".").strip()


def final_answer(completion: str) -> Final:
    """The one answer of a completion (see the module docstring)."""
    boxed = _boxed_contents(completion)
    if boxed:
        distinct = {_normalise(b) for b in boxed}
        if len(distinct) > 1:
            return Final("; ".join(boxed)[:MAX_ANSWER_CHARS], "multiple")
        text = boxed[-1]
    else:
        markers = list(_MARKER.finditer(completion))
        tail = completion[markers[-1].end() :] if markers else completion
        lines = [line for line in tail.splitlines() if line.strip()]
        if not lines:
            return Final(None, "unparseable")
        # the marker's line, else the last line with a number in it (a closing "Hope this helps!" is not the answer)
        text = lines[0] if markers else next((line for line in reversed(lines) if _LITERAL.search(line)), lines[-1])
    text = _EQUALS.split(text)[-1]  # an equation commits to its right-hand side ("=", "equals", "is equal to")
    text = _strip(text)
    if not text:
        return Final(None, "unparseable")
    if len(text) > MAX_ANSWER_CHARS:
        return Final(text[:MAX_ANSWER_CHARS], "unparseable")
    return Final(text, None)


def _normalise(text: str) -> str:
    """Spacing and operator spelling removed, so `37 \\times 6`, `37*6` and `37 × 6` read alike."""
    text = _strip(text)
    for a, b in _SYMBOL_OPS.items():
        text = text.replace(a, b)
    return re.sub(r"\s+", "", text)


def _literal_value(m: re.Match) -> tuple[Fraction, str]:
    """The value of one `_LITERAL` match and its kind: integer, decimal, fraction, or unreduced."""
    frac_num, frac_den, thousands, decimal, slash_num, slash_den, integer = m.groups()
    num, den = (frac_num, frac_den) if frac_num is not None else (slash_num, slash_den)
    if num is not None:
        n, d = int(num), int(den)
        if d == 0:
            return Fraction(0), "unreduced"
        return Fraction(n, d), "fraction" if d > 1 and gcd(n, d) == 1 else "unreduced"
    if thousands is not None:
        return Fraction(int(thousands.replace(",", ""))), "integer"
    if decimal is not None:
        return Fraction(decimal), "decimal"
    return Fraction(int(integer)), "integer"


def numbers_in(text: str) -> list[Fraction]:
    """Every number literal written in `text` (unsigned)."""
    return [_literal_value(m)[0] for m in _LITERAL.finditer(_normalise(text))]


def classify(text: str, form: str, prompt: str | None) -> Classified:
    """The form `text` is written in, for a task asking for `form` ("integer" or "number")."""
    norm = _NOISE.sub("", _normalise(re.sub(r",\s+", ";", text)))  # "1, 2" lists; "1,000" thousands
    literals = list(_LITERAL.finditer(norm))
    if not literals:
        return Classified("unparseable", None)
    rest = _LITERAL.sub("N", norm)
    sign = -1 if rest.startswith("-") else 1
    rest = rest[1:] if rest.startswith(("-N", "+N", "-(N", "+(N")) else rest
    if len(literals) == 1 and rest in ("(N)", "[N]", "{N}"):
        rest = "N"
    others = rest.replace("N", " ", 1) if len(literals) == 1 else rest
    if _OPERATOR.search(others):
        return Classified(_unevaluated(text, prompt), None)
    if len(literals) > 1:
        return Classified("multiple", None)
    value, kind = _literal_value(literals[0])
    value *= sign
    literal = ("-" if sign < 0 else "") + literals[0].group(0)
    if kind == "unreduced" or (form == "integer" and kind == "fraction"):
        return Classified(_unevaluated(text, prompt), value, literal)
    if form == "integer" and kind == "decimal":
        return Classified("not_final", value, literal)
    return Classified("integer" if kind == "integer" else "number", value, literal)


def _unevaluated(text: str, prompt: str | None) -> str:
    """`restated` when every number of an unevaluated answer comes from the prompt, else `not_final`."""
    if prompt is None:
        return "not_final"
    asked = set(numbers_in(prompt))
    used = numbers_in(text)
    return "restated" if used and all(n in asked for n in used) else "not_final"


def restates(text: str, prompt: str | None) -> bool:
    """Expression forms: the answer is the prompt's own expression copied back (an operator included)."""
    if prompt is None:
        return False
    norm = _NOISE.sub("", _normalise(text))
    return bool(_OPERATOR.search(norm)) and norm in _NOISE.sub("", _normalise(prompt))


def gold_form(gold: str) -> str:
    """`auto`'s choice for a gold answer: integer, number or expression."""
    found = classify(gold, "number", None)
    return found.form if found.form in ("integer", "number") else "expression"
