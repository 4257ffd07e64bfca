"""Final answers: the one answer a completion commits to, stated once, unhedged, in the form the task asks for.

A reward is the verifier's opinion of *the answer*; whatever it wrongly pays for is what the policy
learns. `final_answer(completion)` reads the answer (README, Verifiers: the table of rules):

1. characters: every dash, minus and plus sign (`−` `–` `—` `‐` `﹣` `－` `＋`) reads as `-`/`+`, `±` as
   `\\pm`, `×` `·` `÷` as operators, any decimal digit (`７`) as a digit, Unicode and zero-width spaces as spaces;
2. the answer: the last `\\boxed{}`/`\\fbox{}`, else the last answer statement (the rest of the
   sentence after "answer is", "answer:", "final answer", "#### 72"), else the last sentence with a
   digit of the last line with one ("Let me think. 125" is 125; "Hope this helps!" is no answer);
3. one claim, else `multiple`: every box and answer statement (with a box in its sentence: "The
   answer is 7, \\boxed{5}" says `7, 5`), and every sentence beside the answer that restates a number
   (a correction, "So 7.", a bare number), must agree with it (equal values, or equal spelling); so
   must the rest of the box's sentence ("\\boxed{5} (or 7)"); a box nobody can read (no brace, never
   closed) is a candidate: `multiple` beside a box, else `unparseable`;
4. no hedge, else `not_final`: in the answer's sentence no approximation, bound or question (`~`
   `≈` `\\approx` "about" "roughly" "at least" "under" `125?`); in it, after it, or in the sentence
   before a bare answer, no uncertainty ("maybe" "I think" "not sure" "if correct" "unless");
5. equations, else `multiple`: a derivation ("so", "thus", `\\Rightarrow`) is read from its last
   step, and no earlier step may give the same name, or be a bare number of, another value
   (`x = 3, so x = 5`); a chain commits to its last side (`58 + 67 = 125`, `x = 125`), every other
   side that is arithmetic on numbers must equal it (`58 + 67 = 124 = 125`), and no side may list
   alternatives (`x = 3 or x = 5`, `x=3, x=5`, `x=3 x=5`).

`classify(text, form, prompt)` then decides the form (`ANSWER_FORMS`) of a number answer:
- `integer`: one integer literal, words around it allowed ("It is -7.", `(-7)`, `\\text{125}`);
- `number`: an integer, a decimal or a reduced fraction (`0.5`, `3/4`, `\\frac{3}{4}`);
- separators: `,` between 3-digit groups, and LaTeX's `{,}` `\\,` `\\!` there, join thousands
  (`1,000`, `1\\,000`, `10,\\!000`); a space never does (`1 2 5`, `1 000`: several numbers);
- decimals: a decimal point has digits right after it ("The answer. 5" is 5); a leading-dot decimal
  needs nothing, a sign, a bracket, `=`, `:` or a space before it (`.5`, `x = .5`), not a word (`answer.5`: 5);
- signs: a `-` is the number's sign after nothing, a bracket, `=`, `:` or a word ("It is -7"), an
  operator after a variable or number (`x - 7`); "minus"/"negative" 7 is -7;
- a LaTeX command, math symbol (`√` `²` `½` `≠`) or implicit product (`2x`, `2pi`) beside it: unevaluated.
`expression` / `latex`: an expression math-verify reads (latex: only from `\\boxed{}`), in final
form (`sharpen/verifiers/expressions.py` says what that is).

Rejections, each its own reason (`sharpen.schemas.VERDICT_REASONS`):
- `restated`: an unevaluated expression built from the prompt's own numbers (`37 * 6` for
  "What is 37 * 6?"), or, for expression forms, the prompt's own expression copied back;
- `not_final`: any other unevaluated expression where a number is asked for (`2^7`, `16/4`,
  `\\cos 0`, `5²`), an expression not in final form, or a hedged answer;
- `multiple`: several candidate answers (`12 or 13`, `4, 5`, `1 2 5`, two different boxed values);
- `unparseable`: no answer at all, or one longer than `MAX_ANSWER_CHARS`.
`auto` (the default) takes `integer` when the gold is an integer literal, `number` when it is a
number, `expression` otherwise. Used by `sharpen/verifiers/math.py`; `pytest tests/test_answers.py tests/test_math_hacks.py`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from fractions import Fraction
from math import gcd
from typing import Literal, NamedTuple

from sharpen.verifiers.expressions import arithmetic, split_equals, top_level

AnswerForm = Literal["auto", "integer", "number", "expression", "latex"]
ANSWER_FORMS = ("auto", "integer", "number", "expression", "latex")
FORM_REASONS = ("restated", "not_final", "multiple")  # the value may be right; the form is not an answer
MAX_ANSWER_CHARS = 512  # a final answer longer than this is not an answer (and would stall a parser)

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_START = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])\s*")
_MARKER = re.compile(r"(?i)\bfinal\s+answer\b\s*(?:is\b|:|=)?\s*:?|\banswer\s*(?:is\b|:|=)\s*:?|#{4}(?=\s*[-+$\\]?\s*\.?\d)")  # "#### 72", not "#### Step 1"
# Unsigned number literals: \frac{3}{4} | 3.25 | .25 | 3/4 | 125   (signs and thousands are read before)
_FRAC = r"\\frac\s*\{\s*(\d{1,400})\s*\}\s*\{\s*(\d{1,400})\s*\}"
_LITERAL = re.compile(rf"{_FRAC}|(\d{{1,400}}\.\d{{1,400}}|(?<![\w.)\]}}])\.\d{{1,400}})|(\d{{1,400}})\s*/\s*(\d{{1,400}})|(\d{{1,400}})", re.ASCII)
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:(?:\{,\}\\!|,\\!|\{,\}|\\,|\\!|,)\d{3})+(?!\d)")
_OPERATOR = re.compile(r"[-+*/^×÷!%=<>()\[\]{}|]|\\[A-Za-z]+|\bsqrt\b|\blog\b|\bmod\b|\x01(?:[A-Za-z]|pi)(?![A-Za-z])")
_RESTATE_OP = re.compile(r"[-+*/^×÷!%=<>()\[\]{}]|\\(?:times|cdot|div|sqrt|frac|binom|log|ln|sum|prod|pm|mp)|\bsqrt\b|\blog\b|\bmod\b")
_NOISE = re.compile(r"\\[,;:! ]|\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|\\left|\\right|[$\s]")
_SYMBOL_OPS = {"\\times": "*", "\\cdot": "*", "×": "*", "\\div": "/", "÷": "/", "**": "^", "\\left": "", "\\right": "", "\\dfrac": "\\frac", "\\tfrac": "\\frac"}
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|textup|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")
_SPACE_CMD = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])|\\displaystyle(?![A-Za-z])|\\(?:big|Big|bigg|Bigg)[lr]?(?![A-Za-z])|~|\\[()\[\]]|\^\s*\{?\s*\\circ\s*\}?|°")
_EMPHASIS = re.compile(r"(?<![\w)])\*\*|\*\*(?![\w(])|(?<![\w\\])__|__(?!\w)")
_PROSE_LEAD = re.compile(r"^(?:[A-Za-z]{2,}[\s,:]+)+")
_DERIVES = re.compile(r"(?i)\b(?:so|thus|hence|therefore|then|giving|gives|implies|we\s+get|that\s+is|equivalently)\b(?!\.)"
                      r"|\bi\.e\.|\\(?:Rightarrow|implies|Longrightarrow|therefore)(?![A-Za-z])|[⇒→⟹∴]")
_JUXTAPOSED = re.compile(r"\s*[-+]?[\d.]+\s+[A-Za-z](?:_\{?\w+\}?)?\s*")  # `x = 3 x = 5`: a number, then a name
_ALTERNATIVES = re.compile(r"(?i)[,;&∨]|\bor\b|\band\b|\\\\|\\(?:lor|vee)(?![A-Za-z])")
_MATH = re.compile(r"[\d\\^=+*/]|(?<![A-Za-z])(?![aAI](?![A-Za-z]))[A-Za-z](?![A-Za-z])")  # a digit, LaTeX, a variable
_ALT_AFTER = re.compile(r"[^.!?\n]*?(?:\bor\b|\band\b|,|;)\s*[$(\[]*\s*[-+]?\.?\d", re.IGNORECASE)  # "\boxed{5} (or 7)"
_BOUNDARY = re.compile(r"(?<![Aa]pprox)(?<![Ee]st)(?<!\b[Cc]a)(?<!e\.g)(?<!i\.e)(?<!\bvs)[.!?](?=\s|$)|\n")  # not "approx. 5"
# qualifiers: approximations and bounds (only where the answer is stated), uncertainty (also around it)
_NUM_AHEAD = r"(?=[\s$*_(\[{:]*(?:\\[A-Za-z]+\s*\{?[\s$]*)*[-+]?\s*\.?\d)"
_APPROX = re.compile(
    r"(?i)\b(?:roughly|approximately|approx|estimated?|estimates?|circa)\b|\best\.(?!\w)"
    r"|\b(?:about|around|nearly|almost|close\s+to|at\s+(?:least|most)|(?:more|less|fewer|greater|smaller)\s+than"
    rf"|up\s+to|on\s+the\s+order\s+of|ca\.|under|over|below|above|within|exceeding|upwards\s+of){_NUM_AHEAD}"
    r"|\d\s*-?ish\b|\bor\s+(?:so|thereabouts|close|near|about|more|less|fewer|greater|higher|lower|above|below)\b"
    r"|\bgive\s+or\s+take\b|\b(?:vicinity|neighbou?rhood|ballpark|range)\s+of\b|\bat\s+(?:minimum|maximum)\b"
    r"|\?|[≈≃≅∼≒≊⋍]|\\(?:approx|approxeq|sim|simeq|backsim|backsimeq|eqsim|cong|thickapprox|thicksim"
    r"|lesssim|gtrsim|lessapprox|gtrapprox|doteq)(?![A-Za-z])"
    r"|(?<![\w\\=])~\s*(?=[-+]?\s*[\d.(\\$])")
_UNSURE = re.compile(
    r"(?i)\b(?:maybe|perhaps|probably|possibly|presumably|likely|guess(?:ed|ing)?|I\s+(?:think|believe|suppose|assume|reckon|feel)"
    r"|I'?d\s+say|I\s+would\s+say|(?:un|fairly|pretty|reasonably|somewhat)\s*(?:sure|certain|confident)|uncertain"
    r"|not\s+(?:\S+\s+){0,2}?(?:sure|certain|confident)|tentative(?:ly)?|unverified|unconfirmed"
    r"|(?:could|might|may)\s+(?:also\s+)?be"
    r"|seems?|appears?\s+to|if\s+(?:I'?m\s+|I\s+am\s+)?(?:correct|right|not\s+mistaken|true|accurate)"
    r"|if\s+(?:I|we|my|our|the|this|that|these|it)\b[^.?!\n]{0,40}?\b(?:correct|right|accurate|holds)|unless|assuming"
    r"|(?:if|barring)\s+(?:no|any)\s+(?:mistakes?|errors?)"
    r"|don'?t\s+know|no\s+idea|hopefully)\b")  # not "I hope it is correct" (the MATH few-shot sign-off)
_CORRECTION = re.compile(r"(?i)^[\W_]*(?:actually|wait|correction|sorry|oops|rather|instead|alternatively|or|no|hmm)\b")
_LEAD = re.compile(r"(?i)^[\W_]*(?:so|thus|therefore|hence|then|finally|i\.e\.|that\s+is)\b[\W_]*")
_SIGNS = {"±": "\\pm ", "∓": "\\mp ", "×": "\\times ", "·": "\\cdot ", "⋅": "\\cdot ", "∗": "*", "÷": "\\div ", "⁄": "/",
          "∕": "/", "．": ".", "，": ",", "＝": "=", "（": "(", "）": ")"}  # dashes, minus and plus signs: by name


class Final(NamedTuple):
    text: str | None  # the answer as read; None when there is none
    reason: str | None  # None: one answer was read; else why not ("multiple", "unparseable", "not_final")
    sides: tuple[str, ...] = ()  # an equation's other sides that math.py must still find equal to `text`


class Classified(NamedTuple):
    form: str  # "integer" | "number" | a rejection reason
    value: Fraction | None  # the exact value, where one literal was read
    literal: str | None = None  # that literal as written, with its sign


@functools.lru_cache(maxsize=None)
def _char(char: str) -> str:
    """One character's plain spelling: a sign or digit in ASCII, a Unicode space as a space."""
    if char in _SIGNS:
        return _SIGNS[char]
    if unicodedata.decimal(char, None) is not None:
        return str(unicodedata.decimal(char))
    name = unicodedata.name(char, "")
    if unicodedata.category(char) == "Pd" or any(w in name for w in ("MINUS", "DASH", "HYPHEN")):
        return "-"  # ﹘7, ⁻7: every dash or minus reads as one
    if "PLUS" in name:
        return "+"
    return " " if unicodedata.category(char) in ("Zs", "Cf") else char


def canonical_chars(text: str) -> str:
    """Rule 1 of the module docstring: the characters a number or sign can hide behind, made ASCII."""
    return text if text.isascii() else "".join(c if c.isascii() else _char(c) for c in text)


class _Box(NamedTuple):
    start: int
    end: int
    content: str


def _boxes(text: str) -> tuple[list[_Box], bool]:
    """Every top-level box, and whether some box cannot be read (no brace, or never closed)."""
    out: list[_Box] = []
    broken, end = False, -1
    for m in _BOX_START.finditer(text):
        if m.start() < end:
            continue  # inside the previous box
        i = m.end()
        if i >= len(text) or text[i] != "{":
            broken = True
            continue
        depth, j = 0, i
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
            if depth == 0:
                break
        if depth:
            return out, True
        inner = _BOX_START.sub("", text[i + 1 : j - 1])  # \boxed{\boxed{5}} is one box
        out.append(_Box(m.start(), j, inner.strip()))
        end = j
    return out, broken


def _strip(text: str) -> str:
    text = text.strip().strip("$").strip()
    while len(text) > 2 and text[0] == text[-1] and text[0] in "*_`":  # markdown emphasis or code
        text = text[1:-1].strip()
    for a, b in (("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(a) and text.endswith(b):
            text = text[len(a) : -len(b)].strip()
    return text.rstrip(".").strip()


def _sentence(text: str, start: int, end: int | None = None) -> tuple[int, int]:
    """The span of the sentence holding text[start:end] (sentences end at `.!?` before a space, or a line break)."""
    i = start
    while i > 0 and not _BOUNDARY.match(text, i - 1):
        i -= 1
    m = _BOUNDARY.search(text, start if end is None else end)
    return i, (m.end() if m else len(text))


def _previous(text: str, start: int) -> int:
    """Where the sentence before the one starting at `start` starts (blank lines skipped)."""
    while start > 0 and text[start - 1].isspace():
        start -= 1
    return _sentence(text, start - 1)[0] if start > 0 else 0


def _claims(masked: str, boxes: list[_Box]) -> list[tuple[int, int, str]]:
    """(start, end, text) of every answer statement: the text after a marker up to its sentence's end,
    or up to and with the content of a box in that sentence ("The answer is $x = \\boxed{5}$" says
    `x = 5`; "The answer is 7, \\boxed{5}" says `7, 5`); one of prose only ("is below") says nothing."""
    out = []
    for m in _MARKER.finditer(masked) if "answer" in masked.lower() or "####" in masked else ():
        start = m.end()
        line_end = masked.find("\n", start)
        line_end = len(masked) if line_end < 0 else line_end
        if not masked[start:line_end].strip(" \t*_:$"):  # "Final answer:\n125"
            nxt = re.search(r"\S", masked[line_end:])
            start = line_end + nxt.start() if nxt else len(masked)
        stop = _BOUNDARY.search(masked, start)
        stop = stop.start() if stop else len(masked)
        box = masked.find("\x00", start, stop)
        claim = masked[start:stop] if box < 0 else masked[start:box] + next(b.content for b in boxes if b.start == box)
        if _MATH.search(re.sub(r"\\[\[\]()]", "", claim)):  # not prose only ("the answer is below"), not `\\[`
            out.append((m.start(), start + len(claim), claim))
    return out


def final_answer(completion: str) -> Final:
    """The one answer of a completion (see the module docstring)."""
    text = canonical_chars(completion)
    boxes, broken = _boxes(text)
    if broken:
        return Final("; ".join(b.content for b in boxes)[:MAX_ANSWER_CHARS] or None, "multiple" if boxes else "unparseable")
    masked = text
    for box in boxes:
        masked = masked[: box.start] + "\x00" * (box.end - box.start) + masked[box.end :]
    claims = _claims(masked, boxes)
    others = [b.content for b in boxes[:-1]] + [c[2] for c in claims]
    before = ""  # the answer line's sentences before the answer, where the answer is a line's last sentence
    if boxes:
        start, end, answer = boxes[-1]
    elif claims:
        start, end, answer = claims[-1]
        others = others[:-1]
    else:
        start, end, answer, before = _last_sentence(masked)
    answer = _strip(answer)
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return Final(answer[:MAX_ANSWER_CHARS] or None, "unparseable")
    resolved, reason, sides = _resolve(answer)
    if reason:
        return Final(answer, reason)
    key = _key(resolved)
    if any(_key(_strip(other)) != key for other in others):
        return Final("; ".join([*others, answer])[:MAX_ANSWER_CHARS], "multiple")
    if _MATH.search(answer) and _hedged(text, start, end):
        return Final(answer, "not_final")
    after = _sentence(masked, end, end)[1]
    if not before:  # "So 7. \\boxed{5}": a conclusion right before the answer is a claim too
        prev = masked[_previous(masked, _sentence(masked, start)[0]) : _sentence(masked, start)[0]]
        before = prev if _LEAD.match(prev) or _CORRECTION.match(prev) else ""
    if _ALT_AFTER.match(masked, end, after) or (key[0] == "n" and _contradicted(before + "\n" + masked[after:], key)):
        return Final(answer, "multiple")
    return Final(_strip(resolved), None, sides)


def _last_sentence(masked: str) -> tuple[int, int, str, str]:
    """The last sentence with a digit, of the last line with one (a closing "Hope this helps!" is not the
    answer; "Let me think. 125" is 125), else the last line; and that line's text before it."""
    lines = [m for m in re.finditer(r"[^\n]*\S[^\n]*", masked)]
    if not lines:
        return 0, 0, "", ""
    line = next((m for m in reversed(lines) if re.search(r"\d", m.group())), lines[-1])
    cuts = [0] + [b.end() for b in _BOUNDARY.finditer(line.group())]
    cut = next((c for c in reversed(cuts) if re.search(r"\d", line.group()[c:])), 0)
    return line.start() + cut, line.end(), line.group()[cut:], line.group()[:cut]


def _hedged(text: str, start: int, end: int) -> bool:
    """Rule 4: a qualifier in the answer's sentence, or an uncertainty before a bare answer or after it."""
    s, e = _sentence(text, start, end)
    if _APPROX.search(text, s, e) or _UNSURE.search(text, s):
        return True
    return _wordless(text[s:e]) and bool(_UNSURE.search(text, _previous(text, s), s))


def _wordless(text: str) -> bool:
    """No word in it (LaTeX commands aside): a bare number or equation."""
    return not re.search(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", "", text))


def _contradicted(text: str, key: tuple) -> bool:
    """Rule 3 beside the answer: a sentence that restates another number ("So 7.", "Actually, it is 7.")."""
    for sentence in _BOUNDARY.split(text):
        if not re.search(r"\d", sentence) or not (_CORRECTION.match(sentence) or _wordless(_LEAD.sub("", sentence))):
            continue  # an explanation ("She sold 48 in April.") is not a second answer
        resolved, reason, _ = _resolve(_LEAD.sub("", sentence))
        found = classify(resolved, "number", None)
        if reason or found.form == "multiple" or (found.form in ("integer", "number") and ("n", found.value) != key):
            return True
    return False


def _resolve(text: str) -> tuple[str, str | None, tuple[str, ...]]:
    """Rule 5: (the last side, a rejection reason or None, the number sides math.py must still compare).
    A derivation (`3x = 15, so x = 5`, `\\Rightarrow`) is judged from its last step."""
    step = _last_step(text)
    if step is None:
        return text, "multiple", ()
    sides = split_equals(step)
    if len(sides) == 1:
        return step, None, ()
    last, target = sides[-1], value_of(sides[-1])
    for i, side in enumerate(sides[:-1]):
        plain = _number_text(side)
        if not re.search(r"\d", plain):
            continue  # `x`, `f`, `the total`
        listed = _ALTERNATIVES.search(top_level(plain)) and (i > 0 or not re.search(r"[A-Za-z]{3,}", plain))
        v = _side_value(side)
        unchecked = i > 0 and v is None and target is not None and not re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", plain))
        if listed or unchecked or (i > 0 and _JUXTAPOSED.fullmatch(plain)) or (None not in (v, target) and v != target):
            return text, "multiple", ()  # `x = 3 or x = 5`, `x = \\sqrt{2} = 1.414`, `x=3 x=5`, `58 + 67 = 124 = 125`
    if target is not None:
        return last, None, ()
    return last, None, tuple(side for side in sides[:-1] if _side_value(side) is not None)


def _last_step(text: str) -> str | None:
    """The text after the last top-level "so" / "thus" / `\\Rightarrow` (the derivation's conclusion);
    None when an earlier step gave the same name another value (`x = 3 \\Rightarrow x = 5`)."""
    steps, cut = [], 0
    for m in _DERIVES.finditer(text):
        head = text[: m.start()]
        if sum(head.count(c) for c in "{([") == sum(head.count(c) for c in "})]") and text[m.end() :].strip(" $.,"):
            steps.append(text[cut : m.start()].rstrip(" ,;:$"))
            cut = m.end()
    last = split_equals(text[cut:])
    for step in steps:
        sides = split_equals(step)
        named = len(sides) > 1 and len(last) > 1 and _normalise(sides[0]) == _normalise(last[0]) != ""
        bare = len(sides) == 1 and _wordless(step)  # `7, so 5`
        earlier, final = value_of(sides[-1]), value_of(last[-1])
        if (named or bare) and None not in (earlier, final) and earlier != final:
            return None
    return text[cut:]


def value_of(text: str) -> Fraction | float | None:
    """The exact value of a number answer ("125 apples"), or of arithmetic on number literals; else None."""
    found = classify(text, "number", None)
    if found.form in ("integer", "number") or found.value is not None:
        return found.value
    return _side_value(text)


def _side_value(text: str) -> Fraction | float | None:
    """The exact value of arithmetic on number literals, words before it allowed ("So 58 + 67"), `inf`
    for one too big to compute; None for anything else (`x_1`, `f(2)`, `2x`, `\\binom{10}{3}`)."""
    s = _PROSE_LEAD.sub("", _number_text(text))
    literals = list(_LITERAL.finditer(s))
    if not literals or len(s) > MAX_ANSWER_CHARS:
        return None
    return arithmetic(_LITERAL.sub("\x01", s), [_literal_value(m)[0] for m in literals])


def _key(text: str) -> tuple:
    """What two claims are compared by: their value where it is a number, else their spelling."""
    resolved, reason, _ = _resolve(text)
    if reason:
        return ("multiple", text)
    found = classify(resolved, "number", None)
    if found.form in ("integer", "number"):
        return ("n", found.value)
    return ("t", _NOISE.sub("", _normalise(resolved)))


def _normalise(text: str) -> str:
    """Spacing and operator spelling removed, so `37 \\times 6`, `37*6` and `37 × 6` read alike."""
    text = _strip(text)
    for a, b in _SYMBOL_OPS.items():
        text = text.replace(a, b)
    return re.sub(r"\s+", "", text)


@functools.lru_cache(maxsize=8192)
def _number_text(text: str) -> str:
    """A number answer's text with its spelling made plain and its spaces kept (they separate numbers)."""
    text = canonical_chars(text).replace("\\$", " ").replace("\\%", "%")
    text = _EMPHASIS.sub(" ", text)
    for a, b in _SYMBOL_OPS.items():
        text = text.replace(a, b)
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", text)  # \frac12
    text = _TEXT_CMD.sub(r" \1", _TEXT_CMD.sub(r" \1", text))  # no space after: `\\text{answer}.5` is not .5
    text = _THOUSANDS.sub(lambda m: re.sub(r"\D", "", m.group()), text)
    text = _SPACE_CMD.sub(" ", text).replace("$", " ")
    return re.sub(r"\s+", " ", text).strip()


def _literal_value(m: re.Match) -> tuple[Fraction, str]:
    """The value of one `_LITERAL` match and its kind: integer, decimal, fraction, or unreduced."""
    frac_num, frac_den, decimal, slash_num, slash_den, integer = m.groups()
    num, den = (frac_num, frac_den) if frac_num is not None else (slash_num, slash_den)
    if num is not None:
        n, d = int(num), int(den)
        if d == 0:
            return Fraction(0), "unreduced"
        return Fraction(n, d), "fraction" if d > 1 and gcd(n, d) == 1 else "unreduced"
    if decimal is not None:
        return Fraction(decimal), "decimal"
    return Fraction(int(integer)), "integer"


def numbers_in(text: str) -> list[Fraction]:
    """Every number literal written in `text` (unsigned)."""
    return [_literal_value(m)[0] for m in _LITERAL.finditer(_number_text(text))]


def _sign(s: str, m: re.Match) -> tuple[int, int]:
    """(sign, start) of the literal m: a `-`/`+` before it is its sign after nothing, a bracket, `=`, `:`,
    `,` or a word ("It is -7"); after a variable or a number it is an operator (`x - 7`)."""
    j = m.start()
    while j > 0 and s[j - 1] == " ":
        j -= 1
    word = re.search(r"(?i)\b(minus|negative|plus|positive)\s*$", s[:j])
    if word:  # "negative 7"
        return (-1 if word.group(1).lower() in ("minus", "negative") else 1), word.start()
    if j == 0 or s[j - 1] not in "+-":
        return 1, m.start()
    before = s[: j - 1].rstrip()
    if not before or before[-1] in "([{=:,;" or re.search(r"(?:^|[^A-Za-z\\])[A-Za-z]{2,}$", before):
        return (-1 if s[j - 1] == "-" else 1), j - 1
    return 1, m.start()


def _odd_symbol(text: str) -> bool:
    """A math symbol or special number (`√`, `²`, `½`, `∞`, `≠`) that a number answer cannot hold."""
    return not text.isascii() and any(unicodedata.category(c) in ("Sm", "No", "Nd", "Cf", "Co") for c in text if ord(c) > 127)


def classify(text: str, form: str, prompt: str | None) -> Classified:
    """The form `text` is written in, for a task asking for `form` ("integer" or "number")."""
    s = _number_text(text)
    literals = list(_LITERAL.finditer(s))
    if not literals:
        return Classified("unparseable", None)
    sign, begin = _sign(s, literals[0]) if len(literals) == 1 else (1, literals[0].start())
    rest = s[:begin] + "\x01" + s[literals[0].end() :] if len(literals) == 1 else _LITERAL.sub("\x01", s)
    for _ in range(3 if len(literals) == 1 else 0):  # (7), (-7), [7], {7}
        rest = re.sub(r"(?<![A-Za-z])[(\[{]\s*\x01\s*[)\]}]", "\x01", rest)  # not f(2)
    rest = re.sub(r"\(\s*[A-Za-z]{2,}[A-Za-z\s',.]*\)", " ", rest)  # "125 (apples)"
    if _OPERATOR.search(rest) or _odd_symbol(rest):
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
    return bool(_RESTATE_OP.search(norm)) and norm in _NOISE.sub("", _normalise(prompt))  # `\pi` alone is no copy


def gold_form(gold: str) -> str:
    """`auto`'s choice for a gold answer: integer, number or expression."""
    found = classify(gold, "number", None)
    return found.form if found.form in ("integer", "number") else "expression"
