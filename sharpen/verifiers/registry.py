"""One record per verifier: its function and every trait the pipeline asks of it, in one place.

A built-in verifier is a `VerifierRecord` in `BUILTIN`. A user's verifier is named by import
path, `verify.verifier: mypkg.rewards:score` (a module importable from the project root, or an
installed package, then `:` and a function), with the signature every verifier has:

    score(completions: list[str], references: list[str | None], *, prompts: list[str] | None = None)
        -> list[VerifyResult | bool | float]

`references` are the problems' gold `answer`s. A bool is correct or not; a number is the reward,
in [0, 1], correct only at 1.0; a `VerifyResult` says also what answer was read and why. Anything
else (a wrong count, None, a string, NaN, an object that claims to equal anything) is an error
naming `verify.verifier`: the reward is the objective, so it must be a plain value. The module's
file is a dependency of every stage that scores with it (`sharpen deps` adds it to dvc.yaml, and a
stage refuses to score with a plug-in that dvc.yaml does not list, so editing it always reruns them).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sharpen.plugins import is_import_path, load, source_of
from sharpen.verifiers.answers import FORM_REASONS
from sharpen.verifiers.exact import exact_integer
from sharpen.verifiers.execution import unit_test_reference, unit_tests
from sharpen.verifiers.gym import reasoning_gym
from sharpen.verifiers.math import lenient_math_equiv, math_equiv, vote_key
from sharpen.verifiers.programs import program_input, program_io
from sharpen.verifiers.result import Verifier, VerifierError, VerifyResult

REASONS = ("ok", "wrong", "unparseable", "timeout", *FORM_REASONS)


@dataclass(frozen=True)
class VerifierRecord:
    """A verifier and its traits.

    reference: (the problem column it scores against, how a reference is built from a row) when
    that is not the problem's `answer` (unit tests, reasoning-gym sources); runs_a_spec: its
    reference is a JSON spec the solver's output runs against, so there is no answer to vote on;
    vote_key: how equal answers written differently vote as one (absent: as written); lenient: a
    form-blind check of the same answers (monitoring only); takes_answer_form: binds
    `verify.answer_form`; extracts: it reports the answer it read, so majority labels can use it."""

    name: str
    function: Verifier
    reference: tuple[str, Callable[[dict], str | None]] | None = None
    runs_a_spec: bool = False
    vote_key: Callable[[str], str] | None = None
    lenient: Callable[[Sequence[str], Sequence[str]], list[bool]] | None = None
    takes_answer_form: bool = False
    extracts: bool = True
    source: Path | None = None  # a plug-in's file (a dependency of the stages that call it)

    @property
    def reads_answer(self) -> bool:
        """It scores against the problem's gold `answer` (not tests, sources or a spec)."""
        return self.reference is None and not self.runs_a_spec

    def bound(self, answer_form: str = "auto") -> Verifier:
        """The function, with the task's answer form bound where it takes one."""
        if self.takes_answer_form:
            return functools.partial(self.function, answer_form=answer_form)
        if answer_form != "auto":
            takes = ", ".join(r.name for r in BUILTIN.values() if r.takes_answer_form)
            raise VerifierError(f"verify.answer_form: {self.name} fixes its own answer form; answer_form is for {takes}")
        return self.function


BUILTIN: dict[str, VerifierRecord] = {
    r.name: r
    for r in [
        VerifierRecord("exact_integer", exact_integer),
        VerifierRecord("math_equiv", math_equiv, vote_key=vote_key, lenient=lenient_math_equiv, takes_answer_form=True),
        VerifierRecord("unit_tests", unit_tests,
                       reference=("tests", lambda r: unit_test_reference(r["prompt"], r["tests"]))),
        VerifierRecord("reasoning_gym", reasoning_gym, reference=("source", lambda r: r["source"])),
        VerifierRecord("program_input", program_input, runs_a_spec=True),
        VerifierRecord("program_io", program_io, runs_a_spec=True),
    ]
}


def lookup(name: str) -> VerifierRecord:
    """The record of a built-in verifier, or of a user's (`module:function`); an error names the key."""
    if name in BUILTIN:
        return BUILTIN[name]
    if is_import_path(name):
        return _plugin(name)
    raise VerifierError(f"verify.verifier: unknown verifier {name!r}; allowed: {', '.join(BUILTIN)}, "
                        "or a function by import path (module:function)")


@functools.lru_cache(maxsize=None)
def _plugin(name: str) -> VerifierRecord:
    try:
        function, source = load(name, "verify.verifier"), source_of(name, "verify.verifier")
    except ValueError as e:  # sharpen.plugins names the key and what is wrong: the user's to fix
        raise VerifierError(str(e)) from None
    return VerifierRecord(name, _checked(name, function), extracts=False, source=source)


def _checked(name: str, function: Callable) -> Verifier:
    """The user's function, its results checked and made `VerifyResult`s."""

    def verifier(completions, references, *, prompts=None) -> list[VerifyResult]:
        completions, references = list(completions), list(references)
        out = function(completions, references, prompts=prompts)
        if not isinstance(out, (list, tuple)) or len(out) != len(completions):
            got = f"{len(out)} results" if isinstance(out, (list, tuple)) else type(out).__name__
            raise VerifierError(f"verify.verifier: {name} must return a list of one result per completion "
                                f"({len(completions)}), got {got}")
        return [_result(name, item, i) for i, item in enumerate(out)]

    verifier.__name__ = name
    return verifier


def _result(name: str, item, i: int) -> VerifyResult:
    if type(item) is VerifyResult:
        extracted, reward, correct, reason = item
        if extracted is not None and type(extracted) is not str:
            raise VerifierError(f"verify.verifier: {name} result {i}: extracted must be a str or None, "
                                f"got {type(extracted).__name__}")
        if type(correct) is not bool:
            raise VerifierError(f"verify.verifier: {name} result {i}: correct must be a bool, got {type(correct).__name__}")
        if reason not in REASONS:
            raise VerifierError(f"verify.verifier: {name} result {i}: reason {reason!r} is not one of {', '.join(REASONS)}")
        reward = _reward(name, reward, i)
        if correct and reward != 1.0:
            raise VerifierError(f"verify.verifier: {name} result {i}: correct with reward {reward} (a pass pays 1.0)")
        return VerifyResult(extracted, reward, correct, reason)
    if type(item) is bool:  # exactly bool: an object that claims to equal True is no verdict
        return VerifyResult(None, float(item), item, "ok" if item else "wrong")
    reward = _reward(name, item, i)
    return VerifyResult(None, reward, reward == 1.0, "ok" if reward == 1.0 else "wrong")


def _reward(name: str, value, i: int) -> float:
    if not isinstance(value, numbers.Real):
        raise VerifierError(f"verify.verifier: {name} result {i}: expected a bool, a number in [0, 1] or a "
                            f"VerifyResult, got {type(value).__name__}")
    reward = math.fsum((value,))  # a plain float, whatever the object claims about equality
    if not math.isfinite(reward) or not 0.0 <= reward <= 1.0:
        raise VerifierError(f"verify.verifier: {name} result {i}: reward {value!r} is not in [0, 1]")
    return reward
