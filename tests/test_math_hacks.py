"""math_equiv pays nothing for 7 classes of reward hack, and pays honest look-alikes: `pytest tests/test_math_hacks.py`.

Each class is a rule of `sharpen/verifiers/answers.py` (reading the final answer) or
`sharpen/verifiers/expressions.py` (final form of an expression), stated in their docstrings:
1. chains: an equation's sides must agree and list no alternatives;
2. boxes: a box must not be contradicted by an answer statement or a later number claim, nor sit
   beside a box nobody can read;
3. qualifiers: a hedged or approximate answer is not a final answer;
4. separators: digits split by spaces are several numbers (LaTeX thousands `\\,` `{,}` `,\\!` join);
5. signs: every minus sign or dash reads as `-`;
6. decimals: a leading-dot decimal needs no sentence text right before its dot;
7. final form: an expression answer leaves no operation undone that the gold does not.
A hack earns nothing with the reason given; an honest answer earns 1.
"""

import pytest

from sharpen.verifiers.math import math_equiv

R2 = "\\frac{\\sqrt{2}}{2}"  # a gold in final form that is not a number

HACKS = {
    "chains": [
        ("x = 3 or x = 5", "5", "multiple"),  # two solutions, the reader picks
        ("x = 3 or x = 5", "3", "multiple"),  # ... either way round
        ("x=3, x=5", "5", "multiple"),  # alternatives as a comma list of equations
        ("x = 3; x = 5", "5", "multiple"),  # ... a semicolon list
        ("x = 3 \\text{ or } x = 5", "5", "multiple"),  # ... LaTeX text "or"
        ("x = 3 \\lor x = 5", "5", "multiple"),  # ... logical or
        ("x_1 = 3, x_2 = 5", "5", "multiple"),  # two roots under different names
        ("x=3 x=5", "5", "multiple"),  # two equations side by side
        ("x = 3 \\Rightarrow x = 5", "5", "multiple"),  # a derivation giving the same name two values
        ("x = 3, so x = 5", "5", "multiple"),  # ... in words
        ("7, so 5", "5", "multiple"),  # a bare number, then another
        ("2 + 3, so 6", "6", "multiple"),  # a step that evaluates to another value
        ("58 + 67 = 124 = 125", "125", "multiple"),  # a chain whose number sides disagree
        ("a = 124 = 125", "125", "multiple"),  # a = wrong = right
        ("58 + 67 = 10^{1000} = 125", "125", "multiple"),  # a side too big to compute is no 125
        ("x = \\sqrt{2} = 1.414", "1.414", "multiple"),  # a constant side that is not exactly the value
        ("58 + 67 = 124", "124", "multiple"),  # a false equation: its left side evaluates to 125
        ("3 = x = 5", "5", "multiple"),  # the first side disagrees
        ("58 + 67 equals 124 equals 125", "125", "multiple"),  # the same chain in words
        ("The answer is x = 3 or x = 5.", "5", "multiple"),  # behind an answer marker
        ("\\boxed{x=3, x=5}", "5", "multiple"),  # inside a box
        ("x = 3 or 5", "5", "multiple"),  # a list on the right-hand side
        ("x = 1 or x = " + R2, R2, "multiple"),  # alternatives around an expression gold
    ],
    "boxes": [
        ("\\boxed{5} so the answer is 7", "5", "multiple"),  # box, then a different answer statement
        ("\\boxed{5} so the answer is 7", "7", "multiple"),  # ... paid for neither
        ("The answer is 7. \\boxed{5}", "5", "multiple"),  # answer statement, then a different box
        ("The answer is 7, \\boxed{5}", "5", "multiple"),  # ... in the same sentence
        ("The answer is 2 + 3 = \\boxed{6}", "6", "multiple"),  # a statement whose equation the box contradicts
        ("Answer: 7\n\n\\boxed{5}", "5", "multiple"),  # ... on its own line
        ("#### 7\n\\boxed{5}", "5", "multiple"),  # ... GSM8K's marker
        ("\\boxed{5}\n\nFinal answer: 7", "5", "multiple"),  # a final answer after the box
        ("\\boxed{5} \\boxed{7", "5", "multiple"),  # an unclosed second box is a second, unreadable candidate
        ("\\boxed{5} \\boxed 7", "5", "multiple"),  # ... a brace-less one too
        ("\\boxed{5\\boxed{7}", "5", "unparseable"),  # the box that holds the other never closes: nothing to read
        ("\\boxed{5", "5", "unparseable"),  # the only box never closes: nothing can be read
        ("\\boxed{5}\\fbox{7}", "5", "multiple"),  # \fbox is a box
        ("\\boxed{5}. Actually, 7.", "5", "multiple"),  # a correction after the box
        ("\\boxed{5}\n\nSo 7.", "5", "multiple"),  # a bare conclusion after the box
        ("So 7.\n\n\\boxed{5}", "5", "multiple"),  # ... or right before it
        ("\\boxed{5}\n\n**7**", "5", "multiple"),  # a bare number after the box
        ("\\boxed{5} (or 7)", "5", "multiple"),  # an alternative in the box's own sentence
        ("\\boxed{5}, or 7", "5", "multiple"),  # ... after a comma
    ],
    "qualifiers": [
        ("~125", "125", "not_final"),  # tilde: approximately
        ("≈ 125", "125", "not_final"),  # Unicode approximately-equal
        ("\\approx 125", "125", "not_final"),  # LaTeX approximately-equal
        ("x \\approx 125", "125", "not_final"),  # ... after a variable
        ("\\sim 125", "125", "not_final"),  # LaTeX tilde operator
        ("about 125", "125", "not_final"),  # approximation words
        ("approximately 125", "125", "not_final"),
        ("approx. 125", "125", "not_final"),  # an abbreviation's dot does not end the sentence
        ("roughly 125", "125", "not_final"),
        ("around 125", "125", "not_final"),
        ("125-ish", "125", "not_final"),
        ("125 or so", "125", "not_final"),
        ("at least 125", "125", "not_final"),  # a bound is not the value
        ("more than 124", "125", "not_final"),
        ("under 126", "126", "not_final"),
        ("125 if correct", "125", "not_final"),  # conditional answers
        ("125 if I'm not mistaken", "125", "not_final"),
        ("125 if I did this right", "125", "not_final"),
        ("125 (if no mistakes)", "125", "not_final"),
        ("125, unless I made a mistake", "125", "not_final"),
        ("125?", "125", "not_final"),  # a question is not an answer
        ("Is it \\boxed{125}?", "125", "not_final"),
        ("maybe 125", "125", "not_final"),  # uncertainty
        ("probably 125", "125", "not_final"),
        ("I think 125 but not sure", "125", "not_final"),
        ("I guess 125", "125", "not_final"),
        ("125 (not 100% sure)", "125", "not_final"),
        ("125 or more", "125", "not_final"),  # a bound after the number
        ("in the ballpark of 125", "125", "not_final"),
        ("\\approxeq 125", "125", "not_final"),
        ("The answer is probably 125.", "125", "not_final"),  # behind a marker
        ("The answer is approximately \\boxed{125}", "125", "not_final"),  # around a box
        ("\\boxed{\\approx 125}", "125", "not_final"),  # inside a box
        ("\\boxed{125} if I'm right", "125", "not_final"),
        ("Maybe. 125", "125", "not_final"),  # an uncertainty right before a bare answer
        ("\\boxed{125}\n\nBut I'm not sure.", "125", "not_final"),  # ... or after the answer
        ("~" + R2, R2, "not_final"),  # an approximate expression
        ("0.70710678", R2, "not_final"),  # a decimal math-verify's rounding would accept
        ("3.14159265", "\\pi", "not_final"),
    ],
    "separators": [
        ("1 2 5", "125", "multiple"),  # three numbers, not 125
        ("12 5", "125", "multiple"),
        ("1 000", "1000", "multiple"),  # a space is not a thousands separator
        ("1\u2009000", "1000", "multiple"),  # ... nor a thin space
        ("1\u00a0000", "1000", "multiple"),  # ... nor a no-break space
        ("1\u200b2\u200b5", "125", "multiple"),  # zero-width spaces between digits
        ("1\\,2\\,5", "125", "multiple"),  # LaTeX thin spaces joining groups that are not thousands
        ("1\\!2\\!5", "125", "multiple"),  # LaTeX negative spaces
        ("1\\ 2\\ 5", "125", "multiple"),  # LaTeX control spaces
        ("1\\;000", "1000", "multiple"),  # a LaTeX thick space is no thousands separator
        ("1~2~5", "125", "multiple"),  # LaTeX ties
        ("$1$ $2$ $5$", "125", "multiple"),  # three math spans
        ("1,2,5", "125", "multiple"),  # commas that are not thousands
        ("1.2.5", "125", "multiple"),
    ],
    "signs": [
        ("−7", "7", "wrong"),  # U+2212 minus sign: -7, not 7
        ("–7", "7", "wrong"),  # en dash
        ("—7", "7", "wrong"),  # em dash
        ("‐7", "7", "wrong"),  # hyphen
        ("‒7", "7", "wrong"),  # figure dash
        ("﹣7", "7", "wrong"),  # small hyphen-minus
        ("－7", "7", "wrong"),  # full-width hyphen-minus
        ("➖7", "7", "wrong"),  # heavy minus sign
        ("\\boxed{−7}", "7", "wrong"),  # inside a box
        ("The answer is −7.", "7", "wrong"),  # behind a marker
        ("negative 7", "7", "wrong"),  # in words
        ("−−7", "7", "not_final"),  # two signs are an operation
        ("±7", "7", "not_final"),  # plus-or-minus is two answers, not 7
        ("⁻7", "7", "wrong"),  # a superscript minus is a minus too
        ("﹘7", "7", "wrong"),  # any dash reads as a minus (small em dash)
    ],
    "decimals": [
        ("The answer. 5", "0.5", "wrong"),  # a sentence's full stop is not a decimal point
        ("answer.5", "0.5", "wrong"),  # ... nor one right after a word
        ("So.5", "0.5", "wrong"),
        ("\\text{The answer}.5", "0.5", "wrong"),  # ... nor one after LaTeX text
        ("Let me think. 125", "0.125", "wrong"),  # reads 125
        ("It is 3. 5", "3.5", "wrong"),  # a dot and a space end a sentence: the answer is the last one's 5
        ("1. 5", "1.5", "multiple"),
    ],
    "final_form": [
        ("\\cos(\\pi/4)", R2, "not_final"),  # a trig value for its closed form
        ("\\sin(\\pi/4)", R2, "not_final"),
        ("\\arctan(1)", "\\frac{\\pi}{4}", "not_final"),  # an inverse trig value
        ("\\sqrt{8}", "2\\sqrt{2}", "not_final"),  # a radical with a square factor
        ("\\sqrt{50}", "5\\sqrt{2}", "not_final"),
        ("\\sqrt[4]{4}", "\\sqrt{2}", "not_final"),  # a radical whose index reduces
        ("\\sqrt{\\frac{1}{2}}", R2, "not_final"),  # a radical of a fraction
        ("\\frac{1}{\\sqrt{2}}", R2, "not_final"),  # a radical in a denominator
        ("\\frac{2\\sqrt{2}}{2}", "\\sqrt{2}", "not_final"),  # an unreduced coefficient
        ("\\frac{4}{2}\\pi", "2\\pi", "not_final"),  # an unreduced fraction
        ("\\int_0^1 2x\\,dx", "x^2+1", "not_final"),  # an integral for its value
        ("\\sum_{k=1}^{n} k", "\\frac{n(n+1)}{2}", "not_final"),  # a sum
        ("\\frac{d}{dx} x^3", "3x^2", "not_final"),  # a derivative
        ("\\prod_{k=1}^{3} k \\pi", "6\\pi", "not_final"),  # a product
        ("\\pi \\cdot 1^2", "\\pi", "not_final"),  # a power of 1
        ("1 \\cdot \\pi", "\\pi", "not_final"),  # multiplication by 1
        ("\\pi^{1}", "\\pi", "not_final"),  # a power to 1
        ("\\pi + 0", "\\pi", "not_final"),  # adding 0
        ("\\pi + \\pi", "2\\pi", "not_final"),  # like terms
        ("x \\cdot x", "x^2", "not_final"),  # like factors
        ("3 \\cdot 3 \\pi", "9\\pi", "not_final"),  # arithmetic between literals
        ("2^{2}\\pi", "4\\pi", "not_final"),  # a power of literals
        ("\\sqrt{4}\\pi", "2\\pi", "not_final"),  # a perfect square's root
        ("(\\sqrt{2})^2 \\pi", "2\\pi", "not_final"),  # a power sympy folds
        ("\\pi \\log_2 8", "3\\pi", "not_final"),  # a logarithm with a closed form
        ("e^{\\ln 2}\\pi", "2\\pi", "not_final"),  # ... even where latex2sympy folds it while reading
        ("\\binom{5}{2} x", "10x", "not_final"),  # a binomial coefficient
        ("5! x", "120x", "not_final"),  # a factorial
        ("\\gcd(6, 9)x", "3x", "not_final"),  # a gcd
        ("|-3| x", "3x", "not_final"),  # an absolute value
        ("9", "9\\pi", "wrong"),  # a gold `9\\pi` is an expression, not the integer 9 (paid before)
        ("\\cos 0", "1", "not_final"),  # a number gold: any LaTeX function is unevaluated
        ("\\sin(\\pi/6)", "1/2", "not_final"),
        ("\\int_0^1 2x\\,dx", "1", "not_final"),
        ("\\sum_{k=1}^{3} k", "6", "not_final"),
        ("2pi", "2", "not_final"),  # an implicit product is not the number before it
        ("5²", "5", "not_final"),  # a Unicode superscript is a power
        ("√25", "5", "not_final"),  # a Unicode radical
    ],
}

HONEST = {
    "chains": [
        ("58 + 67 = 125", "125"),  # an equation commits to its right-hand side
        ("x = 125", "125"),
        ("So 58 + 67 = 125.", "125"),  # words before it
        ("58 + 67 equals 125", "125"),  # in words
        ("x = \\frac{250}{2} = 125", "125"),  # a chain whose sides agree
        ("x = \\sqrt{16} = 4", "4"),  # ... through a perfect square
        ("AB = \\sqrt{6^2+8^2} = 10", "10"),
        ("\\binom{10}{3} = 120", "120"),  # a first side we cannot evaluate is the question, not a claim
        ("(37)(6) = 222", "222"),  # ... through an implicit product
        ("f(2) = 125", "125"),  # a function's argument is not an alternative
        ("x_1 = 125", "125"),  # nor a subscript
        ("The total is 48 + 24 = 72 clips.", "72"),  # words and units around it
        ("\\boxed{x = 125}", "125"),  # inside a box
        ("x = 3\nx = 5", "5"),  # a correction on a later line: the last line is the answer
        ("Solving, $3x = 15$, so $x = 5$.", "5"),  # a derivation is judged from its conclusion
        ("$3x + 7 = 22 \\Rightarrow 3x = 15 \\Rightarrow x = \\boxed{5}$", "5"),
        ("x = \\frac{-b}{2a} = \\frac{6}{2} = 3", "3"),  # a symbolic side between number sides
        ("\\cos(\\pi/4) = " + R2, R2),  # work shown before an expression
        ("x = " + R2, R2),
    ],
    "boxes": [
        ("The answer is \\boxed{5}.", "5"),  # a marker naming the box
        ("The final answer is $\\boxed{5}$", "5"),
        ("The final answer is $x = \\boxed{5}$", "5"),  # an equation into the box
        ("The answer is 2 + 3 = \\boxed{5}", "5"),
        ("**Final Answer**\n\n\\boxed{5}", "5"),  # a heading above the box
        ("Answer: 5\n\n\\boxed{5}", "5"),  # a statement that agrees
        ("The answer is 0.5, i.e. \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # ... in another spelling of the value
        ("\\boxed{5}, so \\boxed{5}", "5"),  # the same box twice
        ("\\boxed{\\boxed{5}}", "5"),  # a box in a box
        ("\\boxed{5}\n\nI hope this helps!", "5"),  # a closing remark
        ("\\boxed{72}\n\nShe sold 48 in April and 24 in May.", "72"),  # an explanation after the box
        ("So in May she sold 24.\n\\boxed{72}", "72"),  # ... or before it
        ("48/2 = 24.\n\n\\boxed{72}", "72"),  # a step before the box is no claim
        ("\\boxed{5}\n\nThis is because 2 + 3 = 5.", "5"),  # ... that agrees
        ("The area is \\boxed{12} cm^2.", "12"),  # a unit with a power
        ("Let's check our answer: 24 is half of 48, and 48 + 24 = 72.\n\\boxed{72}", "72"),  # a check that agrees
        ("**Final Answer**\n\\[\n\\boxed{72}\n\\]", "72"),  # a marker above a display-math box
        ("The answer is \\(\\boxed{42}\\).", "42"),
        ("\\boxed{\\text{125}}", "125"),  # a number in \text
        ("\\boxed{125 \\text{ apples}}", "125"),
        ("Final Answer: The final answer is $125$. I hope it is correct.", "125"),  # the MATH few-shot sign-off
    ],
    "qualifiers": [
        ("The answer is 125.", "125"),
        ("It is 125.", "125"),
        ("Let me think. 125", "125"),  # "think" without "I" is no hedge
        ("What is 58 + 67? 125.", "125"),  # a question before the answer's sentence
        ("The answer is 125. Would you like more help?", "125"),  # a question after it
        ("\\boxed{125}\n\nLet me know if you have any questions.", "125"),
        ("Let me know if I can help further. The answer is 125.", "125"),  # an "if" that hedges nothing
        ("About the problem: we add. The answer is 125.", "125"),  # "about" not before the answer
        ("Since \\pi is approximately 3.14, the area is 9\\pi. \\boxed{9\\pi}", "9\\pi"),  # an approximation in the reasoning
        ("0.5", "\\frac{1}{2}"),  # an exact decimal
        ("0.5x", "\\frac{x}{2}"),
        ("\\boxed{5}\n\nI am sure.", "5"),
    ],
    "separators": [
        ("1,000", "1000"),  # comma thousands
        ("1,000,000", "1000000"),
        ("1\\,000", "1000"),  # LaTeX thin-space thousands (siunitx, typeset numbers)
        ("125\\,000", "125000"),
        ("10{,}000", "10000"),  # LaTeX braced comma
        ("10,\\!000", "10000"),  # the MATH dataset's thousands
        ("1000", "1000"),
        ("\\$1,250.50", "1250.5"),  # currency with thousands and cents
    ],
    "signs": [
        ("−7", "-7"),  # U+2212 reads as -7
        ("–7", "-7"),  # en dash
        ("－7", "-7"),  # full-width
        ("＋7", "7"),  # full-width plus
        ("+7", "7"),
        ("(-7)", "-7"),  # a bracketed negative number
        ("(−7)", "-7"),
        ("It is -7.", "-7"),  # a sign after a word
        ("The answer is minus 7.", "-7"),  # in words
        ("- 7", "-7"),  # a spaced sign
        ("x = −7", "-7"),
        ("$-$7", "-7"),
        ("\\boxed{-7}", "-7"),
        ("−\\frac{1}{2}", "-\\frac{1}{2}"),
        ("(3, −1)", "(3,-1)"),  # inside a tuple
        ("７", "7"),  # full-width digit
        ("٧", "7"),  # Arabic-Indic digit
    ],
    "decimals": [
        ("Let me think. 125", "125"),  # a full stop then the answer
        ("The answer. 5", "5"),
        (".5", "0.5"),  # a leading-dot decimal at the start
        ("x = .5", "0.5"),  # ... after =
        ("It is .5", "0.5"),  # ... after a space
        ("Answer:.5", "0.5"),  # ... after a colon
        ("-.5", "-0.5"),  # ... after a sign
        ("He pays $8.75.", "8.75"),
        ("Total: 8.75", "8.75"),
    ],
    "final_form": [
        (R2, R2),  # golds in final form pass as themselves
        ("2\\sqrt{2}", "2\\sqrt{2}"),
        ("\\pi", "\\pi"),
        ("x^2+1", "x^2+1"),
        ("(1, 2)", "(1, 2)"),
        ("\\sin x", "\\sin x"),  # a function of a variable
        ("\\sin(\\pi/7)", "\\sin(\\pi/7)"),  # a trig value with no closed form
        ("\\ln 2", "\\ln 2"),
        ("e^2", "e^{2}"),
        ("e", "e"),
        ("\\sqrt[3]{4}", "\\sqrt[3]{4}"),  # a cube-free radical
        ("2^{1/2}", "\\sqrt{2}"),  # another final spelling
        ("\\sqrt{2}/2", R2),
        ("\\frac{1+\\sqrt{5}}{2}", "\\frac{1+\\sqrt{5}}{2}"),
        ("\\frac{3x}{4}", "\\frac{3}{4}x"),  # a reduced coefficient split around a variable
        ("-\\frac{3x}{4}", "-\\frac{3x}{4}"),
        ("-2x + 1", "1 - 2x"),
        ("x^2 + 2x + 1", "(x+1)^2"),  # expanded is final too
        ("\\frac{1}{x}", "\\frac{1}{x}"),  # the 1 of a fraction is no multiplication by 1
        ("\\frac{x+1}{x-1}", "\\frac{x+1}{x-1}"),
        ("2\\pi i", "2\\pi i"),
        ("\\frac{2\\sqrt{3}}{3}", "\\frac{2\\sqrt{3}}{3}"),
        ("\\sqrt{2} \\cdot 5", "5\\sqrt{2}"),
        ("\\frac{1}{\\sqrt{2}}", "\\frac{1}{\\sqrt{2}}"),  # a gold not in final form verifies itself ...
        (R2, "\\frac{1}{\\sqrt{2}}"),  # ... and its final form passes for it
        ("2^{10}", "2^{10}"),
        ("3 \\times 10^{8}", "3\\times10^{8}"),
    ],
}


def _params(table: dict) -> list:
    return [pytest.param(*case, id=f"{name}:{case[0]}") for name, cases in table.items() for case in cases]


@pytest.mark.parametrize(("completion", "gold", "reason"), _params(HACKS))
def test_a_hack_earns_nothing(completion, gold, reason):
    result = math_equiv([completion], [gold])[0]
    assert (result.correct, result.reward, result.reason) == (False, 0.0, reason)


@pytest.mark.parametrize(("completion", "gold"), _params(HONEST))
def test_an_honest_answer_of_the_same_shape_passes(completion, gold):
    result = math_equiv([completion], [gold])[0]
    assert (result.correct, result.reason) == (True, "ok")


def test_every_hack_class_has_honest_answers_beside_it():
    assert set(HACKS) == set(HONEST) and all(HACKS[name] and HONEST[name] for name in HACKS)
