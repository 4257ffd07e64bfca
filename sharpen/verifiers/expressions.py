"""Expressions: equation sides, exact arithmetic on number literals, and the final form of an expression answer.

For `answers.py`'s equation rule (every side of `58 + 67 = 124 = 125` must agree), without sympy:
`split_equals(text)` splits an equation or chain at its top-level `=` ("equals", "is equal to"),
`top_level(text)` drops bracketed parts (`f(2, 3)` lists nothing), and `arithmetic(skeleton, values)`
evaluates `58 + 67`, `\\frac{444}{2}`, `(37)(6)`, `\\sqrt{16}` exactly (Fractions).

`final_form(latex)` names the kinds of operation an expression answer (forms `expression` / `latex`)
still leaves undone; none means final form. A final expression contains no:
- `operator`: integral, sum, product, limit, derivative (`\\int_0^1 2x\\,dx`, `\\sum_{k=1}^{3} k`);
- `function`: function of constants that has a closed form (`\\cos(\\pi/4)`, `\\log_2 8`, `e^{\\ln 2}`,
  `5!`, `|-3|`); `\\sin x`, `\\ln 2`, `\\sin(\\pi/7)`, `e` stay as they are;
- `power`: power of number literals (`2^{10}`), power of 1 or to 0 or 1 (`1^2`, `x^1`), a radical
  with a perfect-power factor or of a fraction or a negative number (`\\sqrt{8}` → `2\\sqrt{2}`,
  `\\sqrt{1/2}`), a radical in a denominator (`\\frac{1}{\\sqrt{2}}`), a power sympy folds (`(\\sqrt{2})^2`,
  `(x^2)^3`);
- `arithmetic`: arithmetic between number literals (`2+3`, `2 \\cdot 3`, `\\pi \\cdot 1`, `x + 0`), like
  terms or factors not collected (`x + x`, `x \\cdot x`), an unreduced fraction (`\\frac{6}{8}`, `\\frac{2\\sqrt{2}}{4}`).
What is judged is what was written: math-verify's tree keeps `\\cos(\\pi/4)`, `\\sqrt{8}`, `2+3` as they
are, and LaTeX it may have computed while reading (`e^{\\ln 2}`, `\\binom`, `\\gcd`, `%`) is reread
with sympy's evaluation off. math.py rejects (`not_final`) an answer leaving a kind of operation undone that the gold does not
itself leave undone: a gold `\\frac{1}{\\sqrt{2}}` or `2^{10}` still verifies against itself.

`inexact(gold, answer)`: a decimal answer that math-verify's rounding accepts but that is not
exactly the gold (`0.70710678` for `\\frac{\\sqrt{2}}{2}`): an approximation, `not_final`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import gcd, inf

_EQUALS = re.compile(r"(?<![<>!:])==?(?!=)|\b(?:equals|is\s+equal\s+to)\b", re.IGNORECASE)
_SPLIT = re.compile(r"[{(\[]|[})\]]|" + _EQUALS.pattern, re.IGNORECASE)
_TOKEN = re.compile(r"\s*(\x01|\\frac|\\sqrt|[-+*/^(){}\[\]])")
_UNREDUCED = re.compile(r"\\[dt]?frac\s*\{\s*(\d{1,50})\s*\}\s*\{\s*(\d{1,50})\s*\}|(?<![\w.^{}])(\d{1,50})\s*/\s*(\d{1,50})(?![\w.])")
_EVALUATED_ON_READ = re.compile(r"e\s*\^|\\exp|binom|\\choose|gcd|lcm|\\operatorname|%|\\mathrm\{e\}")
MAX_POWER = 256  # exponent limit for exact arithmetic (2^{10} is evaluated; 2^{10^9} is not)


def arithmetic(skeleton: str, values: list[Fraction]) -> Fraction | float | None:
    """The exact value of `skeleton` (its number literals replaced by \\x01, given in `values`): + - * /
    ^, brackets, `\\frac{}{}`, `\\sqrt{}` of a perfect square, implicit products; `inf` for a power too
    big to compute (`10^{1000}` is no number an answer can equal); None for anything else."""
    tokens, pos = [], 0
    while pos < len(skeleton):
        m = _TOKEN.match(skeleton, pos)
        if not m:
            return None if skeleton[pos:].strip() else _Parser(tokens, values).run()
        tokens.append(m.group(1))
        pos = m.end()
    return _Parser(tokens, values).run()


def split_equals(text: str) -> list[str]:
    """The sides of an equation or chain, split at top-level `=` / "equals" / "is equal to" only."""
    sides, depth, last = [], 0, 0
    for m in _SPLIT.finditer(text):
        tok = m.group()
        if tok in "{([":
            depth += 1
        elif tok in "})]":
            depth = max(0, depth - 1)
        elif depth == 0:
            sides.append(text[last : m.start()])
            last = m.end()
    return [*sides, text[last:]]


def top_level(text: str) -> str:
    """text without its bracketed parts (`f(2, 3)` holds no list)."""
    prev = None
    while prev != text:
        prev, text = text, re.sub(r"\([^()]*\)|\{[^{}]*\}|\[[^\[\]]*\]", " ", text)
    return text


class _Parser:
    """Recursive descent: expr = term (± term)*; term = unary ((*|/|implicit) unary)*; unary = ±unary | power."""

    def __init__(self, tokens: list[str], values: list[Fraction]):
        self.tokens, self.values, self.i, self.v = tokens, values, 0, 0

    def run(self) -> Fraction | float | None:
        try:
            out = self.expr()
        except OverflowError:
            return inf
        except (ValueError, ZeroDivisionError, IndexError, RecursionError):
            return None
        return out if self.i == len(self.tokens) and self.v == len(self.values) else None

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"expected {expected!r}")
        self.i += 1
        return tok

    def expr(self) -> Fraction:
        out = self.term()
        while self.peek() in ("+", "-"):
            out = out + self.term() if self.take() == "+" else out - self.term()
        return out

    def term(self) -> Fraction:
        out = self.unary()
        while self.peek() in ("*", "/", "(", "[", "{", "\\frac", "\\sqrt") or (
                self.peek() == "\x01" and self.tokens[self.i - 1] in ")]}"):  # (37)(6), 2(3); not `2 3`
            op = self.take() if self.peek() in ("*", "/") else "*"
            out = out * self.unary() if op == "*" else out / self.unary()
        return out

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            return self.unary() if self.take() == "+" else -self.unary()
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.unary() if self.peek() in ("+", "-") else self.atom()
        if exponent.denominator != 1 or (base == 0 and exponent < 0):
            raise ValueError("not an exact power")
        if abs(exponent) > MAX_POWER or max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(exponent) > 10**5:
            raise OverflowError("too big to compute")
        return base ** int(exponent)

    def atom(self) -> Fraction:
        tok = self.take()
        if tok == "\x01":
            self.v += 1
            return self.values[self.v - 1]
        if tok in "([{":
            out = self.expr()
            self.take({"(": ")", "[": "]", "{": "}"}[tok])
            return out
        if tok == "\\frac":
            num, den = self.group(), self.group()
            return num / den
        if tok == "\\sqrt":
            return _exact_root(self.group())
        raise ValueError(tok)

    def group(self) -> Fraction:
        self.take("{")
        out = self.expr()
        self.take("}")
        return out


def _exact_root(value: Fraction) -> Fraction:
    from math import isqrt

    if value < 0:
        raise ValueError("negative radicand")
    num, den = isqrt(value.numerator), isqrt(value.denominator)
    if num * num != value.numerator or den * den != value.denominator:
        raise ValueError("not a perfect square")
    return Fraction(num, den)


def final_form(latex: str, parsed=None) -> frozenset[str]:
    """The kinds of operation `latex` leaves undone (module docstring); empty when it is in final form.
    `parsed`: math-verify's tree of it, judged as it is unless it may hide something computed while
    reading (`e^{\\ln 2}`, `\\binom`, `\\gcd`, `%`): then latex2sympy rereads it with evaluation off."""
    found: set[str] = set()
    for m in _UNREDUCED.finditer(latex):
        num, den = (int(m.group(1)), int(m.group(2))) if m.group(1) else (int(m.group(3)), int(m.group(4)))
        if den in (0, 1) or gcd(num, den) != 1:
            found.add("arithmetic")
    tree = _structure(latex) if parsed is None or _EVALUATED_ON_READ.search(latex) else None
    _walk(parsed if tree is None else tree, found, in_mul=False)
    return frozenset(found)


def _structure(latex: str):
    import sympy
    from latex2sympy2_extended import latex2sympy

    try:
        with sympy.evaluate(False):
            return latex2sympy(latex)
    except Exception:  # noqa: BLE001 - latex2sympy raises many kinds; math-verify's own tree is judged instead
        return None


def _walk(node, found: set[str], in_mul: bool) -> None:
    import sympy
    from sympy.core.function import Application

    if not isinstance(node, sympy.Basic):
        return
    if isinstance(node, (sympy.Integral, sympy.Sum, sympy.Product, sympy.Limit, sympy.Derivative, sympy.Subs)):
        found.add("operator")
    elif isinstance(node, sympy.UnevaluatedExpr):
        found.add("function")  # what latex2sympy computes as it reads: \gcd(6, 9), 50\%
    elif node.is_Add:
        _add(node, found)
    elif node.is_Mul:
        _mul(node, found)
    elif node.is_Pow:
        _pow(node, found, in_mul)
    elif isinstance(node, Application) and not node.free_symbols:
        _function(node, found)
    for arg in node.args:
        _walk(arg, found, in_mul=node.is_Mul)


def _flat(node, kind) -> list:
    out = []
    for arg in node.args:
        out.extend(_flat(arg, kind) if isinstance(arg, kind) else [arg])
    return out


def _is_reciprocal(f) -> bool:
    return f.is_Pow and f.exp == -1 and f.base.is_Integer


def _evaluated(node):
    """node rebuilt with sympy's automatic evaluation on (what sympy folds is not final); a power too
    big to compute (`10^{10^{10}}`) stays as it is."""
    if not node.args or node.is_Atom:
        return node
    args = [_evaluated(a) for a in node.args]
    if node.is_Pow and args[1].is_Number and abs(args[1]) > MAX_POWER and args[0].is_Number:
        return node
    try:
        return node.func(*args)
    except Exception:  # noqa: BLE001 - a node that cannot be rebuilt is judged as written
        return node


def _core(term):
    """A term without its number factors (`2x` → `x`), evaluated: like terms share it."""
    import sympy

    factors = _flat(term, sympy.Mul) if term.is_Mul else [term]
    return _evaluated(sympy.Mul(*[f for f in factors if not (f.is_Number or _is_reciprocal(f))], evaluate=False))


def _add(node, found: set[str]) -> None:
    import sympy

    terms = _flat(node, sympy.Add)
    numbers = [t for t in terms if t.is_Number]
    cores = [_core(t) for t in terms if not t.is_Number]
    if len(numbers) > 1 or any(t == 0 for t in numbers) or len(set(cores)) < len(cores):
        found.add("arithmetic")


def _mul(node, found: set[str]) -> None:
    import sympy

    factors = _flat(node, sympy.Mul)
    signs = [f for f in factors if f == -1]
    numbers = [f for f in factors if f.is_Number and f != -1]
    recips = [f.base for f in factors if _is_reciprocal(f)]
    has_den = any(f.is_Pow and f.exp.is_negative for f in factors)
    bases = [f.as_base_exp()[0] for f in factors if not (f.is_Number or _is_reciprocal(f))]
    if len(signs) > 1 or len(numbers) > 1 or len(recips) > 1 or len(set(bases)) < len(bases):
        found.add("arithmetic")
    elif any(n == 0 for n in numbers) or (numbers == [1] and not (len(node.args) == 2 and has_den)):
        found.add("arithmetic")  # 0 · x, 1 · π; the 1 of \frac{1}{x} is fine
    elif recips and (recips[0] in (0, 1) or (numbers and not numbers[0].is_Integer)
                     or (numbers and gcd(int(numbers[0]), int(recips[0])) != 1)):
        found.add("arithmetic")  # \frac{x}{1}, \frac{2x}{4}


def _pow(node, found: set[str], in_mul: bool) -> None:
    import sympy

    base, exp = node.args
    exp = exp if exp.free_symbols else _evaluated(exp)  # \sqrt[3]{4} read with evaluation off: 4^(3^-1)
    if exp in (0, 1) or base == 1:
        found.add("power")
    elif base.is_Integer and exp == -1:
        if not in_mul:
            found.add("power")  # 2^{-1}; a denominator of a product (\frac{x}{2}) is fine
    elif base.is_Rational and exp.is_Rational:
        if exp.is_Integer or not _radical_ok(base, exp):
            found.add("power")
    else:
        ev, b, e = _evaluated(node), _evaluated(base), _evaluated(exp)
        folded = not (ev.is_Pow and ev.base == b and ev.exp == e)
        if folded and not (isinstance(ev, sympy.exp) and b in (sympy.E, sympy.exp(1))):
            found.add("power")


def _radical_ok(base, exp) -> bool:
    """`base^(p/q)` is a simplest radical: a positive integer base whose p-th power has no q-th power factor."""
    from sympy import factorint, integer_nthroot

    if not (base.is_Integer and base > 1 and 0 < exp < 1) or base > 10**40:
        return False
    p, q = int(exp.p), int(exp.q)
    n = int(base) ** p
    factors = factorint(n, limit=10**4)
    if any(mult >= q for mult in factors.values()) or gcd(q, *factors.values()) > 1:
        return False  # \sqrt{8} = 2\sqrt{2}; \sqrt[4]{4} = \sqrt{2}
    rest = max(factors) if factors else 1
    return rest < 10**4 or not integer_nthroot(rest, q)[1]


_ALWAYS = ("factorial", "factorial2", "binomial", "gamma", "subfactorial", "Abs", "floor", "ceiling", "Max", "Min",
           "sign", "gcd", "lcm", "fibonacci", "harmonic", "RisingFactorial", "FallingFactorial")


def _function(node, found: set[str]) -> None:
    """A function of constants: `function` when it has a closed form (sympy evaluates it away)."""
    import sympy

    if isinstance(node, sympy.exp) and node.args[0] == 1:
        return  # e
    if type(node).__name__ in _ALWAYS or not _evaluated(node).has(node.func):
        found.add("function")


def inexact(gold, answer) -> bool:
    """The answer holds a decimal and, with its decimals read exactly, differs from the gold."""
    import sympy

    if not (isinstance(gold, sympy.Expr) and isinstance(answer, sympy.Expr)) or not answer.atoms(sympy.Float):
        return False
    try:
        exact = [e.xreplace({f: sympy.Rational(str(f)) for f in e.atoms(sympy.Float)}) for e in (gold, answer)]
        diff = exact[0] - exact[1]
        if diff.free_symbols:
            return bool(sympy.simplify(diff) != 0)
        return bool(abs(sympy.N(diff, 60)) > sympy.Float(10) ** -45)
    except Exception:  # noqa: BLE001 - sympy raises many kinds; math-verify's verdict stands
        return False
